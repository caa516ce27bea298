// Follow a pod's logs (Ctrl-C to stop): node follow-logs.js <cluster-id> <namespace> <pod>
import { createFlotillaClient } from "@flotilla-dev/client/node";

const [clusterId = "", namespace = "", pod = ""] = process.argv.slice(2);
const client = createFlotillaClient({ baseUrl: process.env.FLOTILLA_URL!, token: process.env.FLOTILLA_TOKEN! });

for await (const { entries } of client.logs.streamPodLogs({ clusterId, namespace, pod, options: { follow: true } })) {
  for (const entry of entries) console.log(entry.content);
}
