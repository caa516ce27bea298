// A synthetic log source for the logs page's performance test: runs in the browser.

/**
 * Installed before the console loads: StreamPodLogs calls of the pod "synthetic-feed" are
 * answered in the browser by a grpc-web stream of `rate` lines/s (one message per 10 ms tick,
 * like the server's batches) until `total`, so only the page's own work is measured.
 */
export function syntheticFeed({ rate, total }: { rate: number; total: number }): void {
  const realFetch = window.fetch.bind(window);
  const enc = new TextEncoder();
  const varint = (n: number, out: number[]) => {
    while (n > 127) {
      out.push((n & 127) | 128);
      n >>>= 7;
    }
    out.push(n);
  };
  const bytesField = (tag: number, b: Uint8Array, out: number[]) => {
    out.push(tag);
    varint(b.length, out);
    for (const x of b) out.push(x);
  };
  const frame = (flag: number, body: number[] | Uint8Array) => {
    const f = new Uint8Array(5 + body.length);
    f[0] = flag;
    new DataView(f.buffer).setUint32(1, body.length);
    f.set(body, 5);
    return f;
  };
  const pod = enc.encode("synthetic-feed");
  const padding = "y".repeat(60);
  // Every line's bytes are made up front (once per page), so that the feed's own work while
  // streaming is only copying bytes, not encoding: it shares the main thread it measures.
  let lines: Uint8Array[] | undefined;
  const encodeAll = () =>
    Array.from({ length: total }, (_, i) => {
      const entry: number[] = [0x08, 0x01];
      bytesField(0x12, enc.encode(`synthetic line ${i} ${padding}`), entry);
      bytesField(0x32, pod, entry);
      const out: number[] = [];
      bytesField(0x0a, new Uint8Array(entry), out);
      return new Uint8Array(out);
    });
  window.fetch = async (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    if (!url.endsWith("/flotilla.v1.LogStream/StreamPodLogs") || !location.hash.includes("pod=synthetic-feed")) return realFetch(input, init);
    lines ??= encodeAll();
    const all = lines;
    let sent = 0;
    let timer: ReturnType<typeof setInterval> | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const t0 = performance.now();
        init?.signal?.addEventListener("abort", () => clearInterval(timer));
        timer = setInterval(() => {
          const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
          if (due > sent) {
            const batch = all.slice(sent, due);
            const msg = new Uint8Array(batch.reduce((n, b) => n + b.length, 0));
            let at = 0;
            for (const b of batch) {
              msg.set(b, at);
              at += b.length;
            }
            sent = due;
            controller.enqueue(frame(0, msg));
          }
          if (sent >= total) {
            clearInterval(timer);
            controller.enqueue(frame(0x80, enc.encode("grpc-status: 0\r\ngrpc-message: \r\n")));
            controller.close();
          }
        }, 10);
      },
    });
    return new Response(body, { status: 200, headers: { "content-type": "application/grpc-web+proto" } });
  };
}

/**
 * Installed before the console loads: the first `failures` StreamPodLogs calls are answered
 * UNAVAILABLE (a grpc-web trailers-only response, as a server that is going away sends); later
 * calls go to the server.
 */
export function unavailableFirst({ failures }: { failures: number }): void {
  const realFetch = window.fetch.bind(window);
  let left = failures;
  window.fetch = async (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    if (!url.endsWith("/flotilla.v1.LogStream/StreamPodLogs") || left <= 0) return realFetch(input, init);
    left--;
    return new Response(null, {
      status: 200,
      headers: { "content-type": "application/grpc-web+proto", "grpc-status": "14", "grpc-message": "the%20server%20is%20restarting" },
    });
  };
}
