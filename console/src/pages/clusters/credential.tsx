// The credential picker of the create form: the provider's stored credentials (ListCredentials),
// and a small form to add one (CreateCredential). Secrets are sent, never shown back: the list
// shows the public principal only.
import { useState } from "preact/hooks";
import { listCredentials } from "@flotilla-dev/client";
import type { Credential } from "@flotilla-dev/client/v1";
import { api, apiError, type ApiError } from "../../api";
import { ErrorBox } from "../../ui/error";
import { Field, TextField } from "../../ui/form";
import { useCall } from "../../ui/hooks";
import { collect } from "../../ui/pager";
import { fieldExact } from "./shared";

/** The secret a provider's API takes: an access key pair (Alibaba, Tencent) or an API key (Rancher). */
function secretKind(provider: string): "access_key" | "api_key" {
  return provider === "rancher" ? "api_key" : "access_key";
}

export function CredentialPicker(props: {
  provider: string;
  value: string;
  onChange: (id: string) => void;
  error?: string | undefined;
}) {
  const [adding, setAdding] = useState(false);
  const list = useCall(
    (signal) => collect(listCredentials(api, { pageSize: 1000, filter: `provider = "${props.provider}"` }, { signal })),
    [props.provider],
  );
  return (
    <div class="credential-picker">
      <Field label="Credential" error={props.error} hint={`For ${props.provider}; its secret stays on the server.`}>
        {(id, describedBy) => (
          <select
            id={id}
            name="credential"
            aria-describedby={describedBy}
            aria-invalid={props.error ? true : undefined}
            value={props.value}
            onChange={(e) => props.onChange(e.currentTarget.value)}
          >
            <option value="">{list.loading && !list.data ? "Loading…" : list.data?.length ? "Choose a credential" : "No credentials yet: add one"}</option>
            {list.data?.map((c) => (
              <option key={c.id} value={c.id}>
                {c.displayName && c.displayName !== c.id ? `${c.displayName} (${c.id})` : c.id} — {c.principal}
              </option>
            ))}
          </select>
        )}
      </Field>
      <ErrorBox error={list.error} title="Could not list credentials" />
      {adding ? (
        <AddCredential
          provider={props.provider}
          onCancel={() => setAdding(false)}
          onCreated={(c) => {
            setAdding(false);
            list.reload();
            props.onChange(c.id);
          }}
        />
      ) : (
        <button type="button" onClick={() => setAdding(true)}>
          Add a credential
        </button>
      )}
    </div>
  );
}

function AddCredential(props: { provider: string; onCancel: () => void; onCreated: (c: Credential) => void }) {
  const kind = secretKind(props.provider);
  const [id, setId] = useState("");
  const [name, setName] = useState("");
  const [publicPart, setPublicPart] = useState("");
  const [secret, setSecret] = useState("");
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const base = kind === "access_key" ? "secret.access_key" : "secret.api_key";
  const publicField = kind === "access_key" ? "access_key_id" : "key_id";
  const secretField = kind === "access_key" ? "access_key_secret" : "token";
  const save = async () => {
    setBusy(true);
    setError(null);
    try {
      const res = await api.credentials.createCredential({
        credentialId: id.trim(),
        displayName: name.trim(),
        provider: props.provider,
        secret: {
          secret:
            kind === "access_key"
              ? { case: "accessKey", value: { accessKeyId: publicPart.trim(), accessKeySecret: secret } }
              : { case: "apiKey", value: { keyId: publicPart.trim(), token: secret } },
        },
      });
      // The secret is not kept in the page once the server has it.
      setSecret("");
      if (res.credential) props.onCreated(res.credential);
    } catch (e) {
      setError(apiError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <fieldset class="add-credential">
      <legend>New {props.provider} credential</legend>
      <TextField label="Credential id" name="credential-id" value={id} onInput={setId} error={fieldExact(error, "credential_id")} hint="Lowercase letters, digits and '-'." />
      <TextField label="Credential name" name="credential-name" value={name} onInput={setName} error={fieldExact(error, "display_name")} />
      <TextField
        label={kind === "access_key" ? "Access key id" : "API key id"}
        name="credential-public"
        value={publicPart}
        onInput={setPublicPart}
        error={fieldExact(error, `${base}.${publicField}`)}
      />
      <TextField
        label={kind === "access_key" ? "Access key secret" : "API token"}
        name="credential-secret"
        type="password"
        autoComplete="new-password"
        value={secret}
        onInput={setSecret}
        error={fieldExact(error, `${base}.${secretField}`) ?? fieldExact(error, "secret")}
      />
      <ErrorBox error={error} title="Could not add the credential" />
      <div class="actions">
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
        <button type="button" class="primary" disabled={busy} onClick={() => void save()}>
          {busy ? "Saving…" : "Save credential"}
        </button>
      </div>
    </fieldset>
  );
}
