// The live harness the suite runs against: the env file `scripts/client-env up` writes
// (FLOTILLA_CLIENT_ENV, default <repo>/target/client-env/env), and kubectl on the test control
// plane, which gives the expected answers (never the client's own output).
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export type HarnessEnv = Record<string, string>;

/** build/test/harness.js -> the repository root. */
export const REPO_ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
/** build/test/harness.js -> clients/typescript. */
export const PACKAGE_ROOT = fileURLToPath(new URL("../../", import.meta.url));

let cached: HarnessEnv | undefined;

export function harnessEnv(): HarnessEnv {
  if (cached !== undefined) {
    return cached;
  }
  const path = process.env["FLOTILLA_CLIENT_ENV"] ?? join(REPO_ROOT, "target/client-env/env");
  if (!existsSync(path)) {
    throw new Error(`no live harness: ${path} is missing; run scripts/client-env up (or set FLOTILLA_CLIENT_ENV)`);
  }
  const env: HarnessEnv = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0 && !line.startsWith("#")) {
      env[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  for (const key of ["FLOTILLA_URL", "FLOTILLA_TOKEN", "FLOTILLA_TEST_KUBECONFIG", "KUBECONFIG", "FLOTILLA_KUBE_POD_LOGS"]) {
    if (!env[key]) {
      throw new Error(`${path} has no ${key}`);
    }
  }
  cached = env;
  return env;
}

export function need(key: string): string {
  const v = harnessEnv()[key];
  if (v === undefined || v === "") {
    throw new Error(`the harness env file has no ${key}`);
  }
  return v;
}

/** kubectl against the test control plane (the expected answers). */
export function kubectl(...args: string[]): string {
  const bin = harnessEnv()["KUBECTL"] ?? "kubectl";
  return execFileSync(bin, ["--kubeconfig", need("KUBECONFIG"), ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

export function kubectlJson<T = unknown>(...args: string[]): T {
  return JSON.parse(kubectl(...args, "-o", "json")) as T;
}

/** A name no other run (or language suite) uses: prefix, time and randomness. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}

/** One CRI log line appended to the file KWOK serves as the log of pods without their own. */
export function appendPodLogLine(content: string): void {
  appendFileSync(join(need("FLOTILLA_KUBE_POD_LOGS"), "default.log"), `${new Date().toISOString()} stdout F ${content}\n`);
}

export async function eventually<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) {
        return v;
      }
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Rejects after `ms` so a stuck stream fails the test instead of hanging it. */
export function withTimeout<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** A loopback TCP proxy to the server whose connections a test can cut. */
export interface CuttableProxy {
  url: string;
  /** Connections accepted so far. */
  connections(): number;
  /** Destroys every open connection, both sides. */
  cutAll(): void;
  close(): Promise<void>;
}

export async function startProxy(target: string): Promise<CuttableProxy> {
  const { createServer, connect } = await import("node:net");
  const [host = "127.0.0.1", port = "0"] = target.split(/:(?=\d+$)/);
  const open = new Set<import("node:net").Socket>();
  let accepted = 0;
  const server = createServer((downstream) => {
    accepted++;
    const upstream = connect(Number(port), host);
    for (const s of [downstream, upstream]) {
      open.add(s);
      s.on("close", () => open.delete(s));
      s.on("error", () => s.destroy());
    }
    downstream.pipe(upstream).pipe(downstream);
    downstream.on("close", () => upstream.destroy());
    upstream.on("close", () => downstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  if (addr === null || typeof addr === "string") {
    throw new Error("proxy has no port");
  }
  return {
    url: `http://127.0.0.1:${addr.port}`,
    connections: () => accepted,
    cutAll: () => {
      for (const s of open) {
        s.destroy();
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) {
          s.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
