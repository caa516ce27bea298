// Registries: a real OCI registry (CNCF Distribution) with content pushed through its v2 API is
// added on the page; its repositories, artifacts and tags match the registry's own /v2/_catalog
// and tags/list, and where an artifact runs matches a pod the test wrote into the second test
// cluster; pull-secret sync shows the oci provider's UNSUPPORTED_BY_PROVIDER; delete is typed.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { checkPage, go, launch, must, newPage, signIn, uniqueId } from "./harness.js";
import { api, failure } from "./api.js";
import { eventually, kubectl, present } from "./support.js";
import { OciRegistry } from "./oci-registry.js";

let browser: Browser;
let registry: OciRegistry;
const registryId = uniqueId("oci");
const clusterId = uniqueId("reg-second");
const namespace = uniqueId("reg-ns");
let v1Digest = "";
let v2Digest = "";

/** kubectl against the second test cluster (the one this test imports). */
const second = { kubeconfig: must("FLOTILLA_KUBE_KUBECONFIG_SECOND") };

/** Deletes a namespace of the second cluster: no namespace controller runs there, so the test
 * deletes its pods and empties its finalizers itself. */
function removeNamespace(ns: string): void {
  try {
    kubectl(["-n", ns, "delete", "pods", "--all", "--grace-period=0", "--force"], second);
    kubectl(["delete", "namespace", ns, "--wait=false"], second);
    const body = { apiVersion: "v1", kind: "Namespace", metadata: { name: ns }, spec: { finalizers: [] } };
    kubectl(["replace", "--raw", `/api/v1/namespaces/${ns}/finalize`, "-f", "-"], { ...second, input: JSON.stringify(body) });
  } catch {
    // never created
  }
}

/** The second test cluster's kubeconfig with its certificate files inlined (ImportCluster takes bytes). */
function selfContainedKubeconfig(): string {
  return readFileSync(must("FLOTILLA_KUBE_KUBECONFIG_SECOND"), "utf8").replace(
    /^(\s+)(certificate-authority|client-certificate|client-key): (\S+)$/gm,
    (_m, indent: string, key: string, file: string) => `${indent}${key}-data: ${readFileSync(file).toString("base64")}`,
  );
}

before(async () => {
  browser = await launch();
  registry = await OciRegistry.start();
  v1Digest = await registry.pushImage("team/app", ["v1", "latest"], `layer one ${registryId}`);
  v2Digest = await registry.pushImage("team/app", ["v2"], `layer two ${registryId}`);
  await registry.pushImage("tools/cli", ["1.0"], `cli ${registryId}`);
  await api.clusters.importCluster({ clusterId, source: { case: "kubeconfig", value: { kubeconfig: new TextEncoder().encode(selfContainedKubeconfig()) } } });
});
after(async () => {
  await browser?.close();
  await api.registries.deleteRegistry({ registryId }).catch(() => undefined);
  await api.clusters.deleteCluster({ clusterId }).catch(() => undefined);
  removeNamespace(namespace);
  registry?.stop();
});

/** A pod of ReplicaSet web-7c9d on a node nobody runs (so nothing rewrites its status) whose status says it runs `digest`. */
function runningPod(digest: string): void {
  const host = new URL(registry.url).host;
  kubectl(["create", "namespace", namespace], second);
  // No controller-manager there: the namespace's default ServiceAccount is the test's to make.
  kubectl(["-n", namespace, "create", "serviceaccount", "default"], second);
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: "web-7c9d-x1",
      namespace,
      ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-7c9d", uid: "00000000-0000-0000-0000-000000007c9d", controller: true }],
    },
    spec: { nodeName: "no-such-node", containers: [{ name: "app", image: `${host}/team/app:v1` }] },
  };
  kubectl(["apply", "-f", "-"], { ...second, input: JSON.stringify(pod) });
  const status = { status: { phase: "Running", containerStatuses: [{ name: "app", image: `${host}/team/app:v1`, imageID: `${host}/team/app@${digest}`, ready: true, restartCount: 0, state: { running: {} } }] } };
  kubectl(["-n", namespace, "patch", "pod", "web-7c9d-x1", "--subresource=status", "--type=merge", "-p", JSON.stringify(status)], second);
}

async function rows(page: Page, attr: string): Promise<string[]> {
  return page.locator(`tr[data-${attr}]`).evaluateAll((rs, a) => rs.map((r) => r.getAttribute(`data-${a}`) ?? ""), attr);
}

test("an OCI registry added on the page lists the registry's repositories, artifacts and tags, and where one runs", async () => {
  const { context, page, problems } = await newPage(browser);
  try {
    await signIn(page);
    await go(page, "registries");
    await page.getByRole("link", { name: "Add registry" }).click();
    await page.getByLabel("Id", { exact: true }).fill(registryId);
    await page.getByLabel("Provider").selectOption("oci");
    // A bad endpoint is refused on its field, as the API says for it.
    await page.getByLabel("Endpoint", { exact: true }).fill("ftp://127.0.0.1:1");
    await page.getByRole("button", { name: "Check" }).click();
    const refusal = await failure(api.registries.createRegistry({ registry: { id: registryId, provider: "oci", endpoint: "ftp://127.0.0.1:1" }, validateOnly: true }));
    const fieldMsg = page.locator(".field.invalid", { has: page.getByLabel("Endpoint", { exact: true }) }).locator(".field-error");
    await fieldMsg.waitFor();
    assert.equal(refusal.codeName, "InvalidArgument");
    assert.ok((await page.locator(".error-box").innerText()).includes(refusal.message));
    await page.getByLabel("Endpoint", { exact: true }).fill(registry.url);
    await page.getByRole("button", { name: "Check" }).click();
    await page.getByText("could log in").waitFor();
    assert.equal((await api.registries.listRegistries({ filter: "provider = oci" })).registries.some((r) => r.id === registryId), false, "Check stores nothing");
    await page.getByRole("button", { name: "Add registry" }).click();
    await page.getByRole("heading", { name: `Registry ${registryId}` }).waitFor();
    const stored = present((await api.registries.getRegistry({ registryId })).registry, "the registry");
    assert.equal(stored.provider, "oci");
    assert.equal(stored.endpoint, registry.url);
    const facts = await page.locator("dl.reg-facts").innerText();
    assert.match(facts, /reachable/);
    assert.ok(facts.includes(present(stored.status, "the registry's status").apiVersion) && facts.includes(registry.url), facts);

    // Repositories and namespaces as the registry's own catalog has them.
    const catalog = await registry.catalog();
    await page.locator("tr[data-repository]").first().waitFor();
    assert.deepEqual((await rows(page, "repository")).sort(), [...catalog].sort());
    assert.deepEqual((await rows(page, "namespace")).sort(), [...new Set(catalog.map((r) => r.split("/")[0]!))].sort());

    // Artifacts and tags of team/app as pushed, and its tags/list.
    await page.getByRole("link", { name: "team/app" }).click();
    await page.locator("tr[data-digest]").first().waitFor();
    assert.deepEqual((await rows(page, "digest")).sort(), [v1Digest, v2Digest].sort());
    const v1Row = page.locator(`tr[data-digest="${v1Digest}"]`);
    assert.deepEqual((await v1Row.locator(".tag").allInnerTexts()).sort(), ["latest", "v1"]);
    assert.deepEqual(await page.locator(`tr[data-digest="${v2Digest}"] .tag`).allInnerTexts(), ["v2"]);
    assert.match(await v1Row.innerText(), /nowhere/);
    const tagList = page.locator("ul.tag-list li");
    await eventually("the tag list", async () => (await tagList.count()) > 0, 20_000);
    assert.deepEqual((await tagList.allInnerTexts()).sort(), [...(await registry.tags("team/app"))].sort());
    // One artifact by tag (GetArtifact).
    await page.getByLabel("Tag or digest").fill("v2");
    await page.getByRole("button", { name: "Find" }).click();
    await page.locator('table[aria-labelledby="found-title"]').locator(`tr[data-digest="${v2Digest}"]`).waitFor();

    // A pod running v1's digest on the imported cluster: the page names its workload.
    runningPod(v1Digest);
    const where = await eventually(
      "the artifact's row to name the cluster it runs on",
      async () => {
        await page.reload();
        const text = await page.locator(`tr[data-digest="${v1Digest}"]`).innerText();
        return text.includes(clusterId) ? text : undefined;
      },
      20_000,
    );
    // The pod's owner as written (the ReplicaSet object itself does not exist, so it is not followed
    // further to a Deployment).
    assert.ok(where.includes(namespace) && /ReplicaSet\s+web-7c9d\s+\(1 pod\)/.test(where), where);
    assert.match(await page.locator(`tr[data-digest="${v2Digest}"]`).innerText(), /nowhere/);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("pull-secret sync of an oci registry shows UNSUPPORTED_BY_PROVIDER and writes nothing", async () => {
  const { context, page } = await newPage(browser);
  try {
    await signIn(page);
    await go(page, `registries/${registryId}`);
    await page.getByRole("link", { name: "Sync pull secrets" }).click();
    await page.getByLabel(new RegExp(clusterId)).check();
    await page.getByLabel("Namespaces", { exact: true }).fill(namespace);
    await page.getByLabel("Service account (optional)").fill("default");
    await page.getByRole("button", { name: "Sync pull secrets" }).click();
    const notice = page.getByTestId("unsupported");
    await notice.waitFor();
    assert.match(await notice.innerText(), /oci[\s\S]*cannot issue a narrow pull credential/);
    const expected = await failure(api.registries.syncPullSecret({ registryId, targets: [{ clusterId, namespaces: [namespace] }] }));
    assert.equal(expected.reason, "UNSUPPORTED_BY_PROVIDER");
    const box = await page.locator(".error-box").innerText();
    assert.ok(box.includes("FailedPrecondition") && box.includes(expected.reason) && box.includes(expected.message), box);
    assert.equal(kubectl(["-n", namespace, "get", "secrets", "-o", "name"], second).trim(), "", "no secret written");
  } finally {
    await context.close();
  }
});

test("registries pages: accessible at both sizes", async () => {
  const pages: [string, string, string][] = [
    ["registries", "registries", `tr[data-registry="${registryId}"]`],
    ["registry-add", "registries?view=add", "option[value=oci]"],
    ["registry", `registries/${registryId}`, "tr[data-repository]"],
    ["registry-artifacts", `registries/${registryId}/artifacts?repository=team%2Fapp`, "tr[data-digest]"],
    ["registry-pull-secrets", `registries/${registryId}/pull-secrets`, "input[type=checkbox]"],
  ];
  for (const [name, route, ready] of pages) {
    await checkPage(browser, name, async (page) => {
      await go(page, route);
      await page.locator(ready).first().waitFor({ state: "attached" });
    });
  }
});

test("the list filters like ListRegistries; deleting a registry asks for its id, forgets it, and leaves the registry's content alone", async () => {
  const { context, page } = await newPage(browser);
  try {
    const before = await registry.catalog();
    await signIn(page);
    // The list filters as ListRegistries does.
    await go(page, "registries");
    for (const [filter, listed] of [["provider = oci", true], ["provider = harbor", false]] as const) {
      const expected = (await api.registries.listRegistries({ filter })).registries.some((r) => r.id === registryId);
      assert.equal(expected, listed);
      await page.getByLabel("Filter", { exact: true }).fill(filter);
      await page.getByRole("button", { name: "Apply" }).click();
      await page.locator(`tr[data-registry="${registryId}"]`).waitFor({ state: listed ? "visible" : "detached" });
    }
    await page.getByLabel("Filter", { exact: true }).fill("colour = blue");
    await page.getByRole("button", { name: "Apply" }).click();
    const bad = await failure(api.registries.listRegistries({ filter: "colour = blue" }));
    await page.locator(".error-box").filter({ hasText: "InvalidArgument" }).waitFor();
    assert.ok((await page.locator(".error-box").innerText()).includes(bad.message));
    assert.equal(await page.getByLabel("Filter", { exact: true }).getAttribute("aria-invalid"), "true");
    await go(page, `registries/${registryId}`);
    await page.getByRole("button", { name: "Delete registry" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel(/to confirm/).fill(`${registryId}-typo`);
    assert.equal(await dialog.getByRole("button", { name: "Delete registry" }).isDisabled(), true);
    await dialog.getByLabel(/to confirm/).fill(registryId);
    await dialog.getByRole("button", { name: "Delete registry" }).click();
    await page.getByRole("heading", { name: "Registries" }).waitFor();
    await page.locator(`tr[data-registry="${registryId}"]`).waitFor({ state: "detached" });
    assert.equal((await failure(api.registries.getRegistry({ registryId }))).codeName, "NotFound");
    assert.deepEqual(await registry.catalog(), before);
  } finally {
    await context.close();
  }
});
