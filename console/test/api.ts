// The tests' own calls to the API from Node (setup, cleanup, and the expected answers the pages
// are compared with): the TypeScript client compiled from its source together with the tests
// (tsconfig.test.json), so every call and message is typed. grpc-web over fetch, straight to the
// server (FLOTILLA_URL): the console is not involved.
import { Code, createFlotillaClient, errorDetails, type FlotillaClient, type FlotillaErrorDetails } from "../../clients/typescript/src/index.js";
import { must } from "./harness.js";
import { testKubeconfig } from "./support.js";

export { Code, type FlotillaClient, type FlotillaErrorDetails };
/** The generated messages and enums (v1.OperationState.SUCCEEDED, v1.Role.VIEWER, ...). */
export * as v1 from "../../clients/typescript/src/v1.js";

/**
 * A client of a server (default: the client-env's) with `token`. No retries: a test sees each
 * answer as the server gave it.
 */
export function apiAs(token: string, baseUrl = must("FLOTILLA_URL")): FlotillaClient {
  return createFlotillaClient({ baseUrl, token, retry: false });
}

/** The client-env server with its admin token. */
export const api: FlotillaClient = apiAs(must("FLOTILLA_TOKEN"));

/** What a call that must fail said (code, code name, message, reason, field violations); throws if it succeeded. */
export async function failure(call: Promise<unknown>): Promise<FlotillaErrorDetails> {
  try {
    await call;
  } catch (e) {
    return errorDetails(e);
  }
  throw new Error("the call succeeded");
}

/** Whether GetCluster finds the cluster (NOT_FOUND is false; any other failure throws). */
export async function clusterExists(clusterId: string, client: FlotillaClient = api): Promise<boolean> {
  try {
    await client.clusters.getCluster({ clusterId });
    return true;
  } catch (e) {
    if (errorDetails(e).code === Code.NotFound) return false;
    throw e;
  }
}

/** Forgets a cluster (DeleteCluster without destroy: nothing is done to the cluster itself). */
export async function detachCluster(clusterId: string): Promise<void> {
  await api.clusters.deleteCluster({ clusterId });
}

/** Imports the test control plane (its self-contained kubeconfig) as `clusterId`; returns the undo (detach). */
export async function importTestCluster(clusterId: string, labels: Record<string, string> = {}): Promise<() => Promise<void>> {
  const res = await api.clusters.importCluster({
    clusterId,
    labels,
    source: { case: "kubeconfig", value: { kubeconfig: new TextEncoder().encode(testKubeconfig()) } },
  });
  if (res.cluster?.id !== clusterId) throw new Error(`imported ${res.cluster?.id}, not ${clusterId}`);
  return () => detachCluster(clusterId);
}
