import { useEffect, useState } from "preact/hooks";
import { ApiError } from "./api";
import { notify, saveContact, useStore } from "./store";

const FIELDS = ["name", "email", "phone", "locale"] as const;

function shown(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function ContactPanel({ contactId }: { contactId: string }) {
  const s = useStore();
  const contact = s.contacts.get(contactId);
  const [rows, setRows] = useState<[string, string][]>([]);
  const [fields, setFields] = useState<Record<string, string>>({});
  const [error, setError] = useState("");

  useEffect(() => {
    if (!contact) return;
    setRows(Object.entries(contact.attributes).map(([k, v]) => [k, shown(v)]));
    setFields(Object.fromEntries(FIELDS.map((f) => [f, contact[f] ?? ""])));
    setError("");
  }, [contact]);

  if (!contact) return <aside class="contact" aria-label="Contact" />;

  async function save(e: Event) {
    e.preventDefault();
    if (!contact) return;
    const changes: Record<string, unknown> = {};
    for (const f of FIELDS) {
      const value = (fields[f] ?? "").trim();
      if (value !== (contact[f] ?? "")) changes[f] = value || null;
    }
    const attributes: Record<string, unknown> = {};
    const kept = new Set<string>();
    for (const [key, value] of rows) {
      const k = key.trim();
      if (!k) continue;
      kept.add(k);
      const before = contact.attributes[k];
      let next: unknown = value;
      if (before !== undefined && typeof before !== "string") {
        try {
          next = JSON.parse(value);
        } catch {
          next = value;
        }
      }
      if (shown(before) !== shown(next) || before === undefined) attributes[k] = next;
    }
    for (const k of Object.keys(contact.attributes)) if (!kept.has(k)) attributes[k] = null;
    if (Object.keys(attributes).length) changes.attributes = attributes;
    if (!Object.keys(changes).length) return notify("Nothing to save");
    try {
      await saveContact(contact.id, changes);
      setError("");
    } catch (err) {
      setError(err instanceof ApiError ? err.message : "Could not save");
    }
  }

  return (
    <aside class="contact" aria-label="Contact">
      <h2>Contact</h2>
      <form onSubmit={save}>
        {FIELDS.map((f) => (
          <p class="field">
            <label for={`contact-${f}`}>{f.charAt(0).toUpperCase() + f.slice(1)}</label>
            <input
              id={`contact-${f}`}
              value={fields[f] ?? ""}
              onInput={(e) => setFields({ ...fields, [f]: e.currentTarget.value })}
            />
          </p>
        ))}
        {contact.external_id && (
          <p class="field">
            External id: <span>{contact.external_id}</span>
          </p>
        )}
        <h3>Attributes</h3>
        <ul class="attributes">
          {rows.map(([k, v], i) => (
            <li>
              <label class="sr-only" for={`attr-key-${i}`}>
                Attribute name {i + 1}
              </label>
              <input
                id={`attr-key-${i}`}
                value={k}
                onInput={(e) => setRows(rows.map((r, j) => (j === i ? [e.currentTarget.value, r[1]] : r)))}
              />
              <label class="sr-only" for={`attr-value-${i}`}>
                Value of {k || `attribute ${i + 1}`}
              </label>
              <input
                id={`attr-value-${i}`}
                value={v}
                onInput={(e) => setRows(rows.map((r, j) => (j === i ? [r[0], e.currentTarget.value] : r)))}
              />
              <button type="button" onClick={() => setRows(rows.filter((_, j) => j !== i))}>
                Remove {k || "attribute"}
              </button>
            </li>
          ))}
        </ul>
        <button type="button" onClick={() => setRows([...rows, ["", ""]])}>
          Add attribute
        </button>
        <button type="submit">Save contact</button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
      {contact.identities.length > 0 && (
        <>
          <h3>Identities</h3>
          <ul class="identities">
            {contact.identities.map((i) => (
              <li>
                {i.channel_type}: {i.address}
              </li>
            ))}
          </ul>
        </>
      )}
    </aside>
  );
}
