// How long dockbot's HTTP servers (API and dashboard, preview router) keep an idle keep-alive
// connection open. Node's default of 5 s is shorter than what browsers and proxies keep theirs
// (nginx's `keepalive_timeout` 75 s, load balancers 60 s): a client that reuses a connection the
// server is closing at that moment sees a reset ("Failed to fetch", nginx's 502) on a request the
// server never got. Longer than any of them, the server is never the side that closes first.
import type { Server } from "node:http";

/** Idle keep-alive connections stay open this long (ms). */
export const KEEP_ALIVE_TIMEOUT_MS = 76_000;

export function keepConnectionsAlive(server: Server): void {
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  // Node requires the headers timeout to be longer than the keep-alive timeout.
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1000;
}
