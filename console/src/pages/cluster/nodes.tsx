// Nodes: conditions, taints, zone, capacity/allocatable, schedulable; cordon, uncordon, and a
// drain whose per-pod results are shown as the server streams them.
import { useState } from "preact/hooks";
import { DrainPodOutcome, type Node } from "@flotilla-dev/client/v1";
import { api, apiError, type ApiError } from "../../api";
import { ErrorBox } from "../../ui/error";
import { count } from "../../ui/format";
import { useCall } from "../../ui/hooks";
import { DataTable, TableState } from "../../ui/table";
import { allPages, quantities } from "./common";
import { DrainDialog } from "./drain";

export function NodesTab({ clusterId }: { clusterId: string }) {
  const nodes = useCall(
    (signal) =>
      allPages(async (pageToken) => {
        const r = await api.nodes.listNodes({ clusterId, pageSize: 500, pageToken }, { signal });
        return { items: r.nodes, next: r.nextPageToken };
      }),
    [clusterId],
  );
  const [busy, setBusy] = useState("");
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const [draining, setDraining] = useState<string | null>(null);
  const [note, setNote] = useState("");

  const cordon = async (node: Node, on: boolean) => {
    setBusy(node.name);
    setActionError(null);
    try {
      if (on) await api.nodes.cordonNode({ clusterId, nodeName: node.name });
      else await api.nodes.uncordonNode({ clusterId, nodeName: node.name });
      setNote(`${node.name} ${on ? "cordoned: no new pods are scheduled on it" : "uncordoned: schedulable again"}.`);
      nodes.reload();
    } catch (e) {
      setActionError(apiError(e));
    } finally {
      setBusy("");
    }
  };

  return (
    <div>
      <h2>Nodes</h2>
      <ErrorBox error={nodes.error} title="Could not list nodes" />
      <ErrorBox error={actionError} title="The node action failed" />
      <p class="muted" role="status">
        {note}
      </p>
      <TableState items={nodes.data?.items} loading={nodes.loading}>
        {(items) => (
          <DataTable
            label="Nodes"
            class="nodes"
            caption={count(items.length, "node")}
            columns={["Node", "Zone", "Conditions", "Taints", "Capacity / allocatable", "Schedulable", "Actions"]}
          >
            {items.map((n) => (
              <tr key={n.name} data-node={n.name}>
                <th scope="row">
                  {n.name}
                  <div class="muted">
                    {n.roles.join(", ")} {n.kubeletVersion} · {n.podCount} pods
                  </div>
                </th>
                <td data-col="zone">{n.zone || "—"}</td>
                <td>
                  {n.conditions.map((c) => (
                    <span
                      key={c.type}
                      class={`tag ${conditionClass(c.type, c.status)}`}
                      title={c.message || undefined}
                    >
                      {c.type}={c.status}
                    </span>
                  ))}
                </td>
                <td>
                  {n.taints.length === 0
                    ? "—"
                    : n.taints.map((t) => (
                        <span class="tag" key={`${t.key}:${t.effect}`}>
                          {t.key}
                          {t.value ? `=${t.value}` : ""}:{t.effect}
                        </span>
                      ))}
                </td>
                <td class="quantities">
                  <div>{quantities(n.capacity) || "—"}</div>
                  <div class="muted">{quantities(n.allocatable)}</div>
                </td>
                <td data-col="schedulable">{n.unschedulable ? <span class="bad">no (cordoned)</span> : <span class="ok">yes</span>}</td>
                <td>
                  <div class="actions">
                    {n.unschedulable ? (
                      <button type="button" disabled={busy === n.name} onClick={() => void cordon(n, false)} aria-label={`Uncordon ${n.name}`}>
                        Uncordon
                      </button>
                    ) : (
                      <button type="button" disabled={busy === n.name} onClick={() => void cordon(n, true)} aria-label={`Cordon ${n.name}`}>
                        Cordon
                      </button>
                    )}
                    <button type="button" class="danger" onClick={() => setDraining(n.name)} aria-label={`Drain ${n.name}`}>
                      Drain…
                    </button>
                  </div>
                </td>
              </tr>
            ))}
          </DataTable>
        )}
      </TableState>
      {draining ? (
        <DrainDialog
          clusterId={clusterId}
          node={draining}
          onClose={() => {
            setDraining(null);
            nodes.reload();
          }}
        />
      ) : null}
    </div>
  );
}

/** Ready=True is good; a pressure condition that is True (or Ready that is not) is bad. */
function conditionClass(type: string, status: string): string {
  if (type === "Ready") return status === "True" ? "cond-ok" : "cond-bad";
  return status === "False" ? "" : "cond-bad";
}

export const OUTCOME_LABEL: Record<number, string> = {
  [DrainPodOutcome.EVICTED]: "evicted",
  [DrainPodOutcome.SKIPPED]: "skipped",
  [DrainPodOutcome.BLOCKED]: "blocked",
  [DrainPodOutcome.FAILED]: "failed",
  [DrainPodOutcome.WOULD_EVICT]: "would evict",
};
