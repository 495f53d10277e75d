import { useState } from "preact/hooks";
import { AdminView } from "./admin";
import { ApiError } from "./api";
import { ConversationView } from "./conversation";
import { ConversationList } from "./list";
import { changed, login, logout, state, useStore } from "./store";

function Login() {
  const [error, setError] = useState("");
  const [needWorkspace, setNeedWorkspace] = useState(false);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    setBusy(true);
    setError("");
    try {
      await login(String(form.get("email")), String(form.get("password")), String(form.get("workspace") ?? ""));
    } catch (err) {
      if (err instanceof ApiError && err.code === "workspace_required") setNeedWorkspace(true);
      setError(err instanceof ApiError ? err.message : "Could not reach the server");
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="login">
      <h1>Parley inbox</h1>
      <form onSubmit={submit} aria-describedby={error ? "login-error" : undefined}>
        <label for="login-email">Email</label>
        <input id="login-email" name="email" type="email" autocomplete="username" required />
        <label for="login-password">Password</label>
        <input id="login-password" name="password" type="password" autocomplete="current-password" required />
        {needWorkspace && (
          <>
            <label for="login-workspace">Workspace id</label>
            <input id="login-workspace" name="workspace" required />
          </>
        )}
        <button type="submit" disabled={busy}>
          Log in
        </button>
        {error && (
          <p id="login-error" class="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}

function Presence() {
  const s = useStore();
  const agents = s.agents.filter((a) => s.online.has(`agent:${a.id}`));
  const count = [...s.online].filter((k) => k.startsWith("agent:")).length;
  return (
    <p class="presence" aria-label="Agents online">
      <span class={s.connected ? "dot on" : "dot"} aria-hidden="true" />
      {s.connected ? "Connected" : "Reconnecting…"} · Online:{" "}
      {agents.length ? agents.map((a) => a.name).join(", ") : `${count} agent${count === 1 ? "" : "s"}`}
    </p>
  );
}

export function App() {
  const s = useStore();
  if (!s.session) return <Login />;
  const admin = s.session.agent.role === "admin";
  const go = (view: "inbox" | "admin") => {
    state.view = view;
    changed();
  };
  return (
    <div class="shell">
      <header class="top">
        <h1>Parley inbox</h1>
        <nav aria-label="Main">
          <button type="button" aria-current={s.view === "inbox" ? "page" : undefined} onClick={() => go("inbox")}>
            Conversations
          </button>
          {admin && (
            <button type="button" aria-current={s.view === "admin" ? "page" : undefined} onClick={() => go("admin")}>
              Admin
            </button>
          )}
        </nav>
        <Presence />
        <p class="me">{s.session.agent.name}</p>
        <button type="button" onClick={() => void logout()}>
          Log out
        </button>
      </header>
      <p class="notice" role="status" aria-live="polite">
        {s.notice}
      </p>
      {s.view === "admin" && admin ? (
        <AdminView />
      ) : (
        <div class="inbox">
          <ConversationList />
          <ConversationView />
        </div>
      )}
    </div>
  );
}
