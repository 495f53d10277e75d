// Parley's web chat widget. One tag on any page:
//   <script src="https://HOST/widget.js" data-widget-key="wk_..." async></script>
// adds a launcher and a chat window inside a shadow root (the page's CSS cannot reach in,
// and the widget's cannot leak out), speaking the /client Socket.IO namespace of HOST.
//
// window.Parley: identify({external_id, name, email, hmac} | {user_token}), logout(),
// open(), close(), toggle(), on(event, fn), off(event, fn). Calls made before the script
// loads are queued in window.Parley.q (see docs/widget.md).

import { render } from "preact";
import { Chat } from "./chat";
import { labels, pickLocale } from "./i18n";
import { CSS } from "./styles";
import type { User } from "./types";
import { App } from "./view";

type Call = [string, ...unknown[]];

interface Api {
  identify(user: User): void;
  logout(): void;
  open(): void;
  close(): void;
  toggle(): void;
  on(event: string, fn: (data?: unknown) => void): void;
  off(event: string, fn: (data?: unknown) => void): void;
  version: string;
}

declare const __VERSION__: string;

function storage(): Storage | null {
  try {
    const s = window.localStorage;
    s.getItem("parley:probe");
    return s;
  } catch {
    return null; // disabled or sandboxed: sessions last one page view
  }
}

function boot(): void {
  const w = window as unknown as { Parley?: { q?: Call[] } & Partial<Api>; __parley?: boolean };
  if (w.__parley) return; // the tag twice: one widget
  const script =
    (document.currentScript as HTMLScriptElement | null) ||
    document.querySelector<HTMLScriptElement>("script[data-widget-key]");
  const key = script?.getAttribute("data-widget-key");
  if (!script || !key) {
    console.warn("Parley widget: add data-widget-key=\"wk_...\" to the script tag");
    return;
  }
  w.__parley = true;
  const server = script.getAttribute("data-server") || new URL(script.src, location.href).origin;
  const asked = script.getAttribute("data-locale");
  const locale = pickLocale(asked ? [asked] : navigator.languages?.length ? navigator.languages : [navigator.language]);
  const chat = new Chat({ server, widgetKey: key, storage: storage() });
  const queued = Array.isArray(w.Parley?.q) ? (w.Parley?.q as Call[]) : [];
  const api: Api = {
    identify: (user) => chat.identify(user),
    logout: () => chat.logout(),
    open: () => chat.setOpen(true),
    close: () => chat.setOpen(false),
    toggle: () => chat.setOpen(!chat.open),
    on: (event, fn) => chat.on(event, fn),
    off: (event, fn) => chat.off(event, fn),
    version: __VERSION__,
  };
  w.Parley = api;
  for (const call of queued) {
    const [name, ...args] = call;
    const fn = (api as unknown as Record<string, unknown>)[name];
    if (typeof fn === "function") fn(...args);
  }

  const mount = () => {
    const host = document.createElement("parley-chat");
    host.style.setProperty("display", "block", "important");
    host.style.setProperty("position", "fixed", "important");
    host.style.setProperty("z-index", "2147483000", "important");
    document.body.appendChild(host);
    const root = host.attachShadow({ mode: "open" });
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch {
      const style = document.createElement("style");
      style.textContent = CSS;
      root.appendChild(style);
    }
    render(<App chat={chat} t={labels(locale)} locale={locale} />, root);
    chat.start();
  };
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
}

boot();
