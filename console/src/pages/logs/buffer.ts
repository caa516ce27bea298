// The lines a log view keeps: capped (oldest dropped first, and counted), held back while
// paused, filtered on the client. No DOM here: the view renders `shown` through a virtual list.
import { LogEntryKind, type LogEntry } from "@flotilla-dev/client/v1";

/** Lines kept in the browser; older ones are dropped (and the view says how many). */
export const MAX_LINES = 100_000;

/** Classes pod-c0 .. pod-c7 in logs.css. */
export const POD_COLOURS = 8;

export interface LogLine {
  /** Arrival order, across drops. */
  seq: number;
  kind: LogEntryKind;
  text: string;
  cluster: string;
  pod: string;
  container: string;
  /** The pod's colour slot, in order of the pods' first line. */
  colour: number;
  truncated: boolean;
}

export class LogBuffer {
  /** Lines in arrival order, at most `cap`. */
  lines: LogLine[] = [];
  /** Lines that arrived while paused. */
  waiting: LogLine[] = [];
  /** Oldest lines dropped because of the cap. */
  dropped = 0;
  /** `lines` matching the filter (the same array when there is no filter). */
  shown: LogLine[] = this.lines;
  paused = false;
  private filter = "";
  private seq = 0;
  private readonly colours = new Map<string, number>();

  constructor(readonly cap = MAX_LINES) {}

  /** Pods seen so far, in order of first line. */
  get pods(): string[] {
    return [...this.colours.keys()];
  }

  /** Adds a batch of stream entries (rendered later, once per frame). */
  add(entries: LogEntry[]): void {
    for (const e of entries) {
      if (e.kind === LogEntryKind.END) continue;
      const podKey = `${e.clusterId}/${e.namespace}/${e.pod}`;
      let colour = this.colours.get(podKey);
      if (colour === undefined) {
        colour = this.colours.size % POD_COLOURS;
        this.colours.set(podKey, colour);
      }
      const line: LogLine = {
        seq: this.seq++,
        kind: e.kind,
        text: e.kind === LogEntryKind.LINE ? e.content : describe(e),
        cluster: e.clusterId,
        pod: e.pod,
        container: e.container,
        colour,
        truncated: e.truncated,
      };
      if (this.paused) this.waiting.push(line);
      else this.keep(line);
    }
    if (this.waiting.length > this.cap) {
      const n = this.waiting.length - this.cap;
      this.waiting.splice(0, n);
      this.dropped += n;
    }
    this.trim();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    for (const l of this.waiting) this.keep(l);
    this.waiting = [];
    this.trim();
  }

  /** Shows only lines containing `text` (case-insensitive); "" shows all. */
  setFilter(text: string): void {
    this.filter = text.toLowerCase();
    this.shown = this.filter === "" ? this.lines : this.lines.filter((l) => this.matches(l));
  }

  clear(): void {
    this.lines = [];
    this.waiting = [];
    this.dropped = 0;
    this.shown = this.filter === "" ? this.lines : [];
  }

  /** What is shown, as text: one line per entry, prefixed by its pod when several pods are in it. */
  text(withPods: boolean): string {
    const out: string[] = [];
    for (const l of this.shown) out.push(withPods ? `${l.pod} ${l.text}` : l.text);
    return out.length ? `${out.join("\n")}\n` : "";
  }

  private matches(l: LogLine): boolean {
    return l.text.toLowerCase().includes(this.filter) || l.pod.toLowerCase().includes(this.filter);
  }

  private keep(line: LogLine): void {
    this.lines.push(line);
    if (this.filter !== "" && this.matches(line)) this.shown.push(line);
  }

  private trim(): void {
    const over = this.lines.length - this.cap;
    if (over <= 0) return;
    this.lines.splice(0, over);
    this.dropped += over;
    if (this.filter === "") {
      this.shown = this.lines;
    } else {
      const firstKept = this.lines[0]?.seq ?? Infinity;
      let i = 0;
      while (i < this.shown.length && (this.shown[i]?.seq ?? Infinity) < firstKept) i++;
      if (i > 0) this.shown.splice(0, i);
    }
  }
}

function describe(e: LogEntry): string {
  const who = e.container ? `${e.pod}/${e.container}` : e.pod;
  switch (e.kind) {
    case LogEntryKind.POD_STARTED:
      return `— ${who} joined the stream`;
    case LogEntryKind.POD_ENDED:
      return `— ${who} left the stream${e.content ? `: ${e.content}` : ""}`;
    case LogEntryKind.ERROR:
      return `— error from ${who}: ${e.content}`;
    default:
      return e.content;
  }
}
