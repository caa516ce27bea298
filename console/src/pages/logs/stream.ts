// Runs one log stream (a pod's or a workload's) while the view is mounted and its request is
// unchanged. Retries only what the server says to retry (UNAVAILABLE, or any error with a
// RetryInfo delay), continuing after the last line it received instead of repeating the tail.
import { useEffect, useRef, useState } from "preact/hooks";
import { create } from "@flotilla-dev/client";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import { LogEntryKind, WorkloadKind, type LogEntry, type LogOptionsSchema } from "@flotilla-dev/client/v1";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { api, apiError, type ApiError } from "../../api";

/** What the user picked: one pod, or every pod of a workload. */
export type LogSource =
  | { type: "pod"; cluster: string; namespace: string; pod: string; container: string }
  | { type: "workload"; cluster: string; namespace: string; kind: WorkloadKind; name: string; container: string };

export interface LogRequestOptions {
  follow: boolean;
  /** Empty: the server's default. */
  tailLines: string;
  /** Seconds ("300") or a time ("2026-01-02T03:04:05Z"); empty: everything. */
  since: string;
  previous: boolean;
  timestamps: boolean;
}

export type StreamState = "connecting" | "streaming" | "ended" | "failed" | "retrying";

/** The LogOptions of the form, or a message about the field that cannot be sent. */
type LogOptionsInit = MessageInitShape<typeof LogOptionsSchema>;

export function logOptions(o: LogRequestOptions, resumeAfter?: Timestamp): LogOptionsInit | string {
  let tailLines: bigint | undefined;
  let since: NonNullable<LogOptionsInit>["since"];
  const tail = o.tailLines.trim();
  if (tail !== "") {
    if (!/^\d+$/.test(tail)) return "Tail lines must be a whole number.";
    tailLines = BigInt(tail);
  }
  const s = o.since.trim();
  if (resumeAfter) {
    since = { case: "sinceTime", value: resumeAfter };
    tailLines = undefined;
  } else if (/^\d+$/.test(s)) {
    since = { case: "sinceSeconds", value: BigInt(s) };
  } else if (s !== "") {
    const ms = Date.parse(s);
    if (Number.isNaN(ms)) return "Since is a number of seconds or a time such as 2026-01-02T03:04:05Z.";
    since = { case: "sinceTime", value: timestamp(ms) };
  }
  return { follow: o.follow, previous: o.previous, timestamps: o.timestamps, tailLines, since };
}

function timestamp(ms: number): Timestamp {
  return create(TimestampSchema, { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 });
}

function open(source: LogSource, options: LogOptionsInit | string, signal: AbortSignal, onHeader: () => void): AsyncIterable<{ entries: LogEntry[] }> {
  if (typeof options === "string") throw new Error(options);
  if (source.type === "pod") {
    return api.logs.streamPodLogs(
      {
      clusterId: source.cluster,
      namespace: source.namespace,
      pod: source.pod,
      container: source.container,
      options,
      },
      { signal, onHeader },
    );
  }
  return api.logs.streamWorkloadLogs(
    {
    clusterIds: [source.cluster],
    namespace: source.namespace,
    pods: { case: "workload", value: { kind: source.kind, name: source.name } },
    containers: source.container ? [source.container] : [],
    options,
    },
    { signal, onHeader },
  );
}

/**
 * Streams `source` with `options` into `onEntries`; `key` identifies the request (a change
 * starts a new stream). Returns the stream's state and its last error.
 */
export function useLogStream(
  source: LogSource | null,
  options: LogRequestOptions,
  onEntries: (entries: LogEntry[]) => void,
  key: string,
): { state: StreamState; error: ApiError | null } {
  const [state, setState] = useState<StreamState>("connecting");
  const [error, setError] = useState<ApiError | null>(null);
  const handler = useRef(onEntries);
  handler.current = onEntries;
  useEffect(() => {
    if (!source) return;
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let last: Timestamp | undefined;
    setError(null);
    const run = async (): Promise<void> => {
      setState("connecting");
      try {
        const opts = logOptions(options, last);
        // The response headers say the server accepted the stream, before any line exists.
        for await (const res of open(source, opts, abort.signal, () => setState("streaming"))) {
          setState("streaming");
          setError(null);
          for (let i = res.entries.length - 1; i >= 0; i--) {
            const t = res.entries[i];
            if (t?.kind === LogEntryKind.LINE && t.time) {
              last = t.time;
              break;
            }
          }
          handler.current(res.entries);
        }
        if (!abort.signal.aborted) setState("ended");
      } catch (e) {
        if (abort.signal.aborted) return;
        const err = apiError(e);
        const retry = err.retryDelayMs ?? (err.codeName === "Unavailable" ? 2000 : undefined);
        // The ErrorBox says when the next try is, with or without the server's RetryInfo.
        setError(retry === undefined ? err : { ...err, retryDelayMs: retry });
        if (retry === undefined) {
          setState("failed");
          return;
        }
        setState("retrying");
        // Continue after the last line received (from the next nanosecond).
        if (last) last = last.nanos < 999_999_999 ? { ...last, nanos: last.nanos + 1 } : { ...last, seconds: last.seconds + 1n, nanos: 0 };
        timer = setTimeout(() => void run(), retry);
      }
    };
    void run();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return { state, error };
}
