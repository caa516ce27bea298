// Node-only entry ("@flotilla-dev/client/node"): gRPC over HTTP/2 through node:http2, which
// browsers do not have, so the main entry never imports it.
import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { SecureClientSessionOptions } from "node:http2";
import { createServicesClient, createWebTransport, flotillaInterceptors } from "./client.js";
import type { FlotillaClient, TransportOptions } from "./client.js";

export * from "./index.js";

export interface NodeTransportOptions extends TransportOptions {
  /** TLS settings for https URLs, such as `{ ca: readFileSync("ca.pem") }`. */
  tls?: Pick<SecureClientSessionOptions, "ca" | "cert" | "key" | "servername">;
}

/** gRPC over HTTP/2 (plain text for http:// URLs, TLS for https://). */
export function createNodeTransport(options: NodeTransportOptions): Transport {
  return createGrpcTransport({
    baseUrl: options.baseUrl,
    interceptors: flotillaInterceptors(options),
    ...(options.defaultTimeoutMs !== undefined ? { defaultTimeoutMs: options.defaultTimeoutMs } : {}),
    ...(options.tls !== undefined ? { nodeOptions: options.tls } : {}),
  });
}

export interface NodeClientOptions extends NodeTransportOptions {
  /** "grpc" (default here): HTTP/2 gRPC; "grpc-web": what the browser console uses. */
  transport?: "grpc" | "grpc-web" | Transport;
}

/** A Flotilla client for Node: gRPC over HTTP/2 unless told otherwise. */
export function createFlotillaClient(options: NodeClientOptions): FlotillaClient {
  const t = options.transport ?? "grpc";
  if (t === "grpc") {
    return createServicesClient(createNodeTransport(options));
  }
  return createServicesClient(t === "grpc-web" ? createWebTransport(options) : t);
}
