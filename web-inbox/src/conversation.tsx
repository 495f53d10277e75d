import { useEffect, useRef, useState } from "preact/hooks";
import { ContactPanel } from "./contact";
import { contentText, label, mediaUrl, time } from "./format";
import {
  assign, isMe, loadOlder, partyName, send, setStatus, state, thread, typing, useStore,
} from "./store";
import type { Canned, Conversation, Message, Party } from "./types";

function author(m: Message, c: Conversation): string {
  if (m.author.type === "contact") return state.contacts.get(c.contact_id)?.name || c.contact_name || "Customer";
  if (m.author.type === "agent") return isMe(m.author) ? "You" : partyName(m.author);
  return partyName(m.author);
}

function Bubble({ m, c }: { m: Message; c: Conversation }) {
  const url = mediaUrl(m);
  const kind = m.private ? "note" : m.direction === "inbound" ? "in" : "out";
  return (
    <li class={`msg ${kind}`} data-seq={m.seq ?? undefined}>
      <p class="meta">
        {m.private && <strong class="note-label">Private note · </strong>}
        <span>{author(m, c)}</span> · <span>{time(m.created_at)}</span> · <span class="channel">{c.channel_type}</span>
        {m.direction === "outbound" && !m.private && (
          <>
            {" "}
            · <span class={`status ${m.status}`}>{m.status}</span>
          </>
        )}
      </p>
      <p class="text">{contentText(m.content)}</p>
      {url && (
        <a href={url} target="_blank" rel="noopener noreferrer">
          Open attachment
        </a>
      )}
    </li>
  );
}

function AssignControl({ c }: { c: Conversation }) {
  const s = useStore();
  const current = c.assignee ? `${c.assignee.type}:${c.assignee.id}` : "";
  function change(value: string) {
    if (value === current) return;
    const [type, ...rest] = value.split(":");
    void assign(c.id, value ? ({ type, id: rest.join(":") } as Party) : null);
  }
  return (
    <label class="assign">
      <span id="assign-label">Assign to</span>
      <select aria-labelledby="assign-label" value={current} onChange={(e) => change(e.currentTarget.value)}>
        <option value="">Unassigned</option>
        {s.agents
          .filter((a) => a.active)
          .map((a) => (
            <option value={`agent:${a.id}`}>
              {a.name}
              {isMe({ type: "agent", id: a.id }) ? " (me)" : ""}
              {s.online.has(`agent:${a.id}`) ? " · online" : ""}
            </option>
          ))}
        {c.assignee?.type === "agent" && !s.agents.some((a) => a.id === c.assignee?.id) && (
          <option value={current}>{partyName(c.assignee)}</option>
        )}
        {s.bots.map((b) => (
          <option value={`bot:${b.id}`}>Bot: {b.name ?? b.id}</option>
        ))}
        {c.assignee?.type === "bot" && !s.bots.some((b) => b.id === c.assignee?.id) && (
          <option value={current}>{partyName(c.assignee)}</option>
        )}
      </select>
    </label>
  );
}

const SNOOZES: [string, string][] = [
  ["", "Snooze…"],
  ["forever", "until reopened"],
  ["1h", "for 1 hour"],
  ["4h", "for 4 hours"],
  ["tomorrow", "until tomorrow 9:00"],
  ["week", "for a week"],
];

function snoozeUntil(choice: string): Date | undefined {
  const now = new Date();
  if (choice === "1h") return new Date(now.getTime() + 3600_000);
  if (choice === "4h") return new Date(now.getTime() + 4 * 3600_000);
  if (choice === "week") return new Date(now.getTime() + 7 * 24 * 3600_000);
  if (choice === "tomorrow") {
    const t = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1, 9);
    return t;
  }
  return undefined;
}

function SnoozeControl({ id }: { id: string }) {
  return (
    <label class="assign">
      <span id="snooze-label">Snooze</span>
      <select
        aria-labelledby="snooze-label"
        value=""
        onChange={(e) => {
          const choice = e.currentTarget.value;
          e.currentTarget.value = "";
          if (choice) void setStatus(id, "snoozed", snoozeUntil(choice));
        }}
      >
        {SNOOZES.map(([value, text]) => (
          <option value={value}>{text}</option>
        ))}
      </select>
    </label>
  );
}

function Composer({ c }: { c: Conversation }) {
  const s = useStore();
  const [text, setText] = useState("");
  const [note, setNote] = useState(false);
  const [active, setActive] = useState(0);
  const box = useRef<HTMLTextAreaElement>(null);
  const query = /^\/([\w-]*)$/.exec(text)?.[1]?.toLowerCase();
  const options: Canned[] = query === undefined ? [] : s.canned.filter((x) => x.shortcut.startsWith(query)).slice(0, 8);
  const open = options.length > 0;

  useEffect(() => setText(""), [c.id]);

  function pick(choice: Canned) {
    setText(choice.text);
    setActive(0);
    box.current?.focus();
  }

  async function submit(e?: Event) {
    e?.preventDefault();
    const body = text.trim();
    if (!body) return;
    setText("");
    typing(c.id, false);
    await send(c.id, body, note);
  }

  function keydown(e: KeyboardEvent) {
    if (open && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      setActive((active + (e.key === "ArrowDown" ? 1 : options.length - 1)) % options.length);
    } else if (open && (e.key === "Enter" || e.key === "Tab")) {
      e.preventDefault();
      pick(options[Math.min(active, options.length - 1)]);
    } else if (open && e.key === "Escape") {
      setText(text + " ");
    } else if (e.key === "Enter" && !e.shiftKey) {
      void submit(e);
    }
  }

  return (
    <form class={`composer${note ? " note" : ""}`} onSubmit={submit}>
      <label for="reply" class="sr-only">
        Reply
      </label>
      {open && (
        <ul id="canned-options" role="listbox" aria-label="Canned responses" class="canned">
          {options.map((o, i) => (
            <li
              id={`canned-${o.id}`}
              role="option"
              aria-selected={i === active}
              class={i === active ? "active" : ""}
              onMouseDown={(e) => {
                e.preventDefault();
                pick(o);
              }}
            >
              <strong>/{o.shortcut}</strong> {o.text}
            </li>
          ))}
        </ul>
      )}
      <textarea
        id="reply"
        ref={box}
        rows={3}
        value={text}
        placeholder={note ? "Private note: only agents see it" : "Reply, or type / for canned responses"}
        role="combobox"
        aria-autocomplete="list"
        aria-expanded={open}
        aria-controls="canned-options"
        aria-activedescendant={open ? `canned-${options[Math.min(active, options.length - 1)].id}` : undefined}
        onInput={(e) => {
          setText(e.currentTarget.value);
          setActive(0);
          typing(c.id, e.currentTarget.value.length > 0);
        }}
        onKeyDown={keydown}
        onBlur={() => typing(c.id, false)}
      />
      <div class="composer-actions">
        <label class="toggle">
          <input type="checkbox" checked={note} onChange={(e) => setNote(e.currentTarget.checked)} />
          Private note
        </label>
        <button type="submit">{note ? "Add note" : "Send"}</button>
      </div>
    </form>
  );
}

export function ConversationView() {
  const s = useStore();
  const list = useRef<HTMLOListElement>(null);
  const id = s.selected;
  const c = id ? s.convs.get(id) : undefined;
  const t = id ? thread(id) : undefined;
  const count = (t?.list.length ?? 0) + (t?.pending.length ?? 0);
  useEffect(() => {
    if (list.current) list.current.scrollTop = list.current.scrollHeight;
  }, [id, t?.list[t.list.length - 1]?.id, t?.pending.length]);

  if (!c || !t) {
    return (
      <main class="conversation empty">
        <p>Pick a conversation.</p>
      </main>
    );
  }
  const typingNow = s.typing.get(c.id);
  const name = s.contacts.get(c.contact_id)?.name || c.contact_name || "Anonymous visitor";
  return (
    <>
      <main class="conversation" aria-label={`Conversation with ${name}`}>
        <header class="conv-head">
          <h2>{name}</h2>
          <p class="tags">
            <span class="tag">{c.channel_type}</span> <span class="tag status-tag">{label(c.status)}</span>{" "}
            <span class="tag">{c.assignee ? `Assigned to ${partyName(c.assignee)}` : "Unassigned"}</span>
            {s.online.has(`contact:${c.contact_id}`) && <span class="tag online">online</span>}
          </p>
          <div class="actions">
            {!isMe(c.assignee) && (
              <button type="button" onClick={() => void assign(c.id, { type: "agent", id: s.session?.agent.id ?? null })}>
                Assign to me
              </button>
            )}
            <AssignControl c={c} />
            {c.status === "resolved" ? (
              <button type="button" onClick={() => void setStatus(c.id, "open")}>
                Reopen
              </button>
            ) : (
              <button type="button" onClick={() => void setStatus(c.id, "resolved")}>
                Resolve
              </button>
            )}
            {c.status !== "snoozed" && <SnoozeControl id={c.id} />}
            {c.status !== "pending" && (
              <button type="button" onClick={() => void setStatus(c.id, "pending")}>
                Mark pending
              </button>
            )}
            {c.status !== "open" && c.status !== "resolved" && (
              <button type="button" onClick={() => void setStatus(c.id, "open")}>
                Reopen
              </button>
            )}
          </div>
        </header>
        <ol class="messages" ref={list} aria-label="Messages" tabIndex={0} data-count={count}>
          {t.hasMore && (
            <li class="older">
              <button type="button" onClick={() => void loadOlder(c.id)}>
                Load earlier messages
              </button>
            </li>
          )}
          {t.list.map((m) => (
            <Bubble key={m.id} m={m} c={c} />
          ))}
          {t.pending.map((m) => (
            <Bubble key={m.id} m={m} c={c} />
          ))}
        </ol>
        <p class="typing" aria-live="polite">
          {typingNow && typingNow.until > Date.now() ? `${typingNow.label} is typing…` : ""}
        </p>
        <Composer c={c} />
      </main>
      <ContactPanel contactId={c.contact_id} />
    </>
  );
}
