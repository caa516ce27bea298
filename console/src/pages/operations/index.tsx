// Operations: every long-running operation, newest first, filtered as ListOperations allows
// (resource, states, types) and refreshed while open; #/operations/<id> follows one live.
import { useEffect, useState } from "preact/hooks";
import { OperationState, OperationType } from "@flotilla-dev/client/v1";
import { api } from "../../api";
import { href, navigate, type Route } from "../../router";
import { ErrorBox } from "../../ui/error";
import { useCall } from "../../ui/hooks";
import { count, isoTime, relative } from "../../ui/format";
import { Pager, usePageTokens } from "../../ui/pager";
import { SearchBar } from "../../ui/pickers";
import { DataTable, TableState } from "../../ui/table";
import { OperationDetail } from "./detail";
import { ProgressBar } from "./progress";
import { enumValues, stateClass, stateLabel, typeLabel } from "./states";
import "./operations.css";

const PAGE_SIZE = 50;
/** The "unfinished" choice of the state filter: every state an operation can still leave. */
const ACTIVE = [OperationState.PENDING, OperationState.RUNNING, OperationState.ERROR_RETRYING, OperationState.CANCELLING];
const REFRESH_MS = 3000;

export function OperationsPage({ route }: { route: Route }) {
  const id = route.segments[1];
  return id ? <OperationDetail operationId={id} /> : <OperationList route={route} />;
}

function OperationList({ route }: { route: Route }) {
  const q = route.query;
  const resource = q.get("resource") ?? "";
  // A state number, "active" (every unfinished state) or "0" (any).
  const state = q.get("state") ?? "0";
  const states: OperationState[] = state === "active" ? ACTIVE : Number(state) ? [Number(state)] : [];
  const type = Number(q.get("type") ?? 0) as OperationType;
  const [resourceInput, setResourceInput] = useState(resource);
  const [live, setLive] = useState(true);
  const pages = usePageTokens([resource, state, type]);
  const { pageToken } = pages;
  const list = useCall(
    (signal) =>
      api.operations.listOperations(
        { pageSize: PAGE_SIZE, pageToken, resource, states, types: type ? [type] : [] },
        { signal },
      ),
    [resource, state, type, pageToken],
  );
  useEffect(() => {
    if (!live) return;
    const t = setInterval(list.reload, REFRESH_MS);
    return () => clearInterval(t);
  }, [live, list.reload]);
  const setQuery = (changes: Record<string, string>) => {
    const next: Record<string, string> = { resource, state, type: String(type), ...changes };
    for (const k of Object.keys(next)) if (next[k] === "" || next[k] === "0") delete next[k];
    navigate(href("operations", next));
  };
  return (
    <section aria-labelledby="ops-title">
      <div class="page-head">
        <h1 id="ops-title">Operations</h1>
        <label>
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} /> Refresh every{" "}
          {REFRESH_MS / 1000} s
        </label>
      </div>
      <SearchBar
        label="Filter operations"
        inputId="op-resource"
        inputLabel="Resource"
        value={resourceInput}
        placeholder="clusters/prod-1"
        onInput={setResourceInput}
        invalid={list.error?.fieldViolations.some((v) => v.field === "resource")}
        onSubmit={() => setQuery({ resource: resourceInput.trim() })}
      >
        <label for="op-state">State</label>
        <select id="op-state" value={state} onChange={(e) => setQuery({ state: e.currentTarget.value })}>
          <option value="0">any</option>
          <option value="active">unfinished</option>
          {enumValues(OperationState).map((s) => (
            <option key={s} value={String(s)}>
              {stateLabel(s)}
            </option>
          ))}
        </select>
        <label for="op-type">Type</label>
        <select id="op-type" value={String(type)} onChange={(e) => setQuery({ type: e.currentTarget.value })}>
          <option value="0">any</option>
          {enumValues(OperationType).map((t) => (
            <option key={t} value={String(t)}>
              {typeLabel(t)}
            </option>
          ))}
        </select>
      </SearchBar>
      <ErrorBox error={list.error} title="Could not list operations" />
      <TableState items={list.data?.operations} loading={list.loading} empty={<p>No operations match.</p>}>
        {(ops) => (
          <DataTable
            label="Operations"
            caption={`${count(list.data?.totalSize ?? 0, "operation")}, newest first`}
            columns={["Operation", "Kind", "Target", "State", "Progress", { label: "Created", class: "wide-only" }, { label: "By", class: "wide-only" }]}
          >
            {ops.map((op) => (
              <tr key={op.id} data-operation={op.id}>
                <th scope="row" class="op-id">
                  <a href={href("operations", op.id)}>{op.id}</a>
                </th>
                <td>{typeLabel(op.type)}</td>
                <td>
                  <code>{op.resource}</code>
                  {op.provider ? <div class="muted">{op.provider}</div> : null}
                </td>
                <td>
                  <span class={stateClass(op.state)}>{stateLabel(op.state)}</span>
                  {op.error ? <div class="muted">{op.error.vendorCode || op.error.vendorMessage}</div> : null}
                </td>
                <td>
                  <ProgressBar op={op} />
                </td>
                <td class="wide-only" title={isoTime(op.createTime)}>
                  {relative(op.createTime)}
                </td>
                <td class="wide-only">{op.requestedBy || "—"}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </TableState>
      <Pager label="Pages" pages={pages} nextPageToken={list.data?.nextPageToken} previous="Previous page" next="Next page" />
    </section>
  );
}
