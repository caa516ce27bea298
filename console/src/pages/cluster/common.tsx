// Pieces the cluster tabs share: the namespace filter and a select of another query parameter
// (both kept in the route's query, so a filtered view can be linked), and reading every page of a list.
import { useState } from "preact/hooks";
import { href, navigate, type Route } from "../../router";
import { SearchBar } from "../../ui/pickers";

/** The route's `namespace` query parameter ("" = all namespaces). */
export function namespaceOf(route: Route): string {
  return route.query.get("namespace") ?? "";
}

/** A labelled select of the route's `param` query parameter; choosing shows this tab with the namespace filter kept. */
export function QuerySelect(props: { route: Route; id: string; label: string; param: string; options: { value: string; label: string }[] }) {
  const { route, param } = props;
  return (
    <>
      <label for={props.id}>{props.label}</label>
      <select
        id={props.id}
        value={route.query.get(param) ?? ""}
        onChange={(e) => {
          const q: Record<string, string> = {};
          const namespace = namespaceOf(route);
          if (namespace) q.namespace = namespace;
          if (e.currentTarget.value) q[param] = e.currentTarget.value;
          navigate(href(...route.segments, q));
        }}
      >
        {props.options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </>
  );
}

/** A labelled namespace input; applying it rewrites the route's query. */
export function NamespaceFilter(props: {
  route: Route;
  id: string;
  children?: preact.ComponentChildren;
  /** Other query parameters to keep. */
  keep?: string[];
}) {
  const current = namespaceOf(props.route);
  const [value, setValue] = useState(current);
  return (
    <SearchBar
      label="Filter"
      inputId={props.id}
      inputLabel="Namespace"
      value={value}
      placeholder="all namespaces"
      onInput={setValue}
      onSubmit={() => {
        const query: Record<string, string> = {};
        for (const k of props.keep ?? []) {
          const v = props.route.query.get(k);
          if (v) query[k] = v;
        }
        if (value.trim()) query.namespace = value.trim();
        navigate(href(...props.route.segments, query));
      }}
    >
      {props.children}
    </SearchBar>
  );
}

/** Every item of a paged list (at most `max`, so a huge cluster cannot hang the tab). */
export async function allPages<T>(
  page: (pageToken: string) => Promise<{ items: T[]; next: string }>,
  max = 5000,
): Promise<{ items: T[]; truncated: boolean }> {
  const items: T[] = [];
  let token = "";
  do {
    const res = await page(token);
    items.push(...res.items);
    token = res.next;
  } while (token !== "" && items.length < max);
  return { items, truncated: token !== "" };
}

/** "cpu 4 · memory 16Gi" from a quantity map, in a stable order. */
export function quantities(m: Record<string, string>): string {
  const order = ["cpu", "memory", "pods", "ephemeral-storage"];
  return Object.keys(m)
    .sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b))
    .filter((k) => order.includes(k))
    .map((k) => `${k} ${m[k]}`)
    .join(" · ");
}
