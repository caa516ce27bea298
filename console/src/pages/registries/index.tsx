// Registries: #/registries (list, ?view=add to register one), #/registries/<id> (namespaces and
// repositories), #/registries/<id>/artifacts?repository=<name> (artifacts, tags, where they
// run), #/registries/<id>/pull-secrets (SyncPullSecret).
import type { Route } from "../../router";
import { AddRegistry } from "./add";
import { Artifacts } from "./artifacts";
import { RegistryList } from "./list";
import { PullSecretSync } from "./pullsecret";
import { RegistryDetail } from "./registry";
import "./registries.css";

export function RegistriesPage({ route }: { route: Route }) {
  const [, id, sub] = route.segments;
  if (!id) return route.query.get("view") === "add" ? <AddRegistry /> : <RegistryList route={route} />;
  if (sub === "artifacts") return <Artifacts registryId={id} repository={route.query.get("repository") ?? ""} />;
  if (sub === "pull-secrets") return <PullSecretSync registryId={id} />;
  return <RegistryDetail registryId={id} namespace={route.query.get("namespace") ?? ""} />;
}
