// What the clusters pages share: the providers (with their capabilities, fetched once per
// session view), label text <-> map, and the field paths of the API's refusals.
import { useEffect, useState } from "preact/hooks";
import type { Provider } from "@flotilla-dev/client/v1";
import { api, apiError, type ApiError } from "../../api";

let providersCache: Promise<Provider[]> | undefined;

/** ListProviders, called once and shared by every clusters view (capabilities do not change while the server runs). */
export function useProviders(): { providers: Provider[] | undefined; error: ApiError | null } {
  const [providers, setProviders] = useState<Provider[] | undefined>(undefined);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => {
    let live = true;
    providersCache ??= api.clusters.listProviders({}).then((r) => r.providers);
    providersCache.then(
      (p) => live && setProviders(p),
      (e: unknown) => {
        providersCache = undefined;
        if (live) setError(apiError(e));
      },
    );
    return () => {
      live = false;
    };
  }, []);
  return { providers, error };
}

/**
 * "env=prod, team=core" or one per line into a map. A piece without "=" is refused here with
 * its text, so the user sees which one.
 */
export function parseLabels(text: string): { labels: Record<string, string>; error?: string } {
  const labels: Record<string, string> = {};
  for (const raw of text.split(/[\n,]/)) {
    const piece = raw.trim();
    if (piece === "") continue;
    const i = piece.indexOf("=");
    if (i <= 0) return { labels, error: `"${piece}" is not key=value` };
    labels[piece.slice(0, i).trim()] = piece.slice(i + 1).trim();
  }
  return { labels };
}

/** The first violation whose field is `prefix` or under it ("labels" matches "labels.env"). */
export function fieldUnder(err: ApiError | null, prefix: string): string | undefined {
  const v = err?.fieldViolations.find((f) => f.field === prefix || f.field.startsWith(`${prefix}.`));
  return v ? `${v.field === prefix ? "" : `${v.field}: `}${v.description}` : undefined;
}

/** The violation of exactly this field. */
export function fieldExact(err: ApiError | null, field: string): string | undefined {
  return err?.fieldViolations.find((f) => f.field === field)?.description;
}

/** A fresh idempotency key for CreateCluster/DeleteCluster. */
export function requestId(): string {
  // crypto.randomUUID needs a secure context; a console served over plain HTTP is not one.
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
