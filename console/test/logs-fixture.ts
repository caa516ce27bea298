// What the Logs and Apply tests set up outside the console besides the API (api.ts) and kubectl
// (support.ts): pod log files KWOK serves (a KWOK `Logs` object per pod, so this test's lines
// never mix with other tests' in the shared default.log), and the server's CSP under vite preview.
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";
import { must } from "./harness.js";
import { eventually, kubectl } from "./support.js";

/** A pod's log file: what the test appends is what KWOK serves (and follows) for that pod. */
export class PodLog {
  constructor(readonly path: string) {}

  /** Appends CRI lines (`<time> stdout F <text>`). */
  write(...lines: string[]): void {
    const now = new Date().toISOString();
    appendFileSync(this.path, lines.map((l) => `${now} stdout F ${l}\n`).join(""));
  }
}

/** The pod log directory of a namespace (removed by cleanupLogs). */
function logDir(namespace: string): string {
  return join(must("FLOTILLA_KUBE_POD_LOGS"), "console-tests", namespace);
}

/**
 * Wires `pod`'s logs to a fresh file through a KWOK `Logs` object and waits until the API server
 * serves it (its previous log holds a marker line, as in test-support's pod_logs).
 */
export async function podLog(namespace: string, pod: string): Promise<PodLog> {
  const dir = logDir(namespace);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${pod}.log`);
  const previous = join(dir, `${pod}.previous.log`);
  writeFileSync(file, "");
  const marker = `previous log of ${namespace}/${pod}`;
  writeFileSync(previous, `${new Date().toISOString()} stdout F ${marker}\n`);
  const logs = {
    apiVersion: "kwok.x-k8s.io/v1alpha1",
    kind: "Logs",
    metadata: { name: pod, namespace },
    spec: { logs: [{ logsFile: file, previousLogsFile: previous, follow: true }] },
  };
  kubectl(["apply", "-f", "-"], { input: JSON.stringify(logs) });
  await eventually(`KWOK to serve the logs of ${namespace}/${pod}`, () => kubectl(["-n", namespace, "logs", pod, "--previous"]).includes(marker), 60_000);
  return new PodLog(file);
}

export function cleanupLogs(namespace: string): void {
  rmSync(logDir(namespace), { recursive: true, force: true });
}

/**
 * Serves the console under the server's Content-Security-Policy even when it comes from
 * `vite preview` (which sends none), so CSP violations show up in newPage's `problems`.
 */
export async function enforceCsp(context: BrowserContext): Promise<void> {
  const page = (url: URL) => url.pathname === "/" || url.pathname.endsWith(".html");
  await context.route(page, async (route) => {
    const res = await route.fetch();
    const headers = { ...res.headers() };
    headers["content-security-policy"] ??= "default-src 'self'";
    await route.fulfill({ response: res, headers });
  });
}

/** The scheduled pods of a Deployment's app label, by name. */
export function podsOf(namespace: string, app: string): string[] {
  const out = JSON.parse(kubectl(["-n", namespace, "get", "pods", "-l", `app=${app}`, "-o", "json"])) as {
    items: { metadata: { name: string }; spec: { nodeName?: string } }[];
  };
  return out.items.filter((p) => p.spec.nodeName).map((p) => p.metadata.name).sort();
}

