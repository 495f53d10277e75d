// Everything user-written is rendered as text (Preact escapes it); these only choose words.
import type { Message } from "./types";

export function time(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString([], { month: "short", day: "numeric" });
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

export function contentText(content: Record<string, unknown>): string {
  switch (content.type) {
    case "text":
      return str(content.text);
    case "media":
      return [str(content.caption), str(content.filename) || str(content.url)].filter(Boolean).join(" — ");
    case "buttons": {
      const buttons = Array.isArray(content.buttons) ? content.buttons : [];
      const titles = buttons.map((b) => str((b as Record<string, unknown>).title)).filter(Boolean);
      return `${str(content.text)}${titles.length ? ` [${titles.join("] [")}]` : ""}`;
    }
    case "location":
      return [str(content.name), str(content.address)].filter(Boolean).join(", ") || "Location";
    case "template":
      return `Template ${str(content.name)}`;
    default:
      return JSON.stringify(content);
  }
}

export function mediaUrl(m: Message): string | null {
  const url = str(m.content.url);
  return m.content.type === "media" && /^https?:\/\//.test(url) ? url : null;
}

export const STATUSES = ["open", "pending", "snoozed", "resolved"] as const;

export function label(status: string): string {
  return status.charAt(0).toUpperCase() + status.slice(1);
}
