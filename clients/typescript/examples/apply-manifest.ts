// Apply a YAML or JSON manifest (one or many documents): node apply-manifest.js <cluster-id> <file>
import { readFileSync } from "node:fs";
import { createFlotillaClient } from "@flotilla-dev/client/node";
import { ApplyOutcome } from "@flotilla-dev/client/v1";

const [clusterId = "", file = ""] = process.argv.slice(2);
const client = createFlotillaClient({ baseUrl: process.env.FLOTILLA_URL!, token: process.env.FLOTILLA_TOKEN! });

const { results } = await client.workloads.applyManifests({ clusterId, manifests: readFileSync(file, "utf8") });
for (const r of results) {
  console.log(`${r.object?.kind}/${r.object?.name}`, ApplyOutcome[r.outcome], r.message);
}
