// The end-to-end scenario, driven through the console only: sign in → import the test
// cluster (kubeconfig pasted, validated, imported) → its page shows the 3 nodes and their zones →
// Apply YAML: a Deployment in a namespace of its own, dry run then apply → scale it on the
// workloads tab → its logs show a line written during the test → the events tab (open since
// before the scale, never reloaded) shows the scale event arrive → a cluster created at the ACK
// simulator through the create form (credential added there) and its operation watched to the
// end → a second token made on the Admin page signs in a second console, is revoked from the
// first, and the second is signed out with the reason. Node only reads the expected answers
// (kubectl, the simulator's control URL, the API) and cleans up.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { go, launch, must, newPage, signIn, uniqueId } from "./harness.js";
import { api, clusterExists, v1 } from "./api.js";
import { cleanupLogs, enforceCsp, podLog, podsOf } from "./logs-fixture.js";
import { eventually, kubeExists, kubectl, present, simClusters, testKubeconfig, type SimClusters } from "./support.js";

const CLUSTER = uniqueId("e2e");
const NS = uniqueId("e2e-ns");
const APP = "web";
const ACK_CLUSTER = uniqueId("e2e-ack");
const ACK_CREDENTIAL = uniqueId("e2e-cred");
const TOKEN = uniqueId("e2e-tok");

let browser: Browser;
/** The console the scenario runs in (the admin token), and the one the second token signs in. */
let main: { context: BrowserContext; page: Page; problems: string[] };
let events: { context: BrowserContext; page: Page; problems: string[] };
let ackBefore: SimClusters;
let ackVendorId = "";

before(async () => {
  browser = await launch();
});

after(async () => {
  // Whatever a failed run left behind; a passing run has removed it all (the last step checks).
  await cleanUp().catch((e) => console.error(`cleanup: ${String(e)}`));
  await browser?.close();
});

async function cleanUp(): Promise<void> {
  kubectl(["delete", "namespace", NS, "--wait=false", "--ignore-not-found"]);
  cleanupLogs(NS);
  await api.clusters.deleteCluster({ clusterId: CLUSTER }).catch(() => undefined);
  const destroy = await api.clusters.deleteCluster({ clusterId: ACK_CLUSTER, destroy: true }).catch(() => undefined);
  const operationId = destroy?.operation?.id;
  if (operationId) {
    await eventually(
      `the destroy of ${ACK_CLUSTER} to finish`,
      async () => ((await api.operations.getOperation({ operationId })).operation?.state ?? 0) >= v1.OperationState.SUCCEEDED,
      90_000,
    );
  }
  await api.credentials.deleteCredential({ credentialId: ACK_CREDENTIAL }).catch(() => undefined);
  await api.admin.revokeApiToken({ tokenId: TOKEN }).catch(() => undefined);
}

/** The scenario's steps run in order; once one fails, the rest are skipped (they build on it). */
const steps: [string, () => Promise<void>][] = [];
const step = (name: string, run: () => Promise<void>) => steps.push([name, run]);

test("the scenario: sign in, import, nodes, apply, scale, logs, live events, create at ACK, revoke a token", async (t) => {
  let failed = "";
  for (const [name, run] of steps) {
    await t.test(name, async (s) => {
      if (failed) {
        s.skip(`after the failed step "${failed}"`);
        return;
      }
      try {
        await run();
      } catch (e) {
        failed = name;
        throw e;
      }
    });
  }
  assert.equal(failed, "", `the step "${failed}" failed`);
  assert.deepEqual([...main.problems, ...events.problems], [], "CSP violations or page errors");
  await main.context.close();
  await events.context.close();
});

step("sign in", async () => {
  main = await newPage(browser);
  await enforceCsp(main.context);
  await signIn(main.page);
});

step("import the test cluster: paste its kubeconfig, validate, import", async () => {
  const { page } = main;
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Clusters" }).click();
  await page.getByRole("link", { name: "Import", exact: true }).click();
  await page.getByRole("heading", { name: "Import a cluster" }).waitFor();
  await page.getByLabel("Kubeconfig", { exact: true }).fill(testKubeconfig());
  await page.getByLabel("Cluster id (optional)").fill(CLUSTER);
  await page.getByRole("button", { name: "Validate" }).click();
  await page.getByRole("status", { name: "Validated: nothing stored yet" }).waitFor();
  assert.equal(await clusterExists(CLUSTER), false, "validating stored the cluster");
  await page.getByRole("button", { name: "Import" }).click();
  await page.waitForURL((u) => u.hash === `#/clusters/${CLUSTER}`);
  assert.equal(await clusterExists(CLUSTER), true, "GetCluster does not find the imported cluster");
});

step("its page shows the 3 nodes with the zones kubectl shows", async () => {
  const expected = kubectl(["get", "nodes", "-L", "topology.kubernetes.io/zone", "--no-headers"])
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .map((cols) => [cols[0] ?? "", cols[cols.length - 1] ?? ""] as const)
    .sort();
  assert.equal(expected.length, 3, "the test control plane has 3 nodes (kubectl)");
  const { page } = main;
  await page.getByRole("heading", { level: 1 }).waitFor();
  await page.locator("tr[data-node]").nth(2).waitFor();
  const shown = await page
    .locator("tr[data-node]")
    .evaluateAll((rows) => rows.map((r) => [r.getAttribute("data-node") ?? "", r.querySelector('[data-col="zone"]')?.textContent?.trim() ?? ""] as const));
  assert.deepEqual(shown.sort(), expected);
});

/** Apply YAML: `manifest`, dry run first (the result, and kubectl sees nothing), then apply. */
async function dryRunThenApply(manifest: string, kind: string, name: string, exists: () => boolean): Promise<void> {
  const { page } = main;
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Apply YAML" }).click();
  await page.getByRole("heading", { name: "Apply YAML" }).waitFor();
  await page.waitForFunction((id) => [...document.querySelectorAll("#apply-cluster option")].some((o) => (o as HTMLOptionElement).value === id), CLUSTER);
  await page.getByLabel("Cluster").selectOption(CLUSTER);
  await page.getByLabel("Default namespace").fill(NS);
  await page.getByLabel(/^Manifests/).fill(manifest);
  const apply = page.getByRole("button", { name: "Apply", exact: true });
  assert.equal(await apply.isDisabled(), true, "Apply is disabled before a dry run");
  await page.getByRole("button", { name: "Dry run" }).click();
  await page.getByRole("heading", { name: "Dry run: what would happen" }).waitFor();
  assert.deepEqual(await applyResults(page), [[kind, name, "created"]]);
  assert.equal(exists(), false, `the dry run created ${kind} ${name} (kubectl)`);
  await page.waitForFunction(() => !(document.querySelector("button.primary") as HTMLButtonElement | null)?.disabled);
  await apply.click();
  await page.getByRole("heading", { name: "Applied" }).waitFor();
  assert.deepEqual(await applyResults(page), [[kind, name, "created"]]);
  assert.equal(exists(), true, `kubectl does not see ${kind} ${name}`);
}

/** The Apply page's result rows as [kind, namespace/name, outcome]. */
async function applyResults(page: Page): Promise<string[][]> {
  const table = page.getByTestId("apply-results");
  await table.waitFor();
  return table.locator("tbody tr").evaluateAll((rows) =>
    rows.map((r) => {
      const c = [...r.children].map((x) => (x as HTMLElement).innerText.trim());
      return [c[1] ?? "", c[2] ?? "", c[3] ?? ""];
    }),
  );
}

step("Apply YAML: the namespace, then a Deployment in it, each dry run first (kubectl: not there) then applied (kubectl: there)", async () => {
  await dryRunThenApply(`apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${NS}\n`, "Namespace", NS, () => kubeExists("namespace", NS));
  const deployment = [
    "apiVersion: apps/v1",
    "kind: Deployment",
    "metadata:",
    `  name: ${APP}`,
    "spec:",
    "  replicas: 1",
    `  selector: {matchLabels: {app: ${APP}}}`,
    "  template:",
    `    metadata: {labels: {app: ${APP}}}`,
    "    spec:",
    `      containers: [{name: ${APP}, image: registry.invalid/flotilla/console:1}]`,
    "      tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]",
    "",
  ].join("\n");
  await dryRunThenApply(deployment, "Deployment", `${NS}/${APP}`, () => kubeExists("-n", NS, "deployment", APP));
});

/** The Deployment's row on the cluster's workloads tab. */
const workloadRow = () => main.page.locator(`tr[data-workload="${NS}/${APP}"]`);

const SCALED = / to 2\b/;

step("the events tab is open and live before the scale", async () => {
  events = await newPage(browser);
  await enforceCsp(events.context);
  await signIn(events.page);
  await go(events.page, `clusters/${CLUSTER}/events?namespace=${NS}`);
  await events.page.getByText("Live: new events appear at the top.").waitFor();
  // Set in the page: still there at the end means the page was never reloaded.
  await events.page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
  assert.equal(await events.page.locator("table.events tbody tr").filter({ hasText: SCALED }).count(), 0, "a scale to 2 is listed before the scale");
});

step("scale it to 2 on the workloads tab (kubectl: spec.replicas 2)", async () => {
  const { page } = main;
  await go(page, `clusters/${CLUSTER}`);
  await page.getByRole("navigation", { name: "Cluster sections" }).getByRole("link", { name: "Workloads" }).click();
  const filter = page.getByRole("search", { name: "Filter" });
  await filter.getByLabel("Namespace").fill(NS);
  await filter.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL((u) => u.hash.includes(`namespace=${NS}`));
  const row = workloadRow();
  await eventually("the Deployment to be ready (1/1)", async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    return (await row.locator('[data-col="ready"]').textContent({ timeout: 5000 }).catch(() => ""))?.trim() === "1/1";
  });
  await row.getByLabel(`Replicas of ${APP}`).fill("2");
  await row.getByRole("button", { name: `Scale ${APP}` }).click();
  await page.getByRole("status").getByText(`${APP} scaled to 2.`).waitFor();
  assert.equal(kubectl(["-n", NS, "get", "deployment", APP, "-o", "jsonpath={.spec.replicas}"]), "2");
  await eventually("2/2 on the page", async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    return (await row.locator('[data-col="ready"]').textContent())?.trim() === "2/2";
  });
});

step("its logs: a line written now appears", async () => {
  // Each pod's log is a file of its own (a KWOK Logs object): what the page shows is what the test wrote.
  const pods = await eventually("the 2 pods scheduled", () => (podsOf(NS, APP).length === 2 ? podsOf(NS, APP) : undefined), 90_000);
  const logs = [];
  for (const pod of pods) logs.push(await podLog(NS, pod));
  const { page } = main;
  await workloadRow().getByRole("link", { name: `Logs of ${APP}` }).click();
  await page.waitForURL((u) => u.hash.startsWith("#/logs?") && u.hash.includes(`workload=${APP}`));
  await page.getByTestId("stream-state").filter({ hasText: "Streaming" }).waitFor({ timeout: 30_000 });
  const line = uniqueId("written-during-the-test");
  present(logs[1], "the second pod's log").write(line);
  const row = page.locator(".log-lines .vlist-row", { hasText: line });
  await row.first().waitFor({ timeout: 30_000 });
  assert.equal(await row.first().locator(".log-pod").innerText(), pods[1], "the line is shown as the second pod's");
});

step("the events tab shows the scale event arrive, without a reload", async () => {
  // The API server's own event for the scale, then the same on the page opened before it.
  const message = await eventually("kubectl to list the scale event", () =>
    kubectl(["-n", NS, "get", "events", "--field-selector", "reason=ScalingReplicaSet", "-o", "jsonpath={.items[*].message}"])
      .split(/(?<=\d)\s(?=Scaled)/)
      .find((m) => SCALED.test(m)),
  );
  await events.page.locator("table.events tbody tr").filter({ hasText: message.trim() }).first().waitFor({ timeout: 30_000 });
  assert.equal(await events.page.evaluate(() => (window as unknown as { marker?: number }).marker), 42, "the events page was reloaded");
});

step("create a cluster at the ACK simulator through the form (credential added there) and watch its operation finish", async () => {
  const { page } = main;
  ackBefore = await simClusters("ACK");
  await go(page, "clusters");
  await page.getByRole("link", { name: "Create at a vendor" }).click();
  await page.getByLabel("Provider").selectOption("ack");
  await page.getByRole("button", { name: "Add a credential" }).click();
  await page.getByLabel("Credential id").fill(ACK_CREDENTIAL);
  await page.getByLabel("Access key id").fill(must("FLOTILLA_SIM_ACK_ACCESS_KEY_ID"));
  await page.getByLabel("Access key secret").fill(must("FLOTILLA_SIM_ACK_ACCESS_KEY_SECRET"));
  await page.getByRole("button", { name: "Save credential" }).click();
  await page.waitForFunction((c) => (document.querySelector('select[name="credential"]') as HTMLSelectElement | null)?.value === c, ACK_CREDENTIAL);
  await page.getByLabel("Region").fill(must("FLOTILLA_SIM_ACK_REGION"));
  await page.getByLabel("Kubernetes version").fill(must("FLOTILLA_SIM_ACK_KUBERNETES_VERSION"));
  await page.getByLabel("Cluster type").selectOption(must("FLOTILLA_SIM_ACK_CLUSTER_TYPE"));
  await page.getByLabel("Cluster spec").selectOption(must("FLOTILLA_SIM_ACK_CLUSTER_SPEC"));
  await page.getByLabel("Cluster id (optional)").fill(ACK_CLUSTER);
  await page.getByRole("button", { name: "Validate" }).click();
  await page.getByRole("status").filter({ hasText: "Validated: nothing created yet" }).first().waitFor();
  assert.equal((await simClusters("ACK")).created, ackBefore.created, "validating created a cluster at the simulator");
  await page.getByRole("button", { name: "Create", exact: true }).click();
  await page.getByRole("heading", { name: new RegExp(`Creating ${ACK_CLUSTER} at ack`) }).waitFor();

  // The operation's own page, followed until it says succeeded.
  await page.locator(".operation h2 a").click();
  await page.waitForURL((u) => u.hash.startsWith("#/operations/"));
  const operationId = decodeURIComponent(new URL(page.url()).hash.slice("#/operations/".length));
  const state = page.getByTestId("op-state");
  const seen = new Set<string>();
  await eventually(
    "the operation page to say succeeded",
    async () => {
      const s = ((await state.textContent({ timeout: 5000 }).catch(() => "")) ?? "").trim();
      if (s) seen.add(s);
      return s === "succeeded";
    },
    90_000,
  );
  assert.ok(!seen.has("failed"), `states shown: ${[...seen].join(", ")}`);
  const op = present((await api.operations.getOperation({ operationId })).operation, "the operation");
  assert.equal(op.state, v1.OperationState.SUCCEEDED);
  assert.ok((await page.locator("dl.op-facts").innerText()).includes(`clusters/${ACK_CLUSTER}`));

  // The simulator's own state: exactly one new cluster, running, the one the clusters list names.
  const afterCreate = await simClusters("ACK");
  assert.equal(afterCreate.created, ackBefore.created + 1, "one cluster was created at the simulator");
  const fresh = afterCreate.clusters.filter((c) => !ackBefore.clusters.some((b) => b.id === c.id));
  assert.equal(fresh.length, 1);
  assert.equal(fresh[0]?.state, "running");
  ackVendorId = fresh[0]?.id ?? "";
  await go(page, "clusters");
  const row = page.locator(`tr[data-cluster="${ACK_CLUSTER}"]`);
  await row.waitFor();
  assert.equal(await row.locator("[data-vendor-id]").getAttribute("data-vendor-id"), ackVendorId, "the row names the simulator's cluster");
});

step("Admin: a second token signs in a second console; revoked from the first, the second is signed out with the reason", async () => {
  const { page } = main;
  const other = await newPage(browser);
  try {
    await enforceCsp(other.context);
    await go(page, "admin/tokens");
    await page.getByLabel("Name").fill(TOKEN);
    await page.getByLabel("Role").selectOption({ label: "viewer" });
    await page.getByRole("button", { name: "Create token" }).click();
    const secretBox = page.getByTestId("token-secret");
    await secretBox.waitFor();
    const secret = (await secretBox.innerText()).trim();
    assert.match(secret, /^flt_/);
    await page.getByRole("button", { name: "Done" }).click();

    await signIn(other.page, secret);
    await go(other.page, "operations");
    await other.page.getByRole("heading", { name: "Operations" }).waitFor();

    const row = page.locator(`tr[data-token="${TOKEN}"]`);
    await row.getByRole("button", { name: `Revoke ${TOKEN}` }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel(/to confirm/).fill(TOKEN);
    await dialog.getByRole("button", { name: "Revoke token" }).click();
    await page.getByText(`Token ${TOKEN} revoked`).waitFor();
    const listed = (await api.admin.listApiTokens({ pageSize: 1000, showRevoked: true })).tokens.find((t) => t.name === TOKEN);
    assert.ok(listed?.revokeTime, "the server has the token revoked");

    // The second console's next call is refused: it is back at sign-in, saying why.
    await go(other.page, "clusters");
    const notice = other.page.getByRole("status").filter({ hasText: "signed out" });
    await notice.waitFor();
    const text = await notice.innerText();
    assert.match(text, /revoked/);
    assert.ok(text.includes(TOKEN), text);
    await other.page.getByLabel("API token").waitFor();
    assert.equal(await other.page.evaluate(() => sessionStorage.getItem("flotilla.token")), null);
    assert.deepEqual(other.problems, []);
  } finally {
    await other.context.close();
  }
});

step("clean up: namespace, both clusters, the vendor cluster, the credential and the token are gone", async () => {
  await cleanUp();
  assert.equal(await clusterExists(CLUSTER), false, `${CLUSTER} is still there`);
  assert.equal(await clusterExists(ACK_CLUSTER), false, `${ACK_CLUSTER} is still there`);
  assert.ok(!(await simClusters("ACK")).clusters.some((c) => c.id === ackVendorId), `the simulator still has ${ackVendorId}`);
  const credentials = (await api.credentials.listCredentials({ pageSize: 1000 })).credentials;
  assert.ok(!credentials.some((c) => c.id === ACK_CREDENTIAL), `${ACK_CREDENTIAL} is still there`);
  const phase = kubeExists("namespace", NS) ? kubectl(["get", "namespace", NS, "-o", "jsonpath={.status.phase}"]) : "gone";
  assert.ok(phase === "gone" || phase === "Terminating", `namespace ${NS}: ${phase}`);
});
