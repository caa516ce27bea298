import { ConnectError, Code } from "@connectrpc/connect";
import type { Duration } from "@bufbuild/protobuf/wkt";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";

/** One invalid field of a request, from `google.rpc.BadRequest`. */
export interface FieldViolation {
  /** Path of the field, such as "spec.ack.region". */
  field: string;
  description: string;
  /** Machine-readable reason of this violation, when the server gives one. */
  reason: string;
}

/** What a failed call says, decoded from its `google.rpc` details. */
export interface FlotillaErrorDetails {
  code: Code;
  /** The gRPC code's name, such as "InvalidArgument". */
  codeName: string;
  /** The server's message, without Connect's "[code]" prefix. */
  message: string;
  /** `ErrorInfo.reason`, such as "CLUSTER_NOT_FOUND"; "" when the error carries none. */
  reason: string;
  /** `ErrorInfo.domain`; "" when the error carries none. */
  domain: string;
  /** `ErrorInfo.metadata`. */
  metadata: Record<string, string>;
  /** `BadRequest.field_violations`. */
  fieldViolations: FieldViolation[];
  /** `RetryInfo.retry_delay` in milliseconds, when the server said when to retry. */
  retryDelayMs: number | undefined;
}

/** Milliseconds of a protobuf Duration. */
export function durationMs(d: Duration): number {
  return Number(d.seconds) * 1000 + Math.floor(d.nanos / 1_000_000);
}

/**
 * Decodes the details of any error a Flotilla call threw (a `ConnectError`; anything else is
 * wrapped as Code.Unknown by `ConnectError.from`).
 */
export function errorDetails(err: unknown): FlotillaErrorDetails {
  const e = ConnectError.from(err);
  const info = e.findDetails(ErrorInfoSchema)[0];
  const violations = e.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations);
  const retry = e.findDetails(RetryInfoSchema).find((r) => r.retryDelay !== undefined);
  return {
    code: e.code,
    codeName: Code[e.code],
    message: e.rawMessage,
    reason: info?.reason ?? "",
    domain: info?.domain ?? "",
    metadata: { ...(info?.metadata ?? {}) },
    fieldViolations: violations.map((v) => ({
      field: v.field,
      description: v.description,
      reason: v.reason,
    })),
    retryDelayMs: retry?.retryDelay ? durationMs(retry.retryDelay) : undefined,
  };
}
