// Detach or destroy a cluster, confirmed by typing its id. ClusterDangerZone is for the cluster's
// own page; DeleteClusterDialog is what both it and the clusters list open.
import { useState } from "preact/hooks";
import type { Cluster, Operation } from "@flotilla-dev/client/v1";
import { api, apiError, type ApiError } from "../../api";
import { ErrorBox } from "../../ui/error";
import { TypedConfirm } from "../../ui/confirm";
import { OperationFollow } from "./operation";
import { requestId, useProviders } from "./shared";

export type DeleteKind = "detach" | "destroy";

/** Whether the cluster's provider can destroy it at the vendor (ListProviders capability). */
export function useCanDestroy(cluster: Cluster): boolean {
  const { providers } = useProviders();
  return cluster.provider !== "imported" && !!providers?.find((p) => p.id === cluster.provider)?.capability?.deleteCluster;
}

/**
 * The typed confirmation for DeleteCluster (destroy=false detaches, destroy=true deletes at the
 * vendor). `onDone` runs after a detach, or once a destroy's operation was returned.
 */
export function DeleteClusterDialog(props: {
  cluster: Cluster;
  kind: DeleteKind;
  onCancel: () => void;
  onDone: (operation: Operation | undefined) => void;
}) {
  const { cluster, kind } = props;
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const destroy = kind === "destroy";
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      const res = await api.clusters.deleteCluster({
        clusterId: cluster.id,
        destroy,
        etag: cluster.etag,
        requestId: destroy ? requestId() : "",
      });
      props.onDone(res.operation);
    } catch (e) {
      setError(apiError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <TypedConfirm
      title={destroy ? `Destroy cluster ${cluster.id} at ${cluster.provider}` : `Detach cluster ${cluster.id}`}
      expected={cluster.id}
      action={busy ? "Working…" : destroy ? "Destroy" : "Detach"}
      onConfirm={() => void confirm()}
      onCancel={props.onCancel}
    >
      <p>
        {destroy
          ? "The cluster is deleted at the vendor, with its nodes and everything running on it, and then forgotten here."
          : "Flotilla forgets the cluster and its stored credentials. Nothing is done to the cluster itself."}
      </p>
      <ErrorBox error={error} title={destroy ? "Could not destroy" : "Could not detach"} />
    </TypedConfirm>
  );
}

/** Detach (any cluster) and destroy (vendor clusters whose provider can delete), for the cluster page. */
export function ClusterDangerZone({ cluster, onDetached }: { cluster: Cluster; onDetached?: () => void }) {
  const canDestroy = useCanDestroy(cluster);
  const [open, setOpen] = useState<DeleteKind | null>(null);
  const [detached, setDetached] = useState(false);
  const [operation, setOperation] = useState<Operation | undefined>(undefined);
  return (
    <section class="danger-zone" aria-labelledby="danger-title">
      <h2 id="danger-title">Danger zone</h2>
      {detached ? (
        <p role="status">
          Cluster <code>{cluster.id}</code> was detached.
        </p>
      ) : (
        <div class="actions">
          <button type="button" class="danger" onClick={() => setOpen("detach")}>
            Detach…
          </button>
          {canDestroy ? (
            <button type="button" class="danger" onClick={() => setOpen("destroy")}>
              Destroy at {cluster.provider}…
            </button>
          ) : null}
        </div>
      )}
      {open ? (
        <DeleteClusterDialog
          cluster={cluster}
          kind={open}
          onCancel={() => setOpen(null)}
          onDone={(op) => {
            setOpen(null);
            if (op) setOperation(op);
            else {
              setDetached(true);
              onDetached?.();
            }
          }}
        />
      ) : null}
      {operation ? <OperationFollow initial={operation} /> : null}
    </section>
  );
}
