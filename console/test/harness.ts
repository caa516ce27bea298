// The browser tests' harness: Debian's Chromium driven by playwright-core against a live
// `flotilla serve` (scripts/client-env: the real test control plane and the vendor simulators).
//
// Environment:
//   FLOTILLA_CLIENT_ENV   the env file of `scripts/client-env up` (default <repo>/target/client-env/env)
//   FLOTILLA_CONSOLE_URL  where the console is served (default: FLOTILLA_URL, the server itself)
//   CHROMIUM              the browser (default /usr/bin/chromium)
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
/** console/ (the tests run from console/build/console/test: the build mirrors the repository). */
export const CONSOLE_DIR = resolve(here, "../../..");
export const REPO = resolve(CONSOLE_DIR, "..");
/** Screenshots, axe reports and measurements of this run. */
export const RESULTS = join(CONSOLE_DIR, "test-results");

/** The client-env file's KEY=VALUE lines. */
export function clientEnv(): Record<string, string> {
  const file = process.env.FLOTILLA_CLIENT_ENV ?? join(REPO, "target/client-env/env");
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

export const ENV = clientEnv();
export const CONSOLE_URL = process.env.FLOTILLA_CONSOLE_URL ?? must("FLOTILLA_URL");

export function must(key: string): string {
  const v = ENV[key];
  if (v === undefined || v === "") throw new Error(`${key} is not in the client-env file`);
  return v;
}

/** The two layouts every page is checked at. */
export const SIZES = {
  desktop: { width: 1280, height: 800 },
  phone: { width: 390, height: 844 },
} as const;
export type SizeName = keyof typeof SIZES;

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    // As root, Chromium needs --no-sandbox; the others keep it off this machine's closed network.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
}

/** A page of a fresh context (its own sessionStorage) that records CSP violations and errors. */
export async function newPage(browser: Browser, size: SizeName = "desktop"): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: SIZES[size] });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  return { context, page, problems };
}

/** Opens the console and signs in with `token` (default: the admin token of client-env). */
export async function signIn(page: Page, token = must("FLOTILLA_TOKEN"), path = ""): Promise<void> {
  await page.goto(`${CONSOLE_URL}/${path}`);
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Main" }).waitFor();
}

/** Goes to a hash route (`clusters/prod/nodes`) of the signed-in console. */
export async function go(page: Page, route: string): Promise<void> {
  await page.evaluate((r) => {
    location.hash = `#/${r}`;
  }, route);
}

/**
 * The cluster's row once it is on screen and rendered. Rows off screen skip rendering
 * (content-visibility: auto), and Chromium's innerText of skipped content is empty until a frame
 * after the row comes into view, so a row is read the way a person reads it: scrolled into view.
 * Earlier tests' clusters can push a new row below the fold.
 */
export async function shownRow(page: Page, id: string): Promise<Locator> {
  const r = page.locator(`tr[data-cluster="${id}"]`);
  await r.waitFor();
  await r.scrollIntoViewIfNeeded();
  // The row always shows its name, so empty text means it has not been rendered yet.
  await r.evaluate((el) => new Promise<void>((done) => {
    const check = () => ((el as HTMLElement).innerText.trim() !== "" ? done() : requestAnimationFrame(check));
    check();
  }));
  return r;
}

let axeSource: string | undefined;

/**
 * Runs axe-core on the page (injected through DevTools, which the page's CSP does not govern)
 * and fails on serious or critical violations; the full report goes to test-results/axe.
 */
export async function checkA11y(page: Page, name: string): Promise<void> {
  axeSource ??= readFileSync(join(CONSOLE_DIR, "node_modules/axe-core/axe.min.js"), "utf8");
  await page.evaluate(axeSource);
  const result = (await page.evaluate(`axe.run(document, { resultTypes: ["violations"] })`)) as {
    violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[];
  };
  mkdirSync(join(RESULTS, "axe"), { recursive: true });
  const { writeFileSync } = await import("node:fs");
  writeFileSync(join(RESULTS, "axe", `${name}.json`), JSON.stringify(result.violations, null, 2));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    bad.map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
    [],
    `axe found serious or critical violations on ${name}`,
  );
}

/** A full-page screenshot in test-results/screens/<name>-<size>.png. */
export async function screenshot(page: Page, name: string, size: SizeName): Promise<string> {
  const dir = join(RESULTS, "screens");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}-${size}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Checks one page at both sizes: accessibility (axe) and a screenshot at each. `open` brings a
 * fresh signed-in page to the state to check.
 */
export async function checkPage(browser: Browser, name: string, open: (page: Page) => Promise<void>): Promise<void> {
  for (const size of Object.keys(SIZES) as SizeName[]) {
    const { context, page, problems } = await newPage(browser, size);
    try {
      await signIn(page);
      await open(page);
      await checkA11y(page, `${name}-${size}`);
      await screenshot(page, name, size);
      assert.deepEqual(problems, [], `problems on ${name} at ${size}`);
    } finally {
      await context.close();
    }
  }
}

/** A unique id for things a test creates (the server is shared). */
export function uniqueId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/** Appends a measurement (name, value, unit) to test-results/measurements.jsonl for the note. */
export function measure(name: string, value: number, unit: string): void {
  mkdirSync(RESULTS, { recursive: true });
  const line = JSON.stringify({ name, value, unit, at: new Date().toISOString() });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  void import("node:fs").then((fs) => fs.appendFileSync(join(RESULTS, "measurements.jsonl"), `${line}\n`));
  console.log(`measure: ${name} = ${value} ${unit}`);
}
