// What a validated (or new) cluster looks like: the server's answer, for the user to check
// before committing.
import { ClusterState, KubeAccessMode, type Cluster } from "@flotilla-dev/client/v1";
import { enumLabel, isoTime } from "../../ui/format";

/** `planned`: a cluster still to be created (nothing to reach yet: only what it will be). */
export function ClusterPreview({ cluster: c, title, planned = false }: { cluster: Cluster; title: string; planned?: boolean }) {
  const st = c.status;
  if (planned) {
    return (
      <div class="result" role="status" aria-label={title}>
        <h2>{title}</h2>
        <dl>
          <dt>Id</dt>
          <dd class="mono" data-field="id">{c.id}</dd>
          <dt>Provider</dt>
          <dd>{c.provider}</dd>
          {c.region ? (
            <>
              <dt>Region</dt>
              <dd>{c.region}</dd>
            </>
          ) : null}
          {c.spec?.kubernetesVersion ? (
            <>
              <dt>Kubernetes</dt>
              <dd>{c.spec.kubernetesVersion}</dd>
            </>
          ) : null}
          <dt>Credential</dt>
          <dd class="mono">{c.credentialId || "—"}</dd>
        </dl>
        {st?.warnings.map((w, i) => (
          <p class="warn" key={i}>
            {w.message}
          </p>
        ))}
      </div>
    );
  }
  return (
    <div class="result" role="status" aria-label={title}>
      <h2>{title}</h2>
      <dl>
        <dt>Id</dt>
        <dd class="mono" data-field="id">{c.id}</dd>
        <dt>Endpoint</dt>
        <dd class="mono">{c.endpoint || "—"}</dd>
        <dt>Kubernetes</dt>
        <dd data-field="version">{st?.kubernetesVersion || "—"}</dd>
        <dt>Reachable</dt>
        <dd data-field="reachable">{st?.reachable ? "yes" : `no${st?.unreachableReason ? `: ${st.unreachableReason}` : ""}`}</dd>
        <dt>Nodes</dt>
        <dd data-field="nodes">{st ? `${st.readyNodeCount}/${st.nodeCount} ready` : "—"}</dd>
        <dt>kube-system UID</dt>
        <dd class="mono">{c.kubeSystemUid || "—"}</dd>
        <dt>State</dt>
        <dd>{enumLabel(ClusterState, c.state, "CLUSTER_STATE_")}</dd>
        <dt>Access</dt>
        <dd>{enumLabel(KubeAccessMode, c.kubeAccessMode, "KUBE_ACCESS_MODE_")}</dd>
        {st?.credentialExpireTime ? (
          <>
            <dt>Credential expires</dt>
            <dd>{isoTime(st.credentialExpireTime)}</dd>
          </>
        ) : null}
      </dl>
      {st?.warnings.map((w, i) => (
        <p class="warn" key={i}>
          {w.message}
        </p>
      ))}
    </div>
  );
}
