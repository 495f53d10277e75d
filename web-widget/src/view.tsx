// The launcher and the chat window. Everything a person wrote is rendered as text nodes
// (Preact escapes text; nothing here sets innerHTML).

import type { ComponentChildren, CSSProperties } from "preact";
import { useEffect, useLayoutEffect, useReducer, useRef, useState } from "preact/hooks";
import type { Chat } from "./chat";
import type { Labels } from "./i18n";
import type { AckError, Content, Shown, Status } from "./types";

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;

function isHttp(url: unknown): url is string {
  return typeof url === "string" && /^https?:\/\//i.test(url);
}

/** Contrast against white (WCAG): which text colour reads on ``hex``, and an ink for
 * borders and text on white that keeps 4.5:1. */
function palette(hex: string): { text: string; ink: string } {
  const lin = (c: number) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  const n = parseInt(hex.slice(1), 16);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255].map((v) => lin(v / 255));
  const l = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  const onWhite = 1.05 / (l + 0.05);
  const onBlack = (l + 0.05) / 0.05;
  return { text: onWhite >= onBlack ? "#ffffff" : "#111111", ink: onWhite >= 4.5 ? hex : "#1b1f24" };
}

function Linked({ text }: { text: string }) {
  const parts: ComponentChildren[] = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    const at = m.index ?? 0;
    if (at > last) parts.push(text.slice(last, at));
    parts.push(
      <a href={m[0]} target="_blank" rel="noopener noreferrer nofollow">
        {m[0]}
      </a>,
    );
    last = at + m[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return <p>{parts}</p>;
}

function Body({ content, t, onChoose }: { content: Content; t: Labels; onChoose?: (title: string) => void }) {
  switch (content.type) {
    case "text":
      return <Linked text={content.text} />;
    case "buttons":
      return (
        <>
          <Linked text={content.text} />
          <div class="choices" role="group" aria-label={content.text.slice(0, 80)}>
            {content.buttons.map((b) => (
              <button type="button" class="choice" key={b.id} onClick={() => onChoose?.(b.title)}>
                {b.title}
              </button>
            ))}
          </div>
        </>
      );
    case "media": {
      const url = content.url;
      const name = content.filename || content.caption || t.file;
      const image = (content.mime_type || "").startsWith("image/") ||
        (!content.mime_type && /\.(png|jpe?g|gif|webp|avif|svg)(\?|#|$)/i.test(url));
      if (!isHttp(url)) return <p>{name}</p>;
      return (
        <>
          {image ? (
            <a href={url} target="_blank" rel="noopener noreferrer nofollow">
              <img src={url} alt={content.caption || content.filename || t.image} loading="lazy" />
            </a>
          ) : (
            <a class="file" href={url} target="_blank" rel="noopener noreferrer nofollow" download={content.filename}>
              <span aria-hidden="true">📎</span>
              <span>{name}</span>
            </a>
          )}
          {content.caption && image ? <Linked text={content.caption} /> : null}
        </>
      );
    }
    case "location": {
      const { latitude: lat, longitude: lon } = content;
      const href = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=16/${lat}/${lon}`;
      return (
        <p>
          <a href={href} target="_blank" rel="noopener noreferrer nofollow">
            {[content.name, content.address].filter(Boolean).join(", ") || t.location}
          </a>
        </p>
      );
    }
    default:
      return <p>{(content as { name?: string }).name || ""}</p>;
  }
}

function stateLabel(status: Status, t: Labels, online: boolean): string {
  switch (status) {
    case "pending":
      return online ? t.pending : t.waiting;
    case "failed":
      return t.failed;
    case "read":
      return t.read;
    case "delivered":
      return t.delivered;
    default:
      return t.sent;
  }
}

function authorName(s: Shown, t: Labels, team: string): string {
  if (s.mine) return t.you;
  if (s.author.type === "bot") return t.bot;
  return s.author.name || team;
}

interface Props {
  chat: Chat;
  t: Labels;
  locale: string;
}

export function App({ chat, t, locale }: Props) {
  const [, redraw] = useReducer((n: number) => n + 1, 0);
  useEffect(() => chat.subscribe(() => redraw(0)), [chat]);
  const launcher = useRef<HTMLButtonElement>(null);
  const settings = chat.settings;
  const colors = palette(/^#[0-9a-f]{6}$/i.test(settings.color) ? settings.color : "#2563EB");
  const unread = chat.open ? 0 : chat.unread();
  const title = settings.title || t.title;
  const team = settings.title || t.team;
  const close = () => {
    chat.setOpen(false);
    setTimeout(() => launcher.current?.focus(), 0); // after the launcher shows again (phones)
  };
  const style = { "--pc": settings.color, "--pc-text": colors.text, "--pc-ink": colors.ink } as CSSProperties;
  return (
    <aside class={chat.open ? "root open" : "root"} style={style} lang={locale} aria-label={title}>
      {chat.open ? <Panel chat={chat} t={t} title={title} team={team} onClose={close} /> : null}
      <button
        ref={launcher}
        type="button"
        class="launcher"
        aria-expanded={chat.open}
        aria-controls="parley-panel"
        aria-label={chat.open ? t.close : unread ? `${t.open}, ${t.unread(unread)}` : t.open}
        onClick={() => chat.setOpen(!chat.open)}
      >
        {chat.open ? <CloseIcon /> : <ChatIcon />}
        {unread ? (
          <span class="badge" aria-hidden="true" data-unread={unread}>
            {unread > 99 ? "99+" : unread}
          </span>
        ) : null}
      </button>
      <div class="sr" role="status">
        {unread ? t.unread(unread) : ""}
      </div>
    </aside>
  );
}

function Panel(props: { chat: Chat; t: Labels; title: string; team: string; onClose: () => void }) {
  const { chat, t, title, team, onClose } = props;
  const log = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const shown = chat.shown();
  const online = chat.connection === "online";
  const form = chat.needsForm();
  const refused = chat.connection === "refused";

  useLayoutEffect(() => {
    const el = log.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  });

  const onScroll = () => {
    const el = log.current;
    if (el) stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      onClose();
    }
  };

  let bar: string | null = null;
  if (chat.connection === "offline") bar = t.offline;
  else if (chat.connection === "connecting" && chat.settled) bar = chat.refusal ? t.unavailable : t.connecting;
  const lastMine = shown.map((s) => s.mine).lastIndexOf(true);
  const identityRefused = chat.refusal && /hmac|user_token|identity/.test(chat.refusal.code);

  return (
    <div id="parley-panel" class="panel" role="dialog" aria-labelledby="parley-title" onKeyDown={onKeyDown}>
      <div class="head">
        <h2 id="parley-title">{title}</h2>
        <button type="button" class="icon-btn" aria-label={t.close} onClick={onClose}>
          <CloseIcon />
        </button>
      </div>
      <div class={bar ? "bar" : "sr"} role="status">
        {bar || ""}
      </div>
      <div
        ref={log}
        class="log"
        role="log"
        aria-live="polite"
        aria-relevant="additions"
        aria-label={t.messages}
        aria-busy={chat.loading && !refused}
        tabIndex={0}
        onScroll={onScroll}
      >
        {refused ? (
          <div class="refused" role="alert" data-refusal={chat.refusal?.code}>
            {identityRefused ? t.refusedIdentity : t.refused}
          </div>
        ) : (
          <>
            <div class="msg theirs">
              <div class="bubble">
                <p>{chat.settings.greeting || t.empty}</p>
              </div>
            </div>
            {chat.loading && !shown.length ? <p class="notice">{t.loading}</p> : null}
            {shown.map((s, i) => (
              <Bubble
                key={s.key}
                s={s}
                t={t}
                team={team}
                online={online}
                showState={s.mine && (i === lastMine || s.status === "pending" || s.status === "failed")}
                withName={i === 0 || shown[i - 1].mine !== s.mine}
                onChoose={(text) => chat.send({ type: "text", text })}
                onRetry={() => chat.retry(s.key)}
              />
            ))}
          </>
        )}
      </div>
      <div class="typing" role="status">
        {chat.agentTyping !== null ? t.typing(chat.agentTyping || team) : ""}
      </div>
      {refused ? null : form ? <PreChat chat={chat} t={t} /> : <Composer chat={chat} t={t} />}
    </div>
  );
}

function Bubble(props: {
  s: Shown;
  t: Labels;
  team: string;
  online: boolean;
  showState: boolean;
  withName: boolean;
  onChoose: (title: string) => void;
  onRetry: () => void;
}) {
  const { s, t } = props;
  const label = stateLabel(s.status, t, props.online);
  return (
    <div class={s.mine ? "msg mine" : "msg theirs"} data-status={s.status} data-key={s.key}>
      {props.withName ? (
        <div class="who" aria-hidden="true">
          {authorName(s, t, props.team)}
        </div>
      ) : null}
      <div class="bubble">
        <span class="sr">{authorName(s, t, props.team)}: </span>
        <Body content={s.content} t={t} onChoose={s.mine ? undefined : props.onChoose} />
      </div>
      {props.showState ? (
        <div class="state" data-state={s.status}>
          <span>{label}</span>
          {s.status === "failed" ? (
            <button type="button" onClick={props.onRetry}>
              {t.retry}
            </button>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}

function Composer({ chat, t }: { chat: Chat; t: Labels }) {
  const [text, setText] = useState("");
  const area = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    if (chat.wantsFocus) area.current?.focus();
  }, []);
  const grow = () => {
    const el = area.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight + 2, 120)}px`;
  };
  const submit = (e?: Event) => {
    e?.preventDefault();
    const value = text.trim();
    if (!value) return;
    chat.send({ type: "text", text: value });
    setText("");
    requestAnimationFrame(grow);
    area.current?.focus();
  };
  return (
    <form class="compose" onSubmit={submit}>
      <label class="sr" for="parley-input">
        {t.label}
      </label>
      <textarea
        id="parley-input"
        ref={area}
        rows={1}
        value={text}
        placeholder={t.placeholder}
        maxLength={10000}
        onInput={(e) => {
          const value = (e.currentTarget as HTMLTextAreaElement).value;
          setText(value);
          chat.typing(value.trim().length > 0);
          grow();
        }}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing) submit(e);
        }}
        onBlur={() => chat.typing(false)}
      />
      <button type="submit" class="send" aria-label={t.send} disabled={!text.trim()}>
        <SendIcon />
      </button>
    </form>
  );
}

function PreChat({ chat, t }: { chat: Chat; t: Labels }) {
  const fields = chat.settings.pre_chat_form.fields;
  const [values, setValues] = useState<Record<string, string>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement>(null);
  const form = useRef<HTMLFormElement>(null);
  useEffect(() => {
    if (chat.wantsFocus) first.current?.focus();
  }, []);
  useEffect(() => {
    // After a failed submit, the first field in error takes the focus (its message is read).
    form.current?.querySelector<HTMLInputElement>("[aria-invalid=true]")?.focus();
  }, [errors]);
  const names: Record<string, string> = { name: t.name, email: t.email };

  const submit = async (e: Event) => {
    e.preventDefault();
    const found: Record<string, string> = {};
    for (const f of fields) {
      const v = (values[f.key] || "").trim();
      if (f.required && !v) found[f.key] = t.missing(names[f.key]);
      else if (f.key === "email" && v && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v)) found[f.key] = t.badEmail;
    }
    setErrors(found);
    if (Object.keys(found).length) return;
    const profile: Record<string, string> = {};
    for (const f of fields) if ((values[f.key] || "").trim()) profile[f.key] = values[f.key].trim();
    setBusy(true);
    const err: AckError | null = await chat.submitProfile(profile);
    setBusy(false);
    if (err) {
      const field = err.code === "invalid_email" ? "email" : fields[0].key;
      setErrors({ [field]: err.code === "invalid_email" ? t.badEmail : err.code === "offline" ? t.offline : err.message });
    }
  };

  return (
    <form class="form" ref={form} onSubmit={submit} noValidate>
      <p>{t.formIntro}</p>
      {fields.map((f, i) => (
        <div class="field" key={f.key}>
          <label for={`parley-${f.key}`}>
            {names[f.key]}
            {f.required ? <span class="sr"> ({t.required})</span> : null}
            {f.required ? <span aria-hidden="true"> *</span> : null}
          </label>
          <input
            id={`parley-${f.key}`}
            ref={i === 0 ? first : undefined}
            name={f.key}
            type="text"
            inputMode={f.key === "email" ? "email" : "text"}
            autocomplete={f.key === "email" ? "email" : "name"}
            required={f.required}
            aria-invalid={errors[f.key] ? "true" : undefined}
            aria-describedby={errors[f.key] ? `parley-err-${f.key}` : undefined}
            value={values[f.key] || ""}
            onInput={(e) => setValues({ ...values, [f.key]: (e.currentTarget as HTMLInputElement).value })}
          />
          {errors[f.key] ? (
            <span class="error" id={`parley-err-${f.key}`}>
              {errors[f.key]}
            </span>
          ) : null}
        </div>
      ))}
      <button type="submit" class="primary" disabled={busy}>
        {t.start}
      </button>
    </form>
  );
}

function ChatIcon() {
  return (
    <svg viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6v2h10V9H7zm0-3v2h10V6H7zm0 6v2h7v-2H7z" />
    </svg>
  );
}

function CloseIcon() {
  return (
    <svg viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path d="M18.3 5.7a1 1 0 0 0-1.4 0L12 10.6 7.1 5.7a1 1 0 0 0-1.4 1.4l4.9 4.9-4.9 4.9a1 1 0 1 0 1.4 1.4l4.9-4.9 4.9 4.9a1 1 0 0 0 1.4-1.4L13.4 12l4.9-4.9a1 1 0 0 0 0-1.4z" />
    </svg>
  );
}

function SendIcon() {
  return (
    <svg viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path d="M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z" />
    </svg>
  );
}
