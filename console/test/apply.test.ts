// Apply YAML: a dry run says what would happen and changes nothing (kubectl), the real apply
// creates the Deployment (kubectl), applying again is "unchanged" (the resourceVersion kubectl
// sees does not move), a broken manifest is refused next to the editor and creates nothing, and
// the whole flow works by keyboard alone.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { checkPage, go, launch, newPage, signIn, uniqueId } from "./harness.js";
import { importTestCluster } from "./api.js";
import { enforceCsp } from "./logs-fixture.js";
import { kubeExists, kubectl } from "./support.js";

let browser: Browser;
const clusterId = uniqueId("con-apply");
const namespace = uniqueId("con-apply");
const undo: (() => Promise<unknown> | unknown)[] = [];

before(async () => {
  browser = await launch();
  undo.push(await importTestCluster(clusterId, { suite: "console-logs" }));
  kubectl(["create", "namespace", namespace]);
  undo.push(() => kubectl(["delete", "namespace", namespace, "--wait=false", "--ignore-not-found"]));
});
after(async () => {
  for (const u of undo.reverse()) {
    try {
      await u();
    } catch (e) {
      console.error(`cleanup: ${String(e)}`);
    }
  }
  await browser?.close();
});

function deployment(name: string, image = "registry.invalid/flotilla/console:1"): string {
  return [
    "apiVersion: apps/v1",
    "kind: Deployment",
    "metadata:",
    `  name: ${name}`,
    "spec:",
    "  replicas: 1",
    "  selector:",
    `    matchLabels: {app: ${name}}`,
    "  template:",
    "    metadata:",
    `      labels: {app: ${name}}`,
    "    spec:",
    `      containers: [{name: main, image: ${image}}]`,
    "",
  ].join("\n");
}

async function openApply(page: Page): Promise<void> {
  await go(page, `apply?cluster=${clusterId}`);
  await page.getByRole("heading", { name: "Apply YAML" }).waitFor();
  // The cluster list has loaded and the route's cluster is chosen.
  await page.waitForFunction((id) => (document.querySelector("#apply-cluster") as HTMLSelectElement | null)?.value === id, clusterId);
}

/** The result table's rows as [kind, namespace/name, outcome]. */
async function results(page: Page): Promise<string[][]> {
  const table = page.getByTestId("apply-results");
  await table.waitFor();
  return table.locator("tbody tr").evaluateAll((rows) =>
    rows.map((r) => {
      const c = [...r.children].map((x) => (x as HTMLElement).innerText.trim());
      return [c[1] ?? "", c[2] ?? "", c[3] ?? ""];
    }),
  );
}

async function fill(page: Page, text: string): Promise<void> {
  await page.getByLabel("Default namespace").fill(namespace);
  await page.getByLabel(/^Manifests/).fill(text);
}

test("dry run changes nothing, apply creates, applying again is unchanged", async () => {
  const { context, page, problems } = await newPage(browser);
  await enforceCsp(context);
  try {
    const name = "web";
    await signIn(page);
    await openApply(page);
    await fill(page, deployment(name));
    const apply = page.getByRole("button", { name: "Apply", exact: true });
    assert.equal(await apply.isDisabled(), true, "Apply is disabled before a dry run");

    await page.getByRole("button", { name: "Dry run" }).click();
    await page.getByRole("heading", { name: "Dry run: what would happen" }).waitFor();
    assert.deepEqual(await results(page), [["Deployment", `${namespace}/${name}`, "created"]]);
    assert.equal(kubeExists("-n", namespace, "deployment", name), false, "the dry run created the Deployment");

    // Changing the text after the dry run asks for a new one.
    await page.getByLabel(/^Manifests/).fill(`${deployment(name)}# edited\n`);
    assert.equal(await apply.isDisabled(), true, "Apply stays disabled after an edit");
    await page.getByLabel(/^Manifests/).fill(deployment(name));
    await page.getByRole("button", { name: "Dry run" }).click();
    await apply.waitFor({ state: "visible" });
    await page.waitForFunction(() => !(document.querySelector("button.primary") as HTMLButtonElement).disabled);

    await apply.click();
    await page.getByRole("heading", { name: "Applied" }).waitFor();
    assert.deepEqual(await results(page), [["Deployment", `${namespace}/${name}`, "created"]]);
    assert.equal(kubeExists("-n", namespace, "deployment", name), true, "kubectl does not see the Deployment");
    const rv = kubectl(["-n", namespace, "get", "deployment", name, "-o", "jsonpath={.metadata.resourceVersion}"]);

    // The same manifest again: the server says unchanged, and the object indeed did not change.
    await page.getByRole("button", { name: "Dry run" }).click();
    await page.getByRole("heading", { name: "Dry run: what would happen" }).waitFor();
    assert.deepEqual(await results(page), [["Deployment", `${namespace}/${name}`, "unchanged"]]);
    await page.waitForFunction(() => !(document.querySelector("button.primary") as HTMLButtonElement).disabled);
    await apply.click();
    await page.getByRole("heading", { name: "Applied" }).waitFor();
    assert.deepEqual(await results(page), [["Deployment", `${namespace}/${name}`, "unchanged"]]);
    assert.equal(kubectl(["-n", namespace, "get", "deployment", name, "-o", "jsonpath={.metadata.resourceVersion}"]), rv);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("a broken document fails the dry run with the server's reason, Apply stays off, nothing is created", async () => {
  const { context, page, problems } = await newPage(browser);
  await enforceCsp(context);
  try {
    const cm = uniqueId("cm");
    await signIn(page);
    await openApply(page);
    // A good ConfigMap first, then a document that is not YAML: nothing may be applied.
    await fill(page, `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${cm}\ndata: {a: b}\n---\nkind: Deployment\nmetadata: [oops\n`);
    await page.getByRole("button", { name: "Dry run" }).click();
    const rows = await results(page);
    assert.deepEqual(rows[0], ["ConfigMap", `${namespace}/${cm}`, "created"]);
    assert.equal(rows[1]?.[2], "failed");
    const reason = await page.locator("tbody tr").nth(1).locator(".apply-reason").innerText();
    assert.match(reason, /not valid YAML.*line 3 column 11/);
    // The failure is next to the editor too (document 2), and the editor is marked invalid.
    const editor = page.getByLabel(/^Manifests/);
    assert.equal(await editor.getAttribute("aria-invalid"), "true");
    const near = await page.locator(".field.invalid .field-error").innerText();
    assert.match(near, /^Document 2: not valid YAML: .*line 3 column 11/);
    assert.equal(await page.getByRole("button", { name: "Apply", exact: true }).isDisabled(), true);
    assert.equal(kubeExists("-n", namespace, "configmap", cm), false, "the dry run created the ConfigMap");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("manifests the API refuses: the code and message in an ErrorBox, the field next to the editor", async () => {
  const { context, page, problems } = await newPage(browser);
  await enforceCsp(context);
  try {
    await signIn(page);
    await openApply(page);
    await fill(page, "# nothing but a comment\n");
    await page.getByRole("button", { name: "Dry run" }).click();
    const box = page.locator(".error-box");
    await box.waitFor();
    const text = await box.innerText();
    assert.match(text, /InvalidArgument/);
    assert.match(text, /manifests: holds no documents/);
    const editor = page.getByLabel(/^Manifests/);
    assert.equal(await editor.getAttribute("aria-invalid"), "true");
    assert.match(await page.locator(".field.invalid .field-error").innerText(), /holds no documents/);
    assert.equal(await page.getByRole("button", { name: "Apply", exact: true }).isDisabled(), true);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("a field another manager owns: the conflict is shown, and forcing takes it over", async () => {
  const { context, page, problems } = await newPage(browser);
  await enforceCsp(context);
  try {
    const cm = uniqueId("owned");
    const manifest = (v: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${cm}\ndata:\n  k: ${v}\n`;
    // Another field manager applies k=v1 first (server-side apply, as a controller would).
    kubectl(["-n", namespace, "apply", "--server-side", "--field-manager=someone-else", "-f", "-"], { input: manifest("v1") });
    await signIn(page);
    await openApply(page);
    await fill(page, manifest("v2"));
    await page.getByRole("button", { name: "Dry run" }).click();
    const [row] = await results(page);
    assert.deepEqual(row?.slice(0, 2), ["ConfigMap", `${namespace}/${cm}`]);
    assert.equal(row?.[2], "failed");
    assert.match(await page.locator("tbody .apply-reason").innerText(), /conflict/i);
    assert.match(await page.locator("tbody .apply-reason").innerText(), /someone-else/);
    assert.equal(await page.getByRole("button", { name: "Apply", exact: true }).isDisabled(), true);

    await page.getByLabel(/force conflicts/).check();
    await page.getByRole("button", { name: "Dry run" }).click();
    await page.waitForFunction(() => document.querySelector("tbody [data-outcome]")?.getAttribute("data-outcome") === "CONFIGURED");
    assert.equal(kubectl(["-n", namespace, "get", "configmap", cm, "-o", "jsonpath={.data.k}"]), "v1", "the dry run changed the ConfigMap");
    await page.waitForFunction(() => !(document.querySelector("button.primary") as HTMLButtonElement).disabled);
    await page.getByRole("button", { name: "Apply", exact: true }).click();
    await page.getByRole("heading", { name: "Applied" }).waitFor();
    assert.deepEqual(await results(page), [["ConfigMap", `${namespace}/${cm}`, "configured"]]);
    assert.equal(kubectl(["-n", namespace, "get", "configmap", cm, "-o", "jsonpath={.data.k}"]), "v2");
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("by keyboard only: indent with Tab, leave with Escape then Tab, dry run and apply", async () => {
  const { context, page } = await newPage(browser);
  try {
    const name = "kb";
    await signIn(page);
    await openApply(page);
    await page.getByLabel("Default namespace").fill(namespace);
    const editor = page.getByLabel(/^Manifests/);
    await editor.fill("");
    // Reach the editor from the namespace field by Tab.
    await page.getByLabel("Default namespace").focus();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.tagName), "TEXTAREA");
    const lines = deployment(name).split("\n");
    // Type the manifest with Tab for each indentation step (two spaces each).
    for (const line of lines) {
      const indent = line.length - line.trimStart().length;
      for (let i = 0; i < indent / 2; i++) await page.keyboard.press("Tab");
      await page.keyboard.type(line.trimStart());
      await page.keyboard.press("Enter");
    }
    assert.equal((await editor.inputValue()).trimEnd(), deployment(name).trimEnd(), "Tab did not indent by two spaces");
    await page.keyboard.press("Escape");
    await page.keyboard.press("Tab");
    // Out of the editor: on the force-conflicts box, then the Dry run button.
    assert.equal(await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.type), "checkbox", "Escape then Tab did not leave the editor");
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => ({
      text: document.activeElement?.textContent,
      outline: getComputedStyle(document.activeElement as Element).outlineStyle,
    }));
    assert.equal(focused.text, "Dry run");
    assert.notEqual(focused.outline, "none", "focus is not visible");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Dry run: what would happen" }).waitFor();
    // Focus moved to the results; Shift+Tab back to Apply (now enabled), Enter applies.
    await page.getByRole("button", { name: "Apply", exact: true }).focus();
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Applied" }).waitFor();
    assert.deepEqual(await results(page), [["Deployment", `${namespace}/${name}`, "created"]]);
    assert.equal(kubeExists("-n", namespace, "deployment", name), true);
  } finally {
    await context.close();
  }
});

test("apply page: accessible at both sizes", async () => {
  await checkPage(browser, "apply", async (page) => {
    await openApply(page);
    await page.getByLabel("Default namespace").fill(namespace);
    await page.getByLabel(/^Manifests/).fill(deployment("a11y"));
    await page.getByRole("button", { name: "Dry run" }).click();
    await page.getByTestId("apply-results").waitFor();
  });
});
