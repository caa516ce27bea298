// Reading lists page by page: Previous/Next over page tokens (usePageTokens, Pager), a list that
// grows with "Load more" (usePaged, LoadMore, PagedItems), and every item of one (collect).
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { apiError, type ApiError } from "../api";

export interface PageTokens {
  /** The page_token of the page shown ("" for the first). */
  pageToken: string;
  /** 1 for the first page. */
  page: number;
  back: () => void;
  forward: (nextPageToken: string) => void;
}

/** The page tokens of the pages before this one (for "Previous") and of this one; the first page again when `deps` change. */
export function usePageTokens(deps: unknown[]): PageTokens {
  const [tokens, setTokens] = useState<string[]>([""]);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  useEffect(() => setTokens([""]), deps);
  return {
    pageToken: tokens[tokens.length - 1] ?? "",
    page: tokens.length,
    back: () => setTokens((t) => t.slice(0, -1)),
    forward: (next) => setTokens((t) => [...t, next]),
  };
}

export function Pager(props: {
  label: string;
  pages: PageTokens;
  /** The shown page's next_page_token ("" or undefined: this is the last). */
  nextPageToken: string | undefined;
  previous: string;
  next: string;
  /** Show "Page N" between the buttons. */
  showPage?: boolean;
}) {
  const { pages, nextPageToken } = props;
  return (
    <nav class="pager" aria-label={props.label}>
      <button type="button" disabled={pages.page < 2} onClick={pages.back}>
        {props.previous}
      </button>
      {props.showPage ? <span class="muted">Page {pages.page}</span> : null}
      <button type="button" disabled={!nextPageToken} onClick={() => nextPageToken && pages.forward(nextPageToken)}>
        {props.next}
      </button>
    </nav>
  );
}

export interface Page<T> {
  items: T[];
  nextPageToken: string;
  totalSize?: number;
}

export interface Paged<T> {
  items: T[];
  total: number | undefined;
  error: ApiError | null;
  loading: boolean;
  /** Loads the next page; undefined on the last. */
  more: (() => void) | undefined;
  reload: () => void;
}

/** A list read page by page: the first page on mount (and when `deps` change), "Load more" for the next. */
export function usePaged<T>(fetch: (pageToken: string, signal: AbortSignal) => Promise<Page<T>>, deps: unknown[]): Paged<T> {
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

export function LoadMore({ paged }: { paged: Paged<unknown> }) {
  const { more, loading, total } = paged;
  const shown = paged.items.length;
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

/** A paged list's items (`children`), `empty` once it is known to have none, and its Load more. */
export function PagedItems<T>(props: { paged: Paged<T>; empty: ComponentChildren; children: (items: T[]) => ComponentChildren }) {
  const { paged } = props;
  return (
    <>
      {paged.items.length > 0 ? props.children(paged.items) : paged.loading || paged.error ? null : props.empty}
      <LoadMore paged={paged} />
    </>
  );
}

/** Every item a pager of the client yields (listClusters(api, ...)). */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

