// API tokens: create one (the secret is shown once, here, and kept nowhere: not in storage,
// not in the URL, only in this component until it is dismissed), list them, revoke one.
import { useState } from "preact/hooks";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { listApiTokens } from "@flotilla-dev/client";
import { Role, type ApiToken } from "@flotilla-dev/client/v1";
import { api, apiError, fieldError, type ApiError } from "../../api";
import { TypedConfirm } from "../../ui/confirm";
import { ErrorBox } from "../../ui/error";
import { Field, TextField } from "../../ui/form";
import { enumLabel, isoTime, relative } from "../../ui/format";
import { useCall } from "../../ui/hooks";
import { collect } from "../../ui/pager";
import { DataTable, TableState } from "../../ui/table";

const DAY_MS = 24 * 3600 * 1000;
const ROLES = [Role.VIEWER, Role.OPERATOR, Role.ADMIN];

export function roleLabel(r: Role): string {
  return enumLabel(Role, r, "ROLE_");
}

export function Tokens() {
  const [showRevoked, setShowRevoked] = useState(false);
  const [revoking, setRevoking] = useState<ApiToken | null>(null);
  const [revokeError, setRevokeError] = useState<ApiError | null>(null);
  const [notice, setNotice] = useState("");
  const list = useCall((signal) => collect(listApiTokens(api, { pageSize: 500, showRevoked }, { signal })), [showRevoked]);
  const revoke = async (t: ApiToken) => {
    setRevoking(null);
    setRevokeError(null);
    try {
      await api.admin.revokeApiToken({ tokenId: t.id });
      setNotice(`Token ${t.name} revoked: calls with it are refused from now on.`);
      list.reload();
    } catch (e) {
      setRevokeError(apiError(e));
    }
  };
  return (
    <>
      <CreateToken onCreated={list.reload} />
      <h2 id="tokens-title">Tokens</h2>
      <label class="check-row">
        <input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked(e.currentTarget.checked)} /> Show
        revoked tokens
      </label>
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      <ErrorBox error={revokeError} title="Could not revoke the token" />
      <ErrorBox error={list.error} title="Could not list tokens" />
      <TableState items={list.data} loading={list.loading}>
        {(tokens) => (
          <DataTable labelledBy="tokens-title" columns={["Name", "Role", "Clusters", "Created", "Last used", "Expires", "Status"]}>
            {tokens.map((t) => (
              <tr key={t.id} data-token={t.name}>
                <th scope="row">
                  {t.name}
                  <div class="muted mono">{t.id}</div>
                </th>
                <td>{roleLabel(t.role)}</td>
                <td>{t.clusterIds.length ? t.clusterIds.join(", ") : <span class="muted">all</span>}</td>
                <td title={isoTime(t.createTime)}>
                  {relative(t.createTime)}
                  {t.createdBy ? <div class="muted">by {t.createdBy}</div> : null}
                </td>
                <td title={isoTime(t.lastUsedTime)}>{relative(t.lastUsedTime)}</td>
                <td title={isoTime(t.expireTime)}>{t.expireTime ? relative(t.expireTime) : "never"}</td>
                <td>
                  {t.revokeTime ? (
                    <span class="bad" title={isoTime(t.revokeTime)}>
                      revoked {relative(t.revokeTime)}
                    </span>
                  ) : (
                    <button type="button" class="danger" aria-label={`Revoke ${t.name}`} onClick={() => setRevoking(t)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </DataTable>
        )}
      </TableState>
      {revoking ? (
        <TypedConfirm
          title={`Revoke token ${revoking.name}`}
          expected={revoking.name}
          action="Revoke token"
          onConfirm={() => void revoke(revoking)}
          onCancel={() => setRevoking(null)}
        >
          <p>Every call made with this token is refused at once, including consoles signed in with it.</p>
        </TypedConfirm>
      ) : null}
    </>
  );
}

function CreateToken({ onCreated }: { onCreated: () => void }) {
  const [name, setName] = useState("");
  const [role, setRole] = useState(Role.VIEWER);
  const [days, setDays] = useState("30");
  const [clusters, setClusters] = useState("");
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  // The secret lives only here, in memory, until "Done".
  const [created, setCreated] = useState<{ name: string; secret: string } | null>(null);
  const [copied, setCopied] = useState("");
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const d = days.trim();
      const res = await api.admin.createApiToken({
        name: name.trim(),
        role,
        clusterIds: clusters.split(",").map((c) => c.trim()).filter(Boolean),
        ...(d === "" ? {} : { expireTime: timestampFromMs(Date.now() + Number(d) * DAY_MS) }),
      });
      setCreated({ name: res.token?.name ?? name, secret: res.secret });
      setCopied("");
      setName("");
      onCreated();
    } catch (err) {
      setError(apiError(err));
    } finally {
      setBusy(false);
    }
  };
  const copy = async () => {
    if (!created) return;
    try {
      await navigator.clipboard.writeText(created.secret);
      setCopied("Copied to the clipboard.");
    } catch {
      setCopied("The browser refused the clipboard: select the secret and copy it by hand.");
    }
  };
  return (
    <>
      {created ? (
        <section class="secret-once" aria-labelledby="secret-title">
          <h2 id="secret-title">Secret of token {created.name}</h2>
          <p role="alert">
            <strong>Copy it now: it is shown this once.</strong> Flotilla stores only its hash, and this page forgets it
            when you press Done.
          </p>
          <output aria-label="Token secret" data-testid="token-secret">
            {created.secret}
          </output>
          <div class="actions">
            <button type="button" class="primary" onClick={() => void copy()}>
              Copy secret
            </button>
            <button type="button" onClick={() => setCreated(null)}>
              Done
            </button>
          </div>
          {copied ? <p role="status">{copied}</p> : null}
        </section>
      ) : null}
      <form class="form" onSubmit={submit} aria-labelledby="create-token-title">
        <h2 id="create-token-title">Create a token</h2>
        <div class="form-row">
          <TextField label="Name" value={name} onInput={setName} required error={fieldError(error, "name")} />
          <Field label="Role" error={fieldError(error, "role")}>
            {(id, describedBy) => (
              <select id={id} value={String(role)} aria-describedby={describedBy} onChange={(e) => setRole(Number(e.currentTarget.value))}>
                {ROLES.map((r) => (
                  <option key={r} value={String(r)}>
                    {roleLabel(r)}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <TextField
            label="Expires in (days)"
            type="number"
            value={days}
            onInput={setDays}
            hint="Empty: never expires."
            error={fieldError(error, "expire_time") ?? fieldError(error, "expires_in_days")}
          />
        </div>
        <TextField
          label="Only these clusters (optional)"
          value={clusters}
          onInput={setClusters}
          hint="Comma-separated cluster ids; empty: every cluster."
          error={fieldError(error, "cluster_ids")}
        />
        <ErrorBox error={error} title="Could not create the token" />
        <button type="submit" class="primary" disabled={busy || name.trim() === ""}>
          {busy ? "Creating…" : "Create token"}
        </button>
      </form>
    </>
  );
}
