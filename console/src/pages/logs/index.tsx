// Logs: one pod's (StreamPodLogs) or a whole workload's (StreamWorkloadLogs), with the options
// `kubectl logs` has, lines from several pods coloured by pod, pause/resume, a client-side
// filter and download. The route holds what is streamed:
// #/logs?cluster=..&namespace=..&pod=..[&container=..] or &kind=deployment&workload=..
import { useRef, useState } from "preact/hooks";
import type { Pod } from "@flotilla-dev/client/v1";
import { navigate, href, type Route } from "../../router";
import { ErrorBox } from "../../ui/error";
import { ClusterSelect } from "../../ui/pickers";
import { NamespacePicker, SourcePicker, kindFromParam, kindParam, type SourceChoice } from "./pickers";
import { logOptions, useLogStream, type LogRequestOptions, type LogSource } from "./stream";
import { LogView, type LogViewHandle } from "./view";
import "./logs.css";

const STATE_TEXT = {
  connecting: "Connecting (no lines yet)…",
  streaming: "Streaming",
  ended: "The stream ended",
  failed: "The stream failed",
  retrying: "Reconnecting…",
} as const;

function sourceOf(q: URLSearchParams): LogSource | null {
  const cluster = q.get("cluster") ?? "";
  const namespace = q.get("namespace") ?? "";
  const container = q.get("container") ?? "";
  if (cluster === "" || namespace === "") return null;
  const pod = q.get("pod");
  if (pod) return { type: "pod", cluster, namespace, pod, container };
  const workload = q.get("workload");
  const kind = kindFromParam(q.get("kind") ?? "");
  if (workload && kind !== 0) return { type: "workload", cluster, namespace, kind, name: workload, container };
  return null;
}

export function LogsPage({ route }: { route: Route }) {
  const q = route.query;
  const cluster = q.get("cluster") ?? "";
  const namespace = q.get("namespace") ?? "";
  const source = sourceOf(q);
  const [pods, setPods] = useState<Pod[]>([]);
  const [options, setOptions] = useState<LogRequestOptions>({ follow: true, tailLines: "500", since: "", previous: false, timestamps: false });
  // The text fields apply when committed (Enter or leaving the field), not on every key.
  const [draft, setDraft] = useState({ tailLines: options.tailLines, since: options.since });

  const go = (next: Record<string, string>) => {
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(next)) if (v) clean[k] = v;
    navigate(href("logs", clean));
  };
  const choose = (c: SourceChoice) =>
    go({ cluster, namespace, pod: c.pod ?? "", kind: c.kind ? kindParam(c.kind) : "", workload: c.workload ?? "" });

  const containers = containerNames(source, pods);
  const checked = logOptions(options);
  const invalid = typeof checked === "string" ? checked : "";
  const key = source && !invalid ? JSON.stringify([source, options]) : "";
  const view = useRef<LogViewHandle | null>(null);
  const stream = useLogStream(key ? source : null, options, (entries) => view.current?.add(entries), key);

  const commitText = () => setOptions((o) => ({ ...o, ...draft }));
  const check = (name: "follow" | "previous" | "timestamps", label: string) => (
    <label class="check">
      <input type="checkbox" checked={options[name]} onChange={(e) => setOptions({ ...options, [name]: e.currentTarget.checked })} />
      {label}
    </label>
  );

  return (
    <section aria-labelledby="logs-title" class="logs-page">
      <h1 id="logs-title">Logs</h1>
      <div class="log-pick">
        <ClusterSelect value={cluster} onChange={(c) => go({ cluster: c })} />
        <NamespacePicker cluster={cluster} value={namespace} onChange={(n) => go({ cluster, namespace: n })} />
        <SourcePicker
          cluster={cluster}
          namespace={namespace}
          value={{ pod: q.get("pod") ?? "", kind: kindFromParam(q.get("kind") ?? ""), workload: q.get("workload") ?? "" }}
          onChange={choose}
          onPods={setPods}
        />
        <div class="field">
          <label for="log-container">Container</label>
          <select
            id="log-container"
            value={source?.container ?? ""}
            disabled={!source}
            onChange={(e) => go({ ...Object.fromEntries(q.entries()), container: e.currentTarget.value })}
          >
            <option value="">{source?.type === "workload" ? "Every container" : "The pod's container"}</option>
            {containers.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </div>
      </div>
      <form
        class="log-options"
        aria-label="Log options"
        onSubmit={(e) => {
          e.preventDefault();
          commitText();
        }}
      >
        {check("follow", "Follow")}
        {check("previous", "Previous instance")}
        {check("timestamps", "Timestamps")}
        <div class="field">
          <label for="log-tail">Tail lines</label>
          <input
            id="log-tail"
            inputMode="numeric"
            size={7}
            value={draft.tailLines}
            onInput={(e) => setDraft({ ...draft, tailLines: e.currentTarget.value })}
            onChange={commitText}
            aria-invalid={invalid.startsWith("Tail") ? true : undefined}
          />
        </div>
        <div class="field">
          <label for="log-since">Since</label>
          <input
            id="log-since"
            size={22}
            placeholder="300 or 2026-01-02T03:04:05Z"
            value={draft.since}
            onInput={(e) => setDraft({ ...draft, since: e.currentTarget.value })}
            onChange={commitText}
            aria-invalid={invalid.startsWith("Since") ? true : undefined}
            aria-describedby="log-since-hint"
          />
          <small id="log-since-hint" class="muted">
            seconds, or a time
          </small>
        </div>
        <button type="submit">Apply options</button>
      </form>
      {invalid ? (
        <p class="field-error" role="alert">
          {invalid}
        </p>
      ) : null}
      {source && key ? (
        <>
          <p class="muted log-source">
            <span class={stream.state === "streaming" ? "ok" : stream.state === "failed" ? "bad" : ""} data-testid="stream-state">
              {STATE_TEXT[stream.state]}
            </span>{" "}
            {source.type === "pod" ? `pod ${source.namespace}/${source.pod}` : `every pod of ${kindParam(source.kind)} ${source.namespace}/${source.name}`}
          </p>
          <ErrorBox error={stream.error} title="Log stream" />
          <LogView
            key={key}
            bind={(h) => (view.current = h)}
            multiPod={source.type === "workload"}
            fileName={source.type === "pod" ? source.pod : source.name}
          />
        </>
      ) : source ? null : (
        <p>Choose a cluster, a namespace and a pod or workload to read its logs.</p>
      )}
    </section>
  );
}

/** Container names to offer: the pod's, or those of the workload's pods (by owner name). */
function containerNames(source: LogSource | null, pods: Pod[]): string[] {
  if (!source) return [];
  const mine =
    source.type === "pod"
      ? pods.filter((p) => p.name === source.pod)
      : pods.filter((p) => p.owner && (p.owner.name === source.name || p.owner.name.startsWith(`${source.name}-`)));
  const names = new Set<string>();
  for (const p of mine) for (const c of p.containers) names.add(c.name);
  if (source.container) names.add(source.container);
  return [...names].sort();
}
