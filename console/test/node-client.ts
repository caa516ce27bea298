// A Flotilla client for the tests' own calls from Node (setup, and the expected answers the
// pages are compared with): the TypeScript client's built dist over grpc-web, imported by path.
// The console's test build does not compile the client, so its calls are typed loosely here.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO, must } from "./harness.js";

const CLIENT_DIR = join(REPO, "clients/typescript");

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Message = any;
/** The services the tests call, by the client's names (api.admin.listApiTokens, ...). */
export type NodeApi = Record<"admin" | "clusters" | "credentials" | "operations" | "registries", Message>;

interface ClientModule {
  createFlotillaClient(options: { baseUrl: string; token: string; retry?: false }): NodeApi;
  errorDetails(e: unknown): { code: number; codeName: string; message: string; reason: string };
}

let loaded: Promise<ClientModule> | undefined;

/** Builds clients/typescript/dist once when it is missing (as clients/typescript/test.sh does). */
function client(): Promise<ClientModule> {
  loaded ??= (async () => {
    const entry = join(CLIENT_DIR, "dist/index.js");
    if (!existsSync(entry)) {
      if (!existsSync(join(CLIENT_DIR, "node_modules"))) {
        execFileSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: CLIENT_DIR, stdio: "inherit" });
      }
      execFileSync("npx", ["--no-install", "tsc", "-p", "tsconfig.json"], { cwd: CLIENT_DIR, stdio: "inherit" });
    }
    return (await import(pathToFileURL(entry).href)) as ClientModule;
  })();
  return loaded;
}

/** A client of the live server (FLOTILLA_URL), with `token` (default: the admin token). */
export async function nodeApi(token = must("FLOTILLA_TOKEN")): Promise<NodeApi> {
  return (await client()).createFlotillaClient({ baseUrl: must("FLOTILLA_URL"), token, retry: false });
}

/** The code name and reason of a failed call. */
export async function failure(call: Promise<unknown>): Promise<{ codeName: string; reason: string; message: string }> {
  try {
    await call;
  } catch (e) {
    return (await client()).errorDetails(e);
  }
  throw new Error("the call succeeded");
}
