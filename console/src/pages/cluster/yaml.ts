// A small JSON -> YAML printer for the resource view (block style, like kubectl -o yaml): no
// dependency for what is only ever display.

const PLAIN = /^[A-Za-z0-9_./@][A-Za-z0-9 _./@:=+-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|~|y|n)$/i;
const NUMERIC = /^[-+]?(\d[\d_]*(\.\d*)?([eE][-+]?\d+)?|\.\d+|0x[0-9a-fA-F]+|0o[0-7]+|\.inf|\.nan)$/i;

/** A scalar string as YAML: plain when unambiguous, else double-quoted (JSON escaping is valid YAML). */
function scalar(s: string): string {
  if (s === "" || !PLAIN.test(s) || RESERVED.test(s) || NUMERIC.test(s) || s.endsWith(" ") || s.includes(": ") || s.includes(" #")) {
    return JSON.stringify(s);
  }
  return s;
}

function key(k: string): string {
  return scalar(k);
}

function isBlock(v: unknown): boolean {
  return (Array.isArray(v) && v.length > 0) || (v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length > 0);
}

function inline(v: unknown, indent: string): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") {
    // Multi-line text (scripts, certificates, config files) as a literal block, as kubectl shows it.
    if (v.includes("\n") && !/[^\S\n]\n/.test(v) && !v.startsWith(" ")) {
      const chomp = v.endsWith("\n") ? (v.endsWith("\n\n") ? "|+" : "|") : "|-";
      const body = (v.endsWith("\n") ? v.slice(0, -1) : v).split("\n").map((l) => (l === "" ? "" : `${indent}  ${l}`));
      return `${chomp}\n${body.join("\n")}`;
    }
    return scalar(v);
  }
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return "[]";
  return "{}";
}

function lines(v: unknown, indent: string, out: string[]): void {
  if (Array.isArray(v)) {
    for (const item of v) {
      if (isBlock(item)) {
        const sub: string[] = [];
        lines(item, `${indent}  `, sub);
        // The first line of the item goes after "- ".
        out.push(`${indent}- ${sub[0]!.slice(indent.length + 2)}`, ...sub.slice(1));
      } else {
        out.push(`${indent}- ${inline(item, indent)}`);
      }
    }
    return;
  }
  for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
    if (isBlock(item)) {
      out.push(`${indent}${key(k)}:`);
      // Sequences under a key are not indented further, as kubectl prints them.
      lines(item, Array.isArray(item) ? indent : `${indent}  `, out);
    } else {
      out.push(`${indent}${key(k)}: ${inline(item, indent)}`);
    }
  }
}

export function toYaml(value: unknown): string {
  if (!isBlock(value)) return `${inline(value, "")}\n`;
  const out: string[] = [];
  lines(value, "", out);
  return `${out.join("\n")}\n`;
}
