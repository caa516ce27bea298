// A `flotilla serve` of a test's own (its own SQLite data dir) with seeded cluster rows, and the
// console in front of it: the fixture of the 1,000-cluster measurement (clusters-perf.ts).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CONSOLE_DIR, must } from "./harness.js";
import { eventually, freePort } from "./support.js";

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
    // An exited server ends the wait at once (eventually would retry a probe that throws).
    const listening = await eventually("the seeded server to listen", () => {
      if (server.exitCode !== null) return { exited: log.slice(-2000) };
      for (const line of log.split("\n")) {
        try {
          const ev = JSON.parse(line) as Record<string, unknown> & { fields?: Record<string, unknown> };
          const f = ev.fields ?? ev;
          if (f.message === "flotilla serving") return { addr: String(f.addr) };
        } catch {
          // not a JSON line
        }
      }
      return undefined;
    }, 60_000);
    if ("exited" in listening) throw new Error(`flotilla serve exited: ${listening.exited}`);
    const url = `http://${listening.addr}`;
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
      const preview = await eventually("vite preview", async () => {
        if (vite.exitCode !== null) return { exited: viteErr };
        const res = await fetch(`${consoleUrl}/`).catch(() => undefined);
        return res?.ok ? { ok: true } : undefined;
      }, 30_000);
      if ("exited" in preview) throw new Error(`vite preview exited: ${preview.exited}`);
    }
    return { url, consoleUrl, token, db, seed, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
