// Watch a namespace's events (the recent ones first, then every new one):
// node watch-events.js <cluster-id> <namespace>
import { createFlotillaClient } from "@flotilla-dev/client/node";

const [clusterId = "", namespace = ""] = process.argv.slice(2);
const client = createFlotillaClient({ baseUrl: process.env.FLOTILLA_URL!, token: process.env.FLOTILLA_TOKEN! });

for await (const { event } of client.logs.watchEvents({ clusterId, namespace })) {
  if (event) console.log(event.type, event.reason, `${event.involvedObject?.kind}/${event.involvedObject?.name}:`, event.message);
}
