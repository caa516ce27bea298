// Controls that choose what a page shows: a cluster (every cluster, from ListClusters) and a
// one-field search or filter bar.
import type { ComponentChildren } from "preact";
import { listClusters } from "@flotilla-dev/client";
import type { Cluster } from "@flotilla-dev/client/v1";
import { api } from "../api";
import { ErrorBox } from "./error";
import { useCall, type Loaded } from "./hooks";
import { collect } from "./pager";

/** Every cluster (ListClusters, 1,000 a page). */
export function useClusters(): Loaded<Cluster[]> {
  return useCall((signal) => collect(listClusters(api, { pageSize: 1000 }, { signal })), []);
}

export function ClusterSelect(props: { value: string; onChange: (v: string) => void; id?: string }) {
  const clusters = useClusters();
  const id = props.id ?? "pick-cluster";
  return (
    <div class="field">
      <label for={id}>Cluster</label>
      <select id={id} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        <option value="">{clusters.loading ? "Loading…" : "Choose a cluster"}</option>
        {props.value && !clusters.data?.some((c) => c.id === props.value) ? <option value={props.value}>{props.value}</option> : null}
        {clusters.data?.map((c) => (
          <option key={c.id} value={c.id}>
            {c.displayName && c.displayName !== c.id ? `${c.displayName} (${c.id})` : c.id}
          </option>
        ))}
      </select>
      <ErrorBox error={clusters.error} title="Could not list clusters" />
    </div>
  );
}

/**
 * A toolbar search form of one labelled input and its submit button ("Apply"), then `children`
 * (more controls). `invalid` marks the input when the API refused what it holds.
 */
export function SearchBar(props: {
  /** The form's accessible name. */
  label: string;
  inputId: string;
  inputLabel: string;
  value: string;
  onInput: (v: string) => void;
  placeholder?: string;
  invalid?: boolean | undefined;
  onSubmit: () => void;
  submit?: string;
  submitDisabled?: boolean;
  children?: ComponentChildren;
}) {
  return (
    <form
      class="toolbar"
      role="search"
      aria-label={props.label}
      onSubmit={(e) => {
        e.preventDefault();
        props.onSubmit();
      }}
    >
      <label for={props.inputId}>{props.inputLabel}</label>
      <input
        id={props.inputId}
        value={props.value}
        placeholder={props.placeholder}
        aria-invalid={props.invalid ? true : undefined}
        onInput={(e) => props.onInput(e.currentTarget.value)}
      />
      <button type="submit" disabled={props.submitDisabled}>
        {props.submit ?? "Apply"}
      </button>
      {props.children}
    </form>
  );
}
