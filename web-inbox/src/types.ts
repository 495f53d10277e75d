export interface Party {
  type: string;
  id: string | null;
}

export interface Preview {
  id: string;
  seq: number;
  author_type: string;
  content_type: string | null;
  text: string | null;
  private: boolean;
  at: string;
}

export interface Conversation {
  id: string;
  contact_id: string;
  channel_id: string;
  channel_type: string;
  status: string;
  assignee: Party | null;
  last_seq: number;
  last_message_at: string | null;
  created_at: string;
  updated_at: string;
  contact_name?: string | null;
  last_message?: Preview | null;
  unread_count?: number | null;
}

export interface Message {
  id: string;
  conversation_id: string;
  seq: number | null;
  direction: string;
  author: Party;
  content: Record<string, unknown>;
  status: string;
  private: boolean;
  client_message_id: string | null;
  created_at: string;
}

export interface Agent {
  id: string;
  email: string;
  name: string;
  role: string;
  active: boolean;
  created_at: string;
}

export interface Session {
  token: string;
  agent: Agent;
  workspace_id: string;
}

export interface Bot {
  id: string;
  name?: string;
}

export interface Channel {
  id: string;
  type: string;
  name: string;
  config: Record<string, unknown>;
  webhook_url: string | null;
}

export interface Canned {
  id: string;
  shortcut: string;
  text: string;
}

export interface Contact {
  id: string;
  name: string | null;
  email: string | null;
  phone: string | null;
  external_id: string | null;
  locale: string | null;
  attributes: Record<string, unknown>;
  identities: { id: string; channel_type: string; address: string }[];
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

export interface Ack {
  ok: boolean;
  error?: { code: string; message: string };
  [key: string]: unknown;
}
