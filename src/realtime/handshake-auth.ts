// Who may open a Socket.io connection, and what it may hear: realtime asks src/auth, which
// decides (docs/api.md, "Who may do what"). Both connection checks run before a socket exists,
// so a refused client never joins a room or follows a log.
// - Before engine.io accepts the request: a browser Origin must be dockbot's own (the same-origin
//   rule of src/auth/same-origin.ts, via origin-allowed.ts).
// - Then the credentials: a token in `auth: {token}` (the admin token or an API token, the same
//   check as the API's bearer token), else the dashboard's session cookie, which must come from
//   dockbot's own page (Origin or Sec-Fetch-Site, as on the HTTP side). Refused: "unauthorized"
//   (or "forbidden", "rate_limited"); failed token checks count toward the address's limit.
// - Every subscription asks `mayRead` for its project; `{}` joins only the rooms of the projects
//   the socket may read when it subscribes (admins: every project, also later ones).
// - Rights change while a socket is open (a member removed in GitLab, a session signed out or
//   expired, a token revoked): `stillAllowed` asks again, and the server re-checks every open
//   socket about once a minute (the role cache's lifetime), disconnecting the ones that lost
//   their credentials or a project they follow.
import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import { authOrAdminOnly, type Auth, type Identity } from "../auth/auth.js";
import { sameOriginRequest } from "../auth/same-origin.js";
import { sessionCookieName } from "../auth/sessions.js";
import type { AdminToken } from "../http/admin-token.js";
import type { Store } from "../store/store.js";
import { originAllowed } from "./origin-allowed.js";
import type { RealtimeSocket } from "./protocol.js";

export interface HandshakeAuthDeps {
  token: AdminToken;
  store: Store;
  publicUrl: string;
  logger: Logger;
  /** src/auth; unset: the admin token alone. */
  auth?: Auth;
}

export type HandshakeRefusal = "unauthorized" | "forbidden" | "rate_limited";

export interface HandshakeAuth {
  /** The browser Origin rule, for the server's `allowRequest`. */
  originAllowed(req: IncomingMessage): boolean;
  /** Undefined when the socket's credentials are accepted, else the error its client gets. */
  refusal(socket: RealtimeSocket): Promise<HandshakeRefusal | undefined>;
  /** Whether the socket may hear a project's events and log lines. */
  mayRead(socket: RealtimeSocket, projectId: string): Promise<boolean>;
  /** The projects a `{}` subscription may hear; undefined: all of them (an admin). */
  readableProjectIds(socket: RealtimeSocket): Promise<string[] | undefined>;
  /**
   * Whether the socket's credentials still hold (session not ended, token not revoked or
   * expired) and it may still read each of `projectIds`; asked again, not from the handshake.
   */
  stillAllowed(socket: RealtimeSocket, projectIds: Iterable<string>): Promise<boolean>;
}

/** The token in `auth: {token}`, when there is a string there. */
function presentedToken(auth: unknown): string | undefined {
  if (typeof auth !== "object" || auth === null) return undefined;
  const token = (auth as { token?: unknown }).token;
  return typeof token === "string" ? token : undefined;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function handshakeAuth(deps: HandshakeAuthDeps): HandshakeAuth {
  const auth = authOrAdminOnly(deps);
  const identities = new WeakMap<RealtimeSocket, Identity>();
  const cookieName = sessionCookieName(auth.secure);

  /** `again`: a re-check of an open socket, which neither counts toward nor obeys the limiter. */
  const identify = async (
    socket: RealtimeSocket,
    again = false,
  ): Promise<Identity | HandshakeRefusal> => {
    const address = socket.handshake.address;
    const token = presentedToken(socket.handshake.auth);
    const cookie = cookieValue(socket.handshake.headers.cookie, cookieName);
    if (token === undefined && cookie === undefined) return "unauthorized";
    if (!again && auth.limiter.blocked(address)) return "rate_limited";
    if (token !== undefined) {
      const identity = await auth.fromBearer(token);
      if (!identity && !again) auth.limiter.fail(address);
      return identity ?? "unauthorized";
    }
    const session = await auth.sessions.read(cookie);
    if (!session) return "unauthorized";
    const headers = socket.handshake.headers;
    const fromOwnPage = sameOriginRequest(
      {
        origin: headers.origin,
        secFetchSite: headers["sec-fetch-site"],
        host: headers.host,
      },
      deps.publicUrl,
    );
    return fromOwnPage ? auth.fromSession(session) : "forbidden";
  };

  return {
    originAllowed(req) {
      const allowed = originAllowed(req.headers.origin, req.headers.host, deps.publicUrl);
      if (!allowed)
        deps.logger.warn(
          { origin: req.headers.origin },
          "socket.io handshake from a foreign origin refused",
        );
      return allowed;
    },
    async refusal(socket) {
      const found = await identify(socket);
      if (typeof found === "string") return found;
      identities.set(socket, found);
      return undefined;
    },
    async mayRead(socket, projectId) {
      const identity = identities.get(socket);
      return identity !== undefined && (await auth.mayReadProject(identity, projectId));
    },
    async stillAllowed(socket, projectIds) {
      const found = await identify(socket, true);
      if (typeof found === "string") {
        identities.delete(socket);
        return false;
      }
      identities.set(socket, found);
      for (const projectId of projectIds) {
        if (!(await auth.mayReadProject(found, projectId))) return false;
      }
      return true;
    },
    async readableProjectIds(socket) {
      const identity = identities.get(socket);
      if (!identity) return [];
      if (auth.globalRight(identity)) return undefined;
      return (await auth.readable(identity, await deps.store.listProjects())).map((p) => p.id);
    },
  };
}
