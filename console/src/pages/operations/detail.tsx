// One operation, followed live (WatchOperation) step by step, with cancel and retry where its
// state allows them; a refusal by the server (NOT_CANCELLABLE, NOT_FAILED, CONFLICT) is shown.
import { useState } from "preact/hooks";
import type { Operation, OperationError } from "@flotilla-dev/client/v1";
import { api, apiError, type ApiError } from "../../api";
import { href } from "../../router";
import { ErrorBox } from "../../ui/error";
import { durationMs } from "@flotilla-dev/client";
import { isoTime, relative } from "../../ui/format";
import { DataTable, Loading } from "../../ui/table";
import { ProgressBar, useOperation } from "./progress";
import { canCancel, canRetry, errorClassLabel, isTerminal, stateClass, stateLabel, typeLabel } from "./states";

export function OperationDetail({ operationId }: { operationId: string }) {
  const { op: watched, error, restart } = useOperation(operationId);
  // The answer of the last cancel/retry, until the watch reports something newer.
  const [acted, setActed] = useState<Operation | undefined>(undefined);
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const op = acted && newer(acted, watched) ? acted : watched;
  const act = async (what: "cancel" | "retry") => {
    setBusy(true);
    setActionError(null);
    try {
      const res =
        what === "cancel"
          ? await api.operations.cancelOperation({ operationId })
          : await api.operations.retryOperation({ operationId });
      setActed(res.operation);
      // A retried operation runs again: the finished watch must be opened anew.
      if (what === "retry") restart();
    } catch (e) {
      setActionError(apiError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="op-title">
      <p>
        <a href={href("operations")}>← All operations</a>
      </p>
      <div class="page-head">
        <h1 id="op-title">
          Operation <code>{operationId}</code>
        </h1>
        {op ? (
          <div class="actions">
            {canCancel(op) ? (
              <button type="button" class="danger" disabled={busy} onClick={() => void act("cancel")}>
                Cancel operation
              </button>
            ) : null}
            {canRetry(op) ? (
              <button type="button" class="primary" disabled={busy} onClick={() => void act("retry")}>
                Retry operation
              </button>
            ) : null}
          </div>
        ) : null}
      </div>
      <ErrorBox error={actionError} title="The server refused" />
      <ErrorBox error={error} title="Could not follow the operation" />
      {op ? <OperationBody op={op} /> : error ? null : <Loading />}
    </section>
  );
}

function newer(a: Operation, b: Operation | undefined): boolean {
  if (!b) return true;
  const t = (o: Operation) => Number(o.updateTime?.seconds ?? 0n) * 1e9 + (o.updateTime?.nanos ?? 0);
  return t(a) > t(b);
}

function OperationBody({ op }: { op: Operation }) {
  return (
    <>
      <p>
        State:{" "}
        <strong class={stateClass(op.state)} data-testid="op-state" aria-live="polite">
          {stateLabel(op.state)}
        </strong>
        {isTerminal(op.state) ? null : <span class="muted"> (live)</span>}
      </p>
      <ProgressBar op={op} />
      {op.description ? <p>{op.description}</p> : null}
      <dl class="op-facts">
        <dt>Kind</dt>
        <dd>{typeLabel(op.type)}</dd>
        <dt>Target</dt>
        <dd>
          <code>{op.resource}</code>
          {op.resource.startsWith("clusters/") ? (
            <>
              {" "}
              <a href={href("clusters", op.resource.split("/")[1] ?? "")}>open cluster</a>
            </>
          ) : null}
        </dd>
        <dt>Provider</dt>
        <dd>{op.provider || "—"}</dd>
        <dt>Vendor task</dt>
        <dd>
          <code>{op.vendorTaskId || "—"}</code> {op.vendorState ? <span class="muted">({op.vendorState})</span> : null}
        </dd>
        <dt>Attempt</dt>
        <dd>{op.attempt}</dd>
        <dt>Requested by</dt>
        <dd>{op.requestedBy || "—"}</dd>
        <dt>Created</dt>
        <dd title={isoTime(op.createTime)}>{relative(op.createTime)}</dd>
        <dt>Ended</dt>
        <dd title={isoTime(op.endTime)}>{relative(op.endTime)}</dd>
        {op.nextRetryTime ? (
          <>
            <dt>Next retry</dt>
            <dd title={isoTime(op.nextRetryTime)}>{relative(op.nextRetryTime)}</dd>
          </>
        ) : null}
      </dl>
      <h2>Steps</h2>
      {op.steps.length === 0 ? (
        <p class="muted">No steps yet.</p>
      ) : (
        <DataTable label="Steps" tableLabel="Steps" columns={["Step", "State", "Message", "Started", "Ended"]}>
          {op.steps.map((s) => (
            <tr key={s.id} data-step={s.id} aria-current={s.id === op.currentStep ? "step" : undefined}>
              <th scope="row">
                <code>{s.id}</code>
              </th>
              <td class={stateClass(s.state)}>{stateLabel(s.state)}</td>
              <td>{s.message}</td>
              <td title={isoTime(s.startTime)}>{relative(s.startTime)}</td>
              <td title={isoTime(s.endTime)}>{relative(s.endTime)}</td>
            </tr>
          ))}
        </DataTable>
      )}
      {op.errors.length > 0 || op.error ? (
        <>
          <h2>Errors</h2>
          <ul class="op-errors">
            {(op.errors.length > 0 ? op.errors : op.error ? [op.error] : []).map((e, i) => (
              <ErrorItem key={i} e={e} />
            ))}
          </ul>
        </>
      ) : null}
    </>
  );
}

function ErrorItem({ e }: { e: OperationError }) {
  return (
    <li>
      <strong>{errorClassLabel(e.errorClass)}</strong> at step <code>{e.step || "—"}</code>
      {e.retryable ? <span class="muted"> (retryable)</span> : <span class="muted"> (not retryable)</span>}
      <div>
        Vendor code <code>{e.vendorCode || "—"}</code>
        {e.vendorHttpStatus ? <> · HTTP {e.vendorHttpStatus}</> : null}
        {e.vendorRequestId ? (
          <>
            {" "}
            · request <code>{e.vendorRequestId}</code>
          </>
        ) : null}
      </div>
      {e.vendorMessage ? <p>{e.vendorMessage}</p> : null}
      {e.retryAfter ? <div class="muted">The vendor asked to wait {Math.round(durationMs(e.retryAfter) / 1000)} s.</div> : null}
    </li>
  );
}
