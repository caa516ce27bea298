import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";
import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { errorDetails } from "./errors.js";

/** Which calls the retry interceptor may repeat. */
export type RetryMethods = "reads" | "all" | ((method: DescMethod) => boolean);

export interface RetryOptions {
  /** Attempts in all, the first included; default 4. */
  maxAttempts?: number;
  /** First backoff when the server gives no RetryInfo; doubled each time; default 200 ms. */
  initialBackoffMs?: number;
  /** Longest wait between attempts, RetryInfo included; default 10 s. */
  maxBackoffMs?: number;
  /**
   * "reads" (default): only calls that change nothing (Get*, List*, or declared
   * NO_SIDE_EFFECTS), because an UNAVAILABLE write may have happened. "all", or a predicate, opts
   * writes in (safe for requests that carry a request_id).
   */
  methods?: RetryMethods;
}

/** True for RPCs that change nothing on the server. */
export function isReadMethod(method: DescMethod): boolean {
  return (
    method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS ||
    /^(Get|List)[A-Z]/.test(method.name)
  );
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(ConnectError.from(signal.reason ?? new Error("aborted"), Code.Canceled));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(ConnectError.from(signal?.reason ?? new Error("aborted"), Code.Canceled));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Repeats unary calls that fail with UNAVAILABLE, waiting as long as the error's
 * `google.rpc.RetryInfo` says (else exponential backoff with jitter). Streams are not repeated:
 * part of their answer may already have been consumed.
 */
export function retryInterceptor(options: RetryOptions = {}): Interceptor {
  const maxAttempts = Math.max(1, options.maxAttempts ?? 4);
  const initial = options.initialBackoffMs ?? 200;
  const max = options.maxBackoffMs ?? 10_000;
  const methods = options.methods ?? "reads";
  const allowed = (m: DescMethod) =>
    methods === "all" ? true : methods === "reads" ? isReadMethod(m) : methods(m);
  return (next) => async (req) => {
    if (req.stream || !allowed(req.method)) {
      return next(req);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await next(req);
      } catch (err) {
        const e = ConnectError.from(err);
        if (e.code !== Code.Unavailable || attempt >= maxAttempts || req.signal.aborted) {
          throw err;
        }
        const hinted = errorDetails(e).retryDelayMs;
        const backoff = initial * 2 ** (attempt - 1);
        const wait = Math.min(max, hinted ?? backoff * (0.5 + Math.random() / 2));
        await sleep(wait, req.signal);
      }
    }
  };
}
