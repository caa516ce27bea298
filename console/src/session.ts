// The signed-in API token. It lives in sessionStorage only: never in a URL, a cookie or
// localStorage, so it goes away with the tab and is never sent anywhere but the Authorization
// header of the console's own calls.
import { signal } from "./state";

const KEY = "flotilla.token";

export interface Session {
  token: string;
}

/** Why the last session ended, shown on the sign-in page ("" after a plain sign-out). */
export const signOutReason = signal("");

export const session = signal<Session | null>(read());

function read(): Session | null {
  const token = sessionStorage.getItem(KEY);
  return token ? { token } : null;
}

export function signIn(token: string): void {
  sessionStorage.setItem(KEY, token);
  signOutReason.set("");
  session.set({ token });
}

/** Clears the token; `reason` says why when the server ended the session (expired, revoked). */
export function signOut(reason = ""): void {
  sessionStorage.removeItem(KEY);
  signOutReason.set(reason);
  session.set(null);
}

export function currentToken(): string {
  return session.get()?.token ?? "";
}
