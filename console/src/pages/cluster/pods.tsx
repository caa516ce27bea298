// Pods: status, restarts, node, namespace filter, and a link to each pod's logs.
import type { Pod } from "@flotilla-dev/client/v1";
import { api } from "../../api";
import { href, type Route } from "../../router";
import { ErrorBox } from "../../ui/error";
import { useCall } from "../../ui/hooks";
import { count, relative } from "../../ui/format";
import { DataTable, TableState } from "../../ui/table";
import { allPages, NamespaceFilter, namespaceOf } from "./common";

export function PodsTab({ clusterId, route }: { clusterId: string; route: Route }) {
  const namespace = namespaceOf(route);
  const list = useCall(
    (signal) =>
      allPages<Pod>(async (pageToken) => {
        const r = await api.workloads.listPods({ clusterId, namespace, pageSize: 500, pageToken }, { signal });
        return { items: r.pods, next: r.nextPageToken };
      }),
    [clusterId, namespace],
  );
  return (
    <div>
      <h2>Pods</h2>
      <NamespaceFilter route={route} id="pod-namespace">
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
      </NamespaceFilter>
      <ErrorBox error={list.error} title="Could not list pods" />
      <TableState items={list.data?.items} loading={list.loading} empty={<p>No pods{namespace ? ` in ${namespace}` : ""}.</p>}>
        {(pods) => (
          <DataTable
            label="Pods"
            class="pods"
            caption={`${count(pods.length, "pod")}${list.data?.truncated ? " (first ones only; filter by namespace)" : ""}`}
            columns={["Pod", "Status", "Ready", "Restarts", "Node", "Age", "Logs"]}
          >
            {pods.map((p) => (
              <tr key={p.uid} data-pod={`${p.namespace}/${p.name}`}>
                <th scope="row">
                  {p.name}
                  <div class="muted">{p.namespace}</div>
                </th>
                <td class={p.ready || p.status === "Completed" ? "" : "warn-text"}>{p.status || p.phase}</td>
                <td>
                  {p.readyContainers}/{p.totalContainers}
                </td>
                <td>{p.restarts}</td>
                <td data-col="node">{p.nodeName || "—"}</td>
                <td>{relative(p.createTime)}</td>
                <td>
                  <a
                    href={href("logs", { cluster: clusterId, namespace: p.namespace, pod: p.name })}
                    aria-label={`Logs of ${p.name}`}
                  >
                    Logs
                  </a>
                </td>
              </tr>
            ))}
          </DataTable>
        )}
      </TableState>
    </div>
  );
}
