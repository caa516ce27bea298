// The audit log (ListAuditEvents), newest first, with the filters the API takes (token_name,
// method, cluster_id, result_code, time bounds) kept in the route so a view can be linked.
import { useState } from "preact/hooks";
import { api, fieldError } from "../../api";
import { href, navigate, type Route } from "../../router";
import { ErrorBox } from "../../ui/error";
import { TextField } from "../../ui/form";
import { count, isoTime } from "../../ui/format";
import { useCall } from "../../ui/hooks";
import { Pager, usePageTokens } from "../../ui/pager";
import { DataTable, TableState } from "../../ui/table";

const PAGE_SIZE = 50;
const FIELDS = ["token_name", "method", "cluster_id", "result_code", "since", "until"] as const;
type Filters = Record<(typeof FIELDS)[number], string>;

/** The AIP-160 filter of the form's values; times are RFC 3339 (from datetime-local, UTC). */
export function auditFilter(f: Filters): string {
  const quote = (v: string) => `"${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
  const terms: string[] = [];
  for (const k of ["token_name", "method", "cluster_id", "result_code"] as const) {
    if (f[k].trim()) terms.push(`${k} = ${quote(f[k].trim())}`);
  }
  const time = (v: string) => new Date(`${v}Z`).toISOString();
  if (f.since) terms.push(`time >= ${quote(time(f.since))}`);
  if (f.until) terms.push(`time < ${quote(time(f.until))}`);
  return terms.join(" AND ");
}

function fromQuery(q: URLSearchParams): Filters {
  return Object.fromEntries(FIELDS.map((k) => [k, q.get(k) ?? ""])) as Filters;
}

export function AuditLog({ route }: { route: Route }) {
  const applied = fromQuery(route.query);
  const filter = auditFilter(applied);
  const [form, setForm] = useState<Filters>(applied);
  const pages = usePageTokens([filter]);
  const { pageToken } = pages;
  const list = useCall(
    (signal) => api.admin.listAuditEvents({ pageSize: PAGE_SIZE, pageToken, filter }, { signal }),
    [filter, pageToken],
  );
  const set = (k: keyof Filters) => (v: string) => setForm((f) => ({ ...f, [k]: v }));
  const filterError = (k: string) =>
    list.error?.fieldViolations.some((v) => v.field === "filter" && v.description.includes(k))
      ? fieldError(list.error, "filter")
      : undefined;
  return (
    <>
      <form
        class="form audit-filter"
        role="search"
        aria-label="Filter the audit log"
        onSubmit={(e) => {
          e.preventDefault();
          const q: Record<string, string> = {};
          for (const k of FIELDS) if (form[k].trim()) q[k] = form[k].trim();
          navigate(href("admin", "audit", q));
        }}
      >
        <div class="form-row">
          <TextField label="Token name" value={form.token_name} onInput={set("token_name")} error={filterError("token_name")} />
          <TextField
            label="Method"
            value={form.method}
            onInput={set("method")}
            placeholder="/flotilla.v1.AdminService/RevokeApiToken"
            error={filterError("method")}
          />
          <TextField label="Cluster id" value={form.cluster_id} onInput={set("cluster_id")} error={filterError("cluster_id")} />
          <TextField label="Result code" value={form.result_code} onInput={set("result_code")} placeholder="OK" error={filterError("result_code")} />
        </div>
        <div class="form-row">
          <DateTime label="From (UTC)" value={form.since} onInput={set("since")} />
          <DateTime label="Until (UTC)" value={form.until} onInput={set("until")} />
        </div>
        <div class="actions">
          <button type="submit" class="primary">
            Apply filters
          </button>
          <a class="button" href={href("admin", "audit")}>
            Clear
          </a>
        </div>
      </form>
      {filter ? (
        <p class="muted">
          Filter: <code>{filter}</code>
        </p>
      ) : null}
      <ErrorBox error={list.error} title="Could not read the audit log" />
      <TableState items={list.data?.events} loading={list.loading} empty={<p>No audit events match.</p>}>
        {(events) => (
          <DataTable
            label="Audit events"
            class="audit-table"
            caption={`${count(list.data?.totalSize ?? 0, "event")}, newest first`}
            columns={["Time (UTC)", "Token", "Method", "Cluster", "Target", "Result", "Message", "From"]}
          >
            {events.map((ev) => (
              <tr key={ev.id} data-event={ev.id}>
                <th scope="row" class="mono">
                  {isoTime(ev.time).replace("T", " ").replace(/\.\d+Z$/, "")}
                </th>
                <td>{ev.tokenName || <span class="muted">none</span>}</td>
                <td class="mono">{ev.method.replace("/flotilla.v1.", "")}</td>
                <td>{ev.clusterId || "—"}</td>
                <td class="mono">{ev.target || "—"}</td>
                <td class={ev.resultCode === "OK" ? "ok" : "bad"}>{ev.resultCode}</td>
                <td>
                  {ev.message}
                  {ev.callCount > 1n ? <div class="muted">{String(ev.callCount)} calls</div> : null}
                </td>
                <td class="mono">{ev.peerAddress}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </TableState>
      <Pager label="Audit log pages" pages={pages} nextPageToken={list.data?.nextPageToken} previous="Newer" next="Older" showPage />
    </>
  );
}

function DateTime({ label, value, onInput }: { label: string; value: string; onInput: (v: string) => void }) {
  return (
    <div class="field">
      <label>
        {label}
        <br />
        <input type="datetime-local" step={1} value={value} onInput={(e) => onInput(e.currentTarget.value)} />
      </label>
    </div>
  );
}
