// One registry: what it is and how it is doing, its namespaces and repositories (each leading
// to its artifacts), pull-secret sync, and forgetting it (DeleteRegistry, typed confirmation).
import { useState } from "preact/hooks";
import { api, apiError, type ApiError } from "../../api";
import { href, navigate } from "../../router";
import { TypedConfirm } from "../../ui/confirm";
import { ErrorBox } from "../../ui/error";
import { isoTime, relative } from "../../ui/format";
import { useCall } from "../../ui/hooks";
import { Health } from "./list";
import { PagedItems, usePaged } from "../../ui/pager";
import { DataTable } from "../../ui/table";

export function RegistryDetail({ registryId, namespace }: { registryId: string; namespace: string }) {
  const reg = useCall((signal) => api.registries.getRegistry({ registryId }, { signal }), [registryId]);
  const [confirm, setConfirm] = useState(false);
  const [deleteError, setDeleteError] = useState<ApiError | null>(null);
  const r = reg.data?.registry;
  const remove = async () => {
    setConfirm(false);
    setDeleteError(null);
    try {
      await api.registries.deleteRegistry({ registryId });
      navigate(href("registries"));
    } catch (e) {
      setDeleteError(apiError(e));
    }
  };
  return (
    <section aria-labelledby="registry-title">
      <p>
        <a href={href("registries")}>← All registries</a>
      </p>
      <div class="page-head">
        <h1 id="registry-title">
          Registry <code>{registryId}</code>
        </h1>
        <div class="actions">
          <a class="button" href={href("registries", registryId, "pull-secrets")}>
            Sync pull secrets
          </a>
          <button type="button" class="danger" onClick={() => setConfirm(true)}>
            Delete registry
          </button>
        </div>
      </div>
      <ErrorBox error={reg.error} title="Could not read the registry" />
      <ErrorBox error={deleteError} title="Could not delete the registry" />
      {r ? (
        <dl class="reg-facts">
          <dt>Provider</dt>
          <dd>{r.provider}</dd>
          <dt>Endpoint</dt>
          <dd class="mono">{r.endpoint}</dd>
          {r.region ? (
            <>
              <dt>Region</dt>
              <dd>{r.region}</dd>
            </>
          ) : null}
          <dt>Credential</dt>
          <dd>{r.credentialId || <span class="muted">anonymous</span>}</dd>
          <dt>Health</dt>
          <dd>
            <Health r={r} />
          </dd>
          <dt>Added</dt>
          <dd title={isoTime(r.createTime)}>{relative(r.createTime)}</dd>
        </dl>
      ) : null}
      <Namespaces registryId={registryId} selected={namespace} />
      <Repositories registryId={registryId} namespace={namespace} />
      {confirm ? (
        <TypedConfirm
          title={`Delete registry ${registryId}`}
          expected={registryId}
          action="Delete registry"
          onConfirm={() => void remove()}
          onCancel={() => setConfirm(false)}
        >
          <p>Flotilla forgets the registry; nothing in the registry itself is deleted.</p>
        </TypedConfirm>
      ) : null}
    </section>
  );
}

function Namespaces({ registryId, selected }: { registryId: string; selected: string }) {
  const ns = usePaged(async (pageToken, signal) => {
    const res = await api.registries.listRegistryNamespaces({ registryId, pageSize: 100, pageToken }, { signal });
    return { items: res.namespaces, nextPageToken: res.nextPageToken, totalSize: res.totalSize };
  }, [registryId]);
  return (
    <>
      <h2 id="ns-title">Namespaces</h2>
      <ErrorBox error={ns.error} title="Could not list namespaces" />
      <PagedItems paged={ns} empty={<p class="muted">No namespaces.</p>}>
        {(namespaces) => (
          <DataTable labelledBy="ns-title" columns={["Namespace", "Visibility", "Repositories"]}>
            {namespaces.map((n) => (
              <tr key={n.name} data-namespace={n.name}>
                <th scope="row">
                  <a
                    href={href("registries", registryId, { namespace: n.name })}
                    aria-current={selected === n.name ? "true" : undefined}
                  >
                    {n.name}
                  </a>
                </th>
                <td>{n.public ? "public" : "private"}</td>
                <td>{n.repositoryCount}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </PagedItems>
    </>
  );
}

function Repositories({ registryId, namespace }: { registryId: string; namespace: string }) {
  const repos = usePaged(async (pageToken, signal) => {
    const res = await api.registries.listRepositories({ registryId, namespace, pageSize: 100, pageToken }, { signal });
    return { items: res.repositories, nextPageToken: res.nextPageToken, totalSize: res.totalSize };
  }, [registryId, namespace]);
  return (
    <>
      <h2 id="repos-title">
        Repositories{namespace ? ` in ${namespace}` : ""}
        {namespace ? (
          <>
            {" "}
            <a class="muted" href={href("registries", registryId)}>
              (all namespaces)
            </a>
          </>
        ) : null}
      </h2>
      <ErrorBox error={repos.error} title="Could not list repositories" />
      <PagedItems paged={repos} empty={<p class="muted">No repositories.</p>}>
        {(repositories) => (
          <DataTable labelledBy="repos-title" columns={["Repository", "Artifacts", "Pulls", "Updated"]}>
            {repositories.map((r) => (
              <tr key={r.name} data-repository={r.name}>
                <th scope="row">
                  <a href={href("registries", registryId, "artifacts", { repository: r.name })}>{r.name}</a>
                </th>
                <td>{r.artifactCount || "—"}</td>
                <td>{r.pullCount ? String(r.pullCount) : "—"}</td>
                <td title={isoTime(r.updateTime)}>{relative(r.updateTime)}</td>
              </tr>
            ))}
          </DataTable>
        )}
      </PagedItems>
    </>
  );
}
