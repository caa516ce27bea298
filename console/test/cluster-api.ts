// The few API calls the cluster page's tests make from Node (import and detach a cluster):
// grpc-web over fetch with hand-encoded protobuf, so the tests need no build of the client.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { must } from "./harness.js";

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** A length-delimited field (string, bytes or message). */
function field(no: number, bytes: Uint8Array): number[] {
  return [...varint((no << 3) | 2), ...varint(bytes.length), ...bytes];
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/** Calls a unary RPC; resolves to the grpc-status (0 = OK) and grpc-message. */
async function unary(method: string, message: number[]): Promise<{ status: number; message: string }> {
  const frame = new Uint8Array(5 + message.length);
  new DataView(frame.buffer).setUint32(1, message.length);
  frame.set(message, 5);
  const res = await fetch(`${must("FLOTILLA_URL")}/flotilla.v1.${method}`, {
    method: "POST",
    headers: {
      "content-type": "application/grpc-web+proto",
      "x-grpc-web": "1",
      authorization: `Bearer ${must("FLOTILLA_TOKEN")}`,
    },
    body: frame,
  });
  assert.equal(res.status, 200, `${method}: HTTP ${res.status}`);
  let status = res.headers.get("grpc-status");
  let text = res.headers.get("grpc-message") ?? "";
  const body = new Uint8Array(await res.arrayBuffer());
  for (let i = 0; i + 5 <= body.length; ) {
    const len = new DataView(body.buffer, body.byteOffset + i + 1, 4).getUint32(0);
    if (body[i]! & 0x80) {
      for (const line of new TextDecoder().decode(body.subarray(i + 5, i + 5 + len)).split("\r\n")) {
        const [k, ...v] = line.split(":");
        if (k?.trim().toLowerCase() === "grpc-status") status = v.join(":").trim();
        if (k?.trim().toLowerCase() === "grpc-message") text = decodeURIComponent(v.join(":").trim());
      }
    }
    i += 5 + len;
  }
  return { status: Number(status ?? "2"), message: text };
}

/** ImportCluster of the client-env's test kubeconfig under `id`. */
export async function importTestCluster(id: string): Promise<void> {
  const kubeconfig = readFileSync(must("FLOTILLA_TEST_KUBECONFIG"));
  const source = field(1, new Uint8Array(kubeconfig));
  const r = await unary("ClusterService/ImportCluster", [...field(1, utf8(id)), ...field(4, new Uint8Array(source))]);
  assert.equal(r.status, 0, `ImportCluster ${id}: ${r.message}`);
}

/** DeleteCluster without destroy: Flotilla forgets the cluster (nothing is done to it). */
export async function detachCluster(id: string): Promise<{ status: number; message: string }> {
  return unary("ClusterService/DeleteCluster", field(1, utf8(id)));
}

/** GetCluster's status code (5 = NOT_FOUND once detached). */
export async function clusterStatus(id: string): Promise<number> {
  return (await unary("ClusterService/GetCluster", field(1, utf8(id)))).status;
}
