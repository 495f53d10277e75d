import { useEffect, useState } from "preact/hooks";
import { ApiError } from "./api";
import { api, changed, loadDirectory, notify, state, useStore } from "./store";
import type { Agent, Canned, Channel } from "./types";

function errorText(err: unknown): string {
  return err instanceof ApiError ? `${err.message} (${err.code})` : "Could not reach the server";
}

function Agents() {
  const s = useStore();
  const [created, setCreated] = useState("");
  const [error, setError] = useState("");

  async function create(e: Event) {
    e.preventDefault();
    const formEl = e.currentTarget as HTMLFormElement;
    const form = new FormData(formEl);
    try {
      const agent = await api.post<Agent & { password: string }>("/v1/agents", {
        email: form.get("email"), name: form.get("name"), role: form.get("role"),
      });
      setCreated(`${agent.email} can log in with the password ${agent.password} (shown once).`);
      setError("");
      formEl.reset();
      await loadDirectory();
    } catch (err) {
      setError(errorText(err));
    }
  }

  async function patch(agent: Agent, changes: Partial<Agent>) {
    try {
      await api.patch(`/v1/agents/${encodeURIComponent(agent.id)}`, changes);
      await loadDirectory();
      notify(`${agent.name} updated`);
    } catch (err) {
      notify(errorText(err));
    }
  }

  return (
    <section aria-labelledby="admin-agents">
      <h2 id="admin-agents">Agents</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Email</th>
            <th scope="col">Role</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {s.agents.map((a) => (
            <tr data-agent={a.email}>
              <td>{a.name}</td>
              <td>{a.email}</td>
              <td>
                <label class="sr-only" for={`role-${a.id}`}>
                  Role of {a.name}
                </label>
                <select id={`role-${a.id}`} value={a.role} onChange={(e) => void patch(a, { role: e.currentTarget.value })}>
                  <option value="agent">agent</option>
                  <option value="admin">admin</option>
                </select>
              </td>
              <td>
                {a.active ? "active " : "deactivated "}
                <button type="button" onClick={() => void patch(a, { active: !a.active })}>
                  {a.active ? `Deactivate ${a.name}` : `Reactivate ${a.name}`}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="inline" onSubmit={create}>
        <h3>Add an agent</h3>
        <label for="new-agent-name">Name</label>
        <input id="new-agent-name" name="name" required />
        <label for="new-agent-email">Email</label>
        <input id="new-agent-email" name="email" type="email" required />
        <label for="new-agent-role">Role</label>
        <select id="new-agent-role" name="role">
          <option value="agent">agent</option>
          <option value="admin">admin</option>
        </select>
        <button type="submit">Add agent</button>
      </form>
      {created && <p class="created" role="status">{created}</p>}
      {error && <p class="error" role="alert">{error}</p>}
    </section>
  );
}

const TYPES = [
  "inapp", "sms", "voice", "whatsapp", "messenger", "telegram", "wechat", "twitter", "email",
  "apns", "fcm", "wns", "webpush",
];

function Channels() {
  const s = useStore();
  const [error, setError] = useState("");
  const [type, setType] = useState("inapp");

  async function create(e: Event) {
    e.preventDefault();
    const formEl = e.currentTarget as HTMLFormElement;
    const form = new FormData(formEl);
    let config: unknown;
    try {
      config = JSON.parse(String(form.get("config") || "{}"));
    } catch {
      return setError("The config is not valid JSON");
    }
    try {
      await api.post<Channel>("/v1/channels", { type, name: form.get("name"), config });
      setError("");
      formEl.reset();
      await loadDirectory();
      notify("Channel added");
    } catch (err) {
      setError(errorText(err));
    }
  }

  return (
    <section aria-labelledby="admin-channels">
      <h2 id="admin-channels">Channels</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Type</th>
            <th scope="col">Provider callback URL</th>
          </tr>
        </thead>
        <tbody>
          {s.channels.map((c) => (
            <tr>
              <td>{c.name}</td>
              <td>{c.type}</td>
              <td>{c.webhook_url ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="inline" onSubmit={create}>
        <h3>Add a channel</h3>
        <label for="new-channel-type">Type</label>
        <select id="new-channel-type" value={type} onChange={(e) => setType(e.currentTarget.value)}>
          {TYPES.map((t) => (
            <option value={t}>{t}</option>
          ))}
        </select>
        <label for="new-channel-name">Name</label>
        <input id="new-channel-name" name="name" required />
        <label for="new-channel-config">Config (JSON, the provider's keys; see docs/channels.md)</label>
        <textarea id="new-channel-config" name="config" rows={4} placeholder={type === "inapp" ? '{"allowed_origins": ["*"]}' : "{}"} />
        <button type="submit">Add channel</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
    </section>
  );
}

type Schema = { type?: string; items?: Schema; enum?: unknown[]; format?: string; description?: string; title?: string; default?: unknown };

let schemaCache: Record<string, Schema> | null = null;

async function inAppSchema(): Promise<Record<string, Schema>> {
  if (schemaCache) return schemaCache;
  const doc = await fetch("/openapi.json", { credentials: "omit" }).then((r) => r.json());
  const props = doc?.components?.schemas?.InAppConfig?.properties ?? {};
  schemaCache = props as Record<string, Schema>;
  return schemaCache;
}

function kindOf(schema: Schema | undefined, value: unknown): "lines" | "bool" | "number" | "text" | "json" | "color" {
  const t = schema?.type ?? (Array.isArray(value) ? "array" : typeof value);
  if (t === "array" && (schema?.items?.type ?? "string") === "string" && (!Array.isArray(value) || value.every((v) => typeof v === "string"))) return "lines";
  if (t === "boolean") return "bool";
  if (t === "integer" || t === "number") return "number";
  if (t === "string" && (schema?.format === "color" || /colou?r/.test(schema?.title?.toLowerCase() ?? ""))) return "color";
  if (t === "string") return "text";
  return "json";
}

/** The in-app channel's config, as a form built from its JSON schema: whatever keys the
 * widget's settings have (allowed origins, colour, greeting, pre-chat form…). */
function WidgetSettings({ channel, widgetKey }: { channel: Channel; widgetKey: string }) {
  const [schema, setSchema] = useState<Record<string, Schema>>({});
  const [values, setValues] = useState<Record<string, string | boolean>>({});
  const [error, setError] = useState("");
  const keys = [...new Set([...Object.keys(schema), ...Object.keys(channel.config)])].filter((k) => k !== "api_base_url");

  useEffect(() => {
    void inAppSchema().then(setSchema).catch(() => setSchema({}));
  }, []);
  useEffect(() => {
    const next: Record<string, string | boolean> = {};
    for (const k of keys) {
      const v = channel.config[k] ?? schema[k]?.default;
      const kind = kindOf(schema[k], v);
      next[k] = kind === "bool" ? Boolean(v) : kind === "lines" ? ((v as string[] | undefined) ?? []).join("\n") : kind === "json" ? JSON.stringify(v ?? null, null, 1) : v == null ? "" : String(v);
    }
    setValues(next);
  }, [channel, schema]);

  async function save(e: Event) {
    e.preventDefault();
    const config: Record<string, unknown> = {};
    try {
      for (const k of keys) {
        const kind = kindOf(schema[k], channel.config[k]);
        const v = values[k];
        if (kind === "bool") config[k] = Boolean(v);
        else if (kind === "lines") config[k] = String(v).split("\n").map((x) => x.trim()).filter(Boolean);
        else if (kind === "number") config[k] = v === "" ? null : Number(v);
        else if (kind === "json") config[k] = JSON.parse(String(v) || "null");
        else config[k] = v === "" ? null : v;
      }
    } catch {
      return setError("A JSON field is not valid JSON");
    }
    try {
      const updated = await api.patch<Channel>(`/v1/channels/${encodeURIComponent(channel.id)}`, { config });
      state.channels = state.channels.map((c) => (c.id === updated.id ? updated : c));
      setError("");
      changed();
      notify("Widget settings saved");
    } catch (err) {
      setError(errorText(err));
    }
  }

  const snippet = `<script src="${location.origin}/widget.js" data-widget-key="${widgetKey}" async></script>`;
  async function copy() {
    try {
      await navigator.clipboard.writeText(snippet);
    } catch {
      const area = document.getElementById(`snippet-${channel.id}`) as HTMLTextAreaElement | null;
      area?.select();
      document.execCommand("copy");
    }
    notify("Snippet copied");
  }

  return (
    <div class="widget-settings">
      <h3>{channel.name}</h3>
      <form onSubmit={save}>
        {keys.map((k) => {
          const kind = kindOf(schema[k], channel.config[k]);
          const id = `widget-${channel.id}-${k}`;
          const name = schema[k]?.title ?? k.replace(/_/g, " ");
          const set = (v: string | boolean) => setValues({ ...values, [k]: v });
          return (
            <p class="field">
              <label for={id}>
                {name}
                {kind === "lines" ? " (one per line)" : kind === "json" ? " (JSON)" : ""}
              </label>
              {kind === "bool" ? (
                <input id={id} type="checkbox" checked={Boolean(values[k])} onChange={(e) => set(e.currentTarget.checked)} />
              ) : kind === "lines" || kind === "json" ? (
                <textarea id={id} rows={3} value={String(values[k] ?? "")} onInput={(e) => set(e.currentTarget.value)} />
              ) : (
                <input id={id} type={kind === "number" ? "number" : "text"} value={String(values[k] ?? "")} onInput={(e) => set(e.currentTarget.value)} />
              )}
              {schema[k]?.description && <small>{schema[k]?.description}</small>}
            </p>
          );
        })}
        <button type="submit">Save widget settings</button>
        {error && <p class="error" role="alert">{error}</p>}
      </form>
      <label for={`snippet-${channel.id}`}>Paste this tag in your site's pages</label>
      <textarea id={`snippet-${channel.id}`} class="snippet" readOnly rows={2} value={snippet} />
      <button type="button" onClick={() => void copy()}>
        Copy snippet
      </button>
    </div>
  );
}

function Widget() {
  const s = useStore();
  const [key, setKey] = useState("");
  useEffect(() => {
    void api.get<{ widget_key: string }>("/v1/workspace").then((w) => setKey(w.widget_key)).catch(() => setKey(""));
  }, []);
  const inapp = s.channels.filter((c) => c.type === "inapp");
  return (
    <section aria-labelledby="admin-widget">
      <h2 id="admin-widget">Web widget</h2>
      {inapp.map((c) => (
        <WidgetSettings channel={c} widgetKey={key} />
      ))}
      {!inapp.length && <p>Add an inapp channel for the widget.</p>}
    </section>
  );
}

function CannedAdmin() {
  const s = useStore();
  const [error, setError] = useState("");
  async function create(e: Event) {
    e.preventDefault();
    const formEl = e.currentTarget as HTMLFormElement;
    const form = new FormData(formEl);
    try {
      await api.post<Canned>("/v1/canned-responses", { shortcut: form.get("shortcut"), text: form.get("text") });
      formEl.reset();
      setError("");
      await loadDirectory();
      notify("Canned response saved");
    } catch (err) {
      setError(errorText(err));
    }
  }
  async function remove(c: Canned) {
    await api.del(`/v1/canned-responses/${encodeURIComponent(c.id)}`).catch(() => undefined);
    await loadDirectory();
  }
  return (
    <section aria-labelledby="admin-canned">
      <h2 id="admin-canned">Canned responses</h2>
      <ul class="canned-admin">
        {s.canned.map((c) => (
          <li>
            <strong>/{c.shortcut}</strong> {c.text}{" "}
            <button type="button" onClick={() => void remove(c)}>
              Delete /{c.shortcut}
            </button>
          </li>
        ))}
      </ul>
      <form class="inline" onSubmit={create}>
        <label for="new-canned-shortcut">Shortcut</label>
        <input id="new-canned-shortcut" name="shortcut" required pattern="[A-Za-z0-9][A-Za-z0-9_\-]*" />
        <label for="new-canned-text">Text</label>
        <textarea id="new-canned-text" name="text" rows={2} required />
        <button type="submit">Save response</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
    </section>
  );
}

export function AdminView() {
  return (
    <main class="admin" aria-label="Administration">
      <Agents />
      <Channels />
      <Widget />
      <CannedAdmin />
    </main>
  );
}
