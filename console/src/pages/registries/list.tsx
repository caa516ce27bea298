// Every registry with its provider, endpoint and health, filtered as ListRegistries allows.
import { useState } from "preact/hooks";
import type { Registry } from "@flotilla-dev/client/v1";
import { api } from "../../api";
import { href, navigate, type Route } from "../../router";
import { ErrorBox } from "../../ui/error";
import { isoTime, relative } from "../../ui/format";
import { useCall } from "../../ui/hooks";

export function RegistryList({ route }: { route: Route }) {
  const applied = route.query.get("filter") ?? "";
  const [filter, setFilter] = useState(applied);
  const list = useCall(
    async (signal) => {
      const registries: Registry[] = [];
      let pageToken = "";
      do {
        const res = await api.registries.listRegistries({ pageSize: 500, pageToken, filter: applied }, { signal });
        registries.push(...res.registries);
        pageToken = res.nextPageToken;
      } while (pageToken !== "");
      return registries;
    },
    [applied],
  );
  return (
    <section aria-labelledby="registries-title">
      <div class="page-head">
        <h1 id="registries-title">Registries</h1>
        <a class="button primary" href={href("registries", { view: "add" })}>
          Add registry
        </a>
      </div>
      <form
        class="toolbar"
        role="search"
        aria-label="Filter registries"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(href("registries", filter.trim() ? { filter: filter.trim() } : {}));
        }}
      >
        <label for="registry-filter">Filter</label>
        <input
          id="registry-filter"
          value={filter}
          placeholder='provider = harbor AND labels.team = "web"'
          onInput={(e) => setFilter(e.currentTarget.value)}
          aria-invalid={list.error?.fieldViolations.some((v) => v.field === "filter") ? true : undefined}
        />
        <button type="submit">Apply</button>
      </form>
      <ErrorBox error={list.error} title="Could not list registries" />
      {list.data ? (
        list.data.length === 0 ? (
          <p>No registries. Add one to browse its repositories and write pull secrets.</p>
        ) : (
          <div class="table-wrap" tabIndex={0} role="region" aria-label="Registries">
            <table class="table">
              <caption class="muted">
                {list.data.length} registr{list.data.length === 1 ? "y" : "ies"}
              </caption>
              <thead>
                <tr>
                  <th scope="col">Registry</th>
                  <th scope="col">Provider</th>
                  <th scope="col">Endpoint</th>
                  <th scope="col">Health</th>
                  <th scope="col">Labels</th>
                </tr>
              </thead>
              <tbody>
                {list.data.map((r) => (
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
              </tbody>
            </table>
          </div>
        )
      ) : list.loading ? (
        <p aria-live="polite">Loading…</p>
      ) : null}
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
