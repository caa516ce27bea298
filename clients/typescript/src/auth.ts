import { Code, ConnectError } from "@connectrpc/connect";
import type { Interceptor } from "@connectrpc/connect";

/** A bearer token, or a function that returns the current one (so a console can refresh it). */
export type TokenSource = string | (() => string | Promise<string>);

/**
 * Sends `Authorization: Bearer <token>` on every call. Tokens travel only in this header, never
 * in URLs (which end up in proxy and browser logs).
 */
export function tokenInterceptor(token: TokenSource): Interceptor {
  return (next) => async (req) => {
    const value = typeof token === "function" ? await token() : token;
    if (value === "") {
      // Fail here, without a round trip that would only count against the peer rate limit.
      throw new ConnectError("no API token: pass token to the client", Code.Unauthenticated);
    }
    req.header.set("Authorization", `Bearer ${value}`);
    return next(req);
  };
}
