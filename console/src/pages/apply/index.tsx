// Apply YAML.
import type { Route } from "../../router";

export function ApplyPage(_props: { route: Route }) {
  return (
    <section>
      <h1>Apply YAML</h1>
      <p>Not built yet.</p>
    </section>
  );
}
