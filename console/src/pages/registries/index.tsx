// Registries.
import type { Route } from "../../router";

export function RegistriesPage(_props: { route: Route }) {
  return (
    <section>
      <h1>Registries</h1>
      <p>Not built yet.</p>
    </section>
  );
}
