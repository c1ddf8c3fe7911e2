// Dashboard sessions: who signed in with the admin token, and the CSRF token of their forms.
//
// Why an encrypted cookie and not an in-memory map of session ids:
// - The dashboard's live parts authenticate to Socket.io with the admin token itself (the realtime
//   server accepts nothing else), so the server must be able to put the token the user typed into
//   pages it renders for that user. Only the token's hash is stored, so the session has to carry
//   it. It travels AES-256-GCM encrypted (never the raw token) in an HttpOnly cookie.
// - Replicas behind a load balancer and restarts keep sessions: the key is a random value kept in
//   the store's settings, which every replica shares.
// - Every request checks the carried token against the admin token again, so changing
//   DOCKBOT_ADMIN_TOKEN ends every session at once; sessions also end after SESSION_TTL_MS, and
//   signing out records the session id as ended in the store (a stolen copy of the cookie stops
//   working too, on every replica).
// The CSRF token of a session is an HMAC of its id: nothing to store, different per session.
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import type { AdminToken } from "../http/admin-token.js";
import type { Store } from "../store/store.js";

export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
const KEY_SETTING = "ui-session-key";
const ENDED = (sid: string) => `ui-session-ended:${sid}`;
const AAD = Buffer.from("dockbot-ui-session-v1");

export interface Session {
  id: string;
  /** The admin token the user typed (for Socket.io auth in pages of this session). */
  token: string;
  expiresAt: number;
  csrf: string;
}

interface Payload {
  sid: string;
  tok: string;
  exp: number;
}

export interface SessionKeeper {
  /** A new session for a token that verified; returns the cookie value. */
  create(token: string): Promise<{ cookie: string; session: Session }>;
  /** The session of a cookie value, or undefined when it is missing, forged, expired or ended. */
  read(cookie: string | undefined): Promise<Session | undefined>;
  end(session: Session): Promise<void>;
  csrfMatches(session: Session, presented: string | undefined): boolean;
}

export function sessionKeeper(deps: {
  store: Store;
  token: AdminToken;
  now?: () => number;
}): SessionKeeper {
  const now = deps.now ?? (() => Date.now());
  let keyPromise: Promise<Buffer> | undefined;
  const key = () => {
    keyPromise ??= (async () => {
      const stored = await deps.store.getSetting(KEY_SETTING);
      if (stored) return Buffer.from(stored, "hex");
      await deps.store.setSetting(KEY_SETTING, randomBytes(32).toString("hex"));
      // Read back: when two replicas start at once, both settle on the value written last.
      return Buffer.from((await deps.store.getSetting(KEY_SETTING)) ?? "", "hex");
    })().catch((error: unknown) => {
      keyPromise = undefined; // the store was down: try again on the next request
      throw error;
    });
    return keyPromise;
  };

  const csrfFor = (k: Buffer, sid: string) =>
    createHmac("sha256", k).update(`csrf|${sid}`).digest("base64url");

  const seal = (k: Buffer, payload: Payload) => {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", k, iv);
    cipher.setAAD(AAD);
    const body = Buffer.concat([cipher.update(JSON.stringify(payload), "utf8"), cipher.final()]);
    return Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url");
  };

  const open = (k: Buffer, value: string): Payload | undefined => {
    const raw = Buffer.from(value, "base64url");
    if (raw.length < 12 + 16 + 2) return undefined;
    try {
      const decipher = createDecipheriv("aes-256-gcm", k, raw.subarray(0, 12));
      decipher.setAAD(AAD);
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      const text = Buffer.concat([
        decipher.update(raw.subarray(12, raw.length - 16)),
        decipher.final(),
      ]).toString("utf8");
      const parsed = JSON.parse(text) as Partial<Payload>;
      if (
        typeof parsed.sid !== "string" ||
        typeof parsed.tok !== "string" ||
        typeof parsed.exp !== "number"
      ) {
        return undefined;
      }
      return { sid: parsed.sid, tok: parsed.tok, exp: parsed.exp };
    } catch {
      return undefined; // forged, truncated or sealed with another key: no session, no error
    }
  };

  return {
    async create(token) {
      const k = await key();
      const payload: Payload = {
        sid: randomBytes(18).toString("base64url"),
        tok: token,
        exp: now() + SESSION_TTL_MS,
      };
      return {
        cookie: seal(k, payload),
        session: { id: payload.sid, token, expiresAt: payload.exp, csrf: csrfFor(k, payload.sid) },
      };
    },
    async read(cookie) {
      if (!cookie || cookie.length > 4096) return undefined;
      const k = await key();
      const payload = open(k, cookie);
      if (!payload || payload.exp <= now() || !deps.token.verify(payload.tok)) return undefined;
      if (await deps.store.getSetting(ENDED(payload.sid))) return undefined;
      return {
        id: payload.sid,
        token: payload.tok,
        expiresAt: payload.exp,
        csrf: csrfFor(k, payload.sid),
      };
    },
    async end(session) {
      await deps.store.setSetting(ENDED(session.id), new Date(session.expiresAt).toISOString());
    },
    csrfMatches(session, presented) {
      if (presented === undefined) return false;
      const a = Buffer.from(session.csrf);
      const b = Buffer.from(presented);
      return a.length === b.length && timingSafeEqual(a, b);
    },
  };
}
