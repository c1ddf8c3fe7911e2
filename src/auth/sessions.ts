// Dashboard sessions, kept in the store (both stores; every replica sees the same ones).
// - The cookie holds 32 random bytes; the store keeps their SHA-256 as the session id, so a copy
//   of the database holds no usable cookie. A new sign-in always makes a new session (the id is
//   rotated at sign-in; nothing of a session from before sign-in is carried over).
// - Expiry is the server's: `expiresAt` is checked on every read, sign-out deletes the record,
//   and a session signed in with the admin token ends when that token changes.
// - A GitLab sign-in under way is a short session of kind `sign-in` holding the OAuth `state`
//   and PKCE verifier: `state` is bound to the browser that started it by that cookie.
// - The CSRF token of a session's forms is random per session and stored with it.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Store } from "../store/store.js";
import type { SessionRecord } from "../store/types.js";

export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
export const SIGN_IN_TTL_MS = 10 * 60 * 1000;

export function sessionCookieName(secure: boolean): string {
  // __Host-: the browser accepts it only Secure, for "/", from this host (no subdomain sets it).
  return secure ? "__Host-dockbot_session" : "dockbot_session";
}

export function signInCookieName(secure: boolean): string {
  return secure ? "__Host-dockbot_sign_in" : "dockbot_sign_in";
}

/** The cookie options every session cookie gets (docs/api.md: HttpOnly, SameSite=Lax, Secure under https). */
export function cookieOptions(secure: boolean, maxAgeMs: number) {
  return {
    httpOnly: true,
    sameSite: "Lax" as const,
    secure,
    path: "/",
    maxAge: Math.floor(maxAgeMs / 1000),
  };
}

function digest(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex");
}

export type NewSession = Omit<SessionRecord, "id" | "csrf" | "createdAt" | "expiresAt">;

export interface Sessions {
  /** Stores a new session; returns the cookie value (shown to the browser only). */
  create(fields: NewSession, ttlMs?: number): Promise<{ cookie: string; session: SessionRecord }>;
  /** The live session of a cookie value (of the given kind), or undefined. */
  read(
    cookie: string | undefined,
    kinds?: readonly SessionRecord["kind"][],
  ): Promise<SessionRecord | undefined>;
  end(session: SessionRecord): Promise<void>;
  csrfMatches(session: SessionRecord, presented: string | undefined): boolean;
}

export function createSessions(deps: {
  store: Store;
  /** The id of the admin token now in force: sessions signed in with another one are over. */
  adminTokenId: string;
  now?: () => number;
}): Sessions {
  const now = deps.now ?? (() => Date.now());
  let lastSweep = 0;
  const sweep = () => {
    // Expired sessions are dead on read anyway; removing them keeps the table small.
    if (now() - lastSweep < 60 * 60 * 1000) return;
    lastSweep = now();
    void deps.store.deleteExpiredSessions(new Date(now()).toISOString()).catch(() => {
      lastSweep = 0; // the store was down: try again on a later sign-in
    });
  };
  return {
    async create(fields, ttlMs = SESSION_TTL_MS) {
      sweep();
      const cookie = randomBytes(32).toString("base64url");
      const at = now();
      const session: SessionRecord = {
        ...fields,
        id: digest(cookie),
        csrf: randomBytes(24).toString("base64url"),
        createdAt: new Date(at).toISOString(),
        expiresAt: new Date(at + ttlMs).toISOString(),
      };
      if (session.kind === "admin-token") session.adminTokenId = deps.adminTokenId;
      await deps.store.createSession(session);
      return { cookie, session };
    },
    async read(cookie, kinds = ["user", "admin-token"]) {
      if (!cookie || cookie.length > 200) return undefined;
      const session = await deps.store.getSession(digest(cookie));
      if (!session || !kinds.includes(session.kind)) return undefined;
      if (Date.parse(session.expiresAt) <= now()) {
        await deps.store.deleteSession(session.id);
        return undefined;
      }
      if (session.kind === "admin-token" && session.adminTokenId !== deps.adminTokenId) {
        return undefined;
      }
      return session;
    },
    async end(session) {
      await deps.store.deleteSession(session.id);
    },
    csrfMatches(session, presented) {
      if (presented === undefined) return false;
      const a = Buffer.from(session.csrf);
      const b = Buffer.from(presented);
      return a.length === b.length && timingSafeEqual(a, b);
    },
  };
}
