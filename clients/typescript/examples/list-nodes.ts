// List a cluster's nodes, every page: node list-nodes.js <cluster-id>
import { createFlotillaClient, listNodes } from "@flotilla-dev/client/node";

const [clusterId = ""] = process.argv.slice(2);
const client = createFlotillaClient({ baseUrl: process.env.FLOTILLA_URL!, token: process.env.FLOTILLA_TOKEN! });

for await (const node of listNodes(client, { clusterId })) {
  console.log(node.name, node.ready ? "Ready" : "NotReady");
}
