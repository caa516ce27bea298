import { createClient } from "@connectrpc/connect";
import type { CallOptions } from "@connectrpc/connect";
import type { DescMessage, DescMethodUnary, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { FlotillaClient } from "./client.js";
import { AdminService } from "./gen/flotilla/v1/admin_service_pb.js";
import { ClusterService } from "./gen/flotilla/v1/cluster_service_pb.js";
import { CredentialService } from "./gen/flotilla/v1/credential_service_pb.js";
import { NodeService } from "./gen/flotilla/v1/node_service_pb.js";
import { OperationService } from "./gen/flotilla/v1/operation_service_pb.js";
import { RegistryService } from "./gen/flotilla/v1/registry_service_pb.js";
import { WorkloadService } from "./gen/flotilla/v1/workload_service_pb.js";

/** Names of a message's repeated fields. */
type RepeatedKeys<T> = { [K in keyof T]-?: T[K] extends readonly unknown[] ? K : never }[keyof T] & string;
type ItemOf<T> = T extends readonly (infer E)[] ? E : never;

/**
 * Every item of a List RPC, page after page: `for await (const c of listClusters(client, {}))`.
 * The request's other fields (filter, order_by, page_size...) are sent unchanged with each
 * page_token, as the API requires. Break out of the loop to stop fetching.
 */
export type Pager<I extends DescMessage, Item> = (
  client: Pick<FlotillaClient, "transport">,
  request?: MessageInitShape<I>,
  options?: CallOptions,
) => AsyncIterable<Item>;

/** The pager of each List RPC, by its full name ("flotilla.v1.ClusterService.ListClusters"). */
export const PAGERS: ReadonlyMap<string, Pager<DescMessage, unknown>> = new Map();

/**
 * A pager for one List RPC, yielding the elements of its `itemsField`. Responses without
 * `next_page_token` (ListProviders, ...) are one page.
 */
export function pager<I extends DescMessage, O extends DescMessage, K extends RepeatedKeys<MessageShape<O>>>(
  method: DescMethodUnary<I, O>,
  itemsField: K,
): Pager<I, ItemOf<MessageShape<O>[K]>> {
  if (!method.output.fields.some((f) => f.localName === itemsField && f.fieldKind === "list")) {
    throw new Error(`${method.output.typeName} has no repeated field ${itemsField}`);
  }
  const paged = method.output.fields.some((f) => f.name === "next_page_token");
  const fn = async function* (
    client: Pick<FlotillaClient, "transport">,
    request?: MessageInitShape<I>,
    options?: CallOptions,
  ): AsyncGenerator<ItemOf<MessageShape<O>[K]>> {
    const call = createClient(method.parent, client.transport)[method.localName] as unknown as (
      req: MessageInitShape<I>,
      opts?: CallOptions,
    ) => Promise<MessageShape<O>>;
    let pageToken = "";
    for (;;) {
      const req = { ...(request ?? {}), ...(paged ? { pageToken } : {}) } as MessageInitShape<I>;
      const res = await call(req, options);
      yield* res[itemsField] as Iterable<ItemOf<MessageShape<O>[K]>>;
      const next = paged ? (res as unknown as { nextPageToken: string }).nextPageToken : "";
      if (next === "") {
        return;
      }
      if (next === pageToken) {
        throw new Error(`${method.parent.typeName}.${method.name}: the server returned the same page token twice`);
      }
      pageToken = next;
    }
  };
  (PAGERS as Map<string, Pager<DescMessage, unknown>>).set(
    `${method.parent.typeName}.${method.name}`,
    fn as Pager<DescMessage, unknown>,
  );
  return fn;
}

// One pager per List RPC; test/paging.test.js fails when an RPC named List* has none.
export const listApiTokens = pager(AdminService.method.listApiTokens, "tokens");
export const listAuditEvents = pager(AdminService.method.listAuditEvents, "events");
export const listClusters = pager(ClusterService.method.listClusters, "clusters");
export const listProviders = pager(ClusterService.method.listProviders, "providers");
export const listVendorClusters = pager(ClusterService.method.listVendorClusters, "clusters");
export const listCredentials = pager(CredentialService.method.listCredentials, "credentials");
export const listNodes = pager(NodeService.method.listNodes, "nodes");
export const listNodePools = pager(NodeService.method.listNodePools, "nodePools");
export const listOperations = pager(OperationService.method.listOperations, "operations");
export const listRegistries = pager(RegistryService.method.listRegistries, "registries");
export const listRegistryNamespaces = pager(RegistryService.method.listRegistryNamespaces, "namespaces");
export const listRepositories = pager(RegistryService.method.listRepositories, "repositories");
export const listArtifacts = pager(RegistryService.method.listArtifacts, "artifacts");
export const listTags = pager(RegistryService.method.listTags, "tags");
export const listCharts = pager(RegistryService.method.listCharts, "charts");
export const listChartVersions = pager(RegistryService.method.listChartVersions, "versions");
export const listRegistryProviders = pager(RegistryService.method.listRegistryProviders, "providers");
export const listWorkloads = pager(WorkloadService.method.listWorkloads, "workloads");
export const listPods = pager(WorkloadService.method.listPods, "pods");
export const listResources = pager(WorkloadService.method.listResources, "resources");
export const listResourceKinds = pager(WorkloadService.method.listResourceKinds, "kinds");
export const listEvents = pager(WorkloadService.method.listEvents, "events");
