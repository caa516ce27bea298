// Formatting shared by the pages.
import type { Timestamp } from "@bufbuild/protobuf/wkt";

export function toDate(t: Timestamp | undefined): Date | undefined {
  return t ? new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6)) : undefined;
}

/** "3 m ago", "in 2 d", or "—". */
export function relative(t: Timestamp | undefined, now = Date.now()): string {
  const d = toDate(t);
  if (!d) return "—";
  const s = Math.round((d.getTime() - now) / 1000);
  const a = Math.abs(s);
  const v = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} m` : a < 86400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return s <= 0 ? `${v} ago` : `in ${v}`;
}

export function isoTime(t: Timestamp | undefined): string {
  return toDate(t)?.toISOString() ?? "";
}

/** An enum value's name without its prefix: CLUSTER_STATE_RUNNING -> "running". */
export function enumLabel(names: Record<number, string>, value: number, prefix: string): string {
  const n = names[value] ?? String(value);
  return n.replace(prefix, "").toLowerCase().replaceAll("_", " ");
}

/** "1 pod", "3 pods"; `many` for an irregular plural ("registries"). */
export function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
