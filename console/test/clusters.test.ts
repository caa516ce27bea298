// The clusters pages in a real browser against the live server: import the test control plane
// (validate, then import) and see its nodes as kubectl counts them; refusals next to the field
// they name with nothing stored; a bad filter; a cluster created at the ACK simulator with its
// operation followed to the end (checked against the simulator's own state); detach with the
// typed confirmation, once by keyboard only; accessibility of every view; and the 1,000-cluster
// list measured on a server of the test's own.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { checkA11y, checkPage, go, launch, measure, must, newPage, screenshot, shownRow, signIn, uniqueId } from "./harness.js";
import { api, clusterExists } from "./api.js";
import { kubectlNodes, simClusters, testKubeconfig } from "./support.js";
import { measureThousandClusters } from "./clusters-perf.js";

let browser: Browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** The error shown next to a labelled control (its aria-describedby .field-error), or "". */
async function errorAt(page: Page, label: string): Promise<string> {
  const control = page.getByLabel(label, { exact: true });
  await control.waitFor();
  const ids = ((await control.getAttribute("aria-describedby")) ?? "").split(" ").filter(Boolean);
  for (const id of ids) {
    const el = page.locator(`[id="${id}"].field-error`);
    if ((await el.count()) > 0) return (await el.innerText()).trim();
  }
  return "";
}

async function clusterGone(id: string): Promise<void> {
  assert.equal(await clusterExists(id), false, `GetCluster ${id} still finds it`);
}

function row(page: Page, id: string) {
  return page.locator(`tr[data-cluster="${id}"]`);
}

test("import the test cluster by pasting its kubeconfig: validate stores nothing, import shows it reachable with kubectl's nodes; a second import is refused; detach by keyboard only", async () => {
  const { context, page, problems } = await newPage(browser);
  const id = uniqueId("imp");
  try {
    await signIn(page);
    await go(page, "clusters?view=import");
    await page.getByRole("heading", { name: "Import a cluster" }).waitFor();
    await page.getByLabel("Kubeconfig", { exact: true }).fill(testKubeconfig());
    await page.getByLabel("Cluster id (optional)").fill(id);
    await page.getByLabel("Labels").fill("suite=console-clusters");
    assert.ok(await page.getByRole("button", { name: "Import" }).isDisabled(), "Import waits for a validation");
    await page.getByRole("button", { name: "Validate" }).click();
    const preview = page.getByRole("status", { name: "Validated: nothing stored yet" });
    await preview.waitFor();
    const nodes = kubectlNodes();
    assert.equal(await preview.locator('[data-field="reachable"]').innerText(), "yes");
    assert.equal(await preview.locator('[data-field="nodes"]').innerText(), `${nodes.ready}/${nodes.total} ready`);
    await clusterGone(id);

    await page.getByRole("button", { name: "Import" }).click();
    await page.waitForURL((u) => u.hash === `#/clusters/${id}`);
    assert.equal(await clusterExists(id), true);

    await go(page, "clusters");
    const r = await shownRow(page, id);
    assert.equal(await r.locator("[data-reachable]").getAttribute("data-reachable"), "yes");
    assert.equal(nodes.total, 3, "the test control plane has 3 nodes (kubectl)");
    assert.equal(await r.locator("[data-nodes]").innerText(), `${nodes.ready}/${nodes.total} ready`);
    assert.match(await r.innerText(), /suite=console-clusters/);
    assert.equal(await r.getByRole("button", { name: `Destroy ${id}` }).count(), 0, "an imported cluster cannot be destroyed");
    await checkPage(browser, "clusters-list-imported", async (p) => {
      await go(p, "clusters");
      await row(p, id).waitFor();
    });

    // The same control plane again, under another id: the server knows it by kube-system UID.
    const again = uniqueId("imp2");
    await go(page, "clusters?view=import");
    await page.getByLabel("Kubeconfig", { exact: true }).fill(testKubeconfig());
    await page.getByLabel("Cluster id (optional)").fill(again);
    await page.getByRole("button", { name: "Validate" }).click();
    const refusal = page.getByRole("alert").filter({ hasText: "AlreadyExists" });
    await refusal.waitFor();
    assert.match(await refusal.innerText(), /CLUSTER_ALREADY_IMPORTED/);
    await clusterGone(again);

    // Detach by keyboard only: Tab to the row's Detach button, Enter, type the id, Enter.
    await go(page, "clusters");
    await r.waitFor();
    let found = false;
    for (let i = 0; i < 300 && !found; i++) {
      await page.keyboard.press("Tab");
      found = await page.evaluate((label) => document.activeElement?.getAttribute("aria-label") === label, `Detach ${id}`);
    }
    assert.ok(found, "the row's Detach button is reachable by Tab");
    const outline = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      return { visible: el.matches(":focus-visible"), style: getComputedStyle(el).outlineStyle };
    });
    assert.ok(outline.visible && outline.style !== "none", `focus is visible: ${JSON.stringify(outline)}`);
    await page.keyboard.press("Enter");
    const dialog = page.getByRole("dialog", { name: `Detach cluster ${id}` });
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), "confirm-input", "focus starts in the confirmation");
    await page.keyboard.type(id);
    await page.keyboard.press("Enter");
    await page.getByRole("status").filter({ hasText: `Cluster ${id} was detached.` }).waitFor();
    await r.waitFor({ state: "detached" });
    await clusterGone(id);
    assert.deepEqual(problems, []);
  } finally {
    await api.clusters.deleteCluster({ clusterId: id }).catch(() => undefined);
    await context.close();
  }
});

test("a bad import shows the refusal next to the field it names and stores nothing", async () => {
  const { context, page, problems } = await newPage(browser);
  const id = uniqueId("bad");
  try {
    await signIn(page);
    await go(page, "clusters?view=import");
    await page.getByLabel("Kubeconfig", { exact: true }).fill("this: is: not [a kubeconfig");
    await page.getByLabel("Cluster id (optional)").fill(id);
    await page.getByRole("button", { name: "Validate" }).click();
    await page.getByRole("alert").filter({ hasText: "InvalidArgument" }).waitFor();
    assert.notEqual(await errorAt(page, "Kubeconfig"), "", "the kubeconfig field shows the refusal");
    assert.equal(await page.getByLabel("Kubeconfig", { exact: true }).getAttribute("aria-invalid"), "true");
    assert.equal(await errorAt(page, "Cluster id (optional)"), "");
    assert.ok(await page.getByRole("button", { name: "Import" }).isDisabled());
    await clusterGone(id);

    // URL mode: an invalid server URL is refused at the URL field.
    await page.getByLabel("Server URL and bearer token").check();
    await page.getByLabel("API server URL").fill("not a url");
    await page.getByLabel("Bearer token", { exact: true }).fill("abc.def");
    await page.getByRole("button", { name: "Validate" }).click();
    await page.waitForFunction(() => document.querySelector(".field.invalid") !== null);
    const urlError = await errorAt(page, "API server URL");
    assert.notEqual(urlError, "", "the URL field shows the refusal");
    assert.equal(await errorAt(page, "Bearer token"), "");
    assert.match(await page.locator(".error-box").innerText(), /source\.token\.server/);
    await clusterGone(id);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("a bad filter shows the API's refusal at the filter field", async () => {
  const { context, page, problems } = await newPage(browser);
  try {
    await signIn(page);
    await go(page, "clusters");
    const filter = page.getByLabel("Filter");
    await filter.fill('colour = "blue"');
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForFunction(() => document.getElementById("cluster-filter")?.getAttribute("aria-invalid") === "true");
    const text = await errorAt(page, "Filter");
    assert.match(text, /colour/, `the refusal names the field: ${text}`);
    assert.match(await page.locator(".error-box").innerText(), /InvalidArgument/);
    // A good filter clears it.
    await filter.fill('provider = "imported"');
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForFunction(() => document.getElementById("cluster-filter")?.getAttribute("aria-invalid") === null);
    assert.equal(await page.locator(".error-box").count(), 0);
    // The applied filter is kept in the route: a reload shows the same list.
    await page.getByLabel("Sort").selectOption("create_time desc");
    await page.waitForFunction(() => location.hash.includes("order_by="));
    assert.equal(new URL(page.url()).hash, `#/clusters?filter=${encodeURIComponent('provider = "imported"').replaceAll("%20", "+")}&order_by=create_time+desc`);
    await page.reload();
    await page.getByRole("heading", { name: "Clusters" }).waitFor();
    assert.equal(await filter.inputValue(), 'provider = "imported"');
    assert.equal(await page.getByLabel("Sort").inputValue(), "create_time desc");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("create a cluster at the ACK simulator through the form (credential added there too), follow its operation to the end, then detach it", async () => {
  const { context, page, problems } = await newPage(browser);
  const id = uniqueId("ack");
  const credential = uniqueId("cred");
  try {
    const before = await simClusters("ACK");
    await signIn(page);
    await go(page, "clusters?view=create");
    await page.getByLabel("Provider").selectOption("ack");
    await page.getByRole("button", { name: "Add a credential" }).click();
    await page.getByLabel("Credential id").fill(credential);
    await page.getByLabel("Access key id").fill(must("FLOTILLA_SIM_ACK_ACCESS_KEY_ID"));
    const secret = must("FLOTILLA_SIM_ACK_ACCESS_KEY_SECRET");
    await page.getByLabel("Access key secret").fill(secret);
    await page.getByRole("button", { name: "Save credential" }).click();
    await page.waitForFunction((c) => (document.querySelector('select[name="credential"]') as HTMLSelectElement | null)?.value === c, credential);
    assert.ok(!(await page.content()).includes(secret), "the secret is not in the page once saved");

    // Without a region the server refuses spec.region, shown at the Region field.
    await page.getByLabel("Kubernetes version").fill(must("FLOTILLA_SIM_ACK_KUBERNETES_VERSION"));
    await page.getByRole("button", { name: "Validate" }).click();
    await page.getByRole("alert").filter({ hasText: "InvalidArgument" }).waitFor();
    assert.notEqual(await errorAt(page, "Region"), "", "the region field shows the refusal");
    assert.match(await page.locator(".error-box").innerText(), /spec\.region/);
    await page.getByLabel("Region").fill(must("FLOTILLA_SIM_ACK_REGION"));
    await page.getByLabel("Kubernetes version").fill(must("FLOTILLA_SIM_ACK_KUBERNETES_VERSION"));
    await page.getByLabel("Cluster type").selectOption(must("FLOTILLA_SIM_ACK_CLUSTER_TYPE"));
    await page.getByLabel("Cluster spec").selectOption(must("FLOTILLA_SIM_ACK_CLUSTER_SPEC"));
    await page.getByLabel("Cluster id (optional)").fill(id);
    await page.getByRole("button", { name: "Validate" }).click();
    await page.getByRole("status").filter({ hasText: "Validated: nothing created yet" }).first().waitFor();
    assert.equal((await simClusters("ACK")).created, before.created, "validate_only creates nothing at the vendor");
    await clusterGone(id);

    await page.getByRole("button", { name: "Create", exact: true }).click();
    await page.getByRole("heading", { name: new RegExp(`Creating ${id} at ack`) }).waitFor();
    const opLink = page.locator(".operation h2 a");
    assert.match((await opLink.getAttribute("href")) ?? "", /^#\/operations\//);
    await page.locator('[data-op-state="SUCCEEDED"]').waitFor({ timeout: 90_000 });
    assert.match(await page.locator(".operation").innerText(), /Progress 100%/);
    await checkA11y(page, "clusters-create-operation-desktop");
    await screenshot(page, "clusters-create-operation", "desktop");

    const afterCreate = await simClusters("ACK");
    assert.equal(afterCreate.created, before.created + 1, "exactly one cluster was created at the simulator");
    const known = new Set(before.clusters.map((c) => c.id));
    const fresh = afterCreate.clusters.filter((c) => !known.has(c.id));
    assert.equal(fresh.length, 1);
    assert.equal(fresh[0]?.state, "running");

    await go(page, "clusters");
    const r = await shownRow(page, id);
    const cells = await r.locator("td").allInnerTexts();
    assert.equal(cells[0], "ack");
    assert.equal(cells[1], must("FLOTILLA_SIM_ACK_REGION"));
    assert.equal(cells[3], "running");
    assert.equal(await r.locator("[data-vendor-id]").getAttribute("data-vendor-id"), fresh[0]?.id, "the row names the simulator's cluster");
    // ACK can delete clusters (ListProviders), so its row offers Destroy besides Detach.
    assert.equal(await r.getByRole("button", { name: `Destroy ${id}` }).count(), 1);

    await r.getByRole("button", { name: `Detach ${id}` }).click();
    const dialog = page.getByRole("dialog", { name: `Detach cluster ${id}` });
    await dialog.getByLabel(/Type .* to confirm/).fill(id.slice(0, -1));
    assert.ok(await dialog.getByRole("button", { name: "Detach" }).isDisabled(), "a wrong id does not confirm");
    await dialog.getByLabel(/Type .* to confirm/).fill(id);
    await dialog.getByRole("button", { name: "Detach" }).click();
    await r.waitFor({ state: "detached" });
    await clusterGone(id);
    assert.equal((await simClusters("ACK")).created, afterCreate.created, "a detach does nothing at the vendor");
    assert.deepEqual(problems, []);
  } finally {
    await api.clusters.deleteCluster({ clusterId: id }).catch(() => undefined);
    await api.credentials.deleteCredential({ credentialId: credential }).catch(() => undefined);
    await context.close();
  }
});

/** Creates an ACK cluster through the create form (credential added there) and waits for its operation. */
async function createAckCluster(page: Page, id: string, credential: string): Promise<void> {
  await go(page, "clusters?view=create");
  await page.getByLabel("Provider").selectOption("ack");
  await page.getByRole("button", { name: "Add a credential" }).click();
  await page.getByLabel("Credential id").fill(credential);
  await page.getByLabel("Access key id").fill(must("FLOTILLA_SIM_ACK_ACCESS_KEY_ID"));
  await page.getByLabel("Access key secret").fill(must("FLOTILLA_SIM_ACK_ACCESS_KEY_SECRET"));
  await page.getByRole("button", { name: "Save credential" }).click();
  await page.waitForFunction((c) => (document.querySelector('select[name="credential"]') as HTMLSelectElement | null)?.value === c, credential);
  await page.getByLabel("Region").fill(must("FLOTILLA_SIM_ACK_REGION"));
  await page.getByLabel("Kubernetes version").fill(must("FLOTILLA_SIM_ACK_KUBERNETES_VERSION"));
  await page.getByLabel("Cluster type").selectOption(must("FLOTILLA_SIM_ACK_CLUSTER_TYPE"));
  await page.getByLabel("Cluster spec").selectOption(must("FLOTILLA_SIM_ACK_CLUSTER_SPEC"));
  await page.getByLabel("Cluster id (optional)").fill(id);
  await page.getByRole("button", { name: "Validate" }).click();
  await page.getByRole("button", { name: "Create", exact: true }).and(page.locator(":enabled")).click();
  await page.locator('[data-op-state="SUCCEEDED"]').waitFor({ timeout: 90_000 });
}

test("destroy a vendor cluster from its row: typed confirmation, the delete operation followed to the end, gone at the simulator", async () => {
  const { context, page, problems } = await newPage(browser);
  const id = uniqueId("ackd");
  const credential = uniqueId("cred");
  try {
    await signIn(page);
    const before = await simClusters("ACK");
    await createAckCluster(page, id, credential);
    const created = (await simClusters("ACK")).clusters.filter((c) => !before.clusters.some((b) => b.id === c.id));
    assert.equal(created.length, 1);
    const vendorId = created[0]?.id ?? "";

    await go(page, "clusters");
    const r = row(page, id);
    await r.getByRole("button", { name: `Destroy ${id}` }).click();
    const dialog = page.getByRole("dialog", { name: `Destroy cluster ${id} at ack` });
    await dialog.getByLabel(/Type .* to confirm/).fill(id);
    await dialog.getByRole("button", { name: "Destroy" }).click();
    await page.getByRole("status").filter({ hasText: `Destroying ${id}` }).waitFor();
    await page.locator('.operation [data-op-state="SUCCEEDED"]').waitFor({ timeout: 90_000 });
    await r.waitFor({ state: "detached" });
    await clusterGone(id);
    const after = await simClusters("ACK");
    assert.ok(!after.clusters.some((c) => c.id === vendorId), `the simulator no longer lists ${vendorId}: ${JSON.stringify(after.clusters.filter((c) => c.id === vendorId))}`);
    assert.deepEqual(problems, []);
  } finally {
    await api.clusters.deleteCluster({ clusterId: id }).catch(() => undefined);
    await api.credentials.deleteCredential({ credentialId: credential }).catch(() => undefined);
    await context.close();
  }
});

test("clusters list, import and create views: accessible at both sizes", async () => {
  await checkPage(browser, "clusters-list", async (page) => {
    await page.getByRole("heading", { name: "Clusters" }).waitFor();
    await page.waitForFunction(() => !document.body.innerText.includes("Loading…"));
  });
  await checkPage(browser, "clusters-import", async (page) => {
    await go(page, "clusters?view=import");
    await page.getByRole("heading", { name: "Import a cluster" }).waitFor();
  });
  await checkPage(browser, "clusters-create", async (page) => {
    await go(page, "clusters?view=create");
    await page.getByLabel("Provider").selectOption("ack");
    await page.getByLabel("Cluster type").waitFor();
  });
});

test("measurement (not a timed assertion): the clusters page with 1,000 clusters, from route change to table rendered and input responsive", async () => {
  const result = await measureThousandClusters(browser);
  measure("clusters page, 1,000 clusters: route change to interactive", result.interactiveMs, "ms");
  measure("clusters page, 1,000 clusters: ListClusters (page of 1000) on the wire", result.listMs, "ms");
  assert.equal(result.rows, 1000, "all 1,000 rows are rendered");
  assert.equal(result.caption, "1000 clusters");
});
