// Workloads by kind: ready/desired, images; scale, restart, delete; links to their logs.
import { useEffect, useState } from "preact/hooks";
import { WorkloadKind, type Workload } from "@flotilla-dev/client/v1";
import { api, apiError, type ApiError } from "../../api";
import { href, type Route } from "../../router";
import { TypedConfirm } from "../../ui/confirm";
import { ErrorBox } from "../../ui/error";
import { useCall } from "../../ui/hooks";
import { DataTable, Loading } from "../../ui/table";
import { allPages, NamespaceFilter, namespaceOf, QuerySelect } from "./common";

/** The kinds ListWorkloads summarises, in the order shown, with their Kubernetes names. */
const KINDS: { kind: WorkloadKind; name: string; plural: string }[] = [
  { kind: WorkloadKind.DEPLOYMENT, name: "Deployment", plural: "Deployments" },
  { kind: WorkloadKind.STATEFUL_SET, name: "StatefulSet", plural: "StatefulSets" },
  { kind: WorkloadKind.DAEMON_SET, name: "DaemonSet", plural: "DaemonSets" },
  { kind: WorkloadKind.REPLICA_SET, name: "ReplicaSet", plural: "ReplicaSets" },
  { kind: WorkloadKind.JOB, name: "Job", plural: "Jobs" },
  { kind: WorkloadKind.CRON_JOB, name: "CronJob", plural: "CronJobs" },
];
const SCALABLE = new Set([WorkloadKind.DEPLOYMENT, WorkloadKind.STATEFUL_SET, WorkloadKind.REPLICA_SET]);
const RESTARTABLE = new Set([WorkloadKind.DEPLOYMENT, WorkloadKind.STATEFUL_SET, WorkloadKind.DAEMON_SET]);

/** The logs page's `kind` parameter: the enum value's name in lower case, "-" for "_" ("stateful-set"). */
function kindParam(kind: WorkloadKind): string {
  return (WorkloadKind[kind] ?? "").toLowerCase().replaceAll("_", "-");
}

export function kindName(kind: WorkloadKind): string {
  return KINDS.find((k) => k.kind === kind)?.name ?? "Workload";
}

export function WorkloadsTab({ clusterId, route }: { clusterId: string; route: Route }) {
  const namespace = namespaceOf(route);
  const kindParam = route.query.get("kind") ?? "";
  const only = KINDS.find((k) => k.name === kindParam);
  const list = useCall(
    (signal) =>
      allPages(async (pageToken) => {
        const r = await api.workloads.listWorkloads(
          { clusterId, namespace, kind: only?.kind ?? WorkloadKind.UNSPECIFIED, pageSize: 500, pageToken },
          { signal },
        );
        return { items: r.workloads, next: r.nextPageToken };
      }),
    [clusterId, namespace, only?.kind],
  );
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const [note, setNote] = useState("");
  const [deleting, setDeleting] = useState<Workload | null>(null);

  const run = async (what: string, call: () => Promise<unknown>) => {
    setActionError(null);
    try {
      await call();
      setNote(what);
      list.reload();
    } catch (e) {
      setActionError(apiError(e));
    }
  };
  const ref = (w: Workload) => ({ clusterId, namespace: w.namespace, kind: w.kind, name: w.name });

  return (
    <div>
      <h2>Workloads</h2>
      <NamespaceFilter route={route} id="workload-namespace" keep={["kind"]}>
        <QuerySelect
          route={route}
          id="workload-kind"
          label="Kind"
          param="kind"
          options={[{ value: "", label: "All kinds" }, ...KINDS.map((k) => ({ value: k.name, label: k.plural }))]}
        />
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
      </NamespaceFilter>
      <ErrorBox error={list.error} title="Could not list workloads" />
      <ErrorBox error={actionError} title="The workload action failed" />
      <p class="muted" role="status">
        {note}
      </p>
      {list.data
        ? KINDS.filter((k) => !only || k === only).map((k) => {
            const items = list.data!.items.filter((w) => w.kind === k.kind);
            if (items.length === 0 && !only) return null;
            return (
              <section key={k.name} aria-labelledby={`wl-${k.name}`}>
                <h3 id={`wl-${k.name}`}>{k.plural}</h3>
                {items.length === 0 ? (
                  <p>None{namespace ? ` in ${namespace}` : ""}.</p>
                ) : (
                  <DataTable label={k.plural} class="workloads" columns={["Name", "Ready", "Images", "Actions"]}>
                    {items.map((w) => (
                      <WorkloadRow
                        key={w.uid}
                        w={w}
                        clusterId={clusterId}
                        onScale={(n) =>
                          run(`${w.name} scaled to ${n}.`, () => api.workloads.scaleWorkload({ ...ref(w), replicas: n }))
                        }
                        onRestart={() => run(`${w.name} is restarting.`, () => api.workloads.restartWorkload(ref(w)))}
                        onDelete={() => setDeleting(w)}
                      />
                    ))}
                  </DataTable>
                )}
              </section>
            );
          })
        : list.loading
          ? <Loading />
          : null}
      {list.data && list.data.items.length === 0 && !only ? <p>No workloads{namespace ? ` in ${namespace}` : ""}.</p> : null}
      {deleting ? (
        <TypedConfirm
          title={`Delete ${kindName(deleting.kind)} ${deleting.namespace}/${deleting.name}`}
          expected={deleting.name}
          action="Delete"
          onCancel={() => setDeleting(null)}
          onConfirm={() => {
            const w = deleting;
            setDeleting(null);
            void run(`${w.name} deleted.`, () => api.workloads.deleteWorkload(ref(w)));
          }}
        >
          <p>Its pods are deleted with it.</p>
        </TypedConfirm>
      ) : null}
    </div>
  );
}

function WorkloadRow(props: {
  w: Workload;
  clusterId: string;
  onScale: (n: number) => Promise<void>;
  onRestart: () => Promise<void>;
  onDelete: () => void;
}) {
  const { w } = props;
  const [replicas, setReplicas] = useState(String(w.desiredReplicas));
  // A reload (after a scale, or a change elsewhere) shows the count the cluster now has.
  useEffect(() => setReplicas(String(w.desiredReplicas)), [w.desiredReplicas]);
  const [busy, setBusy] = useState(false);
  const inputId = `scale-${w.uid}`;
  const act = (f: () => Promise<void>) => {
    setBusy(true);
    void f().finally(() => setBusy(false));
  };
  return (
    <tr data-workload={`${w.namespace}/${w.name}`}>
      <th scope="row">
        {w.name}
        <div class="muted">{w.namespace}</div>
      </th>
      <td data-col="ready" class={w.readyReplicas < w.desiredReplicas ? "warn-text" : undefined}>
        {w.readyReplicas}/{w.desiredReplicas}
      </td>
      <td>
        {w.images.map((i) => (
          <div class="mono" key={i}>
            {i}
          </div>
        ))}
      </td>
      <td>
        <div class="actions">
          {SCALABLE.has(w.kind) ? (
            <form
              class="scale"
              onSubmit={(e) => {
                e.preventDefault();
                const n = Number(replicas);
                if (Number.isInteger(n) && n >= 0) act(() => props.onScale(n));
              }}
            >
              <label for={inputId} class="visually-hidden">
                Replicas of {w.name}
              </label>
              <input
                id={inputId}
                type="number"
                min={0}
                value={replicas}
                onInput={(e) => setReplicas(e.currentTarget.value)}
              />
              <button type="submit" disabled={busy} aria-label={`Scale ${w.name}`}>
                Scale
              </button>
            </form>
          ) : null}
          {RESTARTABLE.has(w.kind) ? (
            <button type="button" disabled={busy} onClick={() => act(props.onRestart)} aria-label={`Restart ${w.name}`}>
              Restart
            </button>
          ) : null}
          <a
            class="button"
            href={href("logs", { cluster: props.clusterId, namespace: w.namespace, kind: kindParam(w.kind), workload: w.name })}
            aria-label={`Logs of ${w.name}`}
          >
            Logs
          </a>
          <button type="button" class="danger" onClick={props.onDelete} aria-label={`Delete ${w.name}`}>
            Delete…
          </button>
        </div>
      </td>
    </tr>
  );
}
