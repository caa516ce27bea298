import { createClient } from "@connectrpc/connect";
import type { Client, Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { tokenInterceptor } from "./auth.js";
import type { TokenSource } from "./auth.js";
import { retryInterceptor } from "./retry.js";
import type { RetryOptions } from "./retry.js";
import { AdminService } from "./gen/flotilla/v1/admin_service_pb.js";
import { AgentService } from "./gen/flotilla/v1/agent_service_pb.js";
import { ClusterService } from "./gen/flotilla/v1/cluster_service_pb.js";
import { CredentialService } from "./gen/flotilla/v1/credential_service_pb.js";
import { LogStream } from "./gen/flotilla/v1/log_stream_pb.js";
import { NodeService } from "./gen/flotilla/v1/node_service_pb.js";
import { OperationService } from "./gen/flotilla/v1/operation_service_pb.js";
import { RegistryService } from "./gen/flotilla/v1/registry_service_pb.js";
import { WorkloadService } from "./gen/flotilla/v1/workload_service_pb.js";

/** Every Flotilla service, by the name the client object gives it. */
export interface FlotillaServices {
  readonly admin: typeof AdminService;
  /** For the in-cluster agent: registration tokens and agent credentials, not API tokens. */
  readonly agents: typeof AgentService;
  readonly clusters: typeof ClusterService;
  readonly credentials: typeof CredentialService;
  /** Pod and workload logs, event watches (server streams). */
  readonly logs: typeof LogStream;
  readonly nodes: typeof NodeService;
  readonly operations: typeof OperationService;
  readonly registries: typeof RegistryService;
  readonly workloads: typeof WorkloadService;
}

export const SERVICES: FlotillaServices = {
  admin: AdminService,
  agents: AgentService,
  clusters: ClusterService,
  credentials: CredentialService,
  logs: LogStream,
  nodes: NodeService,
  operations: OperationService,
  registries: RegistryService,
  workloads: WorkloadService,
};

/** A typed client of every service, sharing one transport (and so one connection). */
export type FlotillaClient = { readonly [K in keyof FlotillaServices]: Client<FlotillaServices[K]> } & {
  /** The transport the services use; the paging and operation helpers call through it. */
  readonly transport: Transport;
};

/** Options shared by both transports. */
export interface TransportOptions {
  /** Server URL, such as "http://127.0.0.1:50051" or "https://flotilla.example.com". */
  baseUrl: string;
  /** API token, sent as `Authorization: Bearer ...`. Omit it to add your own interceptor. */
  token?: TokenSource;
  /** Repeat reads that fail with UNAVAILABLE (honouring RetryInfo); false turns it off. */
  retry?: RetryOptions | false;
  /** More interceptors, run after the token and retry ones (outermost first). */
  interceptors?: Interceptor[];
  /** Deadline of every call without its own `timeoutMs`. */
  defaultTimeoutMs?: number;
}

/** The interceptors every Flotilla transport carries. */
export function flotillaInterceptors(options: TransportOptions): Interceptor[] {
  const list: Interceptor[] = [];
  if (options.retry !== false) {
    list.push(retryInterceptor(options.retry ?? {}));
  }
  if (options.token !== undefined) {
    list.push(tokenInterceptor(options.token));
  }
  return [...list, ...(options.interceptors ?? [])];
}

/**
 * grpc-web over `fetch` (the browser console's transport; works in Node 20+ too). The server
 * answers grpc-web on its gRPC port; a browser on another origin needs
 * `--cors-allowed-origins`.
 */
export function createWebTransport(options: TransportOptions & { fetch?: typeof globalThis.fetch }): Transport {
  return createGrpcWebTransport({
    baseUrl: options.baseUrl,
    interceptors: flotillaInterceptors(options),
    ...(options.defaultTimeoutMs !== undefined ? { defaultTimeoutMs: options.defaultTimeoutMs } : {}),
    ...(options.fetch !== undefined ? { fetch: options.fetch } : {}),
  });
}

/** A client of every service over `transport`. */
export function createServicesClient(transport: Transport): FlotillaClient {
  const services = Object.fromEntries(
    Object.entries(SERVICES).map(([name, desc]) => [name, createClient(desc, transport)]),
  ) as { [K in keyof FlotillaServices]: Client<FlotillaServices[K]> };
  return { ...services, transport };
}

export interface ClientOptions extends TransportOptions {
  /** "grpc-web" (default in browsers and here), or a Transport you made. For gRPC over HTTP/2
   * in Node, import `createFlotillaClient` from "@flotilla-dev/client/node". */
  transport?: "grpc-web" | Transport;
}

/** A Flotilla client over grpc-web (or the given transport). */
export function createFlotillaClient(options: ClientOptions): FlotillaClient {
  const t = options.transport;
  return createServicesClient(t === undefined || t === "grpc-web" ? createWebTransport(options) : t);
}
