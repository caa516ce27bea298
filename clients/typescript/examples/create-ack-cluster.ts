// Create an ACK cluster and wait for it:
// node create-ack-cluster.js <cluster-id> <credential-id> <region> <kubernetes-version>
import { createFlotillaClient, waitOperation, OperationFailedError } from "@flotilla-dev/client/node";

const [clusterId = "", credentialId = "", region = "", kubernetesVersion = ""] = process.argv.slice(2);
const client = createFlotillaClient({ baseUrl: process.env.FLOTILLA_URL!, token: process.env.FLOTILLA_TOKEN! });

const { operation } = await client.clusters.createCluster({
  clusterId,
  provider: "ack",
  requestId: `create-${clusterId}`, // a retry with the same id returns the same operation
  spec: {
    region,
    credentialId,
    kubernetesVersion,
    providerConfig: { case: "ack", value: { clusterType: "ManagedKubernetes", clusterSpec: "ack.pro.small" } },
  },
});
try {
  const done = await waitOperation(client, operation!.id, { onUpdate: (op) => console.log(`${op.progressPercent}%`, op.currentStep) });
  console.log("created", done.resource);
} catch (e) {
  if (e instanceof OperationFailedError) console.error("failed:", e.failure?.vendorCode, e.failure?.vendorMessage);
  throw e;
}
