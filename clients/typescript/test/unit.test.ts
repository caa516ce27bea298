// Offline tests of the hand-written helpers, against in-memory servers (Connect's router
// transport) whose behaviour each test scripts: dropped streams, UNAVAILABLE with RetryInfo...
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import {
  OperationFailedError,
  PAGERS,
  SERVICES,
  createServicesClient,
  errorDetails,
  flotillaInterceptors,
  isReadMethod,
  listClusters,
  listProviders,
  retryInterceptor,
  waitOperation,
} from "@flotilla-dev/client";
import type { RetryOptions } from "@flotilla-dev/client";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { PACKAGE_ROOT } from "./harness.js";
import {
  ClusterSchema,
  ClusterService,
  ErrorClass,
  OperationSchema,
  OperationService,
  OperationState,
} from "@flotilla-dev/client/v1";
import type { ListClustersRequest, Operation } from "@flotilla-dev/client/v1";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "@flotilla-dev/client/google/rpc";

function clientOf(routes: (r: ConnectRouter) => void, interceptors: Interceptor[] = []) {
  return createServicesClient(createRouterTransport(routes, { transport: { interceptors } }));
}

function op(state: OperationState, extra: MessageInitShape<typeof OperationSchema> = {}): Operation {
  return create(OperationSchema, { id: "op-1", state, ...extra });
}

describe("paging", () => {
  it("has a pager for every List RPC of every service", () => {
    const services: DescService[] = Object.values(SERVICES);
    const lists = services.flatMap((s) =>
      s.methods.filter((m) => m.name.startsWith("List")).map((m) => `${s.typeName}.${m.name}`),
    );
    assert.ok(lists.length >= 20, `only ${lists.length} List RPCs found: the walk is broken`);
    const missing = lists.filter((name) => !PAGERS.has(name));
    assert.deepEqual(missing, [], "List RPCs without a pager in src/paging.ts");
  });

  it("pages with the request's other fields unchanged until next_page_token is empty", async () => {
    const seen: ListClustersRequest[] = [];
    const pages: Record<string, { ids: string[]; next: string }> = {
      "": { ids: ["a", "b"], next: "t1" },
      t1: { ids: ["c"], next: "t2" },
      t2: { ids: [], next: "t3" }, // an empty page in the middle is not the end
      t3: { ids: ["d"], next: "" },
    };
    const client = clientOf((r) =>
      r.service(ClusterService, {
        listClusters(req) {
          seen.push(req);
          const page = pages[req.pageToken] ?? assert.fail(`unknown token ${req.pageToken}`);
          return { clusters: page.ids.map((id) => create(ClusterSchema, { id })), nextPageToken: page.next };
        },
      }),
    );
    const ids: string[] = [];
    for await (const c of listClusters(client, { pageSize: 2, filter: 'provider = "ack"', orderBy: "id" })) {
      ids.push(c.id);
    }
    assert.deepEqual(ids, ["a", "b", "c", "d"]);
    assert.deepEqual(
      seen.map((r) => [r.pageToken, r.pageSize, r.filter, r.orderBy]),
      [
        ["", 2, 'provider = "ack"', "id"],
        ["t1", 2, 'provider = "ack"', "id"],
        ["t2", 2, 'provider = "ack"', "id"],
        ["t3", 2, 'provider = "ack"', "id"],
      ],
    );
  });

  it("stops fetching when the loop breaks, and fails on a token that repeats", async () => {
    let calls = 0;
    const client = clientOf((r) =>
      r.service(ClusterService, {
        listClusters() {
          calls++;
          return { clusters: [create(ClusterSchema, { id: `c${calls}` })], nextPageToken: "same" };
        },
        listProviders() {
          return { providers: [{ id: "ack" }, { id: "tke" }] };
        },
      }),
    );
    for await (const c of listClusters(client)) {
      assert.equal(c.id, "c1");
      break;
    }
    assert.equal(calls, 1);
    await assert.rejects(async () => {
      for await (const _ of listClusters(client)) {
        // drain
      }
    }, /same page token twice/);
    // An unpaged List RPC is one page.
    const providers: string[] = [];
    for await (const p of listProviders(client)) {
      providers.push(p.id);
    }
    assert.deepEqual(providers, ["ack", "tke"]);
  });
});

describe("waitOperation", () => {
  it("watches again after the stream drops (an error or an early end) and returns the success", async () => {
    let watches = 0;
    const client = clientOf((r) =>
      r.service(OperationService, {
        async *watchOperation(req) {
          assert.equal(req.operationId, "op-1");
          watches++;
          if (watches === 1) {
            yield { operation: op(OperationState.RUNNING, { progressPercent: 10 }) };
            throw new ConnectError("connection reset", Code.Unavailable);
          }
          if (watches === 2) {
            yield { operation: op(OperationState.RUNNING, { progressPercent: 50 }) };
            return; // ended without a terminal state
          }
          yield { operation: op(OperationState.SUCCEEDED, { progressPercent: 100 }) };
        },
      }),
    );
    const progress: number[] = [];
    const done = await waitOperation(client, "op-1", {
      reconnectDelayMs: 1,
      onUpdate: (o) => progress.push(o.progressPercent),
    });
    assert.equal(done.state, OperationState.SUCCEEDED);
    assert.equal(watches, 3);
    assert.deepEqual(progress, [10, 50, 100]);
  });

  it("throws the failure the operation carries", async () => {
    const client = clientOf((r) =>
      r.service(OperationService, {
        async *watchOperation() {
          yield {
            operation: op(OperationState.FAILED, {
              error: { errorClass: ErrorClass.QUOTA_EXCEEDED, vendorCode: "QuotaExceeded.Cluster", vendorMessage: "no more clusters" },
            }),
          };
        },
      }),
    );
    const err = await waitOperation(client, "op-1").then(() => assert.fail("resolved"), (e: unknown) => e);
    assert.ok(err instanceof OperationFailedError);
    assert.equal(err.operation.state, OperationState.FAILED);
    assert.equal(err.failure?.vendorCode, "QuotaExceeded.Cluster");
    assert.match(err.message, /op-1 FAILED .*QuotaExceeded.Cluster: no more clusters/);
  });

  it("does not retry a request error, and stops on abort", async () => {
    let watches = 0;
    const client = clientOf((r) =>
      r.service(OperationService, {
        async *watchOperation(req) {
          watches++;
          if (req.operationId === "missing") {
            throw new ConnectError("operation not found", Code.NotFound);
          }
          yield { operation: op(OperationState.RUNNING) };
          throw new ConnectError("gone", Code.Unavailable);
        },
      }),
    );
    await assert.rejects(waitOperation(client, "missing"), (e: unknown) => e instanceof ConnectError && e.code === Code.NotFound);
    assert.equal(watches, 1);
    const abort = new AbortController();
    const waiting = waitOperation(client, "op-1", { signal: abort.signal, reconnectDelayMs: 20 });
    setTimeout(() => abort.abort(), 100);
    await assert.rejects(waiting, (e: unknown) => e instanceof ConnectError && e.code === Code.Canceled);
    assert.ok(watches >= 2, "it did not reconnect while waiting");
  });

  it("gives up after maxReconnects failed watches in a row, and never retries the caller's own errors", async () => {
    let watches = 0;
    const client = clientOf((r) =>
      r.service(OperationService, {
        async *watchOperation(req) {
          watches++;
          if (req.operationId === "flaky") {
            throw new ConnectError("no route", Code.Unavailable);
          }
          yield { operation: op(OperationState.RUNNING) };
        },
      }),
    );
    await assert.rejects(
      waitOperation(client, "flaky", { reconnectDelayMs: 1, maxReconnects: 3 }),
      (e: unknown) => e instanceof ConnectError && e.code === Code.Unavailable,
    );
    assert.equal(watches, 4);
    watches = 0;
    await assert.rejects(
      waitOperation(client, "op-1", {
        reconnectDelayMs: 1,
        onUpdate: () => {
          throw new RangeError("the caller's bug");
        },
      }),
      RangeError,
    );
    assert.equal(watches, 1);
  });
});

describe("errors and retries", () => {
  const unavailable = (delayMs?: number) =>
    new ConnectError(
      "server is draining",
      Code.Unavailable,
      undefined,
      delayMs === undefined
        ? []
        : [{ desc: RetryInfoSchema, value: { retryDelay: { seconds: BigInt(Math.floor(delayMs / 1000)), nanos: (delayMs % 1000) * 1e6 } } }],
    );

  it("decodes ErrorInfo, BadRequest and RetryInfo", async () => {
    const client = clientOf((r) =>
      r.service(ClusterService, {
        getCluster() {
          throw new ConnectError("invalid cluster_id: bad", Code.InvalidArgument, undefined, [
            { desc: ErrorInfoSchema, value: { reason: "BAD_ID", domain: "flotilla.dev", metadata: { id: "X" } } },
            { desc: BadRequestSchema, value: { fieldViolations: [{ field: "cluster_id", description: "bad" }] } },
            { desc: RetryInfoSchema, value: { retryDelay: { seconds: 1n, nanos: 500_000_000 } } },
          ]);
        },
      }),
    );
    const d = await client.clusters.getCluster({ clusterId: "X" }).then(() => assert.fail("resolved"), errorDetails);
    assert.deepEqual(d, {
      code: Code.InvalidArgument,
      codeName: "InvalidArgument",
      message: "invalid cluster_id: bad",
      reason: "BAD_ID",
      domain: "flotilla.dev",
      metadata: { id: "X" },
      fieldViolations: [{ field: "cluster_id", description: "bad", reason: "" }],
      retryDelayMs: 1500,
    });
    // Anything else a call can throw decodes too, with no details.
    assert.equal(errorDetails(new Error("plain")).code, Code.Unknown);
  });

  function flaky(failures: number, delayMs?: number) {
    const attempts: number[] = [];
    const routes = (r: ConnectRouter) =>
      r.service(ClusterService, {
        getCluster() {
          attempts.push(Date.now());
          if (attempts.length <= failures) {
            throw unavailable(delayMs);
          }
          return { cluster: { id: "c" } };
        },
        createCluster() {
          attempts.push(Date.now());
          if (attempts.length <= failures) {
            throw unavailable(delayMs);
          }
          return {};
        },
      });
    return { attempts, routes };
  }

  const retry = (o: RetryOptions = {}) => retryInterceptor({ initialBackoffMs: 1, ...o });

  it("retries a read on UNAVAILABLE after the RetryInfo delay", async () => {
    const { attempts, routes } = flaky(1, 300);
    const client = clientOf(routes, [retry()]);
    const res = await client.clusters.getCluster({ clusterId: "c" });
    assert.equal(res.cluster?.id, "c");
    assert.equal(attempts.length, 2);
    const waited = (attempts[1] ?? 0) - (attempts[0] ?? 0);
    assert.ok(waited >= 290, `retried after ${waited} ms, RetryInfo said 300`);
  });

  it("gives up after maxAttempts and leaves writes alone unless opted in", async () => {
    const reads = flaky(10);
    await assert.rejects(
      clientOf(reads.routes, [retry({ maxAttempts: 3 })]).clusters.getCluster({}),
      (e: unknown) => e instanceof ConnectError && e.code === Code.Unavailable,
    );
    assert.equal(reads.attempts.length, 3);

    const writes = flaky(1);
    await assert.rejects(clientOf(writes.routes, [retry()]).clusters.createCluster({}));
    assert.equal(writes.attempts.length, 1, "a write was retried without opting in");

    const optedIn = flaky(1);
    await clientOf(optedIn.routes, [retry({ methods: "all" })]).clusters.createCluster({});
    assert.equal(optedIn.attempts.length, 2);

    assert.ok(isReadMethod(ClusterService.method.listClusters));
    assert.ok(!isReadMethod(ClusterService.method.deleteCluster));
  });

  it("sends the token as a bearer header, never in the URL", async () => {
    let authorization: string | null = null;
    let url = "";
    const client = clientOf(
      (r) =>
        r.service(ClusterService, {
          getCluster(_req, ctx) {
            authorization = ctx.requestHeader.get("authorization");
            url = ctx.url;
            return {};
          },
        }),
      flotillaInterceptors({ baseUrl: "http://in-memory", token: "s3cr3t-token" }),
    );
    await client.clusters.getCluster({ clusterId: "c" });
    assert.equal(authorization, "Bearer s3cr3t-token");
    assert.ok(!url.includes("s3cr3t"), url);

    // A token function is asked on every call; an empty token fails before anything is sent.
    let current = "first";
    let served = 0;
    const refreshing = clientOf(
      (r) =>
        r.service(ClusterService, {
          getCluster(_req, ctx) {
            served++;
            authorization = ctx.requestHeader.get("authorization");
            return {};
          },
        }),
      flotillaInterceptors({ baseUrl: "http://in-memory", token: () => current }),
    );
    await refreshing.clusters.getCluster({});
    assert.equal(authorization, "Bearer first");
    current = "second";
    await refreshing.clusters.getCluster({});
    assert.equal(authorization, "Bearer second");
    current = "";
    await assert.rejects(refreshing.clusters.getCluster({}), (e: unknown) => e instanceof ConnectError && e.code === Code.Unauthenticated);
    assert.equal(served, 2);
  });
});

describe("package", () => {
  it("loads no Node module from the main entry (the browser console bundles it)", () => {
    const seen = new Set<string>();
    const external = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) {
        return;
      }
      seen.add(file);
      const code = readFileSync(file, "utf8");
      for (const m of code.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)) {
        const spec = m[1] ?? "";
        if (spec.startsWith(".")) {
          visit(join(dirname(file), spec));
        } else {
          external.add(spec);
        }
      }
    };
    visit(join(PACKAGE_ROOT, "dist/index.js"));
    assert.ok(seen.size > 5, `only ${seen.size} modules found: the walk is broken`);
    assert.ok(external.has("@connectrpc/connect-web"));
    const nodeOnly = [...external].filter((s) => s.startsWith("node:") || s === "@connectrpc/connect-node");
    assert.deepEqual(nodeOnly, []);
  });
});
