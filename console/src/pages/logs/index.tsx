// Logs.
import type { Route } from "../../router";

export function LogsPage(_props: { route: Route }) {
  return (
    <section>
      <h1>Logs</h1>
      <p>Not built yet.</p>
    </section>
  );
}
