// An API failure as a person can act on it: the code, the server's message, the reason, the
// offending fields, and for UNAVAILABLE when the console will try again.
import { useEffect, useState } from "preact/hooks";
import type { ApiError } from "../api";

export function ErrorBox({ error, title }: { error: ApiError | null; title?: string }) {
  if (!error) return null;
  return (
    <div class="error-box" role="alert">
      <strong>
        {title ? `${title}: ` : ""}
        <code>{error.codeName}</code>
        {error.reason ? <code class="reason">{error.reason}</code> : null}
      </strong>
      <p>{error.message}</p>
      {error.fieldViolations.length > 0 ? (
        <ul>
          {error.fieldViolations.map((v) => (
            <li key={v.field}>
              <code>{v.field}</code>: {v.description}
            </li>
          ))}
        </ul>
      ) : null}
      {error.retryDelayMs !== undefined ? <RetryIn ms={error.retryDelayMs} /> : null}
    </div>
  );
}

function RetryIn({ ms }: { ms: number }) {
  const [left, setLeft] = useState(Math.ceil(ms / 1000));
  useEffect(() => {
    const t = setInterval(() => setLeft((s) => Math.max(0, s - 1)), 1000);
    return () => clearInterval(t);
  }, [ms]);
  return <p class="muted">Trying again in {left} s.</p>;
}
