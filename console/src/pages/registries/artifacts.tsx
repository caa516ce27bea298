// A repository's artifacts with their tags and where they run (ListArtifacts with
// include_deployments), one looked up by tag or digest (GetArtifact), and every tag (ListTags).
import { useState } from "preact/hooks";
import { ArtifactKind, type Artifact, type UnreachableCluster } from "@flotilla-dev/client/v1";
import { api, apiError, fieldError, type ApiError } from "../../api";
import { href } from "../../router";
import { ErrorBox } from "../../ui/error";
import { enumLabel, isoTime, relative } from "../../ui/format";
import { LoadMore, PagedItems, usePaged } from "../../ui/pager";
import { SearchBar } from "../../ui/pickers";
import { DataTable } from "../../ui/table";

export function size(bytes: bigint): string {
  const n = Number(bytes);
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function Artifacts({ registryId, repository }: { registryId: string; repository: string }) {
  const [unreachable, setUnreachable] = useState<UnreachableCluster[]>([]);
  const arts = usePaged(async (pageToken, signal) => {
    const res = await api.registries.listArtifacts(
      { registryId, repository, pageSize: 50, pageToken, includeDeployments: true },
      { signal },
    );
    setUnreachable(res.unreachable);
    return { items: res.artifacts, nextPageToken: res.nextPageToken, totalSize: res.totalSize };
  }, [registryId, repository]);
  return (
    <section aria-labelledby="artifacts-title">
      <p>
        <a href={href("registries", registryId)}>← Registry {registryId}</a>
      </p>
      <h1 id="artifacts-title">
        <code>{repository}</code> in {registryId}
      </h1>
      <Lookup registryId={registryId} repository={repository} />
      <h2 id="artifact-list-title">Artifacts</h2>
      <ErrorBox error={arts.error} title="Could not list artifacts" />
      <Unreachable clusters={unreachable} />
      <PagedItems paged={arts} empty={<p class="muted">No artifacts.</p>}>
        {(artifacts) => <ArtifactTable artifacts={artifacts} labelledBy="artifact-list-title" />}
      </PagedItems>
      <Tags registryId={registryId} repository={repository} />
    </section>
  );
}

function Unreachable({ clusters }: { clusters: UnreachableCluster[] }) {
  if (clusters.length === 0) return null;
  return (
    <div class="notice" role="status">
      Where these run is unknown on{" "}
      {clusters.map((c, i) => (
        <span key={c.clusterId}>
          {i > 0 ? ", " : ""}
          <code>{c.clusterId}</code> ({c.reason})
        </span>
      ))}
      .
    </div>
  );
}

function ArtifactTable({ artifacts, labelledBy }: { artifacts: Artifact[]; labelledBy: string }) {
  return (
    <DataTable labelledBy={labelledBy} columns={["Digest", "Tags", "Kind", "Size", "Pushed", "Deployed in"]}>
      {artifacts.map((a) => (
        <tr key={a.digest} data-digest={a.digest}>
          <th scope="row" class="digest" title={a.mediaType}>
            {a.digest}
          </th>
          <td>
            {a.tags.length === 0 ? <span class="muted">untagged</span> : a.tags.map((t) => <span class="tag" key={t}>{t}</span>)}
          </td>
          <td>
            {enumLabel(ArtifactKind, a.kind, "ARTIFACT_KIND_")}
            {a.platforms.length ? <div class="muted">{a.platforms.join(", ")}</div> : null}
          </td>
          <td class="nowrap">{size(a.sizeBytes)}</td>
          <td title={isoTime(a.pushTime)}>{relative(a.pushTime)}</td>
          <td>
            {a.deployments.length === 0 ? (
              <span class="muted">nowhere</span>
            ) : (
              <ul class="plain">
                {a.deployments.map((d) => (
                  <li key={`${d.clusterId}/${d.namespace}/${d.workloadKind}/${d.workloadName}`}>
                    <a href={href("clusters", d.clusterId)}>{d.clusterId}</a> · {d.namespace} · {d.workloadKind}{" "}
                    <code>{d.workloadName}</code> ({d.podCount} pod{d.podCount === 1 ? "" : "s"})
                  </li>
                ))}
              </ul>
            )}
          </td>
        </tr>
      ))}
    </DataTable>
  );
}

function Lookup({ registryId, repository }: { registryId: string; repository: string }) {
  const [reference, setReference] = useState("");
  const [found, setFound] = useState<Artifact | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const find = async () => {
    setError(null);
    setFound(null);
    try {
      const res = await api.registries.getArtifact({ registryId, repository, reference: reference.trim(), includeDeployments: true });
      setFound(res.artifact ?? null);
    } catch (err) {
      setError(apiError(err));
    }
  };
  return (
    <>
      <SearchBar
        label="Find an artifact"
        inputId="artifact-ref"
        inputLabel="Tag or digest"
        value={reference}
        placeholder="v1.2.3 or sha256:…"
        invalid={Boolean(fieldError(error, "reference"))}
        onInput={setReference}
        onSubmit={() => void find()}
        submit="Find"
        submitDisabled={reference.trim() === ""}
      />
      <ErrorBox error={error} title="Could not find the artifact" />
      {found ? (
        <>
          <h2 id="found-title">Found</h2>
          <ArtifactTable artifacts={[found]} labelledBy="found-title" />
        </>
      ) : null}
    </>
  );
}

function Tags({ registryId, repository }: { registryId: string; repository: string }) {
  const tags = usePaged(async (pageToken, signal) => {
    const res = await api.registries.listTags({ registryId, repository, pageSize: 200, pageToken }, { signal });
    return { items: res.tags, nextPageToken: res.nextPageToken, totalSize: res.totalSize };
  }, [registryId, repository]);
  return (
    <>
      <h2 id="tags-title">All tags</h2>
      <ErrorBox error={tags.error} title="Could not list tags" />
      <ul class="tag-list" aria-labelledby="tags-title">
        {tags.items.map((t) => (
          <li key={t} class="tag">
            {t}
          </li>
        ))}
      </ul>
      <LoadMore paged={tags} />
    </>
  );
}
