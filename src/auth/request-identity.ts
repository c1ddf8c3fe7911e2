// Who a request is, read off its headers: a bearer token (the admin token or an API token), else
// the dashboard session cookie, which must come from dockbot's own origin. Failed checks count
// toward the address's rate limit (docs/api.md, "Who may do what"). Shared by the API
// middleware and the auth routes; the dashboard reads the cookie the same way.
import type { Context } from "hono";
import { getConnInfo } from "@hono/node-server/conninfo";
import { getCookie } from "hono/cookie";
import type { Auth, Identity } from "./auth.js";
import { sameOriginRequest } from "./same-origin.js";
import { sessionCookieName } from "./sessions.js";
import { AppError } from "../errors.js";

/** The peer address of the connection (no X-Forwarded-For: a client could pick its own). */
export function addressOf(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown"; // app.request() in tests: no socket
  }
}

function bearer(header: string | undefined): string | undefined {
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return match?.[1];
}

export function rateLimited(auth: Auth, address: string): AppError {
  return new AppError(
    "rate_limited",
    `too many failed sign-ins or token checks from this address; try again in ${auth.limiter.retryAfter(address)} s`,
  );
}

/**
 * The identity of a request, undefined when it carries no credentials. Throws 401 for a wrong
 * token, 403 for a cookie from another origin, 429 while the address is blocked.
 */
export async function identify(auth: Auth, c: Context): Promise<Identity | undefined> {
  const address = addressOf(c);
  const header = c.req.header("authorization");
  const cookie = getCookie(c, sessionCookieName(auth.secure));
  if (header === undefined && cookie === undefined) return undefined;
  if (auth.limiter.blocked(address)) throw rateLimited(auth, address);
  if (header !== undefined) {
    const token = bearer(header);
    const identity = token === undefined ? undefined : await auth.fromBearer(token);
    if (!identity) {
      auth.limiter.fail(address);
      throw new AppError("unauthorized", "missing or wrong bearer token");
    }
    return identity;
  }
  const session = await auth.sessions.read(cookie);
  if (!session) return undefined; // an ended or expired session: signed out
  const fromOwnPage = sameOriginRequest(
    {
      origin: c.req.header("origin"),
      secFetchSite: c.req.header("sec-fetch-site"),
      host: c.req.header("host"),
    },
    auth.publicUrl,
  );
  if (!fromOwnPage) {
    throw new AppError(
      "forbidden",
      "a request with dockbot's session cookie must come from dockbot's own pages (Origin or Sec-Fetch-Site)",
    );
  }
  return auth.fromSession(session);
}
