// Apply YAML: a manifest editor, a dry run first (ApplyManifests with dry_run) showing what would
// happen to each object, then the real apply — enabled only after a successful dry run of exactly
// the text, cluster and namespace in the form.
import { useRef, useState } from "preact/hooks";
import { ApplyOutcome, type ApplyResult } from "@flotilla-dev/client/v1";
import { api, apiError, fieldError, type ApiError } from "../../api";
import { href, navigate, type Route } from "../../router";
import { ErrorBox } from "../../ui/error";
import { Field } from "../../ui/form";
import { count, enumLabel } from "../../ui/format";
import { ClusterSelect } from "../../ui/pickers";
import { DataTable } from "../../ui/table";
import { YamlEditor } from "./editor";
import "./apply.css";

const EXAMPLE = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: main
          image: nginx:1.27
`;

interface Outcome {
  dryRun: boolean;
  /** What was sent: the real apply is allowed only for the same. */
  sent: string;
  results: ApplyResult[];
}

export function ApplyPage({ route }: { route: Route }) {
  const cluster = route.query.get("cluster") ?? "";
  const [namespace, setNamespace] = useState("default");
  const [text, setText] = useState(EXAMPLE);
  const [force, setForce] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const results = useRef<HTMLHeadingElement>(null);

  const request = JSON.stringify([cluster, namespace, text, force]);
  const dryRunOk =
    outcome !== null && outcome.dryRun && outcome.sent === request && outcome.results.every((r) => r.outcome !== ApplyOutcome.FAILED);

  const run = async (dryRun: boolean) => {
    setBusy(true);
    setError(null);
    try {
      const res = await api.workloads.applyManifests({ clusterId: cluster, namespace, manifests: text, dryRun, forceConflicts: force });
      setOutcome({ dryRun, sent: request, results: res.results });
      // Move focus to the results so keyboard and screen-reader users hear what happened.
      requestAnimationFrame(() => results.current?.focus());
    } catch (e) {
      setError(apiError(e));
      setOutcome(null);
    } finally {
      setBusy(false);
    }
  };

  // The API's refusal of the manifests, or the documents the last run of this text failed on.
  const failed = outcome?.sent === request ? outcome.results.filter((r) => r.outcome === ApplyOutcome.FAILED) : [];
  const manifestError =
    fieldError(error, "manifests") ??
    (failed.length > 0
      ? failed.map((r) => `Document ${r.documentIndex + 1}${r.object?.kind ? ` (${r.object.kind})` : ""}: ${r.message.split("\n")[0]}`).join("; ")
      : undefined);
  return (
    <section aria-labelledby="apply-title" class="apply-page">
      <h1 id="apply-title">Apply YAML</h1>
      <form
        class="form apply-form"
        onSubmit={(e) => {
          e.preventDefault();
          void run(true);
        }}
      >
        <ClusterSelect id="apply-cluster" value={cluster} onChange={(c) => navigate(href("apply", c ? { cluster: c } : {}))} />
        <Field label="Default namespace" error={fieldError(error, "namespace")} hint="For namespaced objects that name none.">
          {(id, describedBy) => (
            <input
              id={id}
              value={namespace}
              aria-describedby={describedBy}
              aria-invalid={fieldError(error, "namespace") ? true : undefined}
              onInput={(e) => setNamespace(e.currentTarget.value)}
            />
          )}
        </Field>
        <Field
          label="Manifests (YAML or JSON, several documents separated by ---)"
          error={manifestError}
          hint="Tab inserts two spaces. To leave the editor by keyboard, press Escape, then Tab."
        >
          {(id, describedBy) => <YamlEditor id={id} value={text} onInput={setText} describedBy={describedBy} invalid={manifestError !== undefined} />}
        </Field>
        <label class="check">
          <input type="checkbox" checked={force} onChange={(e) => setForce(e.currentTarget.checked)} />
          Take ownership of fields another manager owns (force conflicts)
        </label>
        <div class="actions">
          <button type="submit" disabled={busy || cluster === ""}>
            Dry run
          </button>
          <button type="button" class="primary" disabled={busy || !dryRunOk} onClick={() => void run(false)} aria-describedby="apply-why">
            Apply
          </button>
          <span id="apply-why" class="muted">
            {cluster === ""
              ? "Choose a cluster first."
              : dryRunOk
                ? "The dry run succeeded: Apply makes these changes."
                : "Apply is enabled after a successful dry run of this exact text."}
          </span>
        </div>
      </form>
      <ErrorBox error={error} title="The server refused the manifests" />
      {outcome ? (
        <section aria-labelledby="apply-results" class="apply-results">
          <h2 id="apply-results" ref={results} tabIndex={-1}>
            {outcome.dryRun ? "Dry run: what would happen" : "Applied"}
          </h2>
          <ResultTable results={outcome.results} dryRun={outcome.dryRun} />
        </section>
      ) : null}
    </section>
  );
}

const OUTCOME_CLASS: Record<number, string> = {
  [ApplyOutcome.CREATED]: "ok",
  [ApplyOutcome.CONFIGURED]: "ok",
  [ApplyOutcome.UNCHANGED]: "muted",
  [ApplyOutcome.FAILED]: "bad",
};

function ResultTable({ results, dryRun }: { results: ApplyResult[]; dryRun: boolean }) {
  if (results.length === 0) return <p>The manifests hold no objects.</p>;
  return (
    <DataTable
      label="Results per object"
      testId="apply-results"
      caption={`${count(results.length, "object")}${dryRun ? " — nothing was changed yet" : ""}`}
      columns={["Document", "Kind", "Namespace/name", "Outcome", "Reason"]}
    >
      {results.map((r, i) => (
        <tr key={i}>
          <td>{r.documentIndex + 1}</td>
          <td>{r.object?.kind}</td>
          <th scope="row">{r.object?.namespace ? `${r.object.namespace}/${r.object.name}` : r.object?.name}</th>
          <td class={OUTCOME_CLASS[r.outcome] ?? ""} data-outcome={ApplyOutcome[r.outcome]}>
            {enumLabel(ApplyOutcome, r.outcome, "APPLY_OUTCOME_")}
          </td>
          <td class="apply-reason">{r.message}</td>
        </tr>
      ))}
    </DataTable>
  );
}
