// Clusters: every cluster with its provider, region, version, reachability and nodes, filtered
// and sorted by the API (ListClusters filter and order_by) and refreshed every 10 s; the import
// and create views (?view=import, ?view=create); detach/destroy from a row.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Cluster, Operation } from "@flotilla-dev/client/v1";
import { api, fieldError } from "../../api";
import { href, type Route } from "../../router";
import { ErrorBox } from "../../ui/error";
import { useCall } from "../../ui/hooks";
import { Loading } from "../../ui/table";
import { ClusterTable } from "./table";
import { DeleteClusterDialog, type DeleteKind } from "./danger";
import { ImportView } from "./import";
import { CreateView } from "./create";
import { OperationFollow } from "./operation";
import { useProviders } from "./shared";
import "./clusters.css";

/** ListClusters' largest page: 1,000 clusters arrive in one call. */
const PAGE_SIZE = 1000;
const REFRESH_MS = 10_000;

const SORTS: { value: string; label: string }[] = [
  { value: "id", label: "Id (A–Z)" },
  { value: "id desc", label: "Id (Z–A)" },
  { value: "display_name", label: "Name (A–Z)" },
  { value: "display_name desc", label: "Name (Z–A)" },
  { value: "create_time desc", label: "Newest first" },
  { value: "create_time", label: "Oldest first" },
];

/** Whether `hash` is the list's own address: its path, with no query but its filter and sort. */
function isListAddress(hash: string): boolean {
  const m = /^#\/clusters(?:\?(.*))?$/.exec(hash);
  if (!m) return false;
  return [...new URLSearchParams(m[1] ?? "").keys()].every((k) => k === "filter" || k === "order_by");
}

export function ClustersPage({ route }: { route: Route }) {
  const view = route.query.get("view");
  // Switching between the list and its views keeps the path, so the shell does not move focus:
  // do it here, so keyboard and screen-reader users start at the new view.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    document.getElementById("main")?.focus();
  }, [view]);
  if (view === "import") return <ImportView />;
  if (view === "create") return <CreateView />;
  return <ClusterList route={route} />;
}

function ClusterList({ route }: { route: Route }) {
  const [filter, setFilter] = useState(route.query.get("filter") ?? "");
  const [applied, setApplied] = useState(filter);
  const [orderBy, setOrderBy] = useState(route.query.get("order_by") ?? "id");
  const [pages, setPages] = useState(1);
  const [deleting, setDeleting] = useState<{ cluster: Cluster; kind: DeleteKind } | null>(null);
  const [notice, setNotice] = useState("");
  const [operation, setOperation] = useState<Operation | undefined>(undefined);
  const { providers } = useProviders();
  const destroyable = useMemo(
    () => new Set((providers ?? []).filter((p) => p.capability?.deleteCluster && p.id !== "imported").map((p) => p.id)),
    [providers],
  );
  const list = useCall(
    async (signal) => {
      const clusters: Cluster[] = [];
      let pageToken = "";
      let total = 0;
      for (let i = 0; i < pages; i++) {
        const res = await api.clusters.listClusters({ pageSize: PAGE_SIZE, pageToken, filter: applied, orderBy }, { signal });
        clusters.push(...res.clusters);
        pageToken = res.nextPageToken;
        total = res.totalSize;
        if (pageToken === "") break;
      }
      return { clusters, total, more: pageToken !== "" };
    },
    [applied, orderBy, pages],
  );
  // Refresh in place every 10 s while the tab is visible: rows are keyed by id, so focus,
  // selection and scroll position survive.
  const { reload, loading } = list;
  useEffect(() => {
    const t = setInterval(() => {
      if (document.visibilityState === "visible" && !loading) reload();
    }, REFRESH_MS);
    return () => clearInterval(t);
  }, [reload, loading]);
  // The applied filter and sort live in the route too (replaceState: no navigation, no
  // history entry), so a reload or a shared link shows the same list.
  useEffect(() => {
    const q = new URLSearchParams();
    if (applied) q.set("filter", applied);
    if (orderBy !== "id") q.set("order_by", orderBy);
    const qs = q.toString();
    const next = `#/clusters${qs ? `?${qs}` : ""}`;
    // Only while the address is still this list's: a navigation away whose hashchange has not
    // been handled yet (a link followed right after the list mounts, to another page or to
    // another view of this one, such as ?view=import) must not be overwritten.
    if (isListAddress(location.hash) && location.hash !== next) {
      history.replaceState(history.state, "", next);
    }
  }, [applied, orderBy]);
  const filterError = fieldError(list.error, "filter");
  const sortError = fieldError(list.error, "order_by");
  return (
    <section aria-labelledby="clusters-title">
      <div class="page-head">
        <h1 id="clusters-title">Clusters</h1>
        <div class="actions">
          <a class="button" href={href("clusters", { view: "import" })}>
            Import
          </a>
          <a class="button" href={href("clusters", { view: "create" })}>
            Create at a vendor
          </a>
        </div>
      </div>
      <form
        class="toolbar clusters-toolbar"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setPages(1);
          setApplied(filter.trim());
        }}
      >
        <div class={`filter-field${filterError ? " invalid" : ""}`}>
          <div class="filter-row">
            <label for="cluster-filter">Filter</label>
            <input
              id="cluster-filter"
              value={filter}
              placeholder='provider = "ack" AND labels.env = "prod"'
              onInput={(e) => setFilter(e.currentTarget.value)}
              aria-invalid={filterError ? true : undefined}
              aria-describedby={filterError ? "cluster-filter-err" : "cluster-filter-hint"}
            />
            <button type="submit">Apply</button>
          </div>
          {filterError ? (
            <small id="cluster-filter-err" class="field-error" role="alert">
              {filterError}
            </small>
          ) : (
            <small id="cluster-filter-hint" class="muted">
              Fields: provider, state, region, labels.&lt;key&gt;; join with AND.
            </small>
          )}
        </div>
        <div class="sort-field">
          <label for="cluster-sort">Sort</label>
          <select
            id="cluster-sort"
            value={orderBy}
            aria-invalid={sortError ? true : undefined}
            onChange={(e) => {
              setPages(1);
              setOrderBy(e.currentTarget.value);
            }}
          >
            {SORTS.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
        </div>
        <span class="muted refresh-note" aria-hidden="true">
          {loading ? "Refreshing…" : "Refreshes every 10 s"}
        </span>
      </form>
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      {operation ? <OperationFollow initial={operation} onEnd={() => reload()} /> : null}
      <ErrorBox error={list.error} title="Could not list clusters" />
      {list.data ? (
        <>
          <ClusterTable
            clusters={list.data.clusters}
            total={list.data.total}
            destroyable={destroyable}
            onDelete={(cluster, kind) => setDeleting({ cluster, kind })}
          />
          {list.data.more ? (
            <button type="button" onClick={() => setPages((p) => p + 1)}>
              Show {PAGE_SIZE} more
            </button>
          ) : null}
        </>
      ) : list.loading ? (
        <Loading />
      ) : null}
      {deleting ? (
        <DeleteClusterDialog
          cluster={deleting.cluster}
          kind={deleting.kind}
          onCancel={() => setDeleting(null)}
          onDone={(op) => {
            const id = deleting.cluster.id;
            setDeleting(null);
            setNotice(op ? `Destroying ${id}: follow the operation below.` : `Cluster ${id} was detached.`);
            setOperation(op);
            reload();
          }}
        />
      ) : null}
    </section>
  );
}
