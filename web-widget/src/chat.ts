// The widget's /client connection and what the window shows, without any UI.
//
// The session token and the outbox live in localStorage (store.ts), so a reload keeps the
// visitor, its history and what it wrote offline; the messages and their seqs in History
// (history.ts). After every ``session`` the widget resyncs what it tracks, then sends the
// outbox (each message with its client_message_id, so a retry is stored once).

import { io, type Socket } from "socket.io-client";
import { History } from "./history";
import { newId, type OutboxItem, Store } from "./store";
import type {
  Ack,
  AckError,
  Connection,
  Content,
  Conversation,
  Message,
  SessionEvent,
  Settings,
  Shown,
  Status,
  User,
} from "./types";

// Refusals and ack errors worth another try later; any other refusal is final.
const RETRY = new Set(["rate_limited", "unavailable", "internal_error"]);
const ACK_TIMEOUT = 15000;
const TYPING_EVERY = 2500;
const TYPING_IDLE = 4000;
const AGENT_TYPING_TTL = 8000;

export const DEFAULT_SETTINGS: Settings = {
  color: "#2563EB",
  title: null,
  greeting: null,
  pre_chat_form: { enabled: false, fields: [] },
};

export interface ChatOptions {
  server: string;
  widgetKey: string;
  storage: Storage | null;
}

type Listener = (data?: unknown) => void;

/** The external id a user_token names (its ``sub``), if it can be read. */
function tokenSubject(token: string): string | undefined {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const sub = JSON.parse(atob(part)).sub;
    return typeof sub === "string" ? sub : undefined;
  } catch {
    return undefined;
  }
}

export class Chat {
  connection: Connection = "connecting";
  refusal: AckError | null = null;
  settings: Settings = DEFAULT_SETTINGS;
  loading = true;
  open = false;
  agentTyping: string | null = null; // who is typing ("" when unnamed), or null
  // The visitor opened the window (not a reload restoring it): its first field takes the focus.
  wantsFocus = false;
  // Past the first moments of the page: a "Connecting…" is worth showing from then on.
  settled = false;
  private history = new History();
  private contactId: string | null = null;
  private ready = false; // the session came and its history is in
  private started = false;
  private inflight = new Set<string>();
  private syncing = new Map<string, boolean>(); // conversation -> "run again when done"
  private store: Store;
  private user: User | null = null;
  private socket: Socket;
  private listeners = new Set<Listener>();
  private handlers = new Map<string, Set<Listener>>();
  private timers: Record<string, ReturnType<typeof setTimeout> | undefined> = {};
  private typingSentAt = 0;
  private delivered = new Map<string, number>();
  private retryDelay = 1000;

  constructor(private readonly opts: ChatOptions) {
    this.store = new Store(opts.storage, `parley:${opts.widgetKey}`);
    // Open again after a reload or on the site's next page; not on a phone, where the
    // window would cover the new page.
    this.open = this.store.data.open === true && !window.matchMedia?.("(max-width: 480px)").matches;
    this.socket = io(opts.server.replace(/\/+$/, "") + "/client", {
      autoConnect: false,
      auth: (cb) => cb(this.auth()),
      reconnectionDelayMax: 10000,
    });
    const s = this.socket;
    s.on("session", (e: SessionEvent) => void this.onSession(e));
    s.on("connect_error", (err: Error & { data?: { code?: string } }) => this.onRefused(err));
    s.on("disconnect", (reason: string) => this.onDisconnect(reason));
    s.on("message", (e: { conversation_id: string; message: Message }) =>
      this.take(e.conversation_id, e.message, true),
    );
    s.on("message.status", (e: { message_id: string; status: Status }) => {
      this.history.setStatus(e.message_id, e.status);
      this.changed();
    });
    s.on("read", (e: { conversation_id: string; reader: { type: string }; seq: number }) => {
      // An agent read the visitor's messages, or the visitor read on another device.
      const direction = e.reader.type === "contact" ? "outbound" : "inbound";
      this.markUpTo(e.conversation_id, e.seq, direction, "read");
    });
    s.on("typing", (e: { typing: boolean; author: { type: string; name?: string } }) => {
      if (e.author.type === "contact") return;
      this.agentTyping = e.typing ? e.author.name || "" : null;
      this.timer("agentTyping", AGENT_TYPING_TTL, () => {
        this.agentTyping = null;
        this.changed();
      });
      this.changed();
    });
    s.on("conversation.updated", (c: Conversation) => {
      if (this.history.horizon(c.id) === undefined) void this.catchUp(c.id);
    });
    window.addEventListener("online", () => this.wake());
    window.addEventListener("offline", () => {
      // Hold still until the browser is back online (then reconnect at once).
      this.socket.disconnect();
      this.connection = "offline";
      this.changed();
    });
    document.addEventListener("visibilitychange", () => this.receipts());
  }

  // -- what the UI reads --------------------------------------------------------------

  /** Stored messages (by conversation, then seq), then the outbox's. */
  shown(): Shown[] {
    const waiting: Shown[] = this.outboxItems().map((item) => ({
      key: item.cmid,
      mine: true,
      author: { type: "contact" },
      content: item.content,
      status: item.failed ? "failed" : "pending",
      created_at: item.created_at,
    }));
    return [...this.history.shown(), ...waiting];
  }

  unread(): number {
    return this.history.unread();
  }

  /** Whether to ask the pre-chat form's questions before the first message. */
  needsForm(): boolean {
    return (
      this.settings.pre_chat_form.enabled &&
      this.ready &&
      !this.store.data.profiled &&
      !this.store.data.external_id &&
      this.history.size === 0 &&
      this.outboxItems().length === 0
    );
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  // -- the page's API (window.Parley) -----------------------------------------------

  on(event: string, fn: Listener): void {
    const set = this.handlers.get(event) || new Set();
    set.add(fn);
    this.handlers.set(event, set);
  }

  off(event: string, fn: Listener): void {
    this.handlers.get(event)?.delete(fn);
  }

  identify(user: User): void {
    if (!user || typeof user !== "object") return;
    const token = typeof user.user_token === "string" ? user.user_token : undefined;
    const external = typeof user.external_id === "string" ? user.external_id : undefined;
    if (!token && !(external && typeof user.hmac === "string")) {
      console.warn("Parley.identify needs {external_id, hmac} or {user_token}");
      return;
    }
    const next: User = token ? { user_token: token } : { external_id: external, hmac: user.hmac };
    if (!token) {
      if (typeof user.name === "string") next.name = user.name;
      if (typeof user.email === "string") next.email = user.email;
    }
    if (JSON.stringify(next) === JSON.stringify(this.user)) return;
    this.user = next;
    const who = token ? tokenSubject(token) : external;
    if (this.store.data.session && this.store.data.external_id !== who) this.forget();
    this.restart();
  }

  logout(): void {
    this.user = null;
    this.forget();
    this.restart();
  }

  setOpen(open: boolean): void {
    if (open === this.open) return;
    this.open = open;
    this.wantsFocus = open;
    this.store.data.open = open;
    this.store.save();
    this.emit(open ? "open" : "close");
    this.changed();
    this.receipts();
  }

  start(): void {
    if (!this.started) {
      this.timer("settle", 1500, () => {
        this.settled = true;
        this.changed();
      });
    }
    this.started = true;
    if (navigator.onLine === false) {
      this.connection = "offline";
      this.changed();
      return;
    }
    this.socket.connect();
  }

  // -- what the visitor does ----------------------------------------------------------

  send(content: Content): void {
    this.store.outbox.push({ cmid: newId(), content, created_at: new Date().toISOString() });
    this.store.save();
    this.typing(false);
    this.changed();
    this.flush();
  }

  retry(cmid: string): void {
    const item = this.outboxItems().find((i) => i.cmid === cmid);
    if (!item) return;
    delete item.failed;
    this.store.save();
    this.changed();
    this.flush();
  }

  async submitProfile(profile: { name?: string; email?: string }): Promise<AckError | null> {
    const ack = await this.call<{ profile: unknown }>("profile", profile);
    if (ack === null) return { code: "offline", message: "not connected" };
    if (!ack.ok) return ack.error;
    this.store.data.profiled = true;
    this.wantsFocus = true;
    this.store.save();
    this.changed();
    return null;
  }

  /** The visitor types (``true``) or stopped (``false``); tells the agents, throttled. */
  typing(active: boolean): void {
    const conv = this.history.current;
    if (!conv || !this.socket.connected) return;
    if (active) {
      const now = Date.now();
      if (now - this.typingSentAt > TYPING_EVERY) {
        this.typingSentAt = now;
        this.socket.emit("typing", { conversation_id: conv, typing: true });
      }
      this.timer("typing", TYPING_IDLE, () => this.typing(false));
    } else if (this.typingSentAt) {
      this.typingSentAt = 0;
      this.timer("typing", -1);
      this.socket.emit("typing", { conversation_id: conv, typing: false });
    }
  }

  // -- connection ---------------------------------------------------------------------

  private auth(): Record<string, unknown> {
    const auth: Record<string, unknown> = { widget_key: this.opts.widgetKey };
    if (this.store.data.session) auth.session = this.store.data.session;
    const u = this.user;
    if (u?.user_token) auth.user_token = u.user_token;
    else if (u?.external_id) auth.user = { ...u };
    return auth;
  }

  private restart(): void {
    if (!this.started) return;
    this.socket.disconnect();
    this.start();
  }

  private wake(): void {
    if (this.started && !this.socket.connected) {
      this.socket.disconnect(); // resets the backoff: try now
      this.start();
    }
  }

  private async onSession(e: SessionEvent): Promise<void> {
    this.store.data.session = e.session;
    this.store.data.external_id = e.external_id ?? null;
    this.store.save();
    if (this.contactId !== null && this.contactId !== e.contact_id) this.reset();
    const first = this.contactId === null;
    this.contactId = e.contact_id;
    if (e.widget) this.settings = e.widget;
    this.connection = "online";
    this.refusal = null;
    this.settled = true;
    this.retryDelay = 1000;
    this.changed();
    const h = this.history;
    if (!h.current && e.conversations.length) h.current = e.conversations[0].id;
    const ids = new Set(h.conversations());
    if (h.current) ids.add(h.current);
    await Promise.all([...ids].map((id) => this.catchUp(id)));
    if (!this.socket.connected) return;
    this.ready = true;
    this.loading = false;
    this.changed();
    if (first) this.emit("ready");
    this.flush();
    this.receipts();
  }

  private onDisconnect(reason: string): void {
    this.ready = false;
    this.inflight.clear();
    this.agentTyping = null;
    this.typingSentAt = 0;
    // Whatever socket.io buffered while down would go out twice with the outbox's retry.
    (this.socket as unknown as { sendBuffer: unknown[] }).sendBuffer = [];
    if (this.connection !== "refused") {
      this.connection = navigator.onLine === false ? "offline" : "connecting";
    }
    if (reason === "io server disconnect") {
      // The server closed us (e.g. the contact was deleted): a new sign-in says why.
      this.timer("reconnect", 1000, () => this.start());
    }
    this.changed();
  }

  private onRefused(err: Error & { data?: { code?: string } }): void {
    const code = err.data?.code;
    if (!code) {
      // The transport failed (server down, network): socket.io retries with backoff.
      this.connection = navigator.onLine === false ? "offline" : "connecting";
      this.changed();
      return;
    }
    if (code === "invalid_session" && this.store.data.session) {
      // Expired, or its contact was deleted: start as a new visitor, and what waits in the
      // outbox still goes out.
      const outbox = this.store.outbox;
      this.forget();
      this.store.data.outbox = outbox;
      this.store.save();
      this.start();
      return;
    }
    this.refusal = { code, message: err.message };
    if (RETRY.has(code)) {
      this.connection = "connecting";
      this.retryDelay = Math.min(this.retryDelay * 2, 30000);
      this.timer("reconnect", this.retryDelay * (0.5 + Math.random()), () => this.start());
    } else {
      this.connection = "refused";
      console.warn(`Parley widget: the server refused the chat (${code}): ${err.message}`);
    }
    this.changed();
  }

  private call<T>(event: string, payload: unknown, timeout = ACK_TIMEOUT): Promise<Ack<T> | null> {
    if (!this.socket.connected) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.socket.timeout(timeout).emit(event, payload, (err: Error | null, ack: Ack<T>) =>
        resolve(err ? null : ack),
      );
    });
  }

  // -- messages and seqs --------------------------------------------------------------

  /** A message of ``conv``: live, from an ack or another device. Gaps are resynced. */
  private take(conv: string, m: Message, live = false): void {
    this.merge([m]);
    const place = this.history.place(conv, m.seq);
    if (place === "unknown" || place === "gap") void this.catchUp(conv);
    if (live && m.direction === "outbound") {
      this.agentTyping = null;
      this.emit("message", m);
      this.emit("unread", this.unread());
    }
    this.changed();
    this.receipts();
  }

  /** Everything of ``conv`` after the horizon, page by page; then the horizon is its end. */
  private async catchUp(conv: string): Promise<void> {
    if (this.syncing.has(conv)) {
      this.syncing.set(conv, true);
      return;
    }
    this.syncing.set(conv, false);
    try {
      for (let page = 0; page < 50; page++) {
        const after = this.history.horizon(conv) ?? 0;
        const ack = await this.call<{ messages: Message[]; last_seq: number; has_more: boolean }>(
          "resync",
          { conversation_id: conv, after_seq: after },
        );
        if (ack === null || !ack.ok) return; // disconnected (the next session resyncs), or gone
        this.merge(ack.messages);
        this.history.reach(conv, ack.last_seq);
        if (!ack.has_more) break;
      }
      if (!this.history.current) this.history.current = conv;
      this.changed();
      this.receipts();
    } finally {
      const again = this.syncing.get(conv);
      this.syncing.delete(conv);
      if (again) void this.catchUp(conv);
    }
  }

  /** Into the history; the visitor's own messages leave the outbox. */
  private merge(messages: Message[]): void {
    this.store.settle(this.history.merge(messages));
  }

  private markUpTo(conv: string, seq: number, direction: "inbound" | "outbound", status: Status): void {
    this.history.markUpTo(conv, seq, direction, status);
    this.emit("unread", this.unread());
    this.changed();
  }

  // -- the outbox ---------------------------------------------------------------------

  private outboxItems(): OutboxItem[] {
    return this.store.outbox;
  }

  /** Sends what waits in the outbox, in order, each once at a time. */
  private flush(): void {
    if (!this.ready) return;
    for (const item of this.outboxItems()) {
      if (item.failed || this.inflight.has(item.cmid)) continue;
      this.inflight.add(item.cmid);
      const payload: Record<string, unknown> = { client_message_id: item.cmid, content: item.content };
      if (this.history.current) payload.conversation_id = this.history.current;
      void this.call<{ message: Message; conversation: Conversation }>("message", payload).then(
        (ack) => this.sent(item, payload, ack),
      );
    }
  }

  private sent(
    item: OutboxItem,
    payload: Record<string, unknown>,
    ack: Ack<{ message: Message; conversation: Conversation }> | null,
  ): void {
    this.inflight.delete(item.cmid);
    if (ack !== null && ack.ok) {
      this.store.settle([item.cmid]);
      this.take(ack.conversation.id, ack.message);
      return;
    }
    if (ack === null || RETRY.has(ack.error.code)) {
      this.timer("flush", 3000, () => this.flush()); // a timeout or a busy server: later
    } else if (ack.error.code === "not_found" && payload.conversation_id) {
      this.history.current = null; // that conversation is gone for us: let the server pick
      this.timer("flush", 0, () => this.flush());
    } else {
      item.failed = ack.error;
      this.store.save();
      this.changed();
    }
  }

  // -- receipts -----------------------------------------------------------------------

  /** Read when the window is open and seen, else delivered (debounced). */
  private receipts(): void {
    this.timer("receipts", 250, () => {
      if (!this.ready) return;
      const seen = this.open && document.visibilityState === "visible";
      for (const [conv, { top, unread }] of this.history.replies()) {
        if (seen && unread) {
          this.markUpTo(conv, top, "outbound", "read");
          void this.call("read", { conversation_id: conv, seq: this.history.horizon(conv) ?? top });
        } else if (top > (this.delivered.get(conv) ?? 0)) {
          this.delivered.set(conv, top);
          this.markUpTo(conv, top, "outbound", "delivered");
          void this.call("delivered", { conversation_id: conv, seq: top });
        }
      }
    });
  }

  // -- plumbing -----------------------------------------------------------------------

  private reset(): void {
    this.history.clear();
    this.delivered.clear();
    this.loading = true;
  }

  private forget(): void {
    this.store.forget();
    this.reset();
    this.changed();
  }

  private timer(name: string, ms: number, fn?: () => void): void {
    clearTimeout(this.timers[name]);
    this.timers[name] = ms >= 0 && fn ? setTimeout(fn, ms) : undefined;
  }

  private emit(event: string, data?: unknown): void {
    for (const fn of this.handlers.get(event) || []) {
      try {
        fn(data);
      } catch (err) {
        console.error(err);
      }
    }
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }
}
