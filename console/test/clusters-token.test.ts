// Import by server URL + bearer token + CA (the other import mode): a ServiceAccount token that
// expires in an hour, with just the rights Flotilla's probe uses. The console warns about the
// expiry; the expected time is the token's own `exp` claim.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { go, launch, must, newPage, shownRow, signIn, uniqueId } from "./harness.js";
import { api, clusterExists } from "./api.js";
import { kubectl, kubectlNodes, testKubeconfig } from "./support.js";

let browser: Browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test("import by server URL, bearer token and CA: an expiring token is warned about in the list", async () => {
  const { context, page, problems } = await newPage(browser);
  const name = uniqueId("ctok");
  const id = uniqueId("tok");
  try {
    // What the probe needs (version, the kube-system namespace, the node list), nothing more.
    kubectl(["apply", "-f", "-"], {
      input: `apiVersion: v1
kind: Namespace
metadata: {name: ${name}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: importer, namespace: ${name}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ${name}}
rules:
- {apiGroups: [""], resources: [namespaces], verbs: [get]}
- {apiGroups: [""], resources: [nodes], verbs: [list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ${name}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ${name}}
subjects: [{kind: ServiceAccount, name: importer, namespace: ${name}}]
`,
    });
    const token = kubectl(["-n", name, "create", "token", "importer", "--duration=1h"]).trim();
    const exp = (JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as { exp: number }).exp;
    const kubeconfig = testKubeconfig();
    const server = /server:\s*(\S+)/.exec(kubeconfig)?.[1] ?? "";
    const ca = Buffer.from(/certificate-authority-data:\s*(\S+)/.exec(kubeconfig)?.[1] ?? "", "base64").toString();
    assert.ok(server.startsWith("https://") && ca.includes("BEGIN CERTIFICATE"));

    await signIn(page);
    await go(page, "clusters?view=import");
    await page.getByLabel("Server URL and bearer token").check();
    await page.getByLabel("API server URL").fill(server);
    await page.getByLabel("Bearer token", { exact: true }).fill(token);
    await page.getByLabel("CA certificate (PEM, optional)").fill(ca);
    await page.getByLabel("Cluster id (optional)").fill(id);
    await page.getByRole("button", { name: "Validate" }).click();
    const preview = page.getByRole("status", { name: "Validated: nothing stored yet" });
    await preview.waitFor();
    assert.match(await preview.innerText(), new RegExp(`Credential expires\\s+${new Date(exp * 1000).toISOString().replace(/\./g, "\\.")}`));

    await page.getByRole("button", { name: "Import" }).click();
    await page.waitForURL((u) => u.hash === `#/clusters/${id}`);
    await go(page, "clusters");
    const row = await shownRow(page, id);
    const nodes = kubectlNodes();
    assert.equal(await row.locator("[data-reachable]").getAttribute("data-reachable"), "yes");
    assert.equal(await row.locator("[data-nodes]").innerText(), `${nodes.ready}/${nodes.total} ready`);
    assert.match(await row.locator(".warn, .bad").first().innerText(), /^Credential expires in \d+ [mh]$/);
    assert.ok(!(await page.content()).includes(token), "the token is not in the list page");
    assert.deepEqual(problems, []);
  } finally {
    await api.clusters.deleteCluster({ clusterId: id }).catch(() => undefined);
    assert.equal(await clusterExists(id), false);
    kubectl(["delete", "clusterrolebinding,clusterrole", name, "--ignore-not-found"]);
    kubectl(["delete", "namespace", name, "--ignore-not-found", "--wait=false"]);
    await context.close();
  }
});
