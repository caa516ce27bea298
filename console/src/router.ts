// Hash routes (#/clusters/prod/nodes): the server serves one index.html for the console, and a
// route is never sent to it, so nothing in a route ends up in a server or proxy log.
import { signal, useSignal } from "./state";

export const route = signal(parse(location.hash));

window.addEventListener("hashchange", () => route.set(parse(location.hash)));

export interface Route {
  /** Path segments, decoded: "#/clusters/prod/nodes" is ["clusters", "prod", "nodes"]. */
  segments: string[];
  /** Query after "?" in the hash ("#/logs?cluster=a&pod=b"). */
  query: URLSearchParams;
}

function parse(hash: string): Route {
  const raw = hash.replace(/^#\/?/, "");
  const [path = "", q = ""] = raw.split("?", 2);
  return {
    segments: path.split("/").filter((s) => s !== "").map(decodeURIComponent),
    query: new URLSearchParams(q),
  };
}

/** The href of a route: href("clusters", id, "nodes") or href("logs", {cluster, pod}). */
export function href(...parts: (string | Record<string, string>)[]): string {
  const segs = parts.filter((p): p is string => typeof p === "string").map(encodeURIComponent);
  const query = parts.find((p): p is Record<string, string> => typeof p !== "string");
  const q = query ? new URLSearchParams(query).toString() : "";
  return `#/${segs.join("/")}${q ? `?${q}` : ""}`;
}

export function navigate(to: string): void {
  location.hash = to.replace(/^#/, "");
}

export function useRoute(): Route {
  return useSignal(route);
}
