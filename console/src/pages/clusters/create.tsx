// Create a cluster at a vendor: a provider that can create (ListProviders capability), its own
// fields, a credential (picked or added), validate_only first, then the create; the returned
// operation is followed live here (WatchOperation), with a link to its page.
import { useState } from "preact/hooks";
import type { Cluster, Operation } from "@flotilla-dev/client/v1";
import { api, apiError, type ApiError } from "../../api";
import { href } from "../../router";
import { ErrorBox } from "../../ui/error";
import { Field, TextField } from "../../ui/form";
import { CredentialPicker } from "./credential";
import { OperationFollow } from "./operation";
import { FormHead, NamingFields, ValidateActions } from "./form-parts";
import { ClusterPreview } from "./preview";
import { fieldExact, fieldUnder, parseLabels, requestId, useProviders } from "./shared";
import { VendorFields, providerConfig, vendorForm, vendorJsonErrors } from "./vendor-fields";

interface Form {
  provider: string;
  clusterId: string;
  displayName: string;
  region: string;
  version: string;
  credentialId: string;
  labels: string;
  vendor: Record<string, string>;
}

const EMPTY: Form = { provider: "", clusterId: "", displayName: "", region: "", version: "", credentialId: "", labels: "", vendor: {} };

export function CreateView() {
  const { providers, error: providersError } = useProviders();
  const creators = (providers ?? []).filter((p) => p.capability?.createCluster);
  const [form, setForm] = useState<Form>(EMPTY);
  const [error, setError] = useState<ApiError | null>(null);
  const [labelsError, setLabelsError] = useState<string | undefined>(undefined);
  const [jsonErrors, setJsonErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState<"" | "validate" | "create">("");
  const [validated, setValidated] = useState<{ form: Form; cluster: Cluster | undefined } | null>(null);
  const [created, setCreated] = useState<{ cluster: Cluster | undefined; operation: Operation | undefined } | null>(null);
  // One idempotency key per form content: a retried click returns the same operation.
  const [reqId, setReqId] = useState(requestId);
  const set = <K extends keyof Form>(key: K) => (value: Form[K]) => {
    setForm((f) => ({ ...f, [key]: value }));
    setReqId(requestId());
  };
  const provider = form.provider;
  const upToDate = validated !== null && validated.form === form;

  const run = async (validateOnly: boolean) => {
    const parsed = parseLabels(form.labels);
    setLabelsError(parsed.error);
    const badJson = vendorJsonErrors(provider, form.vendor);
    setJsonErrors(badJson);
    if (parsed.error || Object.keys(badJson).length > 0) return;
    setBusy(validateOnly ? "validate" : "create");
    setError(null);
    try {
      const res = await api.clusters.createCluster({
        clusterId: form.clusterId.trim(),
        provider,
        requestId: validateOnly ? "" : reqId,
        validateOnly,
        spec: {
          displayName: form.displayName.trim(),
          kubernetesVersion: form.version.trim(),
          region: vendorForm(provider).region ? form.region.trim() : "",
          credentialId: form.credentialId,
          labels: parsed.labels,
          providerConfig: providerConfig(provider, form.vendor),
        },
      });
      if (validateOnly) setValidated({ form, cluster: res.cluster });
      else setCreated({ cluster: res.cluster, operation: res.operation });
    } catch (e) {
      setValidated(null);
      setError(apiError(e));
    } finally {
      setBusy("");
    }
  };

  if (created) {
    const id = created.cluster?.id;
    return (
      <section aria-labelledby="create-title">
        <h1 id="create-title">Creating {id ? <code>{id}</code> : "a cluster"} at {provider}</h1>
        <p>
          {id ? <a href={href("clusters", id)}>Open the cluster</a> : null} · <a href={href("clusters")}>Back to clusters</a> ·{" "}
          <button type="button" onClick={() => (setCreated(null), setValidated(null), setForm(EMPTY), setReqId(requestId()))}>
            Create another
          </button>
        </p>
        {created.operation ? <OperationFollow initial={created.operation} /> : <p>The server returned no operation.</p>}
      </section>
    );
  }

  return (
    <section aria-labelledby="create-title">
      <FormHead id="create-title" title="Create a cluster at a vendor" />
      <ErrorBox error={providersError} title="Could not list providers" />
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          void run(!upToDate);
        }}
      >
        <Field label="Provider" error={fieldExact(error, "provider")}>
          {(id, describedBy) => (
            <select
              id={id}
              name="provider"
              aria-describedby={describedBy}
              value={provider}
              onChange={(e) => {
                const p = e.currentTarget.value;
                setForm((f) => ({ ...f, provider: p, credentialId: "", vendor: {} }));
                setError(null);
              }}
            >
              <option value="">{providers ? "Choose a provider" : "Loading…"}</option>
              {creators.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.displayName || p.id}
                </option>
              ))}
            </select>
          )}
        </Field>
        {providers && creators.length === 0 ? <p>This server has no provider that can create clusters.</p> : null}
        {provider ? (
          <>
            <CredentialPicker provider={provider} value={form.credentialId} onChange={set("credentialId")} error={fieldExact(error, "spec.credential_id")} />
            {vendorForm(provider).region ? (
              <TextField
                label="Region"
                name="region"
                value={form.region}
                onInput={set("region")}
                error={fieldExact(error, "spec.region")}
                {...(vendorForm(provider).regionHint ? { hint: vendorForm(provider).regionHint as string } : {})}
              />
            ) : null}
            <TextField label="Kubernetes version" name="version" value={form.version} onInput={set("version")} error={fieldExact(error, "spec.kubernetes_version")} />
            <VendorFields provider={provider} values={form.vendor} onChange={(k, v) => set("vendor")({ ...form.vendor, [k]: v })} error={error} localErrors={jsonErrors} />
            <NamingFields
              values={form}
              set={set}
              idHint="Lowercase letters, digits and '-'. Generated when empty."
              errors={{
                clusterId: fieldExact(error, "cluster_id"),
                displayName: fieldExact(error, "spec.display_name"),
                labels: labelsError ?? fieldUnder(error, "spec.labels"),
              }}
            />
            {fieldUnder(error, "spec.provider_config") ? <p class="field-error">{fieldUnder(error, "spec.provider_config")}</p> : null}
            <ErrorBox error={error} title={upToDate ? "Could not create" : "Refused"} />
            {upToDate ? (
              validated?.cluster ? (
                <ClusterPreview cluster={validated.cluster} title="Validated: nothing created yet" planned />
              ) : (
                <p role="status">Validated: nothing created yet.</p>
              )
            ) : null}
            <ValidateActions busy={busy} upToDate={upToDate} run={run} action="Create" acting="Creating…" />
          </>
        ) : null}
      </form>
    </section>
  );
}
