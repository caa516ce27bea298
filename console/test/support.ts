// What the browser tests share besides the browser (harness.ts) and the API (api.ts): kubectl
// against the test control plane, waiting for a condition, the vendor simulators' own state,
// the test kubeconfig and free ports. One place each.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import assert from "node:assert/strict";
import { must } from "./harness.js";

export interface KubectlOptions {
  /** Written to kubectl's stdin (`apply -f -`). */
  input?: string;
  /** Another kubeconfig (default $KUBECONFIG, the test control plane's first API server). */
  kubeconfig?: string;
}

/**
 * `kubectl --kubeconfig $KUBECONFIG <args>`; its stdout. A failure throws with kubectl's stderr
 * in the message (and in `stderr`).
 */
export function kubectl(args: string[], options: KubectlOptions = {}): string {
  return execFileSync(must("KUBECTL"), ["--kubeconfig", options.kubeconfig ?? must("KUBECONFIG"), ...args], {
    encoding: "utf8",
    stdio: ["pipe", "pipe", "pipe"],
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
}

/** Whether `kubectl get <args>` finds the object (NotFound is false; other failures throw). */
export function kubeExists(...args: string[]): boolean {
  try {
    kubectl(["get", ...args, "-o", "name"]);
    return true;
  } catch (e) {
    const stderr = String((e as { stderr?: unknown }).stderr ?? e);
    if (/NotFound|not found/i.test(stderr)) return false;
    throw e;
  }
}

/** The test control plane's nodes and how many are Ready, as kubectl says. */
export function kubectlNodes(): { total: number; ready: number } {
  const list = JSON.parse(kubectl(["get", "nodes", "-o", "json"])) as {
    items: { status: { conditions?: { type: string; status: string }[] } }[];
  };
  const ready = list.items.filter((n) => n.status.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length;
  return { total: list.items.length, ready };
}

/** The test control plane's self-contained kubeconfig (certificates inline), as ImportCluster takes it. */
export function testKubeconfig(): string {
  return readFileSync(must("FLOTILLA_TEST_KUBECONFIG"), "utf8");
}

/**
 * Polls `probe` (every 100 ms) until it returns something other than undefined or false, and
 * returns that. A probe that throws is tried again (the last error is in the timeout's message):
 * what is waited for often fails until it is there (kubectl get, a file KWOK has not served yet).
 */
export async function eventually<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 30_000): Promise<Exclude<T, undefined | false>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v as Exclude<T, undefined | false>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export type SimVendor = "ACK" | "TKE" | "RANCHER";

/** A vendor simulator's own view: GET $FLOTILLA_SIM_<V>_CONTROL_URL/clusters (vendor ids and states). */
export interface SimClusters {
  created: number;
  clusters: { id: string; state: string; version: string }[];
}

export async function simClusters(vendor: SimVendor): Promise<SimClusters> {
  const res = await fetch(`${must(`FLOTILLA_SIM_${vendor}_CONTROL_URL`)}/clusters`);
  if (!res.ok) throw new Error(`${vendor} simulator control: HTTP ${res.status}`);
  return (await res.json()) as SimClusters;
}

/** A free TCP port on 127.0.0.1 (for a server a test starts). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      s.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

/** `value`, failing the test when it is missing (an optional message field the answer must have). */
export function present<T>(value: T | undefined | null, what: string): T {
  assert.ok(value !== undefined && value !== null, `${what} is missing`);
  return value;
}
