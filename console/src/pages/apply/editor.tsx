// The manifest editor: a monospace textarea where Tab indents (two spaces), as YAML needs — but
// Escape then Tab leaves it, so a keyboard user is never trapped (WCAG 2.1.2).
import { useRef } from "preact/hooks";

export function YamlEditor(props: {
  id: string;
  value: string;
  onInput: (v: string) => void;
  describedBy: string | undefined;
  invalid: boolean;
}) {
  // Set by Escape: the next Tab moves focus instead of indenting.
  const escaped = useRef(false);
  return (
    <textarea
      id={props.id}
      class="yaml-editor"
      rows={20}
      spellcheck={false}
      autoCapitalize="off"
      autoComplete="off"
      value={props.value}
      aria-describedby={props.describedBy}
      aria-invalid={props.invalid ? true : undefined}
      onInput={(e) => props.onInput(e.currentTarget.value)}
      onBlur={() => (escaped.current = false)}
      onKeyDown={(e) => {
        if (e.key === "Escape") {
          escaped.current = true;
          return;
        }
        if (e.key !== "Tab" || e.shiftKey || e.ctrlKey || e.altKey || e.metaKey || escaped.current) {
          escaped.current = false;
          return;
        }
        e.preventDefault();
        const t = e.currentTarget;
        t.setRangeText("  ", t.selectionStart, t.selectionEnd, "end");
        props.onInput(t.value);
      }}
    />
  );
}
