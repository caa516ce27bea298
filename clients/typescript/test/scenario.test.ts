// The scenario every client suite runs (issue #16), once over gRPC (connect-node, HTTP/2) and
// once over grpc-web (connect-web on fetch: the browser console's transport), against the live
// harness. Expected answers come from kubectl and the vendor simulator, not from the client.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  Code,
  ConnectError,
  createFlotillaClient,
  errorDetails,
  listClusters,
  listEvents,
  listNodes,
  listPods,
  waitOperation,
} from "@flotilla-dev/client/node";
import type { FlotillaClient, Interceptor } from "@flotilla-dev/client/node";
import {
  ApplyOutcome,
  LogEntryKind,
  OperationState,
  WatchEventsResponseType,
  WorkloadKind,
} from "@flotilla-dev/client/v1";
import type { Operation } from "@flotilla-dev/client/v1";
import {
  appendPodLogLine,
  eventually,
  harnessEnv,
  kubectl,
  kubectlJson,
  need,
  startProxy,
  uniqueName,
  withTimeout,
} from "./harness.js";

interface KubeList<T> {
  items: T[];
}
interface KubeMeta {
  metadata: { name: string; uid: string };
}
interface KubeEvent extends KubeMeta {
  reason: string;
  message: string;
  involvedObject: { kind: string; name: string };
}

for (const transport of ["grpc", "grpc-web"] as const) {
  describe(`scenario over ${transport}`, () => {
    const env = harnessEnv();
    // Counts the calls of each method, to see that pagers really fetch page after page.
    const calls = new Map<string, number>();
    // and which wire protocol answered (grpc-web and gRPC share the server's port).
    const contentTypes = new Set<string>();
    const counting: Interceptor = (next) => async (req) => {
      calls.set(req.method.name, (calls.get(req.method.name) ?? 0) + 1);
      const res = await next(req);
      contentTypes.add(res.header.get("content-type") ?? "");
      return res;
    };
    const client: FlotillaClient = createFlotillaClient({
      baseUrl: need("FLOTILLA_URL"),
      token: need("FLOTILLA_TOKEN"),
      transport,
      interceptors: [counting],
    });
    const clusterId = uniqueName(`ts-${transport}`);
    const namespace = uniqueName(`ts-${transport}`);
    const app = "web";
    const cleanups: (() => Promise<unknown> | unknown)[] = [];
    let ackCredentialId = "";
    const ackSpec = (credentialId: string) => ({
      region: need("FLOTILLA_SIM_ACK_REGION"),
      credentialId,
      kubernetesVersion: need("FLOTILLA_SIM_ACK_KUBERNETES_VERSION"),
      providerConfig: {
        case: "ack" as const,
        value: {
          clusterType: need("FLOTILLA_SIM_ACK_CLUSTER_TYPE"),
          clusterSpec: need("FLOTILLA_SIM_ACK_CLUSTER_SPEC"),
        },
      },
    });

    before(() => {
      assert.ok(env["FLOTILLA_URL"]);
    });

    after(async () => {
      for (const undo of cleanups.reverse()) {
        try {
          await undo();
        } catch (e) {
          console.error(`cleanup: ${String(e)}`);
        }
      }
    });

    it("imports the test cluster", async () => {
      const res = await client.clusters.importCluster({
        clusterId,
        labels: { suite: "typescript" },
        source: {
          case: "kubeconfig",
          value: { kubeconfig: readFileSync(need("FLOTILLA_TEST_KUBECONFIG")) },
        },
      });
      cleanups.push(() => client.clusters.deleteCluster({ clusterId }));
      assert.equal(res.cluster?.id, clusterId);
      const kubeSystem = kubectlJson<KubeMeta>("get", "namespace", "kube-system");
      assert.equal(res.cluster?.kubeSystemUid, kubeSystem.metadata.uid);
      const protocol = transport === "grpc" ? "application/grpc" : "application/grpc-web+proto";
      assert.deepEqual([...contentTypes], [protocol]);
    });

    it("pages through clusters and nodes", async () => {
      const before = calls.get("ListClusters") ?? 0;
      const ids: string[] = [];
      for await (const c of listClusters(client, { pageSize: 1 })) {
        ids.push(c.id);
      }
      assert.ok(ids.includes(clusterId), `${clusterId} not among ${ids.join(", ")}`);
      assert.equal(new Set(ids).size, ids.length, "a cluster came twice");
      // One call per cluster plus the last (possibly empty) page: the pager followed the tokens.
      assert.ok((calls.get("ListClusters") ?? 0) - before >= ids.length, "pages were not followed");

      const nodes: string[] = [];
      for await (const n of listNodes(client, { clusterId, pageSize: 1 })) {
        nodes.push(n.name);
      }
      const expected = kubectlJson<KubeList<KubeMeta>>("get", "nodes").items.map((n) => n.metadata.name);
      assert.ok(expected.length > 1, "the test control plane should have several nodes");
      assert.deepEqual(nodes.sort(), expected.sort());
    });

    it("applies a Deployment and scales it", async () => {
      cleanups.push(() => kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found"));
      const manifests = [
        `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${namespace}\n`,
        `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${app}\n  namespace: ${namespace}\nspec:\n` +
          `  replicas: 1\n  selector:\n    matchLabels: {app: ${app}}\n  template:\n` +
          `    metadata:\n      labels: {app: ${app}}\n    spec:\n` +
          `      containers: [{name: main, image: registry.invalid/flotilla/ts:1}]\n`,
      ].join("---\n");
      const applied = await client.workloads.applyManifests({ clusterId, manifests });
      assert.deepEqual(
        applied.results.map((r) => [r.object?.kind, r.object?.name, ApplyOutcome[r.outcome]]),
        [
          ["Namespace", namespace, "CREATED"],
          ["Deployment", app, "CREATED"],
        ],
      );
      const deployment = kubectlJson<{ spec: { replicas: number } }>("-n", namespace, "get", "deployment", app);
      assert.equal(deployment.spec.replicas, 1);

      const scaled = await client.workloads.scaleWorkload({
        clusterId,
        namespace,
        kind: WorkloadKind.DEPLOYMENT,
        name: app,
        replicas: 2,
      });
      assert.equal(scaled.workload?.name, app);
      assert.equal(kubectl("-n", namespace, "get", "deployment", app, "-o", "jsonpath={.spec.replicas}"), "2");
    });

    it("follows a pod's logs until a line written now arrives", async () => {
      const pod = await eventually("a scheduled pod of the deployment", 60_000, async () => {
        for await (const p of listPods(client, { clusterId, namespace, pods: { case: "labelSelector", value: `app=${app}` } })) {
          if (p.nodeName !== "") {
            return p.name;
          }
        }
        return undefined;
      });
      assert.ok(kubectl("-n", namespace, "get", "pod", pod, "-o", "name").trim().endsWith(`/${pod}`));
      const line = `typescript ${transport} ${uniqueName("line")}`;
      const abort = new AbortController();
      // The line is appended until it arrives: whatever is written before the follow starts
      // is not part of the answer (tail_lines 0).
      const writer = setInterval(() => appendPodLogLine(line), 500);
      try {
        const seen = await withTimeout(
          "the log line",
          30_000,
          (async () => {
            for await (const res of client.logs.streamPodLogs(
              { clusterId, namespace, pod, options: { follow: true, tailLines: 0n } },
              { signal: abort.signal },
            )) {
              for (const e of res.entries) {
                if (e.kind === LogEntryKind.LINE && e.content === line) {
                  return e;
                }
              }
            }
            throw new Error("the log stream ended");
          })(),
        );
        assert.equal(seen.pod, pod);
        assert.equal(seen.namespace, namespace);
      } finally {
        clearInterval(writer);
        abort.abort();
      }
    });

    it("watches events until the scale event arrives", async () => {
      const abort = new AbortController();
      try {
        const event = await withTimeout(
          "the ScalingReplicaSet event",
          60_000,
          (async () => {
            for await (const res of client.logs.watchEvents({ clusterId, namespace }, { signal: abort.signal })) {
              const e = res.event;
              if (
                e !== undefined &&
                res.type !== WatchEventsResponseType.DELETED &&
                e.reason === "ScalingReplicaSet" &&
                / to 2\b/.test(e.message)
              ) {
                return e;
              }
            }
            throw new Error("the event stream ended");
          })(),
        );
        const fromKube = kubectlJson<KubeList<KubeEvent>>("-n", namespace, "get", "events").items.find(
          (k) => k.metadata.uid === event.uid,
        );
        assert.ok(fromKube, `event ${event.uid} is not in the API server`);
        assert.equal(fromKube.reason, "ScalingReplicaSet");
        assert.equal(fromKube.message, event.message);
        assert.equal(fromKube.involvedObject.kind, "Deployment");
        assert.equal(fromKube.involvedObject.name, app);
        // The paged list holds it too.
        let listed = false;
        for await (const e of listEvents(client, { clusterId, namespace, pageSize: 1 })) {
          listed ||= e.uid === event.uid;
        }
        assert.ok(listed, "ListEvents does not have the scale event");
      } finally {
        abort.abort();
      }
    });

    it("reads the reason and the field of bad requests", async () => {
      const bad = await client.workloads
        .scaleWorkload({ clusterId, namespace, kind: WorkloadKind.DEPLOYMENT, name: app, replicas: -1 })
        .then(() => assert.fail("a negative replica count was accepted"), errorDetails);
      assert.equal(bad.code, Code.InvalidArgument);
      assert.deepEqual(
        bad.fieldViolations.map((v) => v.field),
        ["replicas"],
      );
      assert.match(bad.fieldViolations[0]?.description ?? "", /negative/);
      // Nothing changed in the cluster.
      assert.equal(kubectl("-n", namespace, "get", "deployment", app, "-o", "jsonpath={.spec.replicas}"), "2");

      const missing = await client.clusters
        .getCluster({ clusterId: `${clusterId}-missing` })
        .then(() => assert.fail("a missing cluster was found"), errorDetails);
      assert.equal(missing.code, Code.NotFound);
      assert.equal(missing.reason, "NOT_FOUND");
      assert.equal(missing.domain, "flotilla.dev");
      assert.deepEqual(missing.metadata, { kind: "cluster", id: `${clusterId}-missing` });

      // The same cluster under another id: the documented reason (proto comment of ImportCluster).
      const again = await client.clusters
        .importCluster({
          clusterId: `${clusterId}-again`,
          source: { case: "kubeconfig", value: { kubeconfig: readFileSync(need("FLOTILLA_TEST_KUBECONFIG")) } },
        })
        .then(() => assert.fail("the same cluster was imported twice"), (e: unknown) => e);
      assert.ok(again instanceof ConnectError);
      const details = errorDetails(again);
      assert.equal(details.code, Code.AlreadyExists);
      assert.equal(details.reason, "CLUSTER_ALREADY_IMPORTED");
      assert.equal(details.domain, "flotilla.dev");
      await assert.rejects(client.clusters.getCluster({ clusterId: `${clusterId}-again` }), (e: unknown) =>
        e instanceof ConnectError && e.code === Code.NotFound,
      );
    });

    it("creates a cluster at the ACK simulator and waits for its operation", async () => {
      const credentialId = uniqueName(`ts-${transport}-ack`);
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
      ackCredentialId = credentialId;
      const ackId = uniqueName(`ts-${transport}-ack`);
      const created = await client.clusters.createCluster({
        clusterId: ackId,
        provider: "ack",
        requestId: uniqueName("req"),
        spec: ackSpec(credentialId),
      });
      cleanups.push(() => client.clusters.deleteCluster({ clusterId: ackId }));
      const opId = created.operation?.id ?? assert.fail("CreateCluster returned no operation");
      const seen: Operation[] = [];
      const done = await withTimeout(
        "the create operation",
        120_000,
        waitOperation(client, opId, { onUpdate: (op) => seen.push(op) }),
      );
      assert.equal(done.state, OperationState.SUCCEEDED);
      assert.ok(seen.length >= 1);
      const cluster = (await client.clusters.getCluster({ clusterId: ackId })).cluster;
      assert.ok(cluster?.vendorClusterId, "the cluster has no vendor id");
      // The simulator's own state: the vendor cluster exists and runs.
      const sim = (await (await fetch(`${need("FLOTILLA_SIM_ACK_CONTROL_URL")}/clusters`)).json()) as {
        clusters: { id: string; state: string }[];
      };
      const atVendor = sim.clusters.find((c) => c.id === cluster.vendorClusterId);
      assert.ok(atVendor, `${cluster.vendorClusterId} is not at the simulator`);
      assert.equal(atVendor.state, "running");
    });

    it("waitOperation watches again when the connection drops", async () => {
      assert.ok(ackCredentialId, "the ACK step did not create its credential");
      const proxy = await startProxy(need("FLOTILLA_ADDR"));
      cleanups.push(() => proxy.close());
      const ackId = uniqueName(`ts-${transport}-drop`);
      const created = await client.clusters.createCluster({
        clusterId: ackId,
        provider: "ack",
        requestId: uniqueName("req"),
        spec: ackSpec(ackCredentialId),
      });
      cleanups.push(() => client.clusters.deleteCluster({ clusterId: ackId }));
      const viaProxy = createFlotillaClient({ baseUrl: proxy.url, token: need("FLOTILLA_TOKEN"), transport });
      const states: OperationState[] = [];
      const done = await withTimeout(
        "the create operation through the proxy",
        120_000,
        waitOperation(viaProxy, created.operation?.id ?? "", {
          reconnectDelayMs: 50,
          onUpdate: (op) => {
            states.push(op.state);
            if (states.length === 1) {
              proxy.cutAll(); // mid-watch, before the operation ends
            }
          },
        }),
      );
      assert.equal(done.state, OperationState.SUCCEEDED);
      assert.notEqual(states[0], OperationState.SUCCEEDED, "the operation ended before the cut");
      assert.ok(proxy.connections() >= 2, `no new connection after the cut (${proxy.connections()})`);
    });
  });
}
