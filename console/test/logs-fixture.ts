// What the Logs and Apply tests set up outside the console: the test cluster imported through
// the API (the TypeScript client's built dist, grpc-web over fetch), kubectl against the test
// control plane, and pod log files KWOK serves (a KWOK `Logs` object per pod, so this test's
// lines never mix with other tests' in the shared default.log).
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { BrowserContext } from "playwright-core";
import { ENV, REPO, must } from "./harness.js";

const CLIENT_DIR = join(REPO, "clients/typescript");

/** The few client calls the tests make (the dist is loaded at run time, outside tsc's rootDir). */
interface TestClient {
  clusters: {
    importCluster(req: unknown): Promise<{ cluster?: { id: string } }>;
    deleteCluster(req: { clusterId: string }): Promise<unknown>;
  };
}

let loaded: Promise<TestClient> | undefined;

/** An admin client of the live server; builds clients/typescript/dist first when it is missing. */
export function apiClient(): Promise<TestClient> {
  loaded ??= (async () => {
    if (!existsSync(join(CLIENT_DIR, "dist/index.js"))) {
      if (!existsSync(join(CLIENT_DIR, "node_modules"))) {
        execFileSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: CLIENT_DIR, stdio: "inherit" });
      }
      execFileSync("npx", ["--no-install", "tsc", "-p", "tsconfig.json"], { cwd: CLIENT_DIR, stdio: "inherit" });
    }
    const mod = (await import(pathToFileURL(join(CLIENT_DIR, "dist/index.js")).href)) as {
      createFlotillaClient(o: { baseUrl: string; token: string }): TestClient;
    };
    return mod.createFlotillaClient({ baseUrl: must("FLOTILLA_URL"), token: must("FLOTILLA_TOKEN") });
  })();
  return loaded;
}

/** Imports the test control plane as `clusterId`; returns the undo. */
export async function importTestCluster(clusterId: string): Promise<() => Promise<void>> {
  const client = await apiClient();
  const res = await client.clusters.importCluster({
    clusterId,
    labels: { suite: "console-logs" },
    source: { case: "kubeconfig", value: { kubeconfig: readFileSync(must("FLOTILLA_TEST_KUBECONFIG")) } },
  });
  if (res.cluster?.id !== clusterId) throw new Error(`imported ${res.cluster?.id}, not ${clusterId}`);
  return async () => {
    await client.clusters.deleteCluster({ clusterId });
  };
}

/** kubectl against the test control plane; its stdout. */
export function kubectl(...args: string[]): string {
  return execFileSync(must("KUBECTL"), ["--kubeconfig", must("KUBECONFIG"), ...args], { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
}

/** Whether `kubectl get` finds the object (NotFound is false; other failures throw). */
export function kubeExists(...args: string[]): boolean {
  try {
    kubectl("get", ...args, "-o", "name");
    return true;
  } catch (e) {
    const stderr = String((e as { stderr?: unknown }).stderr ?? e);
    if (/NotFound|not found/i.test(stderr)) return false;
    throw e;
  }
}

export async function eventually<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

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
  execFileSync(must("KUBECTL"), ["--kubeconfig", must("KUBECONFIG"), "apply", "-f", "-"], { input: JSON.stringify(logs), stdio: ["pipe", "pipe", "pipe"] });
  await eventually(`KWOK to serve the logs of ${namespace}/${pod}`, 60_000, () =>
    kubectl("-n", namespace, "logs", pod, "--previous").includes(marker) ? true : undefined,
  );
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
  const out = JSON.parse(kubectl("-n", namespace, "get", "pods", "-l", `app=${app}`, "-o", "json")) as {
    items: { metadata: { name: string }; spec: { nodeName?: string } }[];
  };
  return out.items.filter((p) => p.spec.nodeName).map((p) => p.metadata.name).sort();
}

export { ENV };
