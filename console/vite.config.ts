// The console's build. `npm run build` writes dist/, which is committed: `flotilla serve` embeds
// it at compile time, so `cargo run` needs no Node.js (scripts/test rebuilds it and fails when
// the committed copy is stale).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const client = (file: string) => fileURLToPath(new URL(`../clients/typescript/src/${file}`, import.meta.url));

// `npm run dev` proxies the API to a running server (FLOTILLA_URL, default the README's address).
const api = process.env.FLOTILLA_URL ?? "http://127.0.0.1:50051";
const proxy = { "^/(flotilla\\.v1|grpc)\\.": { target: api, changeOrigin: false } };

export default defineConfig({
  resolve: {
    // The generated client is used from source; its imports resolve to this package's copies.
    alias: [
      { find: /^@flotilla-dev\/client$/, replacement: client("index.ts") },
      { find: /^@flotilla-dev\/client\/v1$/, replacement: client("v1.ts") },
      { find: /^@flotilla-dev\/client\/google\/rpc$/, replacement: client("rpc.ts") },
    ],
    dedupe: ["@bufbuild/protobuf", "@connectrpc/connect", "@connectrpc/connect-web", "preact"],
  },
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  server: { fs: { allow: [".."] }, proxy },
  preview: { proxy },
  build: {
    target: "es2022",
    // No inline scripts or data: URLs: the server's Content-Security-Policy forbids them.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
  },
});
