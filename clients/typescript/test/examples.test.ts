// The README's examples are the files in examples/ (the README blocks must equal them), and each
// one is run here as a user would run it (`node build/examples/<name>.js args`) against the live
// harness, its output checked against kubectl and the vendor simulator.
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFlotillaClient } from "@flotilla-dev/client/node";
import { WorkloadKind } from "@flotilla-dev/client/v1";
import { importedClusterIds } from "../examples/browser-list-clusters.js";
import { PACKAGE_ROOT, appendPodLogLine, eventually, kubectl, kubectlJson, need, uniqueName } from "./harness.js";

/** The ```ts block after each `<!-- example: examples/NAME.ts -->` marker of the README. */
export function readmeExamples(readme: string): Map<string, string> {
  const blocks = new Map<string, string>();
  const re = /<!-- example: (examples\/[\w.-]+\.ts) -->\n```ts\n([\s\S]*?)```\n/g;
  for (const m of readme.matchAll(re)) {
    blocks.set(m[1] ?? "", m[2] ?? "");
  }
  return blocks;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs build/examples/<name>.js with the harness's URL and token. With `until`, the example
 * (a stream that never ends by itself) is stopped once its output satisfies it.
 */
function runExample(
  name: string,
  args: string[],
  opts: { until?: (stdout: string) => boolean; timeoutMs?: number; whileRunning?: () => void } = {},
): Promise<Run> {
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, "build/examples", `${name}.js`), ...args], {
    env: { PATH: process.env["PATH"] ?? "", FLOTILLA_URL: need("FLOTILLA_URL"), FLOTILLA_TOKEN: need("FLOTILLA_TOKEN") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const ticker = opts.whileRunning ? setInterval(opts.whileRunning, 500) : undefined;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} ${args.join(" ")}: no answer after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    const done = (code: number | null) => {
      clearTimeout(timer);
      clearInterval(ticker);
      resolve({ code, stdout, stderr });
    };
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (opts.until?.(stdout)) {
        child.kill("SIGTERM");
      }
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => done(code));
  });
}

describe("README examples", () => {
  const readme = readFileSync(join(PACKAGE_ROOT, "README.md"), "utf8");
  const client = createFlotillaClient({ baseUrl: need("FLOTILLA_URL"), token: need("FLOTILLA_TOKEN") });
  const clusterId = uniqueName("ts-example");
  const namespace = uniqueName("ts-example");
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const undo of cleanups.reverse()) {
      try {
        await undo();
      } catch (e) {
        console.error(`cleanup: ${String(e)}`);
      }
    }
  });

  it("shows every file of examples/ verbatim", () => {
    const blocks = readmeExamples(readme);
    const files = readdirSync(join(PACKAGE_ROOT, "examples")).filter((f) => f.endsWith(".ts"));
    assert.deepEqual([...blocks.keys()].sort(), files.map((f) => `examples/${f}`).sort());
    for (const [path, block] of blocks) {
      assert.equal(block, readFileSync(join(PACKAGE_ROOT, path), "utf8"), `README block of ${path} differs from the file`);
    }
  });

  it("import-cluster imports the test cluster", async () => {
    const run = await runExample("import-cluster", [clusterId, need("FLOTILLA_TEST_KUBECONFIG")]);
    cleanups.push(() => client.clusters.deleteCluster({ clusterId }));
    assert.equal(run.code, 0, run.stderr);
    const uid = kubectlJson<{ metadata: { uid: string } }>("get", "namespace", "kube-system").metadata.uid;
    assert.equal(run.stdout, `${clusterId} ${uid}\n`);
  });

  it("list-nodes prints the nodes kubectl sees", async () => {
    const run = await runExample("list-nodes", [clusterId]);
    assert.equal(run.code, 0, run.stderr);
    const printed = run.stdout.trim().split("\n").map((l) => l.split(" ")[0]);
    const nodes = kubectlJson<{ items: { metadata: { name: string } }[] }>("get", "nodes").items.map((n) => n.metadata.name);
    assert.deepEqual(printed.sort(), nodes.sort());
  });

  it("apply-manifest applies a namespace and a Deployment", async () => {
    const dir = mkdtempSync(join(tmpdir(), "flotilla-ts-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    cleanups.push(() => kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found"));
    const file = join(dir, "app.yaml");
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${namespace}}\n---\n` +
        `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: ${namespace}}\n` +
        `spec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n` +
        `    metadata: {labels: {app: web}}\n    spec: {containers: [{name: main, image: registry.invalid/ts:1}]}\n`,
    );
    const run = await runExample("apply-manifest", [clusterId, file]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.stdout.trim().split("\n").map((l) => l.trim()), [`Namespace/${namespace} CREATED`, "Deployment/web CREATED"]);
    assert.equal(kubectl("-n", namespace, "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"), "1");
  });

  it("follow-logs prints a line written while it runs", async () => {
    const pod = await eventually("a scheduled pod", 60_000, () => {
      const pods = kubectlJson<{ items: { metadata: { name: string }; spec: { nodeName?: string } }[] }>(
        "-n", namespace, "get", "pods", "-l", "app=web",
      );
      return pods.items.find((p) => p.spec.nodeName)?.metadata.name;
    });
    const line = `typescript example ${uniqueName("line")}`;
    const run = await runExample("follow-logs", [clusterId, namespace, pod], {
      until: (out) => out.includes(`${line}\n`),
      whileRunning: () => appendPodLogLine(line),
      timeoutMs: 30_000,
    });
    assert.ok(run.stdout.includes(`${line}\n`));
  });

  it("watch-events prints the scale event", async () => {
    await client.workloads.scaleWorkload({ clusterId, namespace, kind: WorkloadKind.DEPLOYMENT, name: "web", replicas: 3 });
    const scaled = / ScalingReplicaSet Deployment\/web: Scaled up replica set web-\w+ from 1 to 3\n/;
    const run = await runExample("watch-events", [clusterId, namespace], { until: (out) => scaled.test(out) });
    const printed = scaled.exec(run.stdout)?.[0].trim() ?? assert.fail(`no scale event in:\n${run.stdout}`);
    const events = kubectlJson<{ items: { reason: string; message: string }[] }>("-n", namespace, "get", "events");
    assert.ok(
      events.items.some((e) => e.reason === "ScalingReplicaSet" && printed.endsWith(e.message)),
      `the API server has no event "${printed}"`,
    );
  });

  it("create-ack-cluster creates a cluster at the simulator and waits", async () => {
    const credentialId = uniqueName("ts-example-ack");
    await client.credentials.createCredential({
      credentialId,
      provider: "ack",
      secret: {
        secret: {
          case: "accessKey",
          value: {
            accessKeyId: need("FLOTILLA_SIM_ACK_ACCESS_KEY_ID"),
            accessKeySecret: need("FLOTILLA_SIM_ACK_ACCESS_KEY_SECRET"),
          },
        },
      },
    });
    cleanups.push(() => client.credentials.deleteCredential({ credentialId }));
    const ackId = uniqueName("ts-example-ack");
    const run = await runExample(
      "create-ack-cluster",
      [ackId, credentialId, need("FLOTILLA_SIM_ACK_REGION"), need("FLOTILLA_SIM_ACK_KUBERNETES_VERSION")],
      { timeoutMs: 120_000 },
    );
    cleanups.push(() => client.clusters.deleteCluster({ clusterId: ackId }));
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`\\ncreated clusters/${ackId}\\n$`));
    const vendorId = (await client.clusters.getCluster({ clusterId: ackId })).cluster?.vendorClusterId;
    const sim = (await (await fetch(`${need("FLOTILLA_SIM_ACK_CONTROL_URL")}/clusters`)).json()) as {
      clusters: { id: string; state: string }[];
    };
    assert.equal(sim.clusters.find((c) => c.id === vendorId)?.state, "running");
  });

  it("browser-list-clusters lists the imported clusters over grpc-web", async () => {
    const ids = await importedClusterIds(need("FLOTILLA_URL"), () => need("FLOTILLA_TOKEN"));
    assert.ok(ids.includes(clusterId), ids.join(", "));
    assert.deepEqual(ids, [...ids].sort());
    await assert.rejects(importedClusterIds(need("FLOTILLA_URL"), () => "not-a-valid-token"), /^Error: Unauthenticated TOKEN_INVALID $/);
  });
});
