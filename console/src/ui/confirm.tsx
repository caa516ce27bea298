// A destructive action confirmed by typing the name of what it destroys.
import { useEffect, useRef, useState } from "preact/hooks";

export function TypedConfirm(props: {
  /** What the dialog is about, e.g. "Destroy cluster prod at the vendor". */
  title: string;
  /** What the user must type. */
  expected: string;
  action: string;
  onConfirm: () => void;
  onCancel: () => void;
  children?: preact.ComponentChildren;
}) {
  const [typed, setTyped] = useState("");
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    dialog.current?.showModal();
  }, []);
  return (
    <dialog ref={dialog} class="dialog" aria-labelledby="confirm-title" onClose={props.onCancel}>
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          if (typed === props.expected) props.onConfirm();
        }}
      >
        <h2 id="confirm-title">{props.title}</h2>
        {props.children}
        <label for="confirm-input">
          Type <code>{props.expected}</code> to confirm
        </label>
        <input id="confirm-input" value={typed} autoComplete="off" onInput={(e) => setTyped(e.currentTarget.value)} />
        <div class="actions">
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
          <button type="submit" class="danger" disabled={typed !== props.expected}>
            {props.action}
          </button>
        </div>
      </form>
    </dialog>
  );
}
