// The visitor's side of the window: the message box, or the pre-chat form before it.

import { useEffect, useRef, useState } from "preact/hooks";
import type { Chat } from "./chat";
import type { Labels } from "./i18n";
import { SendIcon } from "./icons";
import type { AckError } from "./types";

export function Composer({ chat, t }: { chat: Chat; t: Labels }) {
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

export function PreChat({ chat, t }: { chat: Chat; t: Labels }) {
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
