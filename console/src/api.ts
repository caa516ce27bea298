// The console's one Flotilla client: grpc-web to the origin that served the page, the token
// from the session, and a session that ends itself when the server says the token is no good.
import {
  Code,
  ConnectError,
  createFlotillaClient,
  errorDetails,
  type FlotillaClient,
  type FlotillaErrorDetails,
  type Interceptor,
} from "@flotilla-dev/client";
import { currentToken, signOut } from "./session";

/** Ends the session on UNAUTHENTICATED (expired or revoked token), with the server's reason. */
const signOutOnUnauthenticated: Interceptor = (next) => async (req) => {
  try {
    return await next(req);
  } catch (e) {
    if (e instanceof ConnectError && e.code === Code.Unauthenticated && currentToken() !== "") {
      const d = errorDetails(e);
      signOut(d.message || "the server no longer accepts this token");
    }
    throw e;
  }
};

export const api: FlotillaClient = createFlotillaClient({
  baseUrl: location.origin,
  token: currentToken,
  interceptors: [signOutOnUnauthenticated],
});

export type ApiError = FlotillaErrorDetails;

/** The details of a failed call, for ErrorBox and field highlighting. */
export function apiError(e: unknown): ApiError {
  return errorDetails(e);
}

/** The violation of one request field, for showing next to its input. */
export function fieldError(err: ApiError | null, field: string): string | undefined {
  return err?.fieldViolations.find((v) => v.field === field || v.field.startsWith(`${field}.`))?.description;
}
