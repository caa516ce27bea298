// @flotilla-dev/client: the Flotilla API for browsers and Node (grpc-web). Node's gRPC over
// HTTP/2 is in "@flotilla-dev/client/node".
export { tokenInterceptor } from "./auth.js";
export type { TokenSource } from "./auth.js";
export {
  SERVICES,
  createFlotillaClient,
  createServicesClient,
  createWebTransport,
  flotillaInterceptors,
} from "./client.js";
export type { ClientOptions, FlotillaClient, FlotillaServices, TransportOptions } from "./client.js";
export { durationMs, errorDetails } from "./errors.js";
export type { FieldViolation, FlotillaErrorDetails } from "./errors.js";
export { OperationFailedError, waitOperation } from "./operations.js";
export type { WaitOptions } from "./operations.js";
export * from "./paging.js";
export { isReadMethod, retryInterceptor } from "./retry.js";
export type { RetryMethods, RetryOptions } from "./retry.js";
export { Code, ConnectError } from "@connectrpc/connect";
export type { CallOptions, Interceptor, Transport } from "@connectrpc/connect";
export { create } from "@bufbuild/protobuf";
