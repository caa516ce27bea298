// The create form's per-provider fields for Rancher (a driver config as JSON instead of a region
// and cluster type), checked against the Rancher simulator's own state.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { go, launch, must, newPage, shownRow, signIn, uniqueId } from "./harness.js";
import { api, clusterExists } from "./api.js";
import { simClusters } from "./support.js";

let browser: Browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test("create at Rancher through its own fields: a driver config that is not JSON is refused at the field, a good one creates the cluster", async () => {
  const { context, page, problems } = await newPage(browser);
  const id = uniqueId("rch");
  const credential = uniqueId("rcred");
  try {
    const before = await simClusters("RANCHER");
    await signIn(page);
    await go(page, "clusters?view=create");
    await page.getByLabel("Provider").selectOption("rancher");
    assert.equal(await page.getByLabel("Region").count(), 0, "Rancher has no region");
    await page.getByRole("button", { name: "Add a credential" }).click();
    await page.getByLabel("Credential id").fill(credential);
    await page.getByLabel("API key id").fill(must("FLOTILLA_SIM_RANCHER_KEY_ID"));
    await page.getByLabel("API token").fill(must("FLOTILLA_SIM_RANCHER_TOKEN"));
    await page.getByRole("button", { name: "Save credential" }).click();
    await page.waitForFunction((c) => (document.querySelector('select[name="credential"]') as HTMLSelectElement | null)?.value === c, credential);
    await page.getByLabel("Kubernetes version").fill(must("FLOTILLA_SIM_RANCHER_KUBERNETES_VERSION"));
    await page.getByLabel("Cluster id (optional)").fill(id);

    const driver = page.getByLabel("Driver config (JSON)");
    await driver.fill('{"rke2Config": {');
    await page.getByRole("button", { name: "Validate" }).click();
    await page.waitForFunction(() => document.querySelector('textarea[name="driver_config"]')?.getAttribute("aria-invalid") === "true");
    assert.match(await page.locator(".field.invalid .field-error").innerText(), /not JSON/);

    await driver.fill('{"rke2Config": {}}');
    await page.getByRole("button", { name: "Validate" }).click();
    await page.getByRole("status", { name: "Validated: nothing created yet" }).waitFor();
    assert.equal((await simClusters("RANCHER")).created, before.created, "validate_only creates nothing at Rancher");
    assert.equal(await clusterExists(id), false);

    await page.getByRole("button", { name: "Create", exact: true }).click();
    await page.locator('[data-op-state="SUCCEEDED"]').waitFor({ timeout: 90_000 });
    const afterCreate = await simClusters("RANCHER");
    assert.equal(afterCreate.created, before.created + 1, "one cluster was created at Rancher");

    await go(page, "clusters");
    const row = await shownRow(page, id);
    assert.equal((await row.locator("td").first().innerText()).trim(), "rancher");
    const vendorId = await row.locator("[data-vendor-id]").getAttribute("data-vendor-id");
    assert.ok(afterCreate.clusters.some((c) => c.id === vendorId), `the simulator has ${vendorId}`);
    assert.deepEqual(problems, []);
  } finally {
    await api.clusters.deleteCluster({ clusterId: id }).catch(() => undefined);
    await api.credentials.deleteCredential({ credentialId: credential }).catch(() => undefined);
    await context.close();
  }
});
