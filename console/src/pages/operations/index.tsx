// Operations.
import type { Route } from "../../router";

export function OperationsPage(_props: { route: Route }) {
  return (
    <section>
      <h1>Operations</h1>
      <p>Not built yet.</p>
    </section>
  );
}
