// Any resource by kind: a picker of the kinds the cluster serves (ListResourceKinds, grouped by
// API group, searchable), the objects of the chosen kind (ListResources), and one object as YAML
// (GetResource).
import { useMemo, useState } from "preact/hooks";
import type { Resource, ResourceKind } from "@flotilla-dev/client/v1";
import { api } from "../../api";
import type { Route } from "../../router";
import { ErrorBox } from "../../ui/error";
import { useCall } from "../../ui/hooks";
import { count, relative } from "../../ui/format";
import { DataTable, Loading, TableState } from "../../ui/table";
import { allPages, NamespaceFilter, namespaceOf } from "./common";
import { toYaml } from "./yaml";

function groupOf(k: ResourceKind): string {
  return k.apiVersion.includes("/") ? k.apiVersion.split("/")[0]! : "core";
}

export function ResourcesTab({ clusterId, route }: { clusterId: string; route: Route }) {
  const kinds = useCall((signal) => api.workloads.listResourceKinds({ clusterId }, { signal }), [clusterId]);
  const [search, setSearch] = useState("");
  const [picked, setPicked] = useState<ResourceKind | null>(null);
  const groups = useMemo(() => {
    const q = search.trim().toLowerCase();
    const byGroup = new Map<string, ResourceKind[]>();
    for (const k of kinds.data?.kinds ?? []) {
      // A picker lists what can be listed.
      if (!k.verbs.includes("list")) continue;
      if (q && !`${k.kind} ${k.plural} ${k.apiVersion}`.toLowerCase().includes(q)) continue;
      const g = groupOf(k);
      byGroup.set(g, [...(byGroup.get(g) ?? []), k]);
    }
    return [...byGroup.entries()];
  }, [kinds.data, search]);

  return (
    <div>
      <h2>Resources</h2>
      <ErrorBox error={kinds.error} title="Could not read the cluster's kinds" />
      <div class="resources">
        <section class="kind-picker" aria-labelledby="kinds-title">
          <h3 id="kinds-title">Kinds</h3>
          <label for="kind-search">Search kinds</label>
          <input
            id="kind-search"
            type="search"
            value={search}
            placeholder="ConfigMap, apps, ingress…"
            onInput={(e) => setSearch(e.currentTarget.value)}
          />
          {kinds.loading && !kinds.data ? <Loading /> : null}
          {kinds.data && groups.length === 0 ? <p>No kind matches.</p> : null}
          <div class="kind-groups">
            {groups.map(([group, ks]) => (
              <div key={group} class="kind-group">
                <h4>{group}</h4>
                <ul>
                  {ks.map((k) => {
                    const current = picked?.apiVersion === k.apiVersion && picked.kind === k.kind;
                    return (
                      <li key={`${k.apiVersion}/${k.kind}`}>
                        <button
                          type="button"
                          class="link"
                          aria-pressed={current}
                          aria-label={`${k.kind} (${k.apiVersion})`}
                          onClick={() => setPicked(k)}
                        >
                          {k.kind}
                        </button>
                      </li>
                    );
                  })}
                </ul>
              </div>
            ))}
          </div>
        </section>
        <div class="kind-objects">
          {picked ? (
            <KindObjects key={`${picked.apiVersion}/${picked.kind}`} clusterId={clusterId} kind={picked} route={route} />
          ) : (
            <p class="muted">Pick a kind to see its objects.</p>
          )}
        </div>
      </div>
    </div>
  );
}

function KindObjects({ clusterId, kind, route }: { clusterId: string; kind: ResourceKind; route: Route }) {
  const namespace = kind.namespaced ? namespaceOf(route) : "";
  const list = useCall(
    (signal) =>
      allPages<Resource>(async (pageToken) => {
        const r = await api.workloads.listResources(
          { clusterId, apiVersion: kind.apiVersion, kind: kind.kind, namespace, pageSize: 500, pageToken },
          { signal },
        );
        return { items: r.resources, next: r.nextPageToken };
      }, 2000),
    [clusterId, kind.apiVersion, kind.kind, namespace],
  );
  const [open, setOpen] = useState<Resource | null>(null);
  return (
    <section aria-labelledby="objects-title">
      <h3 id="objects-title">
        {kind.kind} <span class="muted">{kind.apiVersion}</span>
      </h3>
      {kind.namespaced ? <NamespaceFilter route={route} id="resource-namespace" /> : <p class="muted">Cluster-scoped.</p>}
      <ErrorBox error={list.error} title={`Could not list ${kind.kind}`} />
      <TableState
        items={list.data?.items}
        loading={list.loading}
        empty={<p>No {kind.kind} objects{namespace ? ` in ${namespace}` : ""}.</p>}
      >
        {(objects) => (
          <DataTable
            label={`${kind.kind} objects`}
            wrapClass="objects"
            caption={`${count(objects.length, "object")}${list.data?.truncated ? " (first ones only)" : ""}`}
            columns={["Name", kind.namespaced ? "Namespace" : null, "Age"]}
          >
            {objects.map((r) => (
              <tr key={r.uid} data-object={`${r.namespace}/${r.name}`}>
                <th scope="row">
                  <button
                    type="button"
                    class="link"
                    aria-pressed={open?.uid === r.uid}
                    onClick={() => setOpen(r)}
                  >
                    {r.name}
                  </button>
                </th>
                {kind.namespaced ? <td>{r.namespace}</td> : null}
                <td>{relative(r.createTime)}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </TableState>
      {open ? <ObjectYaml key={open.uid} clusterId={clusterId} kind={kind} object={open} /> : null}
    </section>
  );
}

/** The object as the API server has it now (GetResource), as YAML. */
function ObjectYaml({ clusterId, kind, object }: { clusterId: string; kind: ResourceKind; object: Resource }) {
  const got = useCall(
    (signal) =>
      api.workloads.getResource(
        { clusterId, apiVersion: kind.apiVersion, kind: kind.kind, namespace: object.namespace, name: object.name },
        { signal },
      ),
    [clusterId, kind.apiVersion, kind.kind, object.namespace, object.name],
  );
  const yaml = useMemo(() => {
    const json = got.data?.resource?.json;
    if (!json) return "";
    try {
      return toYaml(JSON.parse(json));
    } catch {
      return json;
    }
  }, [got.data]);
  return (
    <section aria-labelledby="yaml-title" class="object-yaml">
      <h4 id="yaml-title">
        {object.namespace ? `${object.namespace}/` : ""}
        {object.name}
      </h4>
      <ErrorBox error={got.error} title="Could not read the object" />
      {yaml ? (
        <pre tabIndex={0} aria-label={`YAML of ${object.name}`}>
          <code>{yaml}</code>
        </pre>
      ) : got.loading ? (
        <Loading />
      ) : null}
    </section>
  );
}
