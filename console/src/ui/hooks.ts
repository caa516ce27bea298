// Loading data from the API in components: one call (useCall) or a server stream (useStream).
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { apiError, type ApiError } from "../api";

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | null;
  loading: boolean;
  /** Calls again (after a change the page made). */
  reload: () => void;
}

/**
 * The result of `call`, called again when `deps` change. A failure with a RetryInfo delay
 * (UNAVAILABLE) is retried after that delay; `error.retryDelayMs` tells the user when.
 */
export function useCall<T>(call: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: ApiError | null; loading: boolean }>({
    data: undefined,
    error: null,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    setState((s) => ({ ...s, loading: true }));
    call(abort.signal).then(
      (data) => !abort.signal.aborted && setState({ data, error: null, loading: false }),
      (e: unknown) => {
        if (abort.signal.aborted) return;
        const error = apiError(e);
        setState((s) => ({ data: s.data, error, loading: false }));
        if (error.retryDelayMs !== undefined) timer = setTimeout(reload, error.retryDelayMs);
      },
    );
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return { ...state, reload };
}

/**
 * Runs a server stream while the component is mounted (and `deps` are unchanged), handing each
 * message to `onMessage`. It reconnects after a failure, waiting the server's RetryInfo delay
 * (or 2 s); `error` is the last failure until a message arrives again.
 */
export function useStream<M>(
  open: (signal: AbortSignal) => AsyncIterable<M>,
  onMessage: (m: M) => void,
  deps: unknown[],
  options: { enabled?: boolean; reconnect?: boolean } = {},
): { error: ApiError | null; connected: boolean } {
  const [error, setError] = useState<ApiError | null>(null);
  const [connected, setConnected] = useState(false);
  const handler = useRef(onMessage);
  handler.current = onMessage;
  const enabled = options.enabled ?? true;
  const reconnect = options.reconnect ?? true;
  useEffect(() => {
    if (!enabled) return;
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async (): Promise<void> => {
      try {
        setConnected(true);
        for await (const m of open(abort.signal)) {
          setError(null);
          handler.current(m);
        }
        setConnected(false);
      } catch (e) {
        setConnected(false);
        if (abort.signal.aborted) return;
        const err = apiError(e);
        setError(err);
        if (reconnect && err.codeName !== "Unauthenticated" && err.codeName !== "PermissionDenied") {
          timer = setTimeout(() => void run(), err.retryDelayMs ?? 2000);
        }
      }
    };
    void run();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, enabled]);
  return { error, connected };
}
