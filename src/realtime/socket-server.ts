// Socket.io on the HTTP server (docs/api.md, "Socket.io"): the wiring. Each idea has its file:
// - protocol.ts: the events and payloads, `subscribe` validation;
// - handshake-auth.ts: who may connect (origin rule in origin-allowed.ts, credentials);
// - rooms.ts: operation and version events, broadcast to rooms as state snapshots;
// - log-follow.ts: one socket following one operation's log (replay seam, no gap, no repeat,
//   slow clients told to resubscribe), log-hub.ts: all follows, batched delivery;
// - scope-follows.ts: version and project subscriptions, which follow every operation of theirs
//   that runs while they are subscribed, each from line 1;
// - replica-link.ts: the Redis adapter and what replicas tell each other.
// Every bus listener here is synchronous: Socket.io's emit only queues, and log lines are bounded
// per follow, so the runner is never slowed by a client.
import type { Server as HttpServer } from "node:http";
import type { Logger } from "pino";
import { Server } from "socket.io";
import type { EventBus } from "../deploy/events.js";
import type { Auth } from "../auth/auth.js";
import type { AdminToken } from "../http/admin-token.js";
import { operationJson, versionJson, type VersionLinks } from "../http/schemas.js";
import type { Store } from "../store/store.js";
import type { LogLine, OperationRecord, VersionRecord } from "../store/types.js";
import { handshakeAuth } from "./handshake-auth.js";
import { DEFAULT_MAX_BUFFERED_LINES, LogHub } from "./log-hub.js";
import {
  SUBSCRIBE_USAGE,
  ackOf,
  operationScope,
  parseSubscription,
  scopeOf,
  type RealtimeServer,
} from "./protocol.js";
import { linkReplicas } from "./replica-link.js";
import { operationRooms, projectRoom, roomsOf, versionRooms } from "./rooms.js";
import { ScopeFollows } from "./scope-follows.js";

export type {
  ClientToServerEvents,
  InterServerEvents,
  LogBatchEvent,
  LogBatchLine,
  LogLineEvent,
  RealtimeServer,
  ResubscribeEvent,
  ServerToClientEvents,
  SubscribeAck,
  SubscribeRequest,
} from "./protocol.js";
export { DEFAULT_MAX_BUFFERED_LINES } from "./log-hub.js";
export { originAllowed } from "./origin-allowed.js";

export interface SocketServerDeps {
  bus: EventBus;
  store: Store;
  token: AdminToken;
  /** Who may connect and hear what (src/auth); unset: the admin token alone. */
  auth?: Auth;
  logger: Logger;
  publicUrl: string;
  /** Set: share events with other replicas through Redis. */
  redisUrl?: string;
  /** Lines allowed to wait for one socket and operation before it is told to resubscribe. */
  maxBufferedLines?: number;
  /** A version's project name and preview settings, for its `previewUrl` (synchronous). */
  versionLinks?: (v: VersionRecord) => VersionLinks | undefined;
  /** How often open sockets' rights are checked again (ms). Default RIGHTS_RECHECK_MS. */
  rightsRecheckMs?: number;
}

/** Open sockets' rights are asked again this often: the lifetime of src/auth's role cache. */
export const RIGHTS_RECHECK_MS = 60_000;

export interface SocketServerStats {
  /** (socket, operation) log follows open now. */
  follows: number;
  /** Most lines ever waiting for one follow (its queue plus the engine buffer) since start. */
  maxWaitingLines: number;
  /** Follows stopped for falling behind (each got `resubscribe`). */
  resubscribesSent: number;
}

export interface AttachedSocketServer {
  io: RealtimeServer;
  /** Resolves when the server takes connections (at once without Redis; once Redis answers). */
  ready: Promise<void>;
  stats(): SocketServerStats;
  /** Disconnects this replica's sockets and leaves Redis; does not close the HTTP server. */
  close(): Promise<void>;
}

/** Attaches Socket.io (path /socket.io) to the HTTP server and fans the bus out to it. */
export function attachSocketServer(
  httpServer: HttpServer,
  deps: SocketServerDeps,
): AttachedSocketServer {
  const logger = deps.logger.child({ module: "realtime" });
  const auth = handshakeAuth({
    token: deps.token,
    store: deps.store,
    publicUrl: deps.publicUrl,
    logger,
    ...(deps.auth === undefined ? {} : { auth: deps.auth }),
  });
  let closing = false;
  // The projects each socket of this replica follows, for the periodic re-check of its rights.
  const followedProjects = new Map<string, Set<string>>();

  const io: RealtimeServer = new Server(httpServer, {
    path: "/socket.io",
    serveClient: true,
    allowRequest: (req, callback) => {
      if (closing) return callback("shutting down", false);
      const allowed = auth.originAllowed(req);
      callback(allowed ? null : "origin not allowed", allowed);
    },
  });

  const hub = new LogHub(
    deps.store,
    logger,
    Math.max(1, deps.maxBufferedLines ?? DEFAULT_MAX_BUFFERED_LINES),
    // `local`: only this replica's sockets (each is in the room of its own id); the adapter
    // encodes the packet once for all of them.
    (socketIds, batch) => io.local.to(socketIds).emit("operation.logs", batch),
  );
  const scopes = new ScopeFollows(hub, deps.store);
  const replicas = linkReplicas(io, deps.redisUrl, logger);

  io.use((socket, next) => {
    if (closing) {
      next(new Error("unavailable"));
      return;
    }
    auth.refusal(socket).then(
      (refusal) => {
        if (refusal !== undefined) {
          next(new Error(refusal));
          return;
        }
        replicas.ready.then(
          () => next(),
          () => next(new Error("unavailable")),
        );
      },
      (error: unknown) => {
        logger.warn({ err: error }, "socket.io credentials could not be checked");
        next(new Error("unavailable"));
      },
    );
  });

  io.on("connection", (socket) => {
    const onDrain = () => hub.pumpSocket(socket.id);
    socket.conn.on("drain", onDrain);
    followedProjects.set(socket.id, new Set());
    socket.on("disconnect", () => {
      followedProjects.delete(socket.id);
      socket.conn.off("drain", onDrain);
      scopes.closeSocket(socket.id);
      hub.closeSocket(socket.id);
    });

    socket.on("subscribe", (payload: unknown, ackArg?: unknown) => {
      const ack = ackOf(ackArg);
      const request = parseSubscription(payload);
      if (!request) {
        ack({ ok: false, error: { code: "invalid_request", message: SUBSCRIBE_USAGE } });
        return;
      }
      void (async () => {
        try {
          const projectId =
            "operationId" in request
              ? (await deps.store.getOperation(request.operationId))?.projectId
              : "versionId" in request
                ? (await deps.store.getVersion(request.versionId))?.projectId
                : "projectId" in request
                  ? (await deps.store.getProject(request.projectId))?.id
                  : "";
          // What may not be read is answered like what does not exist (src/auth decides).
          if (
            projectId === undefined ||
            (projectId !== "" && !(await auth.mayRead(socket, projectId)))
          ) {
            ack({
              ok: false,
              error: { code: "not_found", message: "no such operation, version or project" },
            });
            return;
          }
          if (!socket.connected) return;
          // `{}` for someone who is not an admin: the rooms of the projects they may read.
          const readable = projectId === "" ? await auth.readableProjectIds(socket) : undefined;
          const followed = followedProjects.get(socket.id);
          for (const id of readable ?? (projectId === "" ? [] : [projectId])) followed?.add(id);
          // Rooms first: an operation that starts while a scope is set up is announced here too.
          await socket.join(readable ? readable.map(projectRoom) : roomsOf(request));
          const scope = scopeOf(request);
          if ("operationId" in request) {
            hub.followOperation(
              socket,
              request.operationId,
              request.since ?? 0,
              request.batch ?? false,
            );
          } else if (scope) {
            await scopes.add(socket, scope);
          }
          ack({ ok: true });
        } catch (error) {
          logger.warn({ err: error, socketId: socket.id }, "subscribe failed");
          ack({
            ok: false,
            error: { code: "unavailable", message: "the store is not available; try again" },
          });
        }
      })();
    });

    socket.on("unsubscribe", (payload: unknown, ackArg?: unknown) => {
      const ack = ackOf(ackArg);
      const request = parseSubscription(payload);
      if (!request) {
        ack({
          ok: false,
          error: { code: "invalid_request", message: "unsubscribe takes what subscribe took" },
        });
        return;
      }
      for (const room of roomsOf(request)) void socket.leave(room);
      const scope = scopeOf(request);
      if ("operationId" in request) hub.followOf(socket.id, request.operationId)?.close();
      else if (scope) scopes.remove(socket.id, scope);
      ack({ ok: true });
    });
  });

  // Bus -> sockets. Without Redis every listener is on this replica: an event for rooms no
  // socket joined is dropped before it is serialized (in a webhook burst, most are).
  const unheard = (rooms: string[]) =>
    deps.redisUrl === undefined && rooms.every((room) => !io.sockets.adapter.rooms.has(room));
  const broadcastOperation = (
    event: "operation.queued" | "operation.started" | "operation.finished",
    op: OperationRecord,
  ) => {
    const rooms = operationRooms(op);
    if (!unheard(rooms)) io.to(rooms).emit(event, operationJson(op));
  };
  const onVersion = (event: "version.updated" | "version.deleted") => (v: VersionRecord) => {
    const rooms = versionRooms(v);
    if (!unheard(rooms))
      io.to(rooms).emit(event, versionJson(v, undefined, deps.versionLinks?.(v)));
  };
  const onQueued = (op: OperationRecord) => broadcastOperation("operation.queued", op);
  const onStarted = (op: OperationRecord) => {
    broadcastOperation("operation.started", op);
    scopes.started(operationScope(op));
    replicas.sendStarted(operationScope(op));
  };
  const onFinished = (op: OperationRecord) => {
    broadcastOperation("operation.finished", op);
    scopes.finished(operationScope(op));
    replicas.sendFinished(operationScope(op));
  };
  const onVersionUpdated = onVersion("version.updated");
  const onVersionDeleted = onVersion("version.deleted");
  const onLog = (lines: LogLine[]) => {
    try {
      hub.deliver(lines);
      replicas.sendLines(lines);
    } catch (error) {
      // The bus is the runner's hot path: a listener must not throw into it.
      logger.error({ err: error }, "delivering log lines failed");
    }
  };
  // From the other replicas' buses (never our own: the adapter skips its own messages).
  io.on("operation.log", (lines) => hub.deliver(lines));
  io.on("operation.started", (op) => scopes.started(op));
  io.on("operation.finished", (op) => scopes.finished(op));

  // Rights change while sockets stay open: each is asked again, one after another, and one
  // that lost its credentials or a project it follows is disconnected (its client sees
  // "io server disconnect" and signs in again).
  let rechecking = false;
  const recheck = async () => {
    if (rechecking || closing) return;
    rechecking = true;
    try {
      for (const socket of [...io.sockets.sockets.values()]) {
        const followed = followedProjects.get(socket.id) ?? new Set<string>();
        if (socket.connected && !(await auth.stillAllowed(socket, followed))) {
          logger.info({ socketId: socket.id }, "socket lost its rights; disconnected");
          socket.disconnect(true);
        }
      }
    } catch (error) {
      logger.warn({ err: error }, "re-checking sockets' rights failed; next time");
    } finally {
      rechecking = false;
    }
  };
  const recheckTimer = setInterval(() => void recheck(), deps.rightsRecheckMs ?? RIGHTS_RECHECK_MS);
  recheckTimer.unref();

  deps.bus.on("operation.queued", onQueued);
  deps.bus.on("operation.started", onStarted);
  deps.bus.on("operation.finished", onFinished);
  deps.bus.on("version.updated", onVersionUpdated);
  deps.bus.on("version.deleted", onVersionDeleted);
  deps.bus.on("operation.log", onLog);

  return {
    io,
    ready: replicas.ready,
    stats: () => ({
      follows: hub.followCount,
      maxWaitingLines: hub.maxWaitingLines,
      resubscribesSent: hub.resubscribesSent,
    }),
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(recheckTimer);
      deps.bus.off("operation.queued", onQueued);
      deps.bus.off("operation.started", onStarted);
      deps.bus.off("operation.finished", onFinished);
      deps.bus.off("version.updated", onVersionUpdated);
      deps.bus.off("version.deleted", onVersionDeleted);
      deps.bus.off("operation.log", onLog);
      hub.closeAll();
      // Only this replica's sockets: a plain disconnectSockets would go through Redis to all.
      io.local.disconnectSockets(true);
      io.engine.close();
      await replicas.close();
    },
  };
}
