// A real OCI registry for the registries tests: CNCF Distribution (scripts/registry-env) on a
// free loopback port with its storage in a temp dir, and pushes through its v2 API.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "./harness.js";
import { eventually, freePort } from "./support.js";

/** The registry binary: $FLOTILLA_REGISTRY_BIN, else what `scripts/registry-env env` names. */
function registryBin(): string {
  if (process.env.FLOTILLA_REGISTRY_BIN) return process.env.FLOTILLA_REGISTRY_BIN;
  const out = execFileSync(join(REPO, "scripts/registry-env"), ["env"], { encoding: "utf8" });
  const line = out.split("\n").find((l) => l.startsWith("FLOTILLA_REGISTRY_BIN="));
  if (!line) throw new Error("scripts/registry-env env names no FLOTILLA_REGISTRY_BIN: run `scripts/registry-env build` first");
  return line.slice("FLOTILLA_REGISTRY_BIN=".length);
}

export const sha256 = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

export class OciRegistry {
  private constructor(
    readonly url: string,
    private readonly proc: ChildProcess,
    private readonly dir: string,
  ) {}

  static async start(): Promise<OciRegistry> {
    const dir = mkdtempSync(join(tmpdir(), "console-oci-"));
    const port = await freePort();
    const config = `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n  secret: console-test-${port}\n`;
    writeFileSync(join(dir, "config.yml"), config);
    const proc = spawn(registryBin(), ["serve", join(dir, "config.yml")], { stdio: "ignore" });
    const reg = new OciRegistry(`http://127.0.0.1:${port}`, proc, dir);
    try {
      await eventually("the registry to answer /v2/", () => fetch(`${reg.url}/v2/`).then((r) => r.ok), 10_000);
      return reg;
    } catch (e) {
      reg.stop();
      throw e;
    }
  }

  stop(): void {
    this.proc.kill("SIGTERM");
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async blob(repo: string, bytes: string): Promise<{ digest: string; size: number }> {
    const digest = sha256(bytes);
    const start = await fetch(`${this.url}/v2/${repo}/blobs/uploads/`, { method: "POST" });
    if (start.status !== 202) throw new Error(`blob upload start: ${start.status}`);
    const loc = new URL(start.headers.get("location") ?? "", this.url);
    loc.searchParams.set("digest", digest);
    const put = await fetch(loc, { method: "PUT", body: bytes, headers: { "content-type": "application/octet-stream" } });
    if (put.status !== 201) throw new Error(`blob upload: ${put.status} ${await put.text()}`);
    return { digest, size: Buffer.byteLength(bytes) };
  }

  /** Pushes a one-layer OCI image under `tags`; returns its manifest digest. */
  async pushImage(repo: string, tags: string[], content: string): Promise<string> {
    const config = await this.blob(repo, JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
    const layer = await this.blob(repo, content);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
    });
    for (const tag of tags) {
      const put = await fetch(`${this.url}/v2/${repo}/manifests/${tag}`, {
        method: "PUT",
        body: manifest,
        headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
      });
      if (put.status !== 201) throw new Error(`manifest ${repo}:${tag}: ${put.status} ${await put.text()}`);
    }
    return sha256(manifest);
  }

  /** The registry's own answers: /v2/_catalog and /v2/<repo>/tags/list. */
  async catalog(): Promise<string[]> {
    return ((await (await fetch(`${this.url}/v2/_catalog`)).json()) as { repositories: string[] }).repositories;
  }

  async tags(repo: string): Promise<string[]> {
    return ((await (await fetch(`${this.url}/v2/${repo}/tags/list`)).json()) as { tags: string[] }).tags;
  }
}
