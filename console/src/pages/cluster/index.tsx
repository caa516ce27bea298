// A cluster: nodes, workloads, pods, resources, events.
import type { Route } from "../../router";

export function ClusterPage(_props: { route: Route }) {
  return (
    <section>
      <h1>A cluster: nodes, workloads, pods, resources, events</h1>
      <p>Not built yet.</p>
    </section>
  );
}
