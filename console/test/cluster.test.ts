// A cluster's page in a real browser against the live server and the test control plane: nodes
// and zones as kubectl sees them, cordon/uncordon (by keyboard), a Deployment's ready/desired and
// scale, the scale event arriving live, a ConfigMap's YAML through the kind picker, a dry-run
// drain with per-pod results streamed in, and every tab's accessibility at both sizes.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { checkPage, go, launch, newPage, signIn, uniqueId } from "./harness.js";
import { clusterExists, detachCluster, importTestCluster } from "./api.js";
import { eventually, kubectl } from "./support.js";

const CLUSTER = uniqueId("ui-cluster");
const NS = uniqueId("ui-ns");
const VALUE = uniqueId("greeting");
let browser: Browser;

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ${NS}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "registry.example/web:1.2.3"}]
      tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: ${NS}}
data: {greeting: "${VALUE}"}
`;

before(async () => {
  browser = await launch();
  await importTestCluster(CLUSTER);
  kubectl(["create", "namespace", NS]);
  kubectl(["apply", "-f", "-"], { input: DEPLOYMENT });
});

after(async () => {
  await browser?.close();
  try {
    kubectl(["delete", "namespace", NS, "--wait=false"]);
  } finally {
    await detachCluster(CLUSTER);
    assert.equal(await clusterExists(CLUSTER), false, "the cluster is gone (NOT_FOUND) after detaching");
  }
});

async function open(tab: string, query = ""): Promise<{ page: Page; close: () => Promise<void>; problems: string[] }> {
  const { context, page, problems } = await newPage(browser);
  await signIn(page);
  await go(page, `clusters/${CLUSTER}/${tab}${query}`);
  return { page, close: () => context.close(), problems };
}

test("nodes: the 3 nodes with the zones kubectl shows; cordon and uncordon by keyboard", async () => {
  const expected = kubectl(["get", "nodes", "-L", "topology.kubernetes.io/zone", "--no-headers"])
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .map((cols) => [cols[0]!, cols[cols.length - 1]!] as const)
    .sort();
  assert.equal(expected.length, 3);
  const { page, close, problems } = await open("nodes");
  try {
    await page.locator("tr[data-node]").nth(2).waitFor();
    const shown = await page.locator("tr[data-node]").evaluateAll((rows) =>
      rows.map((r) => [r.getAttribute("data-node")!, r.querySelector('[data-col="zone"]')!.textContent!.trim()] as const),
    );
    assert.deepEqual(shown.sort(), expected);
    assert.match(await page.locator("tr[data-node]").first().innerText(), /Ready=True/);

    // Keyboard only: Tab to the node's Cordon button, Enter; the focus ring is visible.
    const node = expected[0]![0];
    const unschedulable = () => kubectl(["get", "node", node, "-o", "jsonpath={.spec.unschedulable}"]).trim();
    assert.equal(unschedulable(), "");
    await tabTo(page, `Cordon ${node}`);
    assert.notEqual(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle), "none", "focus is visible");
    await page.keyboard.press("Enter");
    await eventually("kubectl to see the node cordoned", () => unschedulable() === "true");
    await page.locator(`tr[data-node="${node}"] [data-col="schedulable"]`).getByText("no (cordoned)").waitFor();
    await tabTo(page, `Uncordon ${node}`);
    await page.keyboard.press("Space");
    await eventually("kubectl to see the node schedulable again", () => unschedulable() === "");
    await page.locator(`tr[data-node="${node}"] [data-col="schedulable"]`).getByText("yes").waitFor();
    assert.deepEqual(problems, []);
  } finally {
    kubectl(["uncordon", expected[0]![0]]);
    await close();
  }
});

/** Presses Tab until the focused element's accessible label is `label` (at most 80 times). */
async function tabTo(page: Page, label: string): Promise<void> {
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press("Tab");
    const at = await page.evaluate(() => document.activeElement?.getAttribute("aria-label") ?? "");
    if (at === label) return;
  }
  throw new Error(`Tab never reached ${label}`);
}

test("workloads: ready/desired, scale to 3 (kubectl agrees) and the scale event arrives live", async () => {
  const events = await open("events", `?namespace=${NS}`);
  const workloads = await open("workloads", `?namespace=${NS}`);
  try {
    const { page } = workloads;
    const row = page.locator(`tr[data-workload="${NS}/web"]`);
    await eventually("the Deployment to be ready", async () => {
      await page.getByRole("button", { name: "Refresh" }).click();
      return (await row.locator('[data-col="ready"]').textContent({ timeout: 5000 }).catch(() => ""))?.trim() === "1/1";
    });
    assert.match(await row.innerText(), /registry\.example\/web:1\.2\.3/);
    assert.equal(
      await row.getByRole("link", { name: "Logs of web" }).getAttribute("href"),
      `#/logs?cluster=${CLUSTER}&namespace=${NS}&kind=deployment&workload=web`,
    );

    // The events page is live before the change and is never reloaded.
    await events.page.getByText("Live: new events appear at the top.").waitFor();
    await events.page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));

    await row.getByLabel("Replicas of web").fill("3");
    await row.getByRole("button", { name: "Scale web" }).click();
    await page.getByRole("status").getByText("web scaled to 3.").waitFor();
    assert.equal(kubectl(["-n", NS, "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"]), "3");
    await eventually("3/3 in the UI", async () => {
      await page.getByRole("button", { name: "Refresh" }).click();
      return (await row.locator('[data-col="ready"]').textContent())?.trim() === "3/3";
    });

    // The API server's own event for the scale, then the same on the page.
    const message = await eventually("kubectl to list the scale event", () =>
      kubectl(["-n", NS, "get", "events", "--field-selector", "reason=ScalingReplicaSet", "-o", "jsonpath={.items[*].message}"])
        .split(/(?<=\d)\s(?=Scaled)/)
        .find((m) => / to 3\b/.test(m)),
    );
    await events.page.locator("table.events tbody tr").filter({ hasText: message.trim() }).first().waitFor({ timeout: 30_000 });
    assert.equal(await events.page.evaluate(() => (window as unknown as { marker?: number }).marker), 42, "no reload");
    assert.deepEqual([...events.problems, ...workloads.problems], []);
  } finally {
    await events.close();
    await workloads.close();
  }
});

test("resources: pick ConfigMap from the discovery-driven picker and read its YAML", async () => {
  const { page, close, problems } = await open("resources", `?namespace=${NS}`);
  try {
    await page.getByLabel("Search kinds").fill("configmap");
    await page.getByRole("button", { name: "ConfigMap (v1)" }).click();
    await page.locator(`tr[data-object="${NS}/settings"]`).getByRole("button", { name: "settings" }).click();
    const yaml = page.getByLabel("YAML of settings");
    await yaml.waitFor();
    const text = await yaml.innerText();
    // The value as kubectl reads it back, inside the YAML the page shows.
    const stored = kubectl(["-n", NS, "get", "configmap", "settings", "-o", "jsonpath={.data.greeting}"]);
    assert.equal(stored, VALUE);
    assert.match(text, new RegExp(`^data:\\n  greeting: ${stored}$`, "m"));
    assert.match(text, /^kind: ConfigMap$/m);
    // The picker is grouped by API group: apps has Deployment.
    await page.getByLabel("Search kinds").fill("");
    assert.ok(await page.locator(".kind-group", { hasText: "apps" }).getByRole("button", { name: "Deployment (apps/v1)" }).isVisible());
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

test("drain (dry run): per-pod results stream in, the test's pods among them, nothing evicted", async () => {
  // A real drain would evict other tests' pods on this shared control plane (DrainNode has no
  // namespace filter), so this drains with dry_run: the same stream, nothing changed.
  const pods = await eventually("the test's pods to be bound to nodes", () => {
    const out = kubectl(["-n", NS, "get", "pods", "-o", "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName}{\"\\n\"}{end}"]);
    const rows = out.trim().split("\n").filter((l) => /\S+ \S+/.test(l)).map((l) => l.split(" ") as [string, string]);
    return rows.length > 0 ? rows : undefined;
  });
  const [pod, node] = pods[0]!;
  const { page, close, problems } = await open("nodes");
  try {
    await page.getByRole("button", { name: `Drain ${node}` }).click();
    const dialog = page.getByRole("dialog", { name: `Drain node ${node}` });
    assert.ok(await dialog.getByLabel("Dry run (change nothing)").isChecked());
    await dialog.getByLabel(`Type ${node} to confirm`).fill(node);
    await dialog.getByRole("button", { name: "Dry-run drain" }).click();
    const row = dialog.locator(`tr[data-pod="${NS}/${pod}"]`);
    await row.waitFor({ timeout: 60_000 });
    assert.match(await row.innerText(), /would evict/);
    await dialog.locator(".drain-summary").waitFor({ timeout: 60_000 });
    assert.match(await dialog.locator(".drain-summary").innerText(), /dry run: nothing was changed/);
    // Nothing happened: the pod is still there and the node is still schedulable.
    assert.equal(kubectl(["-n", NS, "get", "pod", pod, "-o", "jsonpath={.metadata.name}"]), pod);
    assert.equal(kubectl(["get", "node", node, "-o", "jsonpath={.spec.unschedulable}"]).trim(), "");
    await dialog.getByRole("button", { name: "Close" }).click();
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

test("every tab: accessible at both sizes", async () => {
  const tabs: [string, string, (p: Page) => Promise<void>][] = [
    ["nodes", "", (p) => p.locator("tr[data-node]").first().waitFor()],
    ["workloads", `?namespace=${NS}`, (p) => p.locator(`tr[data-workload="${NS}/web"]`).waitFor()],
    ["pods", `?namespace=${NS}`, (p) => p.locator("tr[data-pod]").first().waitFor()],
    [
      "resources",
      `?namespace=${NS}`,
      async (p) => {
        await p.getByRole("button", { name: "ConfigMap (v1)" }).click();
        await p.locator(`tr[data-object="${NS}/settings"]`).getByRole("button").click();
        await p.getByLabel("YAML of settings").waitFor();
      },
    ],
    ["events", `?namespace=${NS}`, (p) => p.getByText("Live: new events appear at the top.").waitFor()],
  ];
  for (const [tab, query, ready] of tabs) {
    await checkPage(browser, `cluster-${tab}`, async (page) => {
      await go(page, `clusters/${CLUSTER}/${tab}${query}`);
      await page.getByRole("heading", { level: 1 }).waitFor();
      assert.equal(await page.getByRole("navigation", { name: "Cluster sections" }).locator('[aria-current="page"]').innerText(), tab[0]!.toUpperCase() + tab.slice(1));
      await ready(page);
    });
  }
});

test("pods: status, node and a link to each pod's logs", async () => {
  const { page, close } = await open("pods", `?namespace=${NS}`);
  try {
    const expected = kubectl(["-n", NS, "get", "pods", "-o", "jsonpath={range .items[*]}{.metadata.name}={.spec.nodeName}{\"\\n\"}{end}"])
      .trim()
      .split("\n")
      .sort();
    await eventually("every pod listed", async () => (await page.locator("tr[data-pod]").count()) === expected.length || undefined);
    const rows = await page.locator("tr[data-pod]").evaluateAll((trs) =>
      trs.map((tr) => `${tr.getAttribute("data-pod")!.split("/")[1]}=${tr.querySelector('[data-col="node"]')!.textContent}`),
    );
    assert.deepEqual(rows.sort(), expected);
    const first = expected[0]!.split("=")[0]!;
    assert.equal(
      await page.getByRole("link", { name: `Logs of ${first}` }).getAttribute("href"),
      `#/logs?cluster=${CLUSTER}&namespace=${NS}&pod=${first}`,
    );
  } finally {
    await close();
  }
});

test("workloads: restart sets the restart annotation, delete asks for the name and kubectl sees it gone", async () => {
  const { page, close, problems } = await open("workloads", `?namespace=${NS}&kind=Deployment`);
  try {
    const row = page.locator(`tr[data-workload="${NS}/web"]`);
    await row.getByRole("button", { name: "Restart web" }).click();
    await page.getByRole("status").getByText("web is restarting.").waitFor();
    const restartedAt = kubectl([
      "-n", NS, "get", "deployment", "web", "-o",
      "jsonpath={.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}",
    ]);
    assert.ok(!Number.isNaN(Date.parse(restartedAt)), `restartedAt is a time: ${restartedAt}`);

    await row.getByRole("button", { name: "Delete web" }).click();
    const dialog = page.getByRole("dialog", { name: `Delete Deployment ${NS}/web` });
    const confirm = dialog.getByRole("button", { name: "Delete" });
    assert.ok(await confirm.isDisabled(), "nothing is deleted before the name is typed");
    await dialog.getByLabel("Type web to confirm").fill("web");
    await confirm.click();
    await page.getByRole("status").getByText("web deleted.").waitFor();
    await eventually("kubectl to find no Deployment", () =>
      kubectl(["-n", NS, "get", "deployments", "-o", "jsonpath={.items[*].metadata.name}"]).trim() === "" || undefined,
    );
    await page.getByText(`None in ${NS}.`).waitFor();
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
