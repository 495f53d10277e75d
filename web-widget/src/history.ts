// The messages the visitor has seen, per conversation, and the seq bookkeeping of
// docs/realtime-protocol.md ("Reconnect and resync"): for each conversation, the highest
// seq seen without a gap. Pure data: the connection lives in chat.ts.

import type { Message, Shown, Status } from "./types";

const RANK: Record<Status, number> = {
  failed: -1, pending: 0, scheduled: 1, queued: 2, sent: 3, delivered: 4, read: 5,
};

/** The further of two statuses (a status never moves backwards). */
export function better(a: Status, b: Status): Status {
  return RANK[b] > RANK[a] ? b : a;
}

export type Place = "next" | "seen" | "gap" | "unknown";

export class History {
  private msgs = new Map<string, Message>();
  private horizons = new Map<string, number>();
  /** Where the visitor's next message goes: the conversation with the newest message. */
  current: string | null = null;

  get size(): number {
    return this.msgs.size;
  }

  conversations(): string[] {
    return [...this.horizons.keys()];
  }

  horizon(conv: string): number | undefined {
    return this.horizons.get(conv);
  }

  /** Raises ``conv``'s horizon to ``seq`` (everything up to it is accounted for). */
  reach(conv: string, seq: number): void {
    this.horizons.set(conv, Math.max(this.horizons.get(conv) ?? 0, seq));
  }

  /** Where a live message of ``conv`` falls: the next seq, one already seen, past a gap,
   * or in a conversation not tracked yet. Takes the horizon forward for the next one. */
  place(conv: string, seq: number): Place {
    const horizon = this.horizons.get(conv);
    if (horizon === undefined) return "unknown";
    if (seq === horizon + 1) {
      this.horizons.set(conv, seq);
      return "next";
    }
    return seq <= horizon ? "seen" : "gap";
  }

  /** Adds or refreshes messages (a status only moves forward); returns the
   * client_message_ids of the visitor's own messages among them. */
  merge(messages: Message[]): string[] {
    const own: string[] = [];
    for (const m of messages) {
      const known = this.msgs.get(m.id);
      this.msgs.set(m.id, known ? { ...m, status: better(known.status, m.status) } : m);
      if (m.client_message_id && m.direction === "inbound") own.push(m.client_message_id);
    }
    let newest: Message | undefined;
    for (const m of this.msgs.values()) if (!newest || m.created_at > newest.created_at) newest = m;
    if (newest) this.current = newest.conversation_id;
    return own;
  }

  setStatus(id: string, status: Status): void {
    const m = this.msgs.get(id);
    if (m) this.upgrade(m, status);
  }

  /** ``direction``'s messages of ``conv`` up to ``seq`` become at least ``status``. */
  markUpTo(conv: string, seq: number, direction: "inbound" | "outbound", status: Status): void {
    for (const m of this.msgs.values()) {
      if (m.conversation_id === conv && m.direction === direction && m.seq <= seq) {
        this.upgrade(m, status);
      }
    }
  }

  /** Per conversation: the highest seq of the team's messages, and whether some are unread. */
  replies(): Map<string, { top: number; unread: boolean }> {
    const out = new Map<string, { top: number; unread: boolean }>();
    for (const m of this.msgs.values()) {
      if (m.direction !== "outbound") continue;
      const r = out.get(m.conversation_id) || { top: 0, unread: false };
      out.set(m.conversation_id, { top: Math.max(r.top, m.seq), unread: r.unread || m.status !== "read" });
    }
    return out;
  }

  unread(): number {
    let n = 0;
    for (const m of this.msgs.values()) if (m.direction === "outbound" && m.status !== "read") n++;
    return n;
  }

  /** The messages in order: conversations by their first message, then by seq. */
  shown(): Shown[] {
    const byConv = new Map<string, Message[]>();
    for (const m of this.msgs.values()) {
      const list = byConv.get(m.conversation_id) || [];
      list.push(m);
      byConv.set(m.conversation_id, list);
    }
    const groups = [...byConv.values()].map((l) => l.sort((a, b) => a.seq - b.seq));
    groups.sort((a, b) => (a[0].created_at < b[0].created_at ? -1 : 1));
    return groups.flat().map((m) => ({
      key: m.id,
      mine: m.direction === "inbound",
      author: m.author,
      content: m.content,
      status: m.status,
      created_at: m.created_at,
    }));
  }

  clear(): void {
    this.msgs.clear();
    this.horizons.clear();
    this.current = null;
  }

  private upgrade(m: Message, status: Status): void {
    const next = better(m.status, status);
    if (next !== m.status) this.msgs.set(m.id, { ...m, status: next });
  }
}
