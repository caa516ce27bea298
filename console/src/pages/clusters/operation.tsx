// An operation followed live (OperationService.WatchOperation): state, progress, steps and the
// error, with a link to its own page.
import { useState } from "preact/hooks";
import { OperationState, type Operation } from "@flotilla-dev/client/v1";
import { api } from "../../api";
import { href } from "../../router";
import { ErrorBox } from "../../ui/error";
import { useStream } from "../../ui/hooks";
import { enumLabel, relative } from "../../ui/format";

const TERMINAL = new Set([OperationState.SUCCEEDED, OperationState.FAILED, OperationState.CANCELLED]);

export function isTerminal(op: Operation): boolean {
  return TERMINAL.has(op.state);
}

function stateClass(s: OperationState): string {
  if (s === OperationState.SUCCEEDED) return "ok";
  if (s === OperationState.FAILED || s === OperationState.CANCELLED) return "bad";
  if (s === OperationState.ERROR_RETRYING) return "warn";
  return "";
}

export function stateLabel(s: OperationState): string {
  return enumLabel(OperationState, s, "OPERATION_STATE_");
}

/** Follows `initial` until it ends; `onEnd` is told the final operation once. */
export function OperationFollow({ initial, onEnd }: { initial: Operation; onEnd?: (op: Operation) => void }) {
  const [op, setOp] = useState<Operation>(initial);
  const [ended, setEnded] = useState(isTerminal(initial));
  const stream = useStream(
    (signal) => api.operations.watchOperation({ operationId: initial.id }, { signal }),
    (m) => {
      if (!m.operation) return;
      setOp(m.operation);
      if (isTerminal(m.operation) && !ended) {
        setEnded(true);
        onEnd?.(m.operation);
      }
    },
    [initial.id],
    { enabled: !ended },
  );
  const now = Date.now();
  return (
    <section class="operation" aria-labelledby={`op-${op.id}`}>
      <h2 id={`op-${op.id}`}>
        Operation <a href={href("operations", op.id)}>{op.id}</a>
      </h2>
      <p>
        <span class={stateClass(op.state)} data-op-state={OperationState[op.state]}>
          {stateLabel(op.state)}
        </span>
        {op.description ? ` — ${op.description}` : ""}
      </p>
      <label for={`op-progress-${op.id}`}>Progress {op.progressPercent}%</label>
      <progress id={`op-progress-${op.id}`} max={100} value={op.progressPercent} />
      {op.steps.length > 0 ? (
        <ol class="op-steps">
          {op.steps.map((s) => (
            <li key={s.id}>
              <code>{s.id}</code> <span class={stateClass(s.state)}>{stateLabel(s.state)}</span>
              {s.message ? ` — ${s.message}` : ""}
              {s.endTime ? <span class="muted"> ({relative(s.endTime, now)})</span> : null}
            </li>
          ))}
        </ol>
      ) : null}
      {op.error ? (
        <p class="bad" role="alert">
          {op.error.vendorCode ? <code>{op.error.vendorCode}</code> : null} {op.error.vendorMessage}
          {op.error.retryable && op.nextRetryTime ? ` (next try ${relative(op.nextRetryTime, now)})` : ""}
        </p>
      ) : null}
      {!ended ? <ErrorBox error={stream.error} title="Lost the operation's stream" /> : null}
      <p aria-live="polite" class="muted">
        {ended ? `Finished: ${stateLabel(op.state)}.` : "Following live…"}
      </p>
    </section>
  );
}
