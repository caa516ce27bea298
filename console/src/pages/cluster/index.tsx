// A cluster: its header (GetCluster) and one tab each for nodes, workloads, pods, resources and
// events (#/clusters/<id>[/<tab>]).
import { api } from "../../api";
import { href, type Route } from "../../router";
import { ErrorBox } from "../../ui/error";
import { useCall } from "../../ui/hooks";
import { relative } from "../../ui/format";
import { NodesTab } from "./nodes";
import { WorkloadsTab } from "./workloads";
import { PodsTab } from "./pods";
import { ResourcesTab } from "./resources";
import { EventsTab } from "./events";
import "./cluster.css";

const TABS = [
  { id: "nodes", label: "Nodes" },
  { id: "workloads", label: "Workloads" },
  { id: "pods", label: "Pods" },
  { id: "resources", label: "Resources" },
  { id: "events", label: "Events" },
] as const;
type TabId = (typeof TABS)[number]["id"];

export function ClusterPage({ route }: { route: Route }) {
  const id = route.segments[1] ?? "";
  const requested = route.segments[2] ?? "nodes";
  const tab: TabId | undefined = TABS.find((t) => t.id === requested)?.id;
  const cluster = useCall((signal) => api.clusters.getCluster({ clusterId: id }, { signal }), [id]);
  const c = cluster.data?.cluster;
  const status = c?.status;
  return (
    <section aria-labelledby="cluster-title">
      <p class="muted breadcrumb">
        <a href={href("clusters")}>Clusters</a> / {id}
      </p>
      <div class="page-head">
        <h1 id="cluster-title">{c?.displayName || id}</h1>
        <div class="actions">
          <a class="button" href={href("apply", { cluster: id })}>
            Apply YAML
          </a>
          <a class="button" href={href("logs", { cluster: id })}>
            Logs
          </a>
        </div>
      </div>
      <ErrorBox error={cluster.error} title="Could not load the cluster" />
      {c ? (
        <dl class="cluster-facts">
          <div>
            <dt>Provider</dt>
            <dd>{c.provider || "—"}</dd>
          </div>
          <div>
            <dt>Version</dt>
            <dd>{status?.kubernetesVersion || "—"}</dd>
          </div>
          <div>
            <dt>Reachable</dt>
            <dd>
              {status?.reachable ? (
                <span class="ok">yes</span>
              ) : (
                <span class="bad">no{status?.unreachableReason ? `: ${status.unreachableReason}` : ""}</span>
              )}
            </dd>
          </div>
          <div>
            <dt>Nodes</dt>
            <dd>{status ? `${status.readyNodeCount}/${status.nodeCount} ready` : "—"}</dd>
          </div>
          <div>
            <dt>Checked</dt>
            <dd>{relative(status?.lastProbeTime)}</dd>
          </div>
        </dl>
      ) : null}
      <nav class="tabs" aria-label="Cluster sections">
        {TABS.map((t) => (
          <a key={t.id} href={href("clusters", id, t.id)} aria-current={t.id === tab ? "page" : undefined}>
            {t.label}
          </a>
        ))}
      </nav>
      {tab === "nodes" ? <NodesTab clusterId={id} /> : null}
      {tab === "workloads" ? <WorkloadsTab clusterId={id} route={route} /> : null}
      {tab === "pods" ? <PodsTab clusterId={id} route={route} /> : null}
      {tab === "resources" ? <ResourcesTab clusterId={id} route={route} /> : null}
      {tab === "events" ? <EventsTab clusterId={id} route={route} /> : null}
      {tab === undefined ? (
        <p>
          There is no tab <code>{requested}</code>. <a href={href("clusters", id, "nodes")}>Show the nodes</a>.
        </p>
      ) : null}
    </section>
  );
}
