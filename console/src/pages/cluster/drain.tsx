// Draining a node: options and a typed confirmation, then each pod's result as the server
// streams it (DrainNode), and the summary at the end.
import { useEffect, useRef, useState } from "preact/hooks";
import type { DrainPodResult, DrainSummary } from "@flotilla-dev/client/v1";
import { api, apiError, type ApiError } from "../../api";
import { ErrorBox } from "../../ui/error";
import { count } from "../../ui/format";
import { DataTable } from "../../ui/table";
import { OUTCOME_LABEL } from "./nodes";

export function DrainDialog(props: { clusterId: string; node: string; onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const abort = useRef<AbortController | null>(null);
  const [typed, setTyped] = useState("");
  const [dryRun, setDryRun] = useState(true);
  const [force, setForce] = useState(false);
  const [emptyDir, setEmptyDir] = useState(false);
  const [phase, setPhase] = useState<"confirm" | "running" | "done">("confirm");
  const [results, setResults] = useState<DrainPodResult[]>([]);
  const [summary, setSummary] = useState<DrainSummary | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  useEffect(() => {
    dialog.current?.showModal();
    return () => abort.current?.abort();
  }, []);

  const start = async () => {
    setPhase("running");
    setResults([]);
    setSummary(null);
    setError(null);
    const ctl = new AbortController();
    abort.current = ctl;
    try {
      const stream = api.nodes.drainNode(
        { clusterId: props.clusterId, nodeName: props.node, dryRun, force, deleteEmptydirData: emptyDir },
        { signal: ctl.signal },
      );
      for await (const m of stream) {
        if (m.progress.case === "pod") {
          const pod = m.progress.value;
          setResults((rs) => [...rs, pod]);
        } else if (m.progress.case === "summary") {
          setSummary(m.progress.value);
        }
      }
    } catch (e) {
      if (!ctl.signal.aborted) setError(apiError(e));
    } finally {
      setPhase("done");
    }
  };

  const close = () => {
    abort.current?.abort();
    props.onClose();
  };

  return (
    <dialog ref={dialog} class="dialog drain-dialog" aria-labelledby="drain-title" onClose={close}>
      <h2 id="drain-title">Drain node {props.node}</h2>
      {phase === "confirm" ? (
        <form
          method="dialog"
          onSubmit={(e) => {
            e.preventDefault();
            if (typed === props.node) void start();
          }}
        >
          <p>
            Draining cordons the node and evicts its pods (DaemonSet and mirror pods are left alone). A dry run only
            reports what would be evicted.
          </p>
          <div class="checks">
            <label>
              <input type="checkbox" checked={dryRun} onChange={(e) => setDryRun(e.currentTarget.checked)} /> Dry run
              (change nothing)
            </label>
            <label>
              <input type="checkbox" checked={force} onChange={(e) => setForce(e.currentTarget.checked)} /> Also delete
              pods no controller manages (they are not recreated)
            </label>
            <label>
              <input type="checkbox" checked={emptyDir} onChange={(e) => setEmptyDir(e.currentTarget.checked)} /> Also
              evict pods with emptyDir volumes (their data is lost)
            </label>
          </div>
          <label for="drain-confirm">
            Type <code>{props.node}</code> to confirm
          </label>
          <input id="drain-confirm" value={typed} autoComplete="off" onInput={(e) => setTyped(e.currentTarget.value)} />
          <div class="actions">
            <button type="button" onClick={close}>
              Cancel
            </button>
            <button type="submit" class="danger" disabled={typed !== props.node}>
              {dryRun ? "Dry-run drain" : "Drain"}
            </button>
          </div>
        </form>
      ) : (
        <div>
          <p role="status">
            {phase === "running" ? `Draining… ${count(results.length, "pod")} so far` : "Finished."}
          </p>
          <ErrorBox error={error} title="The drain failed" />
          {results.length > 0 ? (
            <DataTable
              label="Drain results"
              wrapClass="drain-results"
              caption="Per-pod results, in the order they arrived"
              columns={["Pod", "Outcome", "Why"]}
            >
              {results.map((r) => (
                <tr key={`${r.namespace}/${r.name}`} data-pod={`${r.namespace}/${r.name}`}>
                  <th scope="row">
                    {r.namespace}/{r.name}
                  </th>
                  <td>{OUTCOME_LABEL[r.outcome] ?? "unknown"}</td>
                  <td>{r.message || "—"}</td>
                </tr>
              ))}
            </DataTable>
          ) : phase === "done" && !error ? (
            <p>No pods to evict.</p>
          ) : null}
          {summary ? (
            <p class="drain-summary">
              Evicted {summary.evicted}, skipped {summary.skipped}, blocked {summary.blocked}, failed {summary.failed}
              {summary.complete ? " — the node is drained." : dryRun ? " (dry run: nothing was changed)." : "."}
            </p>
          ) : null}
          <div class="actions">
            <button type="button" onClick={close}>
              {phase === "running" ? "Stop and close" : "Close"}
            </button>
          </div>
        </div>
      )}
    </dialog>
  );
}
