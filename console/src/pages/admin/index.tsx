// Admin: tokens and audit log.
import type { Route } from "../../router";

export function AdminPage(_props: { route: Route }) {
  return (
    <section>
      <h1>Admin: tokens and audit log</h1>
      <p>Not built yet.</p>
    </section>
  );
}
