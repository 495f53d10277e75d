// What the widget keeps in the site's localStorage (key ``parley:<widget_key>``): the
// session token, whose it is, the outbox, whether the pre-chat form was answered and
// whether the window was open. Storage that is full or denied only shortens memory to
// the page view.

import type { AckError, Content } from "./types";

export interface OutboxItem {
  cmid: string; // the client_message_id, the same on every retry
  content: Content;
  created_at: string;
  failed?: AckError;
}

export interface Stored {
  session?: string;
  external_id?: string | null;
  outbox?: OutboxItem[];
  profiled?: boolean;
  open?: boolean;
}

export class Store {
  data: Stored;

  constructor(private readonly storage: Storage | null, private readonly key: string) {
    this.data = this.load();
  }

  get outbox(): OutboxItem[] {
    if (!Array.isArray(this.data.outbox)) this.data.outbox = [];
    return this.data.outbox;
  }

  /** Drops outbox items whose client_message_id is in ``cmids``; true if any was there. */
  settle(cmids: string[]): boolean {
    const before = this.outbox.length;
    this.data.outbox = this.outbox.filter((i) => !cmids.includes(i.cmid));
    if (this.data.outbox.length === before) return false;
    this.save();
    return true;
  }

  /** Forgets everything but whether the window was open. */
  forget(): void {
    this.data = { open: this.data.open };
    this.save();
  }

  save(): void {
    try {
      this.storage?.setItem(this.key, JSON.stringify(this.data));
    } catch {
      // Full or denied: the chat works for this page view only.
    }
  }

  private load(): Stored {
    try {
      const raw = this.storage?.getItem(this.key);
      const parsed = raw ? JSON.parse(raw) : {};
      return parsed && typeof parsed === "object" ? (parsed as Stored) : {};
    } catch {
      return {};
    }
  }
}

export function newId(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  const bytes = new Uint8Array(16);
  c.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
