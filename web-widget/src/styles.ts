// The widget's CSS, scoped to its shadow root. The :host rules are !important: inside a
// shadow tree, important rules beat the page's important rules, so a page's
// `* {display: none !important}` cannot hide or restyle the widget.

export const CSS = `
:host {
  all: initial !important;
  display: block !important;
  position: fixed !important;
  right: 0 !important;
  bottom: 0 !important;
  width: 0 !important;
  height: 0 !important;
  margin: 0 !important;
  padding: 0 !important;
  border: 0 !important;
  z-index: 2147483000 !important;
  visibility: visible !important;
  opacity: 1 !important;
  transform: none !important;
  filter: none !important;
  clip-path: none !important;
  pointer-events: auto !important;
  overflow: visible !important;
}
*, *::before, *::after { box-sizing: border-box; }
.root {
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1b1f24;
  -webkit-font-smoothing: antialiased;
}
.sr {
  position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
button, input, textarea { font: inherit; color: inherit; }
:focus-visible { outline: 3px solid #1b1f24; outline-offset: 2px; }
.launcher {
  position: fixed; right: 20px; bottom: 20px; width: 56px; height: 56px;
  border-radius: 50%; border: 0; cursor: pointer; padding: 0;
  background: var(--pc); color: var(--pc-text);
  box-shadow: 0 4px 14px rgba(0,0,0,.25);
  display: flex; align-items: center; justify-content: center;
}
.launcher:focus-visible { outline-color: var(--pc); outline-offset: 3px; }
.launcher svg { width: 28px; height: 28px; fill: currentColor; }
.badge {
  position: absolute; top: -4px; right: -4px; min-width: 22px; height: 22px; padding: 0 6px;
  border-radius: 11px; background: #b42318; color: #fff; font-size: 12px; font-weight: 700;
  line-height: 22px; text-align: center; border: 2px solid #fff;
}
.panel {
  position: fixed; right: 20px; bottom: 88px; width: 370px;
  height: min(600px, calc(100vh - 110px)); max-height: calc(100vh - 110px);
  display: flex; flex-direction: column; background: #fff; border-radius: 14px; overflow: hidden;
  box-shadow: 0 12px 40px rgba(0,0,0,.25); border: 1px solid rgba(0,0,0,.08);
}
.head {
  display: flex; align-items: center; gap: 8px; padding: 14px 12px 14px 16px;
  background: var(--pc); color: var(--pc-text);
}
.head h2 { flex: 1; margin: 0; font-size: 16px; font-weight: 650; }
.icon-btn {
  width: 36px; height: 36px; border-radius: 8px; border: 0; background: transparent;
  color: inherit; cursor: pointer; display: flex; align-items: center; justify-content: center;
}
.icon-btn svg { width: 20px; height: 20px; fill: currentColor; }
.head .icon-btn:focus-visible { outline-color: var(--pc-text); outline-offset: -3px; }
.bar { padding: 6px 14px; font-size: 13px; background: #fff4d6; color: #5c3d00; }
.bar.err { background: #fde8e7; color: #7a1b14; }
.log {
  flex: 1; overflow-y: auto; padding: 14px 12px 6px; display: flex; flex-direction: column;
  gap: 6px; background: #fafbfc; overscroll-behavior: contain;
}
.log:focus-visible { outline-offset: -3px; }
.msg { max-width: 82%; display: flex; flex-direction: column; }
.msg.theirs { align-self: flex-start; }
.msg.mine { align-self: flex-end; align-items: flex-end; }
.bubble {
  padding: 8px 12px; border-radius: 16px; white-space: pre-wrap; overflow-wrap: anywhere;
  word-break: break-word;
}
.theirs .bubble { background: #eceff3; color: #1b1f24; border-bottom-left-radius: 4px; }
.mine .bubble { background: var(--pc); color: var(--pc-text); border-bottom-right-radius: 4px; }
.mine[data-status="pending"] .bubble { opacity: .8; }
.mine[data-status="failed"] .bubble { background: #fde8e7; color: #7a1b14; }
.bubble a { color: inherit; text-decoration: underline; }
.bubble p { margin: 0; }
.bubble img { display: block; max-width: 100%; max-height: 240px; border-radius: 10px; }
.who { font-size: 12px; color: #57606a; margin: 6px 4px 2px; }
.state { font-size: 12px; color: #57606a; margin: 2px 4px 0; display: flex; gap: 6px; align-items: center; }
.state button {
  border: 0; background: none; color: #7a1b14; text-decoration: underline; cursor: pointer;
  padding: 0; font-size: 12px;
}
.choices { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 6px; }
.choice {
  border: 1.5px solid var(--pc-ink); color: var(--pc-ink); background: #fff; border-radius: 16px;
  padding: 5px 12px; cursor: pointer; font-size: 14px;
}
.choice:hover { background: #f3f6fb; }
.file { display: inline-flex; gap: 6px; align-items: center; }
.typing { min-height: 22px; padding: 0 16px 4px; font-size: 13px; color: #57606a; background: #fafbfc; }
.compose { display: flex; gap: 8px; align-items: flex-end; padding: 10px; border-top: 1px solid #e3e6ea; }
.compose textarea {
  flex: 1; resize: none; border: 1px solid #8c959f; border-radius: 10px; padding: 8px 10px;
  min-height: 40px; max-height: 120px; line-height: 1.4; background: #fff;
}
.compose textarea:focus-visible { outline: 2px solid var(--pc-ink); outline-offset: 0; border-color: transparent; }
.send {
  width: 40px; height: 40px; border-radius: 10px; border: 0; cursor: pointer;
  background: var(--pc); color: var(--pc-text); display: flex; align-items: center; justify-content: center;
}
.send svg { width: 20px; height: 20px; fill: currentColor; }
.send:disabled { opacity: .55; cursor: default; }
.form { padding: 14px 16px; border-top: 1px solid #e3e6ea; display: flex; flex-direction: column; gap: 10px; }
.form p { margin: 0; }
.field { display: flex; flex-direction: column; gap: 4px; }
.form label { font-size: 14px; font-weight: 600; }
.form input { border: 1px solid #8c959f; border-radius: 8px; padding: 8px 10px; background: #fff; }
.form input[aria-invalid="true"] { border-color: #b42318; }
.form .error { color: #b42318; font-size: 13px; font-weight: 400; }
.primary {
  border: 0; border-radius: 10px; padding: 10px; cursor: pointer; font-weight: 650;
  background: var(--pc); color: var(--pc-text);
}
.notice { margin: auto 8px; text-align: center; color: #57606a; padding: 20px 8px; }
.refused { margin: auto 12px; padding: 16px; border-radius: 10px; background: #fde8e7; color: #7a1b14; text-align: center; }
@media (max-width: 480px) {
  .panel {
    right: 0; bottom: 0; left: 0; top: 0; width: 100%; height: 100%; max-height: none;
    border-radius: 0; border: 0;
  }
  .open .launcher { display: none; }
}
.launcher:hover { box-shadow: 0 6px 20px rgba(0,0,0,.32); }
`;
