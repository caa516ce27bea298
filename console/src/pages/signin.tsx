// Sign in with an API token. The token is checked with a call before the session starts, and
// goes to sessionStorage only (see session.ts).
import { useState } from "preact/hooks";
import { createFlotillaClient } from "@flotilla-dev/client";
import { apiError, type ApiError } from "../api";
import { signIn, signOutReason } from "../session";
import { useSignal } from "../state";
import { ErrorBox } from "../ui/error";
import { TextField } from "../ui/form";

export function SignIn() {
  const reason = useSignal(signOutReason);
  const [token, setToken] = useState("");
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      // Any authenticated read proves the token; ListProviders is the cheapest.
      const probe = createFlotillaClient({ baseUrl: location.origin, token: token.trim(), retry: false });
      await probe.clusters.listProviders({});
      signIn(token.trim());
    } catch (err) {
      setError(apiError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin" id="main">
      <form onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Sign in to Flotilla</h1>
        {reason ? (
          <p class="notice" role="status">
            You were signed out: {reason}
          </p>
        ) : null}
        <TextField
          label="API token"
          name="token"
          type="password"
          value={token}
          onInput={setToken}
          required
          autoComplete="off"
          hint="An admin creates tokens with AdminService/CreateApiToken or on the Admin page. It is kept in this tab only."
        />
        <ErrorBox error={error} title="Sign-in failed" />
        <button type="submit" class="primary" disabled={busy || token.trim() === ""}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
