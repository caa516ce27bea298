// The console's data tables: a labelled, focusable scroll region (a phone scrolls a wide table
// sideways, and keyboard users must reach it) around a .table with its caption and column heads,
// and the loading / empty / loaded states a list shows around one.
import type { ComponentChildren } from "preact";

/** A column head: its text, or its text with a class ("wide-only"); null leaves it out. */
export type Column = string | { label: string; class: string } | null;

export function Loading() {
  return <p aria-live="polite">Loading…</p>;
}

/**
 * A list's state: "Loading…" until the first answer, `empty` when it has no items (if given),
 * else `children` with the items. A failure with nothing loaded shows nothing here (the page's
 * ErrorBox says why).
 */
export function TableState<T>(props: {
  items: T[] | undefined;
  loading: boolean;
  empty?: ComponentChildren;
  children: (items: T[]) => ComponentChildren;
}) {
  const { items } = props;
  if (items === undefined) return props.loading ? <Loading /> : null;
  if (items.length === 0 && props.empty !== undefined) return <>{props.empty}</>;
  return <>{props.children(items)}</>;
}

export function DataTable(props: {
  /** The accessible name of the scroll region. */
  label?: string;
  /** The id of the heading that names the region and the table (instead of `label`). */
  labelledBy?: string;
  /** The table's own accessible name. */
  tableLabel?: string;
  /** Classes besides "table-wrap" and "table". */
  wrapClass?: string;
  class?: string;
  testId?: string;
  caption?: ComponentChildren;
  columns: Column[];
  /** The rows. */
  children: ComponentChildren;
}) {
  return (
    <div
      class={`table-wrap${props.wrapClass ? ` ${props.wrapClass}` : ""}`}
      tabIndex={0}
      role="region"
      aria-label={props.label}
      aria-labelledby={props.labelledBy}
    >
      <table
        class={`table${props.class ? ` ${props.class}` : ""}`}
        aria-label={props.tableLabel}
        aria-labelledby={props.labelledBy}
        data-testid={props.testId}
      >
        {props.caption !== undefined ? <caption class="muted">{props.caption}</caption> : null}
        <thead>
          <tr>
            {props.columns.map((c) =>
              c === null ? null : typeof c === "string" ? (
                <th scope="col" key={c}>
                  {c}
                </th>
              ) : (
                <th scope="col" key={c.label} class={c.class}>
                  {c.label}
                </th>
              ),
            )}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  );
}
