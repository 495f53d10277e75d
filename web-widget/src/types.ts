// The /client protocol's shapes, as the widget uses them (docs/realtime-protocol.md).

export type Status = "pending" | "failed" | "scheduled" | "queued" | "sent" | "delivered" | "read";

export interface Button {
  id: string;
  title: string;
}

export type Content =
  | { type: "text"; text: string }
  | { type: "media"; url: string; mime_type?: string; caption?: string; filename?: string }
  | { type: "buttons"; text: string; buttons: Button[] }
  | { type: "location"; latitude: number; longitude: number; name?: string; address?: string }
  | { type: "template"; name: string; parameters?: unknown };

export interface Author {
  type: "contact" | "agent" | "bot" | "system";
  id?: string | null;
  name?: string;
}

export interface Message {
  id: string;
  conversation_id: string;
  seq: number;
  direction: "inbound" | "outbound";
  author: Author;
  content: Content;
  status: Status;
  client_message_id?: string | null;
  created_at: string;
}

export interface Conversation {
  id: string;
  status: string;
  last_seq: number;
}

export interface PreChatField {
  key: "name" | "email";
  required: boolean;
}

export interface Settings {
  color: string;
  title?: string | null;
  greeting?: string | null;
  pre_chat_form: { enabled: boolean; fields: PreChatField[] };
}

export interface SessionEvent {
  session: string;
  contact_id: string;
  external_id?: string | null;
  conversations: Conversation[];
  widget?: Settings;
}

export interface User {
  external_id?: string;
  name?: string;
  email?: string;
  hmac?: string;
  user_token?: string;
}

export interface AckError {
  code: string;
  message: string;
}

export type Ack<T> = ({ ok: true } & T) | { ok: false; error: AckError };

/** What the window shows for one message: a stored one or one still in the outbox. */
export interface Shown {
  key: string;
  mine: boolean;
  author: Author;
  content: Content;
  status: Status;
  created_at: string;
}

export type Connection = "connecting" | "online" | "offline" | "refused";
