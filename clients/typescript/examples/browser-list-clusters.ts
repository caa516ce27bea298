// In a browser: grpc-web over fetch (the main entry never loads Node modules). The server must
// allow the page's origin (--cors-allowed-origins).
import { createFlotillaClient, errorDetails, listClusters } from "@flotilla-dev/client";

export async function importedClusterIds(baseUrl: string, getToken: () => string): Promise<string[]> {
  const client = createFlotillaClient({ baseUrl, token: getToken });
  const ids: string[] = [];
  try {
    for await (const cluster of listClusters(client, { filter: 'provider = "imported"', orderBy: "id" })) {
      ids.push(cluster.id);
    }
  } catch (e) {
    const { codeName, reason, fieldViolations } = errorDetails(e);
    throw new Error(`${codeName} ${reason} ${fieldViolations.map((v) => `${v.field}: ${v.description}`).join("; ")}`);
  }
  return ids;
}
