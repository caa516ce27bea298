// A list read page by page: the first page on mount, "Load more" for the next.
import { useEffect, useState } from "preact/hooks";
import { apiError, type ApiError } from "../../api";

export interface Page<T> {
  items: T[];
  nextPageToken: string;
  totalSize?: number;
}

export function usePaged<T>(fetch: (pageToken: string, signal: AbortSignal) => Promise<Page<T>>, deps: unknown[]) {
  const [items, setItems] = useState<T[]>([]);
  const [next, setNext] = useState("");
  const [total, setTotal] = useState<number | undefined>(undefined);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(true);
  const [want, setWant] = useState({ token: "", generation: 0 });
  useEffect(() => {
    setItems([]);
    setWant((w) => ({ token: "", generation: w.generation + 1 }));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  useEffect(() => {
    if (want.generation === 0) return;
    const abort = new AbortController();
    setLoading(true);
    fetch(want.token, abort.signal).then(
      (p) => {
        if (abort.signal.aborted) return;
        setItems((old) => (want.token === "" ? p.items : [...old, ...p.items]));
        setNext(p.nextPageToken);
        setTotal(p.totalSize);
        setError(null);
        setLoading(false);
      },
      (e: unknown) => {
        if (abort.signal.aborted) return;
        setError(apiError(e));
        setLoading(false);
      },
    );
    return () => abort.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [want]);
  return {
    items,
    total,
    error,
    loading,
    more: next ? () => setWant((w) => ({ token: next, generation: w.generation + 1 })) : undefined,
    reload: () => setWant((w) => ({ token: "", generation: w.generation + 1 })),
  };
}

export function LoadMore({ more, loading, shown, total }: { more: (() => void) | undefined; loading: boolean; shown: number; total?: number | undefined }) {
  return (
    <div class="pager">
      <span class="muted" aria-live="polite">
        {loading ? "Loading…" : `${shown}${total ? ` of ${total}` : ""} shown`}
      </span>
      {more ? (
        <button type="button" disabled={loading} onClick={more}>
          Load more
        </button>
      ) : null}
    </div>
  );
}
