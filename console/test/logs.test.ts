// Logs: a pod's lines, one written during the test arriving in a follow; a workload's lines from
// two pods, coloured differently and named; pause/resume; the filter; the download; the pickers;
// and the rate the page sustains (logs-perf.test.ts). Each pod's log is its own file (a KWOK
// Logs object), so what the page must show is exactly what this test wrote.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { Browser, Page } from "playwright-core";
import { checkPage, go, launch, newPage, signIn, uniqueId } from "./harness.js";
import { syntheticFeed, unavailableFirst } from "./logs-synthetic.js";
import { importTestCluster } from "./api.js";
import { cleanupLogs, enforceCsp, podLog, podsOf, type PodLog } from "./logs-fixture.js";
import { eventually, kubectl } from "./support.js";

let browser: Browser;
const clusterId = uniqueId("con-logs");
const namespace = uniqueId("con-logs");
const app = "web";
const undo: (() => Promise<unknown> | unknown)[] = [];
let pods: string[] = [];
const logs = new Map<string, PodLog>();

before(async () => {
  browser = await launch();
  undo.push(await importTestCluster(clusterId, { suite: "console-logs" }));
  kubectl(["create", "namespace", namespace]);
  undo.push(() => cleanupLogs(namespace));
  undo.push(() => kubectl(["delete", "namespace", namespace, "--wait=false", "--ignore-not-found"]));
  kubectl(
    ["-n", namespace, "create", "deployment", app, "--replicas=2", "--image=registry.invalid/flotilla/console:1"],
  );
  pods = await eventually(
    "two scheduled pods",
    () => {
      const p = podsOf(namespace, app);
      return p.length === 2 ? p : undefined;
    },
    90_000,
  );
  for (const p of pods) {
    const log = await podLog(namespace, p);
    log.write(`first line of ${p}`, `second line of ${p}`);
    logs.set(p, log);
  }
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

function log(pod: string): PodLog {
  const l = logs.get(pod);
  assert.ok(l, `no log file for ${pod}`);
  return l;
}

/** The text of the rendered rows (only the visible ones are in the DOM). */
function rows(page: Page): Promise<string[]> {
  return page.locator(".log-lines .vlist-row").evaluateAll((els) => els.map((e) => (e as HTMLElement).innerText));
}

async function seeLine(page: Page, text: string): Promise<void> {
  await page.locator(".log-lines .vlist-row", { hasText: text }).first().waitFor({ timeout: 30_000 });
}

async function streaming(page: Page): Promise<void> {
  await page.getByTestId("stream-state").filter({ hasText: "Streaming" }).waitFor({ timeout: 30_000 });
}

test("a pod's logs: the lines so far, then a line written now arrives with follow on", async () => {
  const { context, page, problems } = await newPage(browser);
  await enforceCsp(context);
  try {
    const [pod = ""] = pods;
    await signIn(page);
    await go(page, `logs?cluster=${clusterId}&namespace=${namespace}&pod=${pod}`);
    await seeLine(page, `second line of ${pod}`);
    assert.deepEqual(await rows(page), [`first line of ${pod}`, `second line of ${pod}`]);
    await streaming(page);
    const now = uniqueId("written-now");
    log(pod).write(now);
    await seeLine(page, now);
    assert.deepEqual((await rows(page)).slice(-1), [now]);
    assert.match(await page.getByTestId("log-count").innerText(), /^3 lines shown/);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("the pickers: cluster, namespace and pod chosen from the API's lists", async () => {
  const { context, page } = await newPage(browser);
  try {
    const [, pod = ""] = pods;
    await signIn(page);
    await go(page, "logs");
    await page.waitForFunction((id) => [...document.querySelectorAll("#pick-cluster option")].some((o) => (o as HTMLOptionElement).value === id), clusterId);
    await page.getByLabel("Cluster").selectOption(clusterId);
    await page.waitForFunction((ns) => [...document.querySelectorAll("#pick-namespace option")].some((o) => (o as HTMLOptionElement).value === ns), namespace);
    await page.getByLabel("Namespace").selectOption(namespace);
    await page.waitForFunction((p) => [...document.querySelectorAll("#pick-source option")].some((o) => (o as HTMLOptionElement).value === `pod:${p}`), pod);
    // Both pods and the Deployment are offered, as kubectl lists them.
    const offered = await page.locator("#pick-source option").evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    assert.deepEqual(offered.filter((v) => v.startsWith("pod:")).sort(), pods.map((p) => `pod:${p}`));
    assert.ok(offered.includes(`workload:deployment:${app}`), `no deployment among ${offered.join(", ")}`);
    await page.getByLabel("Pod or workload").selectOption(`pod:${pod}`);
    await seeLine(page, `first line of ${pod}`);
    assert.match(page.url(), new RegExp(`#/logs\\?cluster=${clusterId}&namespace=${namespace}&pod=${pod}$`));
    // The container choice offers the pod's containers, as kubectl lists them.
    const containers = kubectl(["-n", namespace, "get", "pod", pod, "-o", "jsonpath={.spec.containers[*].name}"]).split(" ");
    await page.waitForFunction((n) => document.querySelectorAll("#log-container option").length === n + 1, containers.length);
    const choices = await page.locator("#log-container option").evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    assert.deepEqual(choices.slice(1), containers.sort());
    await page.getByLabel("Container").selectOption(containers[0] ?? "");
    await page.waitForURL(new RegExp(`&container=${containers[0]}$`));
    await seeLine(page, `first line of ${pod}`);
  } finally {
    await context.close();
  }
});

test("a workload's logs: both pods' lines, coloured differently and named", async () => {
  const { context, page, problems } = await newPage(browser);
  await enforceCsp(context);
  try {
    const [a = "", b = ""] = pods;
    await signIn(page);
    await go(page, `logs?cluster=${clusterId}&namespace=${namespace}&kind=deployment&workload=${app}`);
    await seeLine(page, `second line of ${a}`);
    await seeLine(page, `second line of ${b}`);
    await streaming(page);
    const fromA = uniqueId("from-a");
    const fromB = uniqueId("from-b");
    log(a).write(fromA);
    log(b).write(fromB);
    await seeLine(page, fromA);
    await seeLine(page, fromB);
    const row = async (text: string) =>
      page.locator(".log-lines .vlist-row", { hasText: text }).evaluate((e) => ({
        pod: (e.querySelector(".log-pod") as HTMLElement).innerText,
        colourClass: [...e.classList].find((c) => c.startsWith("pod-c")) ?? "",
        colour: getComputedStyle(e.querySelector(".log-pod") as Element).color,
      }));
    const ra = await row(fromA);
    const rb = await row(fromB);
    assert.equal(ra.pod, a);
    assert.equal(rb.pod, b);
    assert.notEqual(ra.colourClass, rb.colourClass);
    assert.notEqual(ra.colour, rb.colour, "the two pods' names are drawn in the same colour");
    // Every row of a pod has that pod's colour.
    const classes = await page.locator(".log-lines .vlist-row").evaluateAll((els) =>
      els.map((e) => [(e.querySelector(".log-pod") as HTMLElement | null)?.innerText ?? "", [...e.classList].find((c) => c.startsWith("pod-c")) ?? ""]),
    );
    for (const [pod, cls] of classes) assert.equal(cls, pod === a ? ra.colourClass : rb.colourClass, `row of ${pod}`);
    const legend = await page.getByRole("list", { name: "Pods in this stream" }).locator("li").allInnerTexts();
    assert.deepEqual(legend.sort(), [a, b].sort());
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("pause holds new lines back (and counts them), resume shows them; the filter; the download", async () => {
  const { context, page, problems } = await newPage(browser);
  await enforceCsp(context);
  try {
    const [pod = ""] = pods;
    await signIn(page);
    await go(page, `logs?cluster=${clusterId}&namespace=${namespace}&pod=${pod}`);
    await streaming(page);
    await seeLine(page, `second line of ${pod}`);
    const before = await rows(page);

    await page.getByRole("button", { name: "Pause" }).click();
    const held = [uniqueId("held-1"), uniqueId("held-2"), uniqueId("held-3")];
    log(pod).write(...held);
    await page.getByTestId("log-waiting").filter({ hasText: "3 new lines waiting" }).waitFor({ timeout: 30_000 });
    assert.deepEqual(await rows(page), before, "lines were rendered while paused");
    await page.getByRole("button", { name: "Resume" }).click();
    await seeLine(page, held[2] ?? "");
    assert.deepEqual((await rows(page)).slice(-3), held);
    assert.equal(await page.getByTestId("log-waiting").count(), 0);

    // The filter shows only matching lines, and says of how many.
    await page.getByLabel("Filter").fill("held-");
    await page.waitForFunction(() => document.querySelectorAll(".log-lines .vlist-row").length === 3);
    assert.deepEqual(await rows(page), held);
    const all = before.length + held.length;
    assert.equal(await page.getByTestId("log-count").innerText(), `3 lines shown (of ${all})`);

    // The download is what is shown: the three filtered lines.
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download" }).click()]);
    assert.equal(download.suggestedFilename(), `${pod}.log`);
    assert.ok(download.url().startsWith("blob:"), `downloaded from ${download.url()}`);
    const file = await download.path();
    assert.equal(readFileSync(file, "utf8"), `${held.join("\n")}\n`);
    assert.deepEqual(problems, [], "the blob: download broke the CSP");
  } finally {
    await context.close();
  }
});

test("at most 100,000 lines are kept: the oldest are dropped, and the page says how many", async () => {
  const { context, page, problems } = await newPage(browser);
  try {
    // 110,000 lines from a synthetic stream in the browser (a pod log file would take minutes).
    await context.addInitScript(syntheticFeed, { rate: 50_000, total: 110_000 });
    await signIn(page);
    await go(page, `logs?cluster=${clusterId}&namespace=${namespace}&pod=synthetic-feed`);
    await page.getByTestId("log-dropped").waitFor({ timeout: 60_000 });
    // Once all 110,000 have arrived (the count reaches 100,000 before the last ones come).
    await page.getByTestId("log-dropped").filter({ hasText: /^10,000 oldest lines dropped/ }).waitFor({ timeout: 60_000 });
    assert.equal(await page.getByTestId("log-dropped").innerText(), "10,000 oldest lines dropped (only the last 100,000 are kept)");
    assert.equal(await page.getByTestId("log-count").innerText(), "100,000 lines shown");
    // The first line kept is the 10,001st sent (numbered from 0).
    await page.getByRole("region", { name: "Log lines" }).evaluate((el) => (el.scrollTop = 0));
    await page.locator(".log-lines .vlist-row", { hasText: /^synthetic line 10000 / }).waitFor();
    assert.match((await rows(page))[0] ?? "", /^synthetic line 10000 /);
    // Back to the end (the stream has ended: no new line will re-render the list).
    await page.getByRole("button", { name: "Jump to end" }).click();
    await page.locator(".log-lines .vlist-row", { hasText: /^synthetic line 109999 / }).waitFor();
    assert.match((await rows(page)).at(-1) ?? "", /^synthetic line 109999 /);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("stream errors: NOT_FOUND is shown and not retried; UNAVAILABLE says when it retries, then streams", async () => {
  const { context, page } = await newPage(browser);
  try {
    const [pod = ""] = pods;
    await context.addInitScript(unavailableFirst, { failures: 1 });
    await signIn(page);
    await go(page, `logs?cluster=${clusterId}&namespace=${namespace}&pod=${pod}`);
    const box = page.locator(".error-box");
    await box.waitFor();
    const unavailable = await box.innerText();
    assert.match(unavailable, /Unavailable/);
    assert.match(unavailable, /the server is restarting/);
    assert.match(unavailable, /Trying again in \d+ s/);
    assert.equal(await page.getByTestId("stream-state").innerText(), "Reconnecting…");
    // The retry reaches the server: the pod's lines arrive and the error goes away.
    await seeLine(page, `first line of ${pod}`);
    await box.waitFor({ state: "detached" });

    const missing = uniqueId("no-such-pod");
    assert.equal(kubectl(["-n", namespace, "get", "pods", "-o", "name"]).includes(missing), false);
    await go(page, `logs?cluster=${clusterId}&namespace=${namespace}&pod=${missing}`);
    await page.getByTestId("stream-state").filter({ hasText: "The stream failed" }).waitFor({ timeout: 30_000 });
    const notFound = await box.innerText();
    assert.match(notFound, /NotFound/);
    assert.match(notFound, new RegExp(missing));
    assert.doesNotMatch(notFound, /Trying again/);
  } finally {
    await context.close();
  }
});

test("options: tail lines, previous instance, a since the page cannot send", async () => {
  const { context, page } = await newPage(browser);
  try {
    const [pod = ""] = pods;
    await signIn(page);
    await go(page, `logs?cluster=${clusterId}&namespace=${namespace}&pod=${pod}`);
    await seeLine(page, `first line of ${pod}`);
    // Tail 2: the last two lines of the file KWOK serves (read from disk, not from the page).
    const file = readFileSync(log(pod).path, "utf8").trimEnd().split("\n");
    const lastTwo = file.slice(-2).map((l) => l.split(" stdout F ")[1]);
    await page.getByLabel("Tail lines").fill("2");
    await page.getByLabel("Tail lines").press("Enter");
    await page.waitForFunction(() => document.querySelector("[data-testid=log-count]")?.textContent === "2 lines shown");
    assert.deepEqual(await rows(page), lastTwo);
    // The previous instance's log is the other file of the KWOK Logs object.
    await page.getByLabel("Previous instance").check();
    await seeLine(page, `previous log of ${namespace}/${pod}`);
    assert.deepEqual(await rows(page), [`previous log of ${namespace}/${pod}`]);
    await page.getByLabel("Previous instance").uncheck();
    // Timestamps: each line starts with the time Kubernetes recorded (the CRI line's, on disk).
    await page.getByLabel("Timestamps").check();
    await page.waitForFunction(() => /^\d{4}-/.test(document.querySelector(".log-lines .vlist-row")?.textContent ?? ""));
    const stamped = await rows(page);
    assert.equal(stamped.length, 2);
    stamped.forEach((row, i) => {
      const [time = "", text = ""] = (file.slice(-2)[i] ?? "").split(" stdout F ");
      const m = /^(\S+) (.*)$/.exec(row);
      assert.ok(m, `no timestamp in ${row}`);
      assert.equal(m[2], text);
      assert.equal(Date.parse(m[1] ?? ""), Date.parse(time), `${m[1]} is not the line's time ${time}`);
    });
    await page.getByLabel("Timestamps").uncheck();
    // A since that is neither seconds nor a time is refused before anything is sent.
    await page.getByLabel("Since").fill("yesterday-ish");
    await page.getByLabel("Since").press("Enter");
    assert.match(await page.locator(".logs-page > .field-error").innerText(), /Since is a number of seconds or a time/);
    assert.equal(await page.getByLabel("Since").getAttribute("aria-invalid"), "true");
    assert.equal(await page.locator(".log-lines").count(), 0, "a stream ran with an invalid since");
  } finally {
    await context.close();
  }
});

test("by keyboard: pause and resume with Space, then Tab reaches the lines; focus is visible", async () => {
  const { context, page } = await newPage(browser);
  try {
    const [pod = ""] = pods;
    await signIn(page);
    await go(page, `logs?cluster=${clusterId}&namespace=${namespace}&pod=${pod}`);
    await seeLine(page, `first line of ${pod}`);
    await page.getByLabel("Since").focus();
    const focused = async () =>
      page.evaluate(() => ({
        text: document.activeElement?.textContent ?? "",
        label: document.activeElement?.getAttribute("aria-label") ?? "",
        outline: getComputedStyle(document.activeElement as Element).outlineStyle,
      }));
    // Since -> Apply options -> Pause.
    await page.keyboard.press("Tab");
    await page.keyboard.press("Tab");
    const pause = await focused();
    assert.equal(pause.text, "Pause");
    assert.notEqual(pause.outline, "none", "focus is not visible on Pause");
    await page.keyboard.press("Space");
    await page.getByRole("button", { name: "Resume" }).waitFor();
    await page.keyboard.press("Space");
    await page.getByRole("button", { name: "Pause" }).waitFor();
    // Filter, Download, Clear, Jump to end, then the lines.
    for (let i = 0; i < 5; i++) await page.keyboard.press("Tab");
    const region = await focused();
    assert.equal(region.label, "Log lines");
    assert.notEqual(region.outline, "none", "focus is not visible on the log lines");
  } finally {
    await context.close();
  }
});

test("logs page: accessible at both sizes", async () => {
  await checkPage(browser, "logs", async (page) => {
    await go(page, `logs?cluster=${clusterId}&namespace=${namespace}&kind=deployment&workload=${app}`);
    await page.locator(".log-lines .vlist-row", { hasText: "second line of" }).first().waitFor();
  });
});
