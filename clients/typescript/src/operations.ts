import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Operation, OperationError } from "./gen/flotilla/v1/operation_pb.js";
import { ErrorClass, OperationState } from "./gen/flotilla/v1/operation_pb.js";
import { OperationService } from "./gen/flotilla/v1/operation_service_pb.js";
import type { FlotillaClient } from "./client.js";

/** Thrown by `waitOperation` when the operation ends FAILED or CANCELLED. */
export class OperationFailedError extends Error {
  override readonly name = "OperationFailedError";
  constructor(
    /** The operation in its final state. */
    readonly operation: Operation,
  ) {
    const e = operation.error;
    const why = e
      ? `${ErrorClass[e.errorClass] ?? e.errorClass}${e.vendorCode ? ` ${e.vendorCode}` : ""}: ${e.vendorMessage}`
      : "no error recorded";
    super(`operation ${operation.id} ${OperationState[operation.state]} (${why})`);
  }

  /** Why it failed, as the server recorded it (vendor code, message, request id, step). */
  get failure(): OperationError | undefined {
    return this.operation.error;
  }
}

export interface WaitOptions {
  /** Stops waiting (the operation itself goes on; cancel it with CancelOperation). */
  signal?: AbortSignal;
  /** Called with every state the watch reports, the first one included. */
  onUpdate?: (op: Operation) => void;
  /** First pause before reconnecting a dropped watch; doubles up to 5 s; default 250 ms. */
  reconnectDelayMs?: number;
  /** Watches in a row that may fail before any state arrives, before giving up; default 10. */
  maxReconnects?: number;
}

/**
 * Codes after which watching again can help: the stream broke, not the request. CANCELED is
 * among them because connect-node reports a cut HTTP/2 connection as a CANCEL reset; the
 * caller's own abort is checked first.
 */
const RECONNECT_CODES = new Set([
  Code.Unavailable,
  Code.Internal,
  Code.Unknown,
  Code.Aborted,
  Code.DeadlineExceeded,
  Code.Canceled,
]);

function isTerminal(state: OperationState): boolean {
  return (
    state === OperationState.SUCCEEDED || state === OperationState.FAILED || state === OperationState.CANCELLED
  );
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new ConnectError("waitOperation aborted", Code.Canceled, undefined, undefined, signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Waits for an operation to finish through `OperationService.WatchOperation`, watching again
 * when the stream drops. Resolves with the SUCCEEDED operation; throws `OperationFailedError`
 * (carrying the operation and its error) when it ends FAILED or CANCELLED, and the
 * `ConnectError` of any other failure (NOT_FOUND, PERMISSION_DENIED, an abort...).
 */
export async function waitOperation(
  client: Pick<FlotillaClient, "transport">,
  operationId: string,
  options: WaitOptions = {},
): Promise<Operation> {
  const ops = createClient(OperationService, client.transport);
  const first = options.reconnectDelayMs ?? 250;
  const maxReconnects = options.maxReconnects ?? 10;
  let delay = first;
  let failures = 0;
  for (;;) {
    try {
      for await (const res of ops.watchOperation(
        { operationId },
        options.signal !== undefined ? { signal: options.signal } : {},
      )) {
        const op = res.operation;
        if (op === undefined) {
          continue;
        }
        // The stream works again: a later drop starts from the short pause and a full budget.
        delay = first;
        failures = 0;
        options.onUpdate?.(op);
        if (op.state === OperationState.SUCCEEDED) {
          return op;
        }
        if (isTerminal(op.state)) {
          throw new OperationFailedError(op);
        }
      }
      // Ended without a terminal state: a proxy or the server went away mid-watch.
      if (++failures > maxReconnects) {
        throw new ConnectError(`the watch of operation ${operationId} kept ending early`, Code.Unavailable);
      }
    } catch (err) {
      // Not from the stream (OperationFailedError, an onUpdate that threw): the caller's.
      if (!(err instanceof ConnectError)) {
        throw err;
      }
      if (options.signal?.aborted || !RECONNECT_CODES.has(err.code) || ++failures > maxReconnects) {
        throw err;
      }
    }
    await pause(delay, options.signal);
    delay = Math.min(delay * 2, 5000);
  }
}
