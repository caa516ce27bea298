// Import a cluster from a kubeconfig: node import-cluster.js <cluster-id> <kubeconfig>
import { readFileSync } from "node:fs";
import { createFlotillaClient } from "@flotilla-dev/client/node";

const [clusterId = "", kubeconfigPath = ""] = process.argv.slice(2);
const client = createFlotillaClient({ baseUrl: process.env.FLOTILLA_URL!, token: process.env.FLOTILLA_TOKEN! });

const { cluster } = await client.clusters.importCluster({
  clusterId,
  source: { case: "kubeconfig", value: { kubeconfig: readFileSync(kubeconfigPath) } },
});
console.log(cluster?.id, cluster?.kubeSystemUid);
