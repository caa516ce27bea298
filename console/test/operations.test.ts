// Operations: a CreateCluster at the ACK simulator (started from Node) is followed in the detail
// view step by step until it succeeds, and the page's final state is compared with GetOperation
// and the simulator's own state; a failing create shows the vendor's code and a Retry button;
// the list filters by resource and type as ListOperations does.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { checkPage, go, launch, must, newPage, signIn, uniqueId } from "./harness.js";
import { api, v1 } from "./api.js";
import { eventually, present, simClusters } from "./support.js";

const { SUCCEEDED, FAILED } = v1.OperationState;
let browser: Browser;
const clusters: string[] = [];
const credentials: string[] = [];

before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
  // Destroy what the tests created at the simulator, then forget the credentials.
  for (const id of clusters) {
    const res = await api.clusters.deleteCluster({ clusterId: id, destroy: true }).catch(() => api.clusters.deleteCluster({ clusterId: id }).catch(() => undefined));
    const operationId = res?.operation?.id;
    if (operationId) {
      await eventually(`${id}'s delete to finish`, async () => ((await api.operations.getOperation({ operationId })).operation?.state ?? 0) >= SUCCEEDED, 60_000).catch(() => undefined);
    }
  }
  for (const id of credentials) await api.credentials.deleteCredential({ credentialId: id }).catch(() => undefined);
});

/** CreateCluster at the ACK simulator (the client-env header's minimal request). */
async function createAckCluster(keyId: string, keySecret: string, id = uniqueId("ops-ack")): Promise<{ clusterId: string; operationId: string }> {
  await api.credentials.createCredential({
    credentialId: id,
    provider: "ack",
    secret: { secret: { case: "accessKey", value: { accessKeyId: keyId, accessKeySecret: keySecret } } },
  });
  credentials.push(id);
  const res = await api.clusters.createCluster({
    clusterId: id,
    provider: "ack",
    spec: {
      region: must("FLOTILLA_SIM_ACK_REGION"),
      credentialId: id,
      kubernetesVersion: must("FLOTILLA_SIM_ACK_KUBERNETES_VERSION"),
      providerConfig: { case: "ack", value: { clusterType: must("FLOTILLA_SIM_ACK_CLUSTER_TYPE"), clusterSpec: must("FLOTILLA_SIM_ACK_CLUSTER_SPEC") } },
    },
  });
  clusters.push(id);
  return { clusterId: id, operationId: present(res.operation, "CreateCluster's operation").id };
}

interface Snapshot {
  state: string;
  progress: string;
  steps: string[];
  cancel: boolean;
  retry: boolean;
}

async function snapshot(page: Page): Promise<Snapshot> {
  return page.evaluate(() => {
    const buttons = [...document.querySelectorAll("button")].map((b) => b.textContent ?? "");
    return {
      state: document.querySelector("[data-testid=op-state]")?.textContent ?? "",
      progress: (document.querySelector("progress") as HTMLProgressElement | null)?.value.toString() ?? "",
      steps: [...document.querySelectorAll("tr[data-step]")].map((r) => `${(r as HTMLElement).dataset.step}:${(r as HTMLTableRowElement).cells[1]?.textContent}`),
      cancel: buttons.includes("Cancel operation"),
      retry: buttons.includes("Retry operation"),
    };
  });
}

test("the detail view follows a CreateCluster step by step until it succeeds, as GetOperation and the simulator say", async () => {
  const { context, page, problems } = await newPage(browser);
  try {
    await signIn(page);
    const { clusterId, operationId } = await createAckCluster(must("FLOTILLA_SIM_ACK_ACCESS_KEY_ID"), must("FLOTILLA_SIM_ACK_ACCESS_KEY_SECRET"));
    await go(page, `operations/${operationId}`);
    const seen: Snapshot[] = [];
    await eventually(
      "the page to show the operation succeeded",
      async () => {
        const s = await snapshot(page);
        const last = seen[seen.length - 1];
        if (!last || JSON.stringify(last) !== JSON.stringify(s)) seen.push(s);
        return s.state === "succeeded" ? s : undefined;
      },
      60_000,
    );
    const states = seen.map((s) => s.state);
    // Live: the page showed the operation running (and a step running) before it succeeded.
    assert.ok(states.includes("running"), `states seen: ${states.join(" → ")}`);
    assert.ok(
      seen.some((s) => s.steps.some((st) => st.endsWith(":running")) && s.steps.some((st) => st.endsWith(":succeeded"))),
      `a step succeeded while the next ran: ${JSON.stringify(seen.map((s) => s.steps))}`,
    );
    // Cancel and retry follow the state: never retry unless failed, never cancel once running.
    for (const s of seen) {
      assert.equal(s.retry, false, `no Retry while ${s.state}`);
      if (s.state !== "pending") assert.equal(s.cancel, false, `no Cancel while ${s.state}`);
    }
    const final = seen[seen.length - 1]!;
    const op = present((await api.operations.getOperation({ operationId })).operation, "the operation");
    assert.equal(op.state, SUCCEEDED);
    assert.equal(final.progress, String(op.progressPercent));
    assert.deepEqual(final.steps, op.steps.map((s) => `${s.id}:succeeded`));
    assert.ok(op.steps.length >= 2, "several steps");
    // The simulator's own state: the vendor cluster Flotilla names is running there.
    const cluster = present((await api.clusters.getCluster({ clusterId })).cluster, "the cluster");
    const sim = await simClusters("ACK");
    assert.equal(sim.clusters.find((c) => c.id === cluster.vendorClusterId)?.state, "running");
    const facts = await page.locator("dl.op-facts").innerText();
    assert.match(facts, /create cluster/);
    assert.ok(facts.includes(`clusters/${clusterId}`));
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("a create the vendor refuses shows its code and message, and Retry (not Cancel); a viewer's retry is refused on the page; an admin's runs it again", async () => {
  const { context, page } = await newPage(browser);
  try {
    await signIn(page);
    const { operationId } = await createAckCluster("LTAIwrongKey", "wrong-secret");
    await go(page, `operations/${operationId}`);
    await eventually("the page to show the operation failed", async () => (await snapshot(page)).state === "failed");
    const op = present((await api.operations.getOperation({ operationId })).operation, "the operation");
    assert.equal(op.state, FAILED);
    const errors = await page.locator(".op-errors").innerText();
    const error = present(op.error, "the operation's error");
    assert.ok(errors.includes(error.vendorCode), `${errors} names ${error.vendorCode}`);
    assert.ok(errors.includes(error.vendorMessage));
    assert.match(errors, /credentials invalid/);
    const s = await snapshot(page);
    assert.equal(s.retry, true);
    assert.equal(s.cancel, false);
    // A viewer sees the same button, but the server refuses it: the page says so, nothing changes.
    const viewerName = uniqueId("ops-viewer");
    const viewer = await api.admin.createApiToken({ name: viewerName, role: v1.Role.VIEWER });
    const second = await newPage(browser);
    try {
      await signIn(second.page, viewer.secret);
      await go(second.page, `operations/${operationId}`);
      await second.page.getByRole("button", { name: "Retry operation" }).click();
      const refused = await second.page.locator(".error-box").filter({ hasText: "The server refused" }).innerText();
      assert.match(refused, /PermissionDenied/);
      assert.equal((await api.operations.getOperation({ operationId })).operation?.attempt, op.attempt, "not retried");
    } finally {
      await second.context.close();
      await api.admin.revokeApiToken({ tokenId: present(viewer.token, "the created token").id });
    }
    await page.getByRole("button", { name: "Retry operation" }).click();
    // The server runs it again (a new attempt) and it fails again: the page follows it.
    const again = await eventually("a second attempt to fail", async () => {
      const o = (await api.operations.getOperation({ operationId })).operation;
      return o && o.attempt > op.attempt && o.state === FAILED ? o : undefined;
    });
    await eventually("the page to show the new attempt", async () => (await page.locator("dl.op-facts").innerText()).includes(`Attempt\n${again.attempt}`), 10_000).catch(async () => {
      assert.fail(`the page shows attempt ${again.attempt}: ${await page.locator("dl.op-facts").innerText()}`);
    });
    await page.getByRole("button", { name: "Retry operation" }).waitFor();
  } finally {
    await context.close();
  }
});

test("the list refreshes by itself and shows an operation's kind, target, state and progress, filtered like ListOperations", async () => {
  const { context, page } = await newPage(browser);
  try {
    const clusterId = uniqueId("ops-list");
    await signIn(page);
    await go(page, "operations");
    await page.getByLabel("Resource").fill(`clusters/${clusterId}`);
    await page.getByRole("button", { name: "Apply" }).click();
    await page.getByText("No operations match.").waitFor();
    // Started after the page loaded: the row arrives and finishes without a reload.
    const { operationId } = await createAckCluster(must("FLOTILLA_SIM_ACK_ACCESS_KEY_ID"), must("FLOTILLA_SIM_ACK_ACCESS_KEY_SECRET"), clusterId);
    const row = page.locator(`tr[data-operation="${operationId}"]`);
    await row.waitFor({ timeout: 15_000 });
    await eventually("the row to show succeeded", async () => (await row.innerText()).includes("succeeded"), 60_000);
    const expected = (await api.operations.listOperations({ resource: `clusters/${clusterId}` })).operations.map((o) => o.id);
    assert.deepEqual(expected, [operationId]);
    assert.deepEqual(await page.locator("tr[data-operation]").evaluateAll((rs) => rs.map((r) => (r as HTMLElement).dataset.operation)), expected);
    const text = await row.innerText();
    assert.match(text, /create cluster/);
    assert.ok(text.includes(`clusters/${clusterId}`));
    assert.match(text, /100%/);
    // Another type: ListOperations has none for this resource, nor has the page.
    await page.getByLabel("Type").selectOption({ label: "delete cluster" });
    await page.getByText("No operations match.").waitFor();
    assert.equal((await api.operations.listOperations({ resource: `clusters/${clusterId}`, types: [2] })).operations.length, 0);
    await row.waitFor({ state: "detached" });
    // States: "unfinished" (any state it can still leave) has it no more; "succeeded" has it.
    await page.getByLabel("Type").selectOption({ label: "any" });
    await page.getByLabel("State").selectOption({ label: "unfinished" });
    await page.getByText("No operations match.").waitFor();
    assert.equal((await api.operations.listOperations({ resource: `clusters/${clusterId}`, states: [1, 2, 4, 6] })).operations.length, 0);
    await page.getByLabel("State").selectOption({ label: "succeeded" });
    await row.waitFor();
  } finally {
    await context.close();
  }
});

test("operations pages: accessible at both sizes", async () => {
  const ops = (await api.operations.listOperations({ pageSize: 1 })).operations;
  await checkPage(browser, "operations", async (page) => {
    await go(page, "operations");
    await page.locator("tr[data-operation]").first().waitFor();
  });
  await checkPage(browser, "operation", async (page) => {
    await go(page, `operations/${present(ops[0], "an operation").id}`);
    await page.locator("[data-testid=op-state]").waitFor();
  });
});
