// Who may open a Socket.io connection: the one place realtime decides it. Both checks run before
// a socket exists, so a refused client never joins a room or follows a log.
// - Before engine.io accepts the request: a browser Origin must be dockbot's own
//   (origin-allowed.ts).
// - Then the credentials in the handshake's `auth`: today the admin token (`auth: {token}`), the
//   same check as the API's bearer token; a missing or wrong one is refused with "unauthorized".
import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import type { AdminToken } from "../http/admin-token.js";
import { originAllowed } from "./origin-allowed.js";
import type { RealtimeSocket } from "./protocol.js";

export interface HandshakeAuthDeps {
  token: AdminToken;
  publicUrl: string;
  logger: Logger;
}

export interface HandshakeAuth {
  /** The browser Origin rule, for the server's `allowRequest`. */
  originAllowed(req: IncomingMessage): boolean;
  /** Undefined when the socket's credentials are accepted, else the error its client gets. */
  refusal(socket: RealtimeSocket): "unauthorized" | undefined;
}

/** The token in `auth: {token}`, when there is a string there. */
function presentedToken(auth: unknown): string | undefined {
  if (typeof auth !== "object" || auth === null) return undefined;
  const token = (auth as { token?: unknown }).token;
  return typeof token === "string" ? token : undefined;
}

export function handshakeAuth(deps: HandshakeAuthDeps): HandshakeAuth {
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
    refusal(socket) {
      return deps.token.verify(presentedToken(socket.handshake.auth)) ? undefined : "unauthorized";
    },
  };
}
