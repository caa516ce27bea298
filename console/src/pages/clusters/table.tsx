// The clusters table: one row per cluster (linking to its page) with what a person checks every
// morning, and a row action that detaches or destroys it.
import { ClusterState, type Cluster } from "@flotilla-dev/client/v1";
import { href } from "../../router";
import { enumLabel, relative, toDate } from "../../ui/format";

const WEEK_MS = 7 * 24 * 3600 * 1000;

export function ClusterTable(props: {
  clusters: Cluster[];
  total: number;
  /** Provider ids whose capability.delete_cluster is set. */
  destroyable: Set<string>;
  onDelete: (cluster: Cluster, kind: "detach" | "destroy") => void;
}) {
  const { clusters, total } = props;
  if (clusters.length === 0) return <p>No clusters match. Import one or create one at a vendor.</p>;
  const now = Date.now();
  return (
    <div class="table-wrap">
      <table class="table clusters-table" role="table" aria-label="Clusters">
        <caption class="muted">
          {clusters.length < total ? `${clusters.length} of ` : ""}
          {total} cluster{total === 1 ? "" : "s"}
        </caption>
        <thead role="rowgroup">
          <tr role="row">
            <th scope="col" role="columnheader">Cluster</th>
            <th scope="col" role="columnheader">Provider</th>
            <th scope="col" role="columnheader">Region</th>
            <th scope="col" role="columnheader">Version</th>
            <th scope="col" role="columnheader">State</th>
            <th scope="col" role="columnheader">Reachable</th>
            <th scope="col" role="columnheader">Nodes</th>
            <th scope="col" role="columnheader">Labels</th>
            <th scope="col" role="columnheader">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody role="rowgroup">
          {clusters.map((c) => (
            <ClusterRow key={c.id} cluster={c} now={now} destroyable={props.destroyable.has(c.provider)} onDelete={props.onDelete} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function ClusterRow({
  cluster: c,
  now,
  destroyable,
  onDelete,
}: {
  cluster: Cluster;
  now: number;
  destroyable: boolean;
  onDelete: (cluster: Cluster, kind: "detach" | "destroy") => void;
}) {
  const st = c.status;
  const expiry = toDate(st?.credentialExpireTime);
  const expired = expiry !== undefined && expiry.getTime() <= now;
  const expiring = expiry !== undefined && expiry.getTime() - now < WEEK_MS;
  const name = c.displayName || c.id;
  return (
    <tr role="row" data-cluster={c.id}>
      <th scope="row" role="rowheader">
        <a href={href("clusters", c.id)}>{name}</a>
        {c.displayName && c.displayName !== c.id ? <div class="muted mono">{c.id}</div> : null}
        {c.vendorClusterId ? (
          <div class="muted mono" data-vendor-id={c.vendorClusterId}>
            {`at vendor: ${c.vendorClusterId}`}
          </div>
        ) : null}
        {expiring ? (
          <div class={expired ? "bad" : "warn"}>
            {`Credential ${expired ? "expired" : "expires"} ${relative(st?.credentialExpireTime, now)}`}
          </div>
        ) : null}
        {st?.warnings
          .filter((w) => !(expiring && w.code.startsWith("CREDENTIAL_EXPIR")))
          .map((w, i) => (
            <div class="warn" key={i}>
              {w.message}
            </div>
          ))}
      </th>
      <td role="cell">{c.provider}</td>
      <td role="cell">{c.region || "—"}</td>
      <td role="cell">{st?.kubernetesVersion || "—"}</td>
      <td role="cell">{enumLabel(ClusterState, c.state, "CLUSTER_STATE_")}</td>
      <td role="cell" data-reachable={st?.reachable ? "yes" : "no"}>
        {!st?.lastProbeTime && !st?.reachable ? (
          <span class="muted">not probed yet</span>
        ) : st?.reachable ? (
          <span class="ok">yes</span>
        ) : (
          <span class="bad">{st?.unreachableReason ? `no: ${st.unreachableReason}` : "no"}</span>
        )}
      </td>
      <td role="cell" data-nodes={st ? `${st.readyNodeCount}/${st.nodeCount}` : ""}>
        {st && (st.reachable || st.nodeCount > 0) ? `${st.readyNodeCount}/${st.nodeCount} ready` : "—"}
      </td>
      <td role="cell">
        {Object.entries(c.labels).map(([k, v]) => (
          <span class="tag" key={k}>
            {`${k}=${v}`}
          </span>
        ))}
      </td>
      <td role="cell" class="row-actions">
        <button type="button" class="danger small" aria-label={`Detach ${c.id}`} onClick={() => onDelete(c, "detach")}>
          Detach
        </button>
        {destroyable ? (
          <button type="button" class="danger small" aria-label={`Destroy ${c.id}`} onClick={() => onDelete(c, "destroy")}>
            Destroy
          </button>
        ) : null}
      </td>
    </tr>
  );
}
