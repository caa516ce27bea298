// Every registry with its provider, endpoint and health, filtered as ListRegistries allows.
import { useState } from "preact/hooks";
import { listRegistries } from "@flotilla-dev/client";
import type { Registry } from "@flotilla-dev/client/v1";
import { api } from "../../api";
import { href, navigate, type Route } from "../../router";
import { ErrorBox } from "../../ui/error";
import { count, isoTime, relative } from "../../ui/format";
import { useCall } from "../../ui/hooks";
import { collect } from "../../ui/pager";
import { SearchBar } from "../../ui/pickers";
import { DataTable, TableState } from "../../ui/table";

export function RegistryList({ route }: { route: Route }) {
  const applied = route.query.get("filter") ?? "";
  const [filter, setFilter] = useState(applied);
  const list = useCall((signal) => collect(listRegistries(api, { pageSize: 500, filter: applied }, { signal })), [applied]);
  return (
    <section aria-labelledby="registries-title">
      <div class="page-head">
        <h1 id="registries-title">Registries</h1>
        <a class="button primary" href={href("registries", { view: "add" })}>
          Add registry
        </a>
      </div>
      <SearchBar
        label="Filter registries"
        inputId="registry-filter"
        inputLabel="Filter"
        value={filter}
        placeholder='provider = harbor AND labels.team = "web"'
        onInput={setFilter}
        invalid={list.error?.fieldViolations.some((v) => v.field === "filter")}
        onSubmit={() => navigate(href("registries", filter.trim() ? { filter: filter.trim() } : {}))}
      />
      <ErrorBox error={list.error} title="Could not list registries" />
      <TableState
        items={list.data}
        loading={list.loading}
        empty={<p>No registries. Add one to browse its repositories and write pull secrets.</p>}
      >
        {(registries) => (
          <DataTable
            label="Registries"
            caption={count(registries.length, "registry", "registries")}
            columns={["Registry", "Provider", "Endpoint", "Health", "Labels"]}
          >
            {registries.map((r) => (
              <tr key={r.id} data-registry={r.id}>
                <th scope="row">
                  <a href={href("registries", r.id)}>{r.displayName || r.id}</a>
                  {r.displayName && r.displayName !== r.id ? <div class="muted">{r.id}</div> : null}
                </th>
                <td>{r.provider}</td>
                <td class="mono">{r.endpoint}</td>
                <td>
                  <Health r={r} />
                </td>
                <td>
                  {Object.entries(r.labels).map(([k, v]) => (
                    <span class="tag" key={k}>
                      {k}={v}
                    </span>
                  ))}
                </td>
              </tr>
            ))}
          </DataTable>
        )}
      </TableState>
    </section>
  );
}

export function Health({ r }: { r: Registry }) {
  const s = r.status;
  if (!s) return <span class="muted">not checked</span>;
  return (
    <>
      {s.reachable ? (
        <span class="ok">reachable</span>
      ) : (
        <span class="bad">unreachable{s.unreachableReason ? `: ${s.unreachableReason}` : ""}</span>
      )}
      {s.apiVersion ? <div class="muted">API {s.apiVersion}</div> : null}
      {s.lastCheckTime ? (
        <div class="muted" title={isoTime(s.lastCheckTime)}>
          checked {relative(s.lastCheckTime)}
        </div>
      ) : null}
      {s.credentialExpireTime ? (
        <div class="muted" title={isoTime(s.credentialExpireTime)}>
          credential expires {relative(s.credentialExpireTime)}
        </div>
      ) : null}
      {s.warnings.map((w) => (
        <div class="warn" key={w.code}>
          {w.message}
        </div>
      ))}
    </>
  );
}
