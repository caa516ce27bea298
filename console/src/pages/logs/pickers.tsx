// What to read logs from, after the cluster (ui/pickers ClusterSelect): a namespace, then a pod or
// a workload, each from the API.
import { listPods, listResources, listWorkloads } from "@flotilla-dev/client";
import { WorkloadKind, type Pod, type Workload } from "@flotilla-dev/client/v1";
import { api } from "../../api";
import { useCall } from "../../ui/hooks";
import { ErrorBox } from "../../ui/error";
import { enumLabel } from "../../ui/format";
import { collect } from "../../ui/pager";

/** "deployment" <-> WorkloadKind.DEPLOYMENT, for the route. */
export function kindParam(kind: WorkloadKind): string {
  return enumLabel(WorkloadKind, kind, "WORKLOAD_KIND_").replaceAll(" ", "-");
}
export function kindFromParam(s: string): WorkloadKind {
  // protobuf-es enums name their values without the prefix (WorkloadKind.STATEFUL_SET).
  const v = (WorkloadKind as unknown as Record<string, number>)[s.toUpperCase().replaceAll("-", "_")];
  return v === undefined ? WorkloadKind.UNSPECIFIED : (v as WorkloadKind);
}

export function NamespacePicker(props: { cluster: string; value: string; onChange: (v: string) => void }) {
  const namespaces = useCall(
    async (signal) =>
      props.cluster === ""
        ? []
        : (await collect(listResources(api, { clusterId: props.cluster, apiVersion: "v1", kind: "Namespace", pageSize: 500 }, { signal }))).map((r) => r.name),
    [props.cluster],
  );
  return (
    <div class="field">
      <label for="pick-namespace">Namespace</label>
      <select id="pick-namespace" value={props.value} disabled={props.cluster === ""} onChange={(e) => props.onChange(e.currentTarget.value)}>
        <option value="">{namespaces.loading && props.cluster ? "Loading…" : "Choose a namespace"}</option>
        {props.value && !namespaces.data?.includes(props.value) ? <option value={props.value}>{props.value}</option> : null}
        {namespaces.data?.map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
      <ErrorBox error={namespaces.error} title="Could not list namespaces" />
    </div>
  );
}

export interface SourceChoice {
  pod?: string;
  kind?: WorkloadKind;
  workload?: string;
}

/** The pods and workloads of a namespace in one select: "pod:<name>" or "workload:<kind>:<name>". */
export function SourcePicker(props: {
  cluster: string;
  namespace: string;
  value: SourceChoice;
  onChange: (v: SourceChoice) => void;
  /** The namespace's pods, once loaded (for the container choice). */
  onPods?: (pods: Pod[]) => void;
}) {
  const ready = props.cluster !== "" && props.namespace !== "";
  const data = useCall(
    async (signal) => {
      if (!ready) return { pods: [] as Pod[], workloads: [] as Workload[] };
      const [pods, workloads] = await Promise.all([
        collect(listPods(api, { clusterId: props.cluster, namespace: props.namespace, pageSize: 500 }, { signal })),
        collect(listWorkloads(api, { clusterId: props.cluster, namespace: props.namespace, pageSize: 500 }, { signal })),
      ]);
      props.onPods?.(pods);
      return { pods, workloads: workloads.filter((w) => w.kind !== WorkloadKind.POD) };
    },
    [props.cluster, props.namespace],
  );
  const value = props.value.pod
    ? `pod:${props.value.pod}`
    : props.value.workload && props.value.kind
      ? `workload:${kindParam(props.value.kind)}:${props.value.workload}`
      : "";
  return (
    <div class="field">
      <label for="pick-source">Pod or workload</label>
      <select
        id="pick-source"
        value={value}
        disabled={!ready}
        onChange={(e) => {
          const v = e.currentTarget.value;
          if (v.startsWith("pod:")) props.onChange({ pod: v.slice(4) });
          else if (v.startsWith("workload:")) {
            const [, kind = "", ...name] = v.split(":");
            props.onChange({ kind: kindFromParam(kind), workload: name.join(":") });
          } else props.onChange({});
        }}
      >
        <option value="">{data.loading && ready ? "Loading…" : "Choose a pod or a workload"}</option>
        {value && !data.data ? <option value={value}>{value.replace(/^\w+:/, "")}</option> : null}
        {data.data && data.data.workloads.length > 0 ? (
          <optgroup label="Workloads (every pod)">
            {data.data.workloads.map((w) => (
              <option key={`${w.kind}/${w.name}`} value={`workload:${kindParam(w.kind)}:${w.name}`}>
                {enumLabel(WorkloadKind, w.kind, "WORKLOAD_KIND_")} {w.name}
              </option>
            ))}
          </optgroup>
        ) : null}
        {data.data && data.data.pods.length > 0 ? (
          <optgroup label="Pods">
            {data.data.pods.map((p) => (
              <option key={p.name} value={`pod:${p.name}`}>
                {p.name} ({p.status || p.phase})
              </option>
            ))}
          </optgroup>
        ) : null}
      </select>
      <ErrorBox error={data.error} title="Could not list pods and workloads" />
    </div>
  );
}
