// The launcher and the chat window. Everything a person wrote is rendered as text nodes
// (Preact escapes text; nothing here sets innerHTML).

import type { CSSProperties } from "preact";
import { useEffect, useLayoutEffect, useReducer, useRef } from "preact/hooks";
import type { Chat } from "./chat";
import { Composer, PreChat } from "./compose";
import type { Labels } from "./i18n";
import { ChatIcon, CloseIcon } from "./icons";
import { Bubble } from "./message";

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
