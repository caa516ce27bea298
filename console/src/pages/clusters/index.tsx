// Clusters: every cluster with its provider, region, version, reachability and nodes, filtered
// and sorted by the API (ListClusters filter and order_by).
import { useState } from "preact/hooks";
import { ClusterState, type Cluster } from "@flotilla-dev/client/v1";
import { api } from "../../api";
import { href, type Route } from "../../router";
import { ErrorBox } from "../../ui/error";
import { useCall } from "../../ui/hooks";
import { enumLabel, relative, toDate } from "../../ui/format";

const PAGE_SIZE = 1000;
const WEEK_MS = 7 * 24 * 3600 * 1000;

const SORTS: { value: string; label: string }[] = [
  { value: "id", label: "Id" },
  { value: "display_name", label: "Name" },
  { value: "create_time desc", label: "Newest" },
];

export function ClustersPage({ route }: { route: Route }) {
  const [filter, setFilter] = useState(route.query.get("filter") ?? "");
  const [applied, setApplied] = useState(filter);
  const [orderBy, setOrderBy] = useState("id");
  const list = useCall(
    async (signal) => {
      const clusters: Cluster[] = [];
      let pageToken = "";
      let total = 0;
      do {
        const res = await api.clusters.listClusters({ pageSize: PAGE_SIZE, pageToken, filter: applied, orderBy }, { signal });
        clusters.push(...res.clusters);
        pageToken = res.nextPageToken;
        total = res.totalSize;
      } while (pageToken !== "");
      return { clusters, total };
    },
    [applied, orderBy],
  );
  return (
    <section aria-labelledby="clusters-title">
      <div class="page-head">
        <h1 id="clusters-title">Clusters</h1>
        <div class="actions">
          <a class="button" href={href("clusters", { view: "import" })}>
            Import
          </a>
          <a class="button" href={href("clusters", { view: "create" })}>
            Create at a vendor
          </a>
        </div>
      </div>
      <form
        class="toolbar"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(filter.trim());
        }}
      >
        <label for="cluster-filter">Filter</label>
        <input
          id="cluster-filter"
          value={filter}
          placeholder='provider = "ack" AND labels.env = "prod"'
          onInput={(e) => setFilter(e.currentTarget.value)}
          aria-invalid={list.error?.fieldViolations.some((v) => v.field === "filter") ? true : undefined}
        />
        <button type="submit">Apply</button>
        <label for="cluster-sort">Sort</label>
        <select id="cluster-sort" value={orderBy} onChange={(e) => setOrderBy(e.currentTarget.value)}>
          {SORTS.map((s) => (
            <option key={s.value} value={s.value}>
              {s.label}
            </option>
          ))}
        </select>
      </form>
      <ErrorBox error={list.error} title="Could not list clusters" />
      {list.data ? (
        <ClusterTable clusters={list.data.clusters} total={list.data.total} />
      ) : list.loading ? (
        <p aria-live="polite">Loading…</p>
      ) : null}
    </section>
  );
}

function ClusterTable({ clusters, total }: { clusters: Cluster[]; total: number }) {
  if (clusters.length === 0) return <p>No clusters match. Import one or create one at a vendor.</p>;
  const now = Date.now();
  return (
    <div class="table-wrap">
      <table class="table">
        <caption class="muted">
          {total} cluster{total === 1 ? "" : "s"}
        </caption>
        <thead>
          <tr>
            <th scope="col">Cluster</th>
            <th scope="col">Provider</th>
            <th scope="col">Region</th>
            <th scope="col">Version</th>
            <th scope="col">State</th>
            <th scope="col">Reachable</th>
            <th scope="col">Nodes</th>
            <th scope="col">Labels</th>
          </tr>
        </thead>
        <tbody>
          {clusters.map((c) => {
            const expiry = toDate(c.status?.credentialExpireTime);
            const expiring = expiry !== undefined && expiry.getTime() - now < WEEK_MS;
            return (
              <tr key={c.id} data-cluster={c.id}>
                <th scope="row">
                  <a href={href("clusters", c.id)}>{c.displayName || c.id}</a>
                  {c.displayName && c.displayName !== c.id ? <div class="muted">{c.id}</div> : null}
                  {expiring ? (
                    <div class="warn">Credential expires {relative(c.status?.credentialExpireTime, now)}</div>
                  ) : null}
                  {c.status?.warnings.map((w, i) => (
                    <div class="warn" key={i}>
                      {w.message}
                    </div>
                  ))}
                </th>
                <td>{c.provider}</td>
                <td>{c.region || "—"}</td>
                <td>{c.status?.kubernetesVersion || "—"}</td>
                <td>{enumLabel(ClusterState, c.state, "CLUSTER_STATE_")}</td>
                <td>
                  {c.status?.reachable ? (
                    <span class="ok">yes</span>
                  ) : (
                    <span class="bad" title={c.status?.unreachableReason}>
                      no{c.status?.unreachableReason ? `: ${c.status.unreachableReason}` : ""}
                    </span>
                  )}
                </td>
                <td>
                  {c.status ? `${c.status.readyNodeCount}/${c.status.nodeCount} ready` : "—"}
                </td>
                <td>
                  {Object.entries(c.labels).map(([k, v]) => (
                    <span class="tag" key={k}>
                      {k}={v}
                    </span>
                  ))}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
