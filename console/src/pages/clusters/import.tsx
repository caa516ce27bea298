// Import a cluster: a kubeconfig (and optional context) or a server URL + bearer token + CA,
// checked first with validate_only (nothing stored), then imported; the API's refusal is shown
// next to the field it names. After the import, the new cluster's page opens.
import { useState } from "preact/hooks";
import { KubeAccessMode, type Cluster } from "@flotilla-dev/client/v1";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ImportClusterRequestSchema } from "@flotilla-dev/client/v1";
import { api, apiError, type ApiError } from "../../api";
import { href, navigate } from "../../router";
import { ErrorBox } from "../../ui/error";
import { Field, TextArea, TextField } from "../../ui/form";
import { FormHead, NamingFields, ValidateActions } from "./form-parts";
import { ClusterPreview } from "./preview";
import { fieldExact, fieldUnder, parseLabels } from "./shared";

type Mode = "kubeconfig" | "token";

interface Form {
  mode: Mode;
  kubeconfig: string;
  context: string;
  server: string;
  bearerToken: string;
  caPem: string;
  clusterId: string;
  displayName: string;
  labels: string;
  access: KubeAccessMode;
  installRbac: boolean;
  allowInsecureTls: boolean;
}

const EMPTY: Form = {
  mode: "kubeconfig",
  kubeconfig: "",
  context: "",
  server: "",
  bearerToken: "",
  caPem: "",
  clusterId: "",
  displayName: "",
  labels: "",
  access: KubeAccessMode.BUILT_IN,
  installRbac: false,
  allowInsecureTls: false,
};

function request(f: Form, validateOnly: boolean, labels: Record<string, string>): MessageInitShape<typeof ImportClusterRequestSchema> {
  return {
    clusterId: f.clusterId.trim(),
    displayName: f.displayName.trim(),
    labels,
    source:
      f.mode === "kubeconfig"
        ? { case: "kubeconfig", value: { kubeconfig: new TextEncoder().encode(f.kubeconfig), context: f.context.trim() } }
        : { case: "token", value: { server: f.server.trim(), bearerToken: f.bearerToken, caPem: f.caPem } },
    allowInsecureTls: f.allowInsecureTls,
    validateOnly,
    kubeAccessMode: f.access,
    installRbac: f.access === KubeAccessMode.IMPERSONATION && f.installRbac,
  };
}

export function ImportView() {
  const [form, setForm] = useState<Form>(EMPTY);
  const [error, setError] = useState<ApiError | null>(null);
  const [labelsError, setLabelsError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState<"" | "validate" | "import">("");
  // The form as it was validated: Import is offered for exactly what passed validation.
  const [validated, setValidated] = useState<{ form: Form; cluster: Cluster } | null>(null);
  const set = <K extends keyof Form>(key: K) => (value: Form[K]) => setForm((f) => ({ ...f, [key]: value }));
  const upToDate = validated !== null && validated.form === form;

  const run = async (validateOnly: boolean) => {
    const parsed = parseLabels(form.labels);
    setLabelsError(parsed.error);
    if (parsed.error) return;
    setBusy(validateOnly ? "validate" : "import");
    setError(null);
    try {
      const res = await api.clusters.importCluster(request(form, validateOnly, parsed.labels));
      if (!res.cluster) return;
      if (validateOnly) setValidated({ form, cluster: res.cluster });
      else navigate(href("clusters", res.cluster.id));
    } catch (e) {
      setValidated(null);
      setError(apiError(e));
    } finally {
      setBusy("");
    }
  };

  return (
    <section aria-labelledby="import-title">
      <FormHead id="import-title" title="Import a cluster" />
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          void run(!upToDate);
        }}
      >
        <fieldset class="mode-choice">
          <legend>How to reach the cluster</legend>
          <label class="check">
            <input type="radio" name="mode" checked={form.mode === "kubeconfig"} onChange={() => set("mode")("kubeconfig")} />
            Paste a kubeconfig
          </label>
          <label class="check">
            <input type="radio" name="mode" checked={form.mode === "token"} onChange={() => set("mode")("token")} />
            Server URL and bearer token
          </label>
        </fieldset>
        {fieldExact(error, "source") ? <p class="field-error" role="alert">{fieldExact(error, "source")}</p> : null}
        {form.mode === "kubeconfig" ? (
          <>
            <TextArea
              label="Kubeconfig"
              name="kubeconfig"
              rows={10}
              value={form.kubeconfig}
              onInput={set("kubeconfig")}
              hint="YAML or JSON with certificates inline; users with exec or auth-provider are refused."
              error={fieldUnder(error, "source.kubeconfig.kubeconfig") ?? fieldExact(error, "kubeconfig")}
            />
            <TextField
              label="Context (optional)"
              name="context"
              value={form.context}
              onInput={set("context")}
              hint="Default: the kubeconfig's current-context."
              error={fieldExact(error, "source.kubeconfig.context")}
            />
          </>
        ) : (
          <>
            <TextField
              label="API server URL"
              name="server"
              type="url"
              placeholder="https://10.0.0.1:6443"
              value={form.server}
              onInput={set("server")}
              error={fieldExact(error, "source.token.server") ?? fieldExact(error, "source.token")}
            />
            <TextField
              label="Bearer token"
              name="bearer-token"
              type="password"
              value={form.bearerToken}
              onInput={set("bearerToken")}
              error={fieldExact(error, "source.token.bearer_token")}
            />
            <TextArea
              label="CA certificate (PEM, optional)"
              name="ca-pem"
              rows={5}
              value={form.caPem}
              onInput={set("caPem")}
              hint="Empty: the system's roots."
              error={fieldExact(error, "source.token.ca_pem")}
            />
          </>
        )}
        <NamingFields
          values={form}
          set={set}
          idHint="Lowercase letters, digits and '-'. Default: from the context or server name."
          errors={{
            clusterId: fieldExact(error, "cluster_id"),
            displayName: fieldExact(error, "display_name"),
            labels: labelsError ?? fieldUnder(error, "labels"),
          }}
        />
        <Field label="Kubernetes access" error={fieldExact(error, "kube_access_mode")}>
          {(id, describedBy) => (
            <select
              id={id}
              aria-describedby={describedBy}
              value={String(form.access)}
              onChange={(e) => set("access")(Number(e.currentTarget.value) as KubeAccessMode)}
            >
              <option value={String(KubeAccessMode.BUILT_IN)}>Built-in: the stored credential, Flotilla's roles</option>
              <option value={String(KubeAccessMode.IMPERSONATION)}>Impersonation: the cluster's RBAC decides</option>
            </select>
          )}
        </Field>
        {form.access === KubeAccessMode.IMPERSONATION ? (
          <label class="check">
            <input type="checkbox" checked={form.installRbac} onChange={(e) => set("installRbac")(e.currentTarget.checked)} />
            Install the flotilla:viewer/operator/admin group bindings (at import, not when validating)
          </label>
        ) : null}
        <label class="check">
          <input type="checkbox" checked={form.allowInsecureTls} onChange={(e) => set("allowInsecureTls")(e.currentTarget.checked)} />
          Accept insecure-skip-tls-verify (the cluster then carries a permanent warning)
        </label>
        {fieldExact(error, "allow_insecure_tls") ? <p class="field-error">{fieldExact(error, "allow_insecure_tls")}</p> : null}
        <ErrorBox error={error} title={busy === "import" || upToDate ? "Could not import" : "Refused"} />
        {upToDate && validated ? <ClusterPreview cluster={validated.cluster} title="Validated: nothing stored yet" /> : null}
        <ValidateActions busy={busy} upToDate={upToDate} run={run} action="Import" acting="Importing…" />
      </form>
    </section>
  );
}
