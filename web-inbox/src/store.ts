// The inbox's state, one object, and the socket events that change it.
import { useEffect, useState } from "preact/hooks";
import { io, type Socket } from "socket.io-client";
import { Api, ApiError } from "./api";
import type {
  Ack, Agent, Bot, Canned, Channel, Contact, Conversation, Message, Page, Party, Session,
} from "./types";

const SESSION_KEY = "parley.inbox.session";

export interface Filter {
  status: string; // "" = any
  assignee: string; // "" any, "me", "none", "bots"
  channel: string; // "" any, or a channel type
}

export interface Thread {
  list: Message[];
  hasMore: boolean;
  loaded: boolean;
  pending: Message[]; // sent, not acknowledged yet
}

export interface State {
  session: Session | null;
  connected: boolean;
  filter: Filter;
  convs: Map<string, Conversation>;
  nextCursor: string | null;
  loading: boolean;
  selected: string | null;
  threads: Map<string, Thread>;
  typing: Map<string, { label: string; until: number }>;
  online: Set<string>;
  agents: Agent[];
  bots: Bot[];
  channels: Channel[];
  canned: Canned[];
  contacts: Map<string, Contact>;
  view: "inbox" | "admin";
  notice: string;
}

export const state: State = {
  session: null,
  connected: false,
  filter: { status: "open", assignee: "", channel: "" },
  convs: new Map(),
  nextCursor: null,
  loading: false,
  selected: null,
  threads: new Map(),
  typing: new Map(),
  online: new Set(),
  agents: [],
  bots: [],
  channels: [],
  canned: [],
  contacts: new Map(),
  view: "inbox",
  notice: "",
};

let version = 0;
const listeners = new Set<(v: number) => void>();
let socket: Socket | null = null;
export let api = new Api(null);

export function changed(): void {
  version += 1;
  for (const listener of listeners) listener(version);
}

/** Re-renders the calling component whenever the state changes. */
export function useStore(): State {
  const [, setVersion] = useState(version);
  useEffect(() => {
    listeners.add(setVersion);
    return () => void listeners.delete(setVersion);
  }, []);
  return state;
}

export function notify(text: string): void {
  state.notice = text;
  changed();
}

// -- session ---------------------------------------------------------------------------

export function restoreSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export async function login(email: string, password: string, workspaceId?: string): Promise<void> {
  const body: Record<string, string> = { email, password };
  if (workspaceId) body.workspace_id = workspaceId;
  const session = await new Api(null).post<Session>("/v1/auth/login", body);
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  await start(session);
}

export async function logout(): Promise<void> {
  try {
    await api.post("/v1/auth/logout", {});
  } catch {
    // the token may have expired already
  }
  end();
}

function end(): void {
  sessionStorage.removeItem(SESSION_KEY);
  socket?.disconnect();
  socket = null;
  state.session = null;
  state.convs.clear();
  state.threads.clear();
  state.selected = null;
  state.view = "inbox";
  changed();
}

export async function start(session: Session): Promise<void> {
  state.session = session;
  api = new Api(session.token);
  try {
    const me = await api.get<Agent>("/v1/auth/me");
    session.agent = me;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return end();
    throw err;
  }
  changed();
  connectSocket(session.token);
  await Promise.all([loadList(), loadDirectory()]);
}

export function isMe(party: Party | null | undefined): boolean {
  return party?.type === "agent" && party.id === state.session?.agent.id;
}

// -- the conversation list -------------------------------------------------------------

export function activity(c: Conversation): string {
  return c.last_message_at ?? c.created_at;
}

export function matches(c: Conversation, f: Filter = state.filter): boolean {
  if (f.status && c.status !== f.status) return false;
  if (f.channel && c.channel_type !== f.channel && c.channel_id !== f.channel) return false;
  if (f.assignee === "me") return isMe(c.assignee);
  if (f.assignee === "none") return c.assignee === null;
  if (f.assignee === "bots") return c.assignee?.type === "bot";
  return true;
}

export function visible(): Conversation[] {
  return [...state.convs.values()]
    .filter((c) => matches(c))
    .sort((a, b) => (activity(b) > activity(a) ? 1 : activity(b) < activity(a) ? -1 : b.id > a.id ? 1 : -1));
}

function assigneeQuery(f: Filter): string {
  if (f.assignee === "me") return `agent:${state.session?.agent.id ?? ""}`;
  if (f.assignee === "none") return "none";
  if (f.assignee === "bots") return "bot:*";
  return "";
}

export async function loadList(more = false): Promise<void> {
  const f = { ...state.filter };
  state.loading = true;
  changed();
  try {
    const page = await api.get<Page<Conversation>>("/v1/conversations", {
      status: f.status,
      assignee: assigneeQuery(f),
      channel: f.channel,
      limit: 50,
      cursor: more ? state.nextCursor : null,
    });
    for (const c of page.data) upsert(c);
    state.nextCursor = page.next_cursor;
  } finally {
    state.loading = false;
    changed();
  }
}

export function setFilter(change: Partial<Filter>): void {
  state.filter = { ...state.filter, ...change };
  state.nextCursor = null;
  changed();
  void loadList();
}

function upsert(c: Partial<Conversation> & { id: string }): Conversation {
  const known = state.convs.get(c.id);
  const merged = { ...(known ?? {}), ...c } as Conversation;
  state.convs.set(c.id, merged);
  return merged;
}

async function fetchConversation(id: string): Promise<void> {
  try {
    upsert(await api.get<Conversation>(`/v1/conversations/${encodeURIComponent(id)}`));
    changed();
  } catch {
    // gone or not ours: nothing to show
  }
}

// -- one conversation ------------------------------------------------------------------

export function thread(id: string): Thread {
  let t = state.threads.get(id);
  if (!t) {
    t = { list: [], hasMore: false, loaded: false, pending: [] };
    state.threads.set(id, t);
  }
  return t;
}

function addMessage(m: Message): void {
  const t = thread(m.conversation_id);
  t.pending = t.pending.filter((p) => p.client_message_id !== m.client_message_id || !m.client_message_id);
  const at = t.list.findIndex((x) => x.id === m.id);
  if (at >= 0) t.list[at] = m;
  else {
    t.list.push(m);
    t.list.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
  }
}

export async function open(id: string): Promise<void> {
  state.selected = id;
  state.view = "inbox";
  const c = state.convs.get(id);
  if (c) c.unread_count = 0;
  changed();
  const t = thread(id);
  if (!t.loaded) {
    const last = (c?.last_seq ?? 0) + 1;
    const page = await api.get<{ data: Message[]; has_more: boolean }>(
      `/v1/conversations/${encodeURIComponent(id)}/messages`,
      { before_seq: last, limit: 50 },
    );
    for (const m of page.data) addMessage(m);
    t.hasMore = page.has_more;
    t.loaded = true;
    changed();
  }
  markRead(id);
  if (c && !state.contacts.has(c.contact_id)) void loadContact(c.contact_id);
}

export async function loadOlder(id: string): Promise<void> {
  const t = thread(id);
  const first = t.list[0]?.seq;
  if (!first) return;
  const page = await api.get<{ data: Message[]; has_more: boolean }>(
    `/v1/conversations/${encodeURIComponent(id)}/messages`,
    { before_seq: first, limit: 50 },
  );
  for (const m of page.data) addMessage(m);
  t.hasMore = page.has_more;
  changed();
}

function markRead(id: string): void {
  const t = state.threads.get(id);
  const last = t?.list.reduce((max, m) => Math.max(max, m.seq ?? 0), 0) ?? 0;
  if (!last || document.hidden) return;
  const c = state.convs.get(id);
  if (c) c.unread_count = 0;
  void request("read", { conversation_id: id, seq: last });
}

export async function loadContact(id: string): Promise<void> {
  try {
    state.contacts.set(id, await api.get<Contact>(`/v1/contacts/${encodeURIComponent(id)}`));
    changed();
  } catch {
    // deleted meanwhile
  }
}

export async function saveContact(id: string, changes: Record<string, unknown>): Promise<void> {
  const contact = await api.patch<Contact>(`/v1/contacts/${encodeURIComponent(id)}`, changes);
  state.contacts.set(id, contact);
  for (const c of state.convs.values()) if (c.contact_id === id) c.contact_name = contact.name;
  notify("Contact saved");
}

// -- socket ----------------------------------------------------------------------------

export async function request(event: string, payload: unknown): Promise<Ack> {
  if (!socket) return { ok: false, error: { code: "offline", message: "not connected" } };
  try {
    return (await socket.timeout(15000).emitWithAck(event, payload)) as Ack;
  } catch {
    return { ok: false, error: { code: "timeout", message: "the server did not answer" } };
  }
}

function newId(): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return "inbox-" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function send(id: string, text: string, isPrivate: boolean): Promise<boolean> {
  const t = thread(id);
  const clientId = newId();
  const pending: Message = {
    id: clientId, conversation_id: id, seq: null, direction: "outbound",
    author: { type: "agent", id: state.session?.agent.id ?? null },
    content: { type: "text", text }, status: "sending", private: isPrivate,
    client_message_id: clientId, created_at: new Date().toISOString(),
  };
  t.pending.push(pending);
  changed();
  const payload = {
    conversation_id: id, client_message_id: clientId,
    content: { type: "text", text }, private: isPrivate,
  };
  let ack = await request("message", payload);
  if (!ack.ok && (ack.error?.code === "timeout" || ack.error?.code === "offline")) {
    ack = await request("message", payload); // the same client_message_id: stored once
  }
  if (!ack.ok) {
    pending.status = "failed";
    notify(`Not sent: ${ack.error?.message ?? "error"}`);
    return false;
  }
  addMessage(ack.message as Message);
  upsert(ack.conversation as Conversation);
  preview(ack.message as Message);
  changed();
  return true;
}

export async function assign(id: string, assignee: Party | null): Promise<void> {
  const c = state.convs.get(id);
  const ack = await request("assign", {
    conversation_id: id, assignee, expected_assignee: c?.assignee ?? null,
  });
  if (ack.ok) {
    upsert(ack.conversation as Conversation);
    notify(assignee ? `Assigned to ${partyName(assignee)}` : "Unassigned");
  } else if (ack.error?.code === "assignee_changed") {
    await fetchConversation(id);
    const now = state.convs.get(id)?.assignee ?? null;
    notify(`Not changed: ${now ? partyName(now) : "nobody"} holds it now`);
  } else notify(`Not assigned: ${ack.error?.message ?? "error"}`);
}

export async function setStatus(id: string, status: string, until?: Date): Promise<void> {
  const payload: Record<string, unknown> = { conversation_id: id, status };
  if (until) payload.snoozed_until = until.toISOString();
  const ack = await request("status", payload);
  if (ack.ok) {
    upsert(ack.conversation as Conversation);
    const when = until ? ` until ${until.toLocaleString([], { dateStyle: "medium", timeStyle: "short" })}` : "";
    notify(`Conversation ${status === "open" ? "reopened" : status}${when}`);
  } else notify(`Not changed: ${ack.error?.message ?? "error"}`);
}

let typingSent = 0;
export function typing(id: string, on: boolean): void {
  const now = Date.now();
  if (on && now - typingSent < 3000) return;
  typingSent = on ? now : 0;
  void request("typing", { conversation_id: id, typing: on });
}

export function partyName(p: Party): string {
  if (p.type === "agent") {
    if (isMe(p)) return "me";
    return state.agents.find((a) => a.id === p.id)?.name ?? `agent ${p.id ?? ""}`;
  }
  if (p.type === "bot") {
    const bot = state.bots.find((b) => b.id === p.id);
    return `bot ${bot?.name ?? p.id ?? ""}`;
  }
  return p.type;
}

function preview(m: Message): void {
  const c = state.convs.get(m.conversation_id);
  if (!c || m.seq === null || (c.last_message && c.last_message.seq >= m.seq)) return;
  const text = typeof m.content.text === "string" ? m.content.text : null;
  c.last_message = {
    id: m.id, seq: m.seq, author_type: m.author.type, content_type: String(m.content.type ?? ""),
    text: text ? text.slice(0, 200) : null, private: m.private, at: m.created_at,
  };
  c.last_message_at = m.created_at;
  c.last_seq = Math.max(c.last_seq, m.seq);
}

function connectSocket(token: string): void {
  socket?.disconnect();
  const s = io("/agent", { auth: { token }, path: "/socket.io" });
  socket = s;
  s.on("connect", () => {
    state.connected = true;
    changed();
  });
  s.on("disconnect", () => {
    state.connected = false;
    changed();
  });
  s.on("connect_error", (err: Error & { data?: { code?: string } }) => {
    if (err.data?.code === "invalid_token") end();
  });
  s.on("session", (data: { presence: { type: string; id: string }[] }) => {
    state.online = new Set(data.presence.map((p) => `${p.type}:${p.id}`));
    changed();
    // Anything missed while disconnected: the list's first page and open threads again.
    void loadList();
    for (const [id, t] of state.threads) if (t.loaded) void catchUp(id);
  });
  s.on("conversation.created", (c: Conversation) => void fetchConversation(c.id));
  s.on("conversation.updated", (c: Conversation) => {
    if (state.convs.has(c.id)) {
      upsert(c);
      changed();
    } else void fetchConversation(c.id);
  });
  s.on("message", (data: { conversation_id: string; message: Message; conversation: Conversation }) => {
    const m = data.message;
    const before = state.convs.get(data.conversation_id);
    const known = before !== undefined;
    // A conversation fetched after this message was stored counts it already.
    const counted = (before?.last_message?.seq ?? 0) >= (m.seq ?? 0);
    if (data.conversation) upsert(data.conversation);
    if (!known) void fetchConversation(data.conversation_id);
    const t = state.threads.get(m.conversation_id);
    if (t?.loaded) addMessage(m);
    preview(m);
    state.typing.delete(m.conversation_id);
    const c = state.convs.get(m.conversation_id);
    if (c && m.direction === "inbound" && !counted) {
      if (state.selected === m.conversation_id && !document.hidden) markRead(m.conversation_id);
      else c.unread_count = (c.unread_count ?? 0) + 1;
    }
    changed();
  });
  s.on("message.status", (data: { message_id: string; conversation_id: string; status: string }) => {
    const t = state.threads.get(data.conversation_id);
    const m = t?.list.find((x) => x.id === data.message_id);
    if (m) {
      m.status = data.status;
      changed();
    }
  });
  s.on("typing", (data: { conversation_id: string; typing: boolean; author: Party & { name?: string } }) => {
    if (!data.typing) state.typing.delete(data.conversation_id);
    else {
      const c = state.convs.get(data.conversation_id);
      const label =
        data.author.type === "contact" ? c?.contact_name || "The customer" : data.author.name || "An agent";
      state.typing.set(data.conversation_id, { label, until: Date.now() + 6000 });
      setTimeout(changed, 6100);
    }
    changed();
  });
  s.on("read", (data: { conversation_id: string; reader: Party }) => {
    const c = state.convs.get(data.conversation_id);
    if (c && isMe(data.reader)) {
      c.unread_count = 0;
      changed();
    }
  });
  s.on("presence", (p: { type: string; id: string; online: boolean }) => {
    const key = `${p.type}:${p.id}`;
    if (p.online) state.online.add(key);
    else state.online.delete(key);
    changed();
  });
}

async function catchUp(id: string): Promise<void> {
  const t = thread(id);
  const last = t.list.reduce((max, m) => Math.max(max, m.seq ?? 0), 0);
  const ack = await request("resync", { conversation_id: id, after_seq: last });
  if (ack.ok) {
    for (const m of ack.messages as Message[]) addMessage(m);
    changed();
  }
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && state.selected) markRead(state.selected);
});

// -- directory: agents, bots, channels, canned responses -----------------------------------

export async function loadDirectory(): Promise<void> {
  const admin = state.session?.agent.role === "admin";
  const [agents, bots, channels, canned] = await Promise.all([
    // Admins manage every agent; the others see the active ones, to assign to.
    admin
      ? api.get<Page<Agent>>("/v1/agents").then((p) => p.data).catch(() => [])
      : api
          .get<{ data: { id: string; name: string; role: string }[] }>("/v1/workspace/agents")
          .then((p) => p.data.map((a) => ({ ...a, email: "", active: true, created_at: "" })))
          .catch(() => []),
    // Bots come from GET /v1/bots where the server has them; none otherwise.
    api.get<{ data: Bot[] }>("/v1/bots").then((p) => p.data).catch(() => []),
    api.get<{ data: Channel[] }>("/v1/channels").then((p) => p.data).catch(() => []),
    api.get<{ data: Canned[] }>("/v1/canned-responses").then((p) => p.data).catch(() => []),
  ]);
  const me = state.session?.agent;
  state.agents = agents.length ? agents : me ? [me] : [];
  state.bots = bots;
  state.channels = channels;
  state.canned = canned;
  changed();
}
