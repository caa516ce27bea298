// OperationProgress: a compact, live view of one operation (state, progress bar, current step,
// latest error) that any page can embed, such as the create-cluster form after it submits.
import { useState } from "preact/hooks";
import type { Operation } from "@flotilla-dev/client/v1";
import { api } from "../../api";
import { href } from "../../router";
import { ErrorBox } from "../../ui/error";
import { useStream } from "../../ui/hooks";
import { errorClassLabel, stateClass, stateLabel, typeLabel } from "./states";
import "./operations.css";

/** Follows WatchOperation until the operation ends; `onChange` sees every update. */
export function useOperation(operationId: string, onChange?: (op: Operation) => void): {
  op: Operation | undefined;
  error: ReturnType<typeof useStream>["error"];
  restart: () => void;
} {
  const [op, setOp] = useState<Operation | undefined>(undefined);
  const [generation, setGeneration] = useState(0);
  const { error } = useStream(
    (signal) => api.operations.watchOperation({ operationId }, { signal }),
    (m) => {
      if (!m.operation) return;
      setOp(m.operation);
      onChange?.(m.operation);
    },
    // The server ends the stream after a terminal state; a retry opens it again.
    [operationId, generation],
  );
  return { op, error, restart: () => setGeneration((g) => g + 1) };
}

export function ProgressBar({ op }: { op: Operation }) {
  return (
    <div class="op-progress">
      <progress max={100} value={op.progressPercent} aria-label={`Progress of ${op.id}`} />
      <span class="mono">{op.progressPercent}%</span>
    </div>
  );
}

export function OperationProgress({ operationId, onChange }: { operationId: string; onChange?: (op: Operation) => void }) {
  const { op, error } = useOperation(operationId, onChange);
  return (
    <section class="op-summary" aria-label={`Operation ${operationId}`} data-operation={operationId}>
      <ErrorBox error={error} title="Could not follow the operation" />
      {op ? (
        <>
          <p>
            <a href={href("operations", op.id)}>{typeLabel(op.type)}</a> of <code>{op.resource}</code>:{" "}
            <span class={stateClass(op.state)} data-state={stateLabel(op.state)} aria-live="polite">
              {stateLabel(op.state)}
            </span>
          </p>
          <ProgressBar op={op} />
          {op.description || op.currentStep ? (
            <p class="muted">
              {op.currentStep ? <code>{op.currentStep}</code> : null} {op.description}
            </p>
          ) : null}
          {op.error ? (
            <p class="bad">
              {errorClassLabel(op.error.errorClass)}: <code>{op.error.vendorCode}</code> {op.error.vendorMessage}
            </p>
          ) : null}
        </>
      ) : error ? null : (
        <p aria-live="polite">Loading operation…</p>
      )}
    </section>
  );
}
