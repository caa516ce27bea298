// Labelled form controls that show the API's refusal next to the field it names.
import type { ComponentChildren } from "preact";
import { useId } from "preact/hooks";

interface FieldProps {
  label: string;
  /** The API's complaint about this field (fieldError(err, "spec.region")). */
  error?: string | undefined;
  hint?: string;
  children: (id: string, describedBy: string | undefined) => ComponentChildren;
}

export function Field({ label, error, hint, children }: FieldProps) {
  const id = useId();
  const errId = `${id}-err`;
  const hintId = `${id}-hint`;
  const describedBy = [error ? errId : "", hint ? hintId : ""].filter(Boolean).join(" ") || undefined;
  return (
    <div class={`field${error ? " invalid" : ""}`}>
      <label for={id}>{label}</label>
      {children(id, describedBy)}
      {hint ? (
        <small id={hintId} class="muted">
          {hint}
        </small>
      ) : null}
      {error ? (
        <small id={errId} class="field-error" role="alert">
          {error}
        </small>
      ) : null}
    </div>
  );
}

export function TextField(props: {
  label: string;
  value: string;
  onInput: (v: string) => void;
  error?: string | undefined;
  hint?: string;
  type?: "text" | "password" | "url" | "number" | "search";
  placeholder?: string;
  required?: boolean;
  autoComplete?: string;
  name?: string;
}) {
  return (
    <Field label={props.label} error={props.error} {...(props.hint ? { hint: props.hint } : {})}>
      {(id, describedBy) => (
        <input
          id={id}
          name={props.name}
          // Preact 11 types inputs by their type (one union member at a time).
          type={(props.type ?? "text") as "text"}
          value={props.value}
          placeholder={props.placeholder}
          required={props.required}
          autoComplete={props.autoComplete ?? "off"}
          aria-invalid={props.error ? true : undefined}
          aria-describedby={describedBy}
          onInput={(e) => props.onInput((e.currentTarget as HTMLInputElement).value)}
        />
      )}
    </Field>
  );
}

export function TextArea(props: {
  label: string;
  value: string;
  onInput: (v: string) => void;
  error?: string | undefined;
  hint?: string;
  rows?: number;
  name?: string;
}) {
  return (
    <Field label={props.label} error={props.error} {...(props.hint ? { hint: props.hint } : {})}>
      {(id, describedBy) => (
        <textarea
          id={id}
          name={props.name}
          rows={props.rows ?? 8}
          spellcheck={false}
          value={props.value}
          aria-invalid={props.error ? true : undefined}
          aria-describedby={describedBy}
          onInput={(e) => props.onInput((e.currentTarget as HTMLTextAreaElement).value)}
        />
      )}
    </Field>
  );
}
