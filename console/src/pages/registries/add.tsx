// Add a registry (CreateRegistry): the provider list and what each takes come from
// ListRegistryProviders; "Check" asks the server with validate_only (it logs in) before adding.
import { useState } from "preact/hooks";
import { RegistryCredentialKind } from "@flotilla-dev/client/v1";
import { api, apiError, fieldError, type ApiError } from "../../api";
import { href, navigate } from "../../router";
import { ErrorBox } from "../../ui/error";
import { Field, TextArea, TextField } from "../../ui/form";
import { enumLabel } from "../../ui/format";
import { useCall } from "../../ui/hooks";

/** "a=b, c=d" as a label map; a part without "=" is a key with an empty value. */
function parseLabels(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(",").map((p) => p.trim()).filter(Boolean)) {
    const i = part.indexOf("=");
    out[i < 0 ? part : part.slice(0, i).trim()] = i < 0 ? "" : part.slice(i + 1).trim();
  }
  return out;
}

export function AddRegistry() {
  const providers = useCall((signal) => api.registries.listRegistryProviders({}, { signal }), []);
  const [f, setF] = useState({ id: "", displayName: "", provider: "", endpoint: "", region: "", instance: "", credential: "", labels: "", ca: "" });
  const [error, setError] = useState<ApiError | null>(null);
  const [checked, setChecked] = useState("");
  const [busy, setBusy] = useState(false);
  const set = (k: keyof typeof f) => (v: string) => {
    setF((x) => ({ ...x, [k]: v }));
    setChecked("");
  };
  const list = providers.data?.providers ?? [];
  const provider = list.find((p) => p.id === f.provider) ?? list[0];
  const send = async (validateOnly: boolean) => {
    setBusy(true);
    setError(null);
    setChecked("");
    try {
      const res = await api.registries.createRegistry({
        registry: {
          id: f.id.trim(),
          displayName: f.displayName.trim(),
          provider: provider?.id ?? f.provider,
          endpoint: f.endpoint.trim(),
          region: f.region.trim(),
          vendorInstanceId: f.instance.trim(),
          credentialId: f.credential.trim(),
          labels: parseLabels(f.labels),
        },
        caPem: f.ca,
        validateOnly,
      });
      if (validateOnly) setChecked(`The server accepts this registry and could log in to ${res.registry?.endpoint ?? f.endpoint}.`);
      else navigate(href("registries", res.registry?.id ?? f.id.trim()));
    } catch (e) {
      setError(apiError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="add-registry-title">
      <p>
        <a href={href("registries")}>← All registries</a>
      </p>
      <h1 id="add-registry-title">Add a registry</h1>
      <ErrorBox error={providers.error} title="Could not list registry providers" />
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          void send(false);
        }}
      >
        <TextField label="Id" value={f.id} onInput={set("id")} required error={fieldError(error, "registry.id")} hint="Lowercase letters, digits and dashes." />
        <TextField label="Display name" value={f.displayName} onInput={set("displayName")} error={fieldError(error, "registry.display_name")} />
        <Field label="Provider" error={fieldError(error, "registry.provider")}>
          {(id, describedBy) => (
            <select id={id} value={provider?.id ?? ""} aria-describedby={describedBy} onChange={(e) => set("provider")(e.currentTarget.value)}>
              {list.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.displayName || p.id} ({p.id})
                </option>
              ))}
            </select>
          )}
        </Field>
        {provider ? (
          <p class="muted">
            Credentials it takes:{" "}
            {provider.credentialKinds.map((k) => enumLabel(RegistryCredentialKind, k, "REGISTRY_CREDENTIAL_KIND_")).join(", ") || "—"}
            {provider.capability?.issuePullCredential ? "" : ". It cannot issue pull credentials: pull-secret sync is not available."}
          </p>
        ) : null}
        <TextField label="Endpoint" type="url" value={f.endpoint} onInput={set("endpoint")} required placeholder="https://registry.example.com" error={fieldError(error, "registry.endpoint")} />
        <TextField label="Region (ACR, TCR)" value={f.region} onInput={set("region")} error={fieldError(error, "registry.region")} />
        <TextField label="Vendor instance id (ACR Enterprise, TCR)" value={f.instance} onInput={set("instance")} error={fieldError(error, "registry.vendor_instance_id")} />
        <TextField
          label="Credential id"
          value={f.credential}
          onInput={set("credential")}
          hint="A credential stored with CredentialService; empty for an anonymous OCI registry."
          error={fieldError(error, "registry.credential_id")}
        />
        <TextField label="Labels" value={f.labels} onInput={set("labels")} placeholder="team=web, env=prod" error={fieldError(error, "registry.labels")} />
        <TextArea label="CA bundle (PEM, for a private CA)" rows={4} value={f.ca} onInput={set("ca")} error={fieldError(error, "ca_pem") ?? fieldError(error, "registry.ca_pem")} />
        <ErrorBox error={error} title="The server refused the registry" />
        {checked ? (
          <p class="ok" role="status">
            {checked}
          </p>
        ) : null}
        <div class="actions">
          <button type="button" disabled={busy} onClick={() => void send(true)}>
            Check
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? "Working…" : "Add registry"}
          </button>
        </div>
      </form>
    </section>
  );
}
