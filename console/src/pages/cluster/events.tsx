// Events, newest first and live: WatchEvents sends a snapshot, then ADDED/MODIFIED/DELETED as
// they happen. A reconnect resumes after the last message (resume_token), so nothing is shown
// twice; LAGGED (this watcher fell behind) is shown as a notice.
import { useRef, useState } from "preact/hooks";
import { WatchEventsResponseType as T, type Event } from "@flotilla-dev/client/v1";
import { api } from "../../api";
import type { Route } from "../../router";
import { ErrorBox } from "../../ui/error";
import { useStream } from "../../ui/hooks";
import { count, isoTime, relative, toDate } from "../../ui/format";
import { DataTable } from "../../ui/table";
import { NamespaceFilter, namespaceOf, QuerySelect } from "./common";

const TYPES = [
  { value: "", label: "Normal and Warning" },
  { value: "Normal", label: "Normal" },
  { value: "Warning", label: "Warning" },
];

/** Most events kept on the page; the oldest go first. */
const MAX_EVENTS = 1000;

function when(e: Event): number {
  return (toDate(e.lastTime) ?? toDate(e.firstTime))?.getTime() ?? 0;
}

export function EventsTab({ clusterId, route }: { clusterId: string; route: Route }) {
  const namespace = namespaceOf(route);
  const type = route.query.get("type") ?? "";
  const [events, setEvents] = useState<Map<string, Event>>(new Map());
  const [live, setLive] = useState(false);
  const [dropped, setDropped] = useState(0);
  const resume = useRef("");
  // A new filter starts a new stream (with a snapshot); a reconnect of the same one resumes.
  const streamKey = `${clusterId}\u001f${namespace}\u001f${type}`;
  const resumeKey = useRef(streamKey);
  if (resumeKey.current !== streamKey) {
    resumeKey.current = streamKey;
    resume.current = "";
  }
  const stream = useStream(
    (signal) => {
      const resumeToken = resume.current;
      if (resumeToken === "") {
        setEvents(new Map());
        setLive(false);
      }
      return api.logs.watchEvents({ clusterId, namespace, type, snapshotLimit: 200, resumeToken }, { signal });
    },
    (m) => {
      if (m.resumeToken) resume.current = m.resumeToken;
      switch (m.type) {
        case T.SNAPSHOT_END:
          setLive(true);
          return;
        case T.LAGGED:
          setDropped((d) => d + Number(m.droppedCount));
          return;
        case T.SNAPSHOT:
        case T.ADDED:
        case T.MODIFIED:
        case T.DELETED: {
          const e = m.event;
          if (!e) return;
          if (m.type !== T.SNAPSHOT) setLive(true);
          setEvents((prev) => {
            const next = new Map(prev);
            if (m.type === T.DELETED) next.delete(e.uid);
            else next.set(e.uid, e);
            if (next.size > MAX_EVENTS) {
              const oldest = [...next.values()].sort((a, b) => when(a) - when(b)).slice(0, next.size - MAX_EVENTS);
              for (const o of oldest) next.delete(o.uid);
            }
            return next;
          });
        }
      }
    },
    [streamKey],
  );
  const sorted = [...events.values()].sort((a, b) => when(b) - when(a));
  const now = Date.now();
  return (
    <div>
      <h2>Events</h2>
      <NamespaceFilter route={route} id="event-namespace" keep={["type"]}>
        <QuerySelect route={route} id="event-type" label="Type" param="type" options={TYPES} />
      </NamespaceFilter>
      <p class="muted" role="status">
        {stream.connected && live ? "Live: new events appear at the top." : stream.connected ? "Loading…" : "Reconnecting…"}
      </p>
      {dropped > 0 ? (
        <p class="notice" role="alert">
          This page fell behind and missed {count(dropped, "event")}.{" "}
          <button type="button" onClick={() => location.reload()}>
            Reload
          </button>
        </p>
      ) : null}
      <ErrorBox error={stream.error} title="The event stream stopped" />
      {sorted.length === 0 && live ? <p>No events{namespace ? ` in ${namespace}` : ""}.</p> : null}
      {sorted.length > 0 ? (
        <DataTable
          label="Events"
          class="events"
          caption={`${count(sorted.length, "event")}, newest first`}
          columns={["When", "Type", "Object", "Reason", "Message"]}
        >
          {sorted.map((e) => (
            <tr key={e.uid} data-event={e.uid}>
              <td>
                <time dateTime={isoTime(e.lastTime ?? e.firstTime)}>{relative(e.lastTime ?? e.firstTime, now)}</time>
                {e.count > 1 ? <div class="muted">×{e.count}</div> : null}
              </td>
              <td class={e.type === "Warning" ? "warn-text" : undefined}>{e.type}</td>
              <td>
                {e.involvedObject?.kind}/{e.involvedObject?.name}
                <div class="muted">{e.namespace}</div>
              </td>
              <td>{e.reason}</td>
              <td>{e.message}</td>
            </tr>
          ))}
        </DataTable>
      ) : null}
    </div>
  );
}
