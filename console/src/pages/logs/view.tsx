// The log lines of one stream: batched into the buffer as they arrive and rendered at most once
// per animation frame through a virtual list; pause/resume, a client-side filter and download of
// what is shown.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { LogEntryKind, type LogEntry } from "@flotilla-dev/client/v1";
import { VirtualList, scrollToEnd } from "../../ui/virtual-list";
import { LogBuffer, MAX_LINES } from "./buffer";

/** Matches .log-row's height in logs.css. */
export const ROW_HEIGHT = 20;

export interface LogViewHandle {
  /** Adds a batch of entries; they appear in the next frame. */
  add: (entries: LogEntry[]) => void;
}

export function LogView(props: {
  /** Receives the handle the stream feeds. */
  bind: (h: LogViewHandle) => void;
  /** Several pods in the stream: each line says its pod. */
  multiPod: boolean;
  /** The downloaded file's name (without .log). */
  fileName: string;
}) {
  const buffer = useMemo(() => new LogBuffer(), []);
  const [, setFrame] = useState(0);
  const [paused, setPaused] = useState(false);
  const [filter, setFilter] = useState("");
  const frame = useRef(0);
  const list = useRef<HTMLDivElement>(null);

  // Entries go into the buffer at once; the DOM is updated at most once per frame.
  useEffect(() => {
    props.bind({
      add(entries) {
        buffer.add(entries);
        if (frame.current === 0) {
          frame.current = requestAnimationFrame(() => {
            frame.current = 0;
            setFrame((f) => f + 1);
          });
        }
      },
    });
    return () => cancelAnimationFrame(frame.current);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [buffer]);

  const togglePause = () => {
    if (buffer.paused) buffer.resume();
    else buffer.pause();
    setPaused(buffer.paused);
    setFrame((f) => f + 1);
  };

  const download = () => {
    const blob = new Blob([buffer.text(props.multiPod)], { type: "text/plain;charset=utf-8" });
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = `${props.fileName}.log`;
    document.body.append(a);
    a.click();
    a.remove();
    // The download has its own reference by now; free the blob a little later.
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };

  const shown = buffer.shown;
  const waiting = buffer.waiting.length;
  return (
    <div class="log-view">
      <div class="toolbar log-tools">
        <button type="button" onClick={togglePause} aria-pressed={paused}>
          {paused ? "Resume" : "Pause"}
        </button>
        <label for="log-filter">Filter</label>
        <input
          id="log-filter"
          type="search"
          value={filter}
          placeholder="text in the lines shown"
          onInput={(e) => {
            const v = e.currentTarget.value;
            setFilter(v);
            buffer.setFilter(v);
          }}
        />
        <button type="button" onClick={download} disabled={shown.length === 0}>
          Download
        </button>
        <button
          type="button"
          onClick={() => {
            buffer.clear();
            setFrame((f) => f + 1);
          }}
        >
          Clear
        </button>
        <button type="button" onClick={() => scrollToEnd(list.current?.querySelector(".vlist") ?? null)}>
          Jump to end
        </button>
      </div>
      {/* Not a live region: the count changes every frame while streaming. */}
      <p class="log-status muted">
        <span data-testid="log-count">
          {shown.length.toLocaleString("en")} line{shown.length === 1 ? "" : "s"} shown
          {filter !== "" ? ` (of ${buffer.lines.length.toLocaleString("en")})` : ""}
        </span>
        {paused ? (
          <span class="warn" data-testid="log-waiting" role="status">
            Paused: {waiting.toLocaleString("en")} new line{waiting === 1 ? "" : "s"} waiting
          </span>
        ) : null}
        {buffer.dropped > 0 ? (
          <span class="warn" data-testid="log-dropped">
            {buffer.dropped.toLocaleString("en")} oldest lines dropped (only the last {MAX_LINES.toLocaleString("en")} are kept)
          </span>
        ) : null}
      </p>
      {props.multiPod && buffer.pods.length > 0 ? (
        <ul class="log-legend" aria-label="Pods in this stream">
          {buffer.pods.map((p, i) => (
            <li key={p} class={`pod-c${i % 8}`}>
              {p.split("/").pop()}
            </li>
          ))}
        </ul>
      ) : null}
      <div ref={list}>
        <VirtualList
          class="log-lines"
          label="Log lines"
          count={shown.length}
          rowHeight={ROW_HEIGHT}
          stickToEnd
          rowClass={(i) => {
            const l = shown[i];
            if (!l) return "log-row";
            return `log-row${l.kind !== LogEntryKind.LINE ? " log-meta" : ""}${props.multiPod ? ` pod-c${l.colour}` : ""}`;
          }}
          renderRow={(i) => {
            const l = shown[i];
            if (!l) return null;
            return (
              <>
                {props.multiPod ? <span class="log-pod">{l.pod}</span> : null}
                <span class="log-text">{l.text}</span>
                {l.truncated ? <span class="log-cut"> (cut by the server)</span> : null}
              </>
            );
          }}
        />
      </div>
    </div>
  );
}
