// One message in the window: its author, its content (text, buttons, media, location) and,
// for the visitor's own, its state. Everything is rendered as text nodes (Preact escapes
// text; nothing here sets innerHTML), and links open only http(s) URLs.

import type { ComponentChildren } from "preact";
import type { Labels } from "./i18n";
import type { Content, Shown, Status } from "./types";

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;

function isHttp(url: unknown): url is string {
  return typeof url === "string" && /^https?:\/\//i.test(url);
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

export function authorName(s: Shown, t: Labels, team: string): string {
  if (s.mine) return t.you;
  if (s.author.type === "bot") return t.bot;
  return s.author.name || team;
}

export function Bubble(props: {
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
