// Pull-secret sync (SyncPullSecret): pick clusters (by id or by label selector) and namespaces,
// optionally a service account; the result of every target is listed. A provider that cannot
// issue a narrow pull credential (oci) is refused with UNSUPPORTED_BY_PROVIDER, said plainly.
import { useState } from "preact/hooks";
import type { SyncPullSecretResponse } from "@flotilla-dev/client/v1";
import { api, apiError, fieldError, type ApiError } from "../../api";
import { href } from "../../router";
import { ErrorBox } from "../../ui/error";
import { TextField } from "../../ui/form";
import { isoTime, relative } from "../../ui/format";
import { useCall } from "../../ui/hooks";
import { useClusters } from "../../ui/pickers";
import { DataTable } from "../../ui/table";

const split = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);

/** The violations of a field of any target, such as targets[0].namespaces[1]. */
function targetsError(err: ApiError | null, field: string): string | undefined {
  return err?.fieldViolations.find((v) => v.field.startsWith("targets") && v.field.includes(field))?.description;
}

export function PullSecretSync({ registryId }: { registryId: string }) {
  const reg = useCall((signal) => api.registries.getRegistry({ registryId }, { signal }), [registryId]);
  const clusters = useClusters();
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const [selector, setSelector] = useState("");
  const [namespaces, setNamespaces] = useState("");
  const [secretName, setSecretName] = useState("");
  const [serviceAccount, setServiceAccount] = useState("");
  const [registryNamespaces, setRegistryNamespaces] = useState("");
  const [error, setError] = useState<ApiError | null>(null);
  const [result, setResult] = useState<SyncPullSecretResponse | null>(null);
  const [busy, setBusy] = useState(false);
  const toggle = (id: string, on: boolean) =>
    setPicked((s) => {
      const n = new Set(s);
      if (on) n.add(id);
      else n.delete(id);
      return n;
    });
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setResult(null);
    const ns = split(namespaces);
    const targets = [...picked].map((clusterId) => ({ clusterId, clusterLabelSelector: "", namespaces: ns }));
    if (selector.trim()) targets.push({ clusterId: "", clusterLabelSelector: selector.trim(), namespaces: ns });
    try {
      setResult(
        await api.registries.syncPullSecret({
          registryId,
          targets,
          secretName: secretName.trim(),
          serviceAccount: serviceAccount.trim(),
          registryNamespaces: split(registryNamespaces),
        }),
      );
    } catch (err) {
      setError(apiError(err));
    } finally {
      setBusy(false);
    }
  };
  const provider = reg.data?.registry?.provider;
  const providers = useCall((signal) => api.registries.listRegistryProviders({}, { signal }), []);
  const capability = providers.data?.providers.find((p) => p.id === provider)?.capability;
  return (
    <section aria-labelledby="pull-title">
      <p>
        <a href={href("registries", registryId)}>← Registry {registryId}</a>
      </p>
      <h1 id="pull-title">Sync pull secrets of {registryId}</h1>
      <p class="muted">
        Writes a <code>kubernetes.io/dockerconfigjson</code> Secret with the narrowest credential the registry issues into
        each cluster and namespace, and keeps it renewed.
      </p>
      {capability && !capability.issuePullCredential ? (
        <p class="notice">
          The <strong>{provider}</strong> provider issues no narrow pull credential: the server will refuse this sync.
        </p>
      ) : null}
      <ErrorBox error={clusters.error} title="Could not list clusters" />
      <form class="form" onSubmit={submit}>
        <fieldset>
          <legend>Clusters</legend>
          {clusters.data?.length === 0 ? <p class="muted">No clusters.</p> : null}
          {clusters.data?.map((c) => (
            <label key={c.id} class="check">
              <input type="checkbox" checked={picked.has(c.id)} onChange={(e) => toggle(c.id, e.currentTarget.checked)} />{" "}
              {c.displayName || c.id} <span class="muted">({c.id})</span>
            </label>
          ))}
          <TextField
            label="Or every cluster with these labels"
            value={selector}
            onInput={setSelector}
            placeholder="env=prod,team"
            error={targetsError(error, "cluster_label_selector") ?? targetsError(error, "cluster_id") ?? fieldError(error, "targets")}
          />
        </fieldset>
        <TextField label="Namespaces" value={namespaces} onInput={setNamespaces} required placeholder="default, web" hint="Comma-separated." error={targetsError(error, "namespaces")} />
        <TextField label="Secret name (optional)" value={secretName} onInput={setSecretName} placeholder={`flotilla-${registryId}`} error={fieldError(error, "secret_name")} />
        <TextField label="Service account (optional)" value={serviceAccount} onInput={setServiceAccount} hint="Its imagePullSecrets get the secret in each namespace." error={fieldError(error, "service_account")} />
        <TextField
          label="Registry namespaces it may pull from (optional)"
          value={registryNamespaces}
          onInput={setRegistryNamespaces}
          hint="Comma-separated; empty: every namespace the registry credential sees."
          error={fieldError(error, "registry_namespaces")}
        />
        {error?.reason === "UNSUPPORTED_BY_PROVIDER" ? (
          <p class="notice" data-testid="unsupported">
            The <strong>{provider ?? "registry's"}</strong> provider cannot issue a narrow pull credential, so Flotilla does
            not write pull secrets for this registry. Create the Secret yourself, or connect a registry product that
            issues pull credentials (Harbor, ACR, TCR).
          </p>
        ) : null}
        <ErrorBox error={error} title="The server refused the sync" />
        <button type="submit" class="primary" disabled={busy || (picked.size === 0 && selector.trim() === "")}>
          {busy ? "Syncing…" : "Sync pull secrets"}
        </button>
      </form>
      {result ? <Results result={result} /> : null}
    </section>
  );
}

function Results({ result }: { result: SyncPullSecretResponse }) {
  return (
    <>
      <h2 id="pull-results-title">Results</h2>
      {result.unreachable.length > 0 ? (
        <div class="notice" role="status">
          Not reached:{" "}
          {result.unreachable.map((u) => (
            <span key={u.clusterId}>
              <code>{u.clusterId}</code> ({u.reason}){" "}
            </span>
          ))}
        </div>
      ) : null}
      <DataTable labelledBy="pull-results-title" columns={["Cluster", "Namespace", "Outcome", "Message", "Credential expires"]}>
        {result.results.map((r) => (
          <tr key={`${r.clusterId}/${r.namespace}`}>
            <th scope="row">{r.clusterId}</th>
            <td>{r.namespace}</td>
            <td class={r.outcome === "failed" ? "bad" : "ok"}>{r.outcome}</td>
            <td>{r.message}</td>
            <td title={isoTime(r.expireTime)}>{r.expireTime ? relative(r.expireTime) : "—"}</td>
          </tr>
        ))}
      </DataTable>
    </>
  );
}
