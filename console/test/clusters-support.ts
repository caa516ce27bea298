// Support for the clusters browser tests: answers taken from outside the console (raw grpc-web
// calls, kubectl, the ACK simulator's control URL) and a second `flotilla serve` with 1,000
// clusters for the list's measurement.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CONSOLE_DIR, ENV, must } from "./harness.js";

/** A protobuf string field (wire type 2), for hand-encoded requests of one or two string fields. */
function stringField(tag: number, value: string): Buffer {
  const bytes = Buffer.from(value, "utf8");
  const len: number[] = [];
  let n = bytes.length;
  do {
    len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return Buffer.concat([Buffer.from([(tag << 3) | 2, ...len]), bytes]);
}

/**
 * The grpc-status (and message) of a unary grpc-web call whose request is one string field 1
 * (GetCluster{cluster_id}, DeleteCredential{credential_id}, ...), made from Node straight to the
 * server: the console is not involved.
 */
export async function grpcWebStatus(method: string, id: string, url = must("FLOTILLA_URL"), token = must("FLOTILLA_TOKEN")): Promise<{ status: number; message: string }> {
  const msg = stringField(1, id);
  const frame = Buffer.alloc(5 + msg.length);
  frame.writeUInt32BE(msg.length, 1);
  msg.copy(frame, 5);
  const res = await fetch(`${url}/flotilla.v1.${method}`, {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", authorization: `Bearer ${token}` },
    body: frame,
  });
  const header = res.headers.get("grpc-status");
  if (header !== null) return { status: Number(header), message: decodeURIComponent(res.headers.get("grpc-message") ?? "") };
  const body = Buffer.from(await res.arrayBuffer());
  for (let i = 0; i + 5 <= body.length; ) {
    const flag = body[i] ?? 0;
    const len = body.readUInt32BE(i + 1);
    if (flag & 0x80) {
      const text = body.subarray(i + 5, i + 5 + len).toString("utf8");
      const status = /grpc-status:\s*(\d+)/i.exec(text)?.[1];
      const message = /grpc-message:\s*([^\r\n]*)/i.exec(text)?.[1] ?? "";
      return { status: Number(status ?? -1), message: decodeURIComponent(message) };
    }
    i += 5 + len;
  }
  return { status: -1, message: "no grpc-status in the response" };
}

export const GRPC_OK = 0;
export const GRPC_NOT_FOUND = 5;

/** `kubectl --kubeconfig $KUBECONFIG ...` against the test control plane. */
export function kubectl(...args: string[]): string {
  return execFileSync(must("KUBECTL"), ["--kubeconfig", must("KUBECONFIG"), ...args], { encoding: "utf8" });
}

/** The test control plane's nodes and how many are Ready, as kubectl says. */
export function kubectlNodes(): { total: number; ready: number } {
  const list = JSON.parse(kubectl("get", "nodes", "-o", "json")) as {
    items: { status: { conditions?: { type: string; status: string }[] } }[];
  };
  const ready = list.items.filter((n) => n.status.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length;
  return { total: list.items.length, ready };
}

export interface SimClusters {
  created: number;
  clusters: { id: string; state: string; version: string }[];
}

/** The ACK simulator's own view: GET <control URL>/clusters. */
export async function ackSimClusters(): Promise<SimClusters> {
  const res = await fetch(`${must("FLOTILLA_SIM_ACK_CONTROL_URL")}/clusters`);
  if (!res.ok) throw new Error(`ACK simulator control: HTTP ${res.status}`);
  return (await res.json()) as SimClusters;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A `flotilla serve` of the test's own, on its own SQLite data dir, and the console in front of it. */
export interface SeededServer {
  url: string;
  consoleUrl: string;
  token: string;
  db: string;
  /** Inserts cluster rows from..to-1 with ids from `format` (printf, default "perf-%04d"). */
  seed: (from: number, to: number, format?: string) => void;
  stop: () => Promise<void>;
}

/**
 * The rows a 1,000-cluster fleet would have, written straight into the server's own SQLite
 * database: ImportCluster refuses a second import of the same control plane (ALREADY_EXISTS
 * CLUSTER_ALREADY_IMPORTED, by kube-system UID) and the test machine has one control plane (two
 * API servers), so 1,000 imports are not possible here. The rows are what import.rs writes for
 * an imported cluster (state RUNNING, labels JSON, a kube-system UID each), without a stored
 * credential: the prober then reports them unreachable (NO_CLUSTER_CREDENTIALS) and sends no
 * traffic anywhere. This is a measurement fixture, not a test of import.
 */
const SEED_PY = `
import json, sqlite3, sys, time, uuid
db, start, end, fmt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
con = sqlite3.connect(db, timeout=30)
now = int(time.time() * 1000)
envs = ["prod", "staging", "dev"]
rows = []
for i in range(start, end):
    cid = fmt % i
    labels = json.dumps({"env": envs[i % 3], "team": "team-%d" % (i % 17)})
    rows.append((cid, "Perf cluster %d" % i, labels, "imported", "", "", "RUNNING", "https://127.0.0.1:9/%s" % cid,
                 str(uuid.uuid5(uuid.NAMESPACE_URL, "flotilla-console-perf/" + cid)), "[]", 1, now + i, now + i, "builtin"))
con.executemany("INSERT INTO clusters (id, display_name, labels, provider, region, vendor_cluster_id, state, endpoint,"
                " kube_system_uid, warnings, version, create_time, update_time, kube_access)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
con.commit()
`;

export async function startSeededServer(count: number): Promise<SeededServer> {
  const dir = mkdtempSync(join(tmpdir(), "flotilla-console-perf-"));
  const procs: ChildProcess[] = [];
  const stop = async () => {
    for (const p of procs.reverse()) {
      if (p.exitCode === null && p.pid !== undefined) {
        const exited = new Promise((r) => p.once("exit", r));
        p.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (p.exitCode === null) p.kill("SIGKILL");
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const server = spawn(
      must("FLOTILLA_BIN"),
      ["serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-format", "json", "--rate-limit", "0", "--peer-rate-limit", "0", "--probe-interval", "3600"],
      { stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/", NO_PROXY: "127.0.0.1,localhost,::1" } },
    );
    procs.push(server);
    let log = "";
    server.stdout?.on("data", (d: Buffer) => (log += d.toString()));
    server.stderr?.on("data", (d: Buffer) => (log += d.toString()));
    const addr = await until("the seeded server to listen", 60_000, async () => {
      if (server.exitCode !== null) throw new Error(`flotilla serve exited: ${log.slice(-2000)}`);
      for (const line of log.split("\n")) {
        try {
          const ev = JSON.parse(line) as Record<string, unknown> & { fields?: Record<string, unknown> };
          const f = ev.fields ?? ev;
          if (f.message === "flotilla serving") return String(f.addr);
        } catch {
          // not a JSON line
        }
      }
      return undefined;
    });
    const url = `http://${addr}`;
    const token = readFileSync(join(dir, "admin-token"), "utf8").trim();
    const db = join(dir, "flotilla.db");
    const seed = (from: number, to: number, format = "perf-%04d") => {
      execFileSync("python3", ["-c", SEED_PY, db, String(from), String(to), format]);
    };
    seed(0, count);
    // The console in front of it: the server itself once it serves the console, else a
    // `vite preview` of the built console proxying the API to it (as FLOTILLA_CONSOLE_URL does).
    const home = await fetch(`${url}/`).catch(() => undefined);
    let consoleUrl = url;
    if (!(home?.ok && (home.headers.get("content-type") ?? "").includes("text/html"))) {
      const outDir = process.env.FLOTILLA_CONSOLE_DIST ?? join(CONSOLE_DIR, "dist");
      if (!existsSync(join(outDir, "index.html"))) throw new Error(`no built console in ${outDir} (set FLOTILLA_CONSOLE_DIST)`);
      const port = await freePort();
      const vite = spawn(
        process.execPath,
        [join(CONSOLE_DIR, "node_modules/vite/bin/vite.js"), "preview", "--outDir", outDir, "--port", String(port), "--strictPort", "--host", "127.0.0.1", "--bypass-lock"],
        { cwd: CONSOLE_DIR, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, FLOTILLA_URL: url } },
      );
      procs.push(vite);
      let viteErr = "";
      vite.stderr?.on("data", (d: Buffer) => (viteErr += d.toString()));
      consoleUrl = `http://127.0.0.1:${port}`;
      await until("vite preview", 30_000, async () => {
        if (vite.exitCode !== null) throw new Error(`vite preview exited: ${viteErr}`);
        const res = await fetch(`${consoleUrl}/`).catch(() => undefined);
        return res?.ok ? true : undefined;
      });
    }
    return { url, consoleUrl, token, db, seed, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The test control plane's self-contained kubeconfig (certificates inline). */
export function testKubeconfig(): string {
  return readFileSync(must("FLOTILLA_TEST_KUBECONFIG"), "utf8");
}

export { ENV };
