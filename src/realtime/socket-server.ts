// Socket.io on the HTTP server: operation and version events fanned out to rooms, and operation
// logs streamed line by line with no gap and no repeat (API.md, "Socket.io").
//
// Design and invariants:
// - Auth and origin are checked before a socket exists: `allowRequest` refuses a browser Origin
//   whose host is neither the request's Host nor DOCKBOT_PUBLIC_URL's host (WebSockets are not
//   covered by CORS, so this is what stops another site from riding a user's page); a
//   middleware refuses a missing or wrong `auth.token` with the error "unauthorized".
// - Operation and version events are state snapshots: they are broadcast to the rooms
//   `op:<id>`, `version:<id>`, `project:<id>` and `all` in one emit, so a socket in several of
//   them gets each event once. With Redis the adapter carries room broadcasts to every replica;
//   each replica broadcasts only what its own bus announced, so nothing is sent twice.
// - Log lines are NOT sent through rooms. Each (socket, operation) pair that subscribed has a
//   LogFollow that remembers the last seq it handed to the socket and sends only lines after it.
//   This is what makes "no repeat" a local, checkable property instead of a client's duty.
// - Replay seam: a follow starts listening (buffering live lines) BEFORE it reads the store.
//   OperationLog stores a line before it announces it (invariant 3), so any line announced
//   before the follow existed is in the store read, and any line announced after is in the
//   buffer. Lines are deduplicated by seq when the buffer is spliced on: no gap, no repeat.
//   If the buffer outgrows `maxBufferedLines` during replay it is dropped and the store is read
//   again (everything dropped was stored before it was dropped); the replay ends only on a short
//   page read with no drop since that read began.
// - Several replicas: a replica's bus only sees the lines its own runner writes, so every batch is
//   also sent to the other replicas with the adapter's `serverSideEmit` (Redis pub/sub, in order
//   per publisher), where it enters the same follows as local lines. A remote batch arrives only
//   after its lines were stored, so the seam argument above holds across processes (with a
//   shared store, i.e. MongoDB). Per-socket dedupe by seq applies on the receiving replica.
// - Slow clients: a bus listener never awaits and never writes unboundedly. A follow hands lines
//   to Socket.io only while the connection's engine write buffer is below a small window, and
//   continues on the engine's "drain". If the lines waiting for one socket (follow queue plus
//   engine buffer) would exceed `maxBufferedLines`, the follow stops, drops its queue and emits
//   `resubscribe {operationId, since: lastSentSeq}` after every line it did send; the client
//   resubscribes with `since` and catches up from the store at its own pace. Memory per socket
//   is bounded by `maxBufferedLines` per followed operation.
import type { Server as HttpServer, IncomingMessage } from "node:http";
import { randomUUID } from "node:crypto";
import { createAdapter } from "@socket.io/redis-adapter";
import type { Logger } from "pino";
import { createClient } from "redis";
import { Server, type Socket } from "socket.io";
import { z } from "zod";
import type { EventBus } from "../deploy/events.js";
import type { AdminToken } from "../http/admin-token.js";
import {
  operationJson,
  versionJson,
  type OperationJson,
  type VersionJson,
} from "../http/schemas.js";
import type { Store } from "../store/store.js";
import type { LogLine, LogStream, OperationRecord, VersionRecord } from "../store/types.js";

/** One log line as clients receive it. */
export interface LogLineEvent {
  operationId: string;
  seq: number;
  stream: LogStream;
  text: string;
}

/** Sent when the server stopped streaming an operation's log to a socket that fell behind. */
export interface ResubscribeEvent {
  operationId: string;
  /** Seq of the last line sent: subscribe again with `{operationId, since}`. */
  since: number;
}

export interface ServerToClientEvents {
  "operation.queued": (operation: OperationJson) => void;
  "operation.started": (operation: OperationJson) => void;
  "operation.finished": (operation: OperationJson) => void;
  "operation.log": (line: LogLineEvent) => void;
  "version.updated": (version: VersionJson) => void;
  "version.deleted": (version: VersionJson) => void;
  resubscribe: (request: ResubscribeEvent) => void;
}

export type SubscribeRequest =
  | { operationId: string; since?: number }
  | { versionId: string }
  | { projectId: string }
  | Record<string, never>;

export type SubscribeAck =
  | { ok: true }
  | {
      ok: false;
      error: { code: "invalid_request" | "not_found" | "unavailable"; message: string };
    };

export interface ClientToServerEvents {
  subscribe: (request: SubscribeRequest, ack?: (answer: SubscribeAck) => void) => void;
  /** Leaves what `subscribe` with the same payload joined (`since` is ignored). */
  unsubscribe: (request: SubscribeRequest, ack?: (answer: SubscribeAck) => void) => void;
}

/** Between replicas (Redis adapter `serverSideEmit`). */
export interface InterServerEvents {
  "operation.log": (lines: LogLine[]) => void;
}

export type RealtimeServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents>;
type RealtimeSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents>;

export interface SocketServerDeps {
  bus: EventBus;
  store: Store;
  token: AdminToken;
  logger: Logger;
  publicUrl: string;
  /** Set: share events with other replicas through Redis. */
  redisUrl?: string;
  /** Lines allowed to wait for one socket and operation before it is told to resubscribe. */
  maxBufferedLines?: number;
}

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

export const DEFAULT_MAX_BUFFERED_LINES = 10_000;
/** Store page size for replay (also capped by maxBufferedLines). */
const REPLAY_PAGE = 500;
/** Engine packets allowed in flight per socket before a follow waits for "drain". */
const SEND_WINDOW = 256;
/** Remote batches are split so one Redis message stays well under its pub/sub buffer limits. */
const REMOTE_CHUNK_CHARS = 512 * 1024;
const REDIS_CONNECT_TIMEOUT_MS = 10_000;

const Id = z.string().min(1).max(200);
const SubscribeSchema = z.union([
  z.strictObject({ operationId: Id, since: z.number().int().min(0).optional() }),
  z.strictObject({ versionId: Id }),
  z.strictObject({ projectId: Id }),
  z.strictObject({}),
]);
type Subscription = z.infer<typeof SubscribeSchema>;

/**
 * Packets queued in the engine.io connection and not yet handed to the transport. engine.io
 * keeps this array private in its types but it is the one honest measure of a slow client:
 * it grows while the transport is still busy writing earlier packets.
 */
function engineBacklog(socket: RealtimeSocket): number {
  const buffer = (socket.conn as unknown as { writeBuffer?: unknown }).writeBuffer;
  return Array.isArray(buffer) ? buffer.length : 0;
}

function lineEvent(line: LogLine): LogLineEvent {
  return { operationId: line.operationId, seq: line.seq, stream: line.stream, text: line.text };
}

/** The host of an Origin header value, or undefined when it is not a URL ("null", junk). */
function originHost(origin: string): { host: string; defaultPortHost: string } | undefined {
  try {
    const url = new URL(origin);
    if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    return {
      host: url.host.toLowerCase(),
      defaultPortHost: `${url.hostname}:${port}`.toLowerCase(),
    };
  } catch {
    return undefined;
  }
}

/** Same-origin rule for WebSocket and polling handshakes (see the opening comment). */
export function originAllowed(
  origin: string | undefined,
  hostHeader: string | undefined,
  publicUrl: string,
): boolean {
  if (origin === undefined) return true; // not a browser: curl, socket.io-client in Node, other services
  const from = originHost(origin);
  if (!from) return false;
  const allowed = new Set<string>();
  if (hostHeader) allowed.add(hostHeader.toLowerCase());
  const publicHost = originHost(publicUrl);
  if (publicHost) {
    allowed.add(publicHost.host);
    allowed.add(publicHost.defaultPortHost);
  }
  return allowed.has(from.host) || allowed.has(from.defaultPortHost);
}

/** One socket following one operation's log. */
class LogFollow {
  /** Seq of the last line handed to the socket (or replayed past). */
  lastSent: number;
  /** Seq of the last line in the queue or sent: lines at or below it are never queued again. */
  private lastQueued: number;
  private queue: LogLine[] = [];
  private head = 0;
  private replaying = true;
  /** Live lines seen while replaying. */
  private live: LogLine[] = [];
  private liveDropped = false;
  private closed = false;
  private pumping = false;
  private wake: (() => void) | undefined;

  constructor(
    readonly socket: RealtimeSocket,
    readonly operationId: string,
    since: number,
    private readonly hub: Hub,
  ) {
    this.lastSent = since;
    this.lastQueued = since;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private get pending(): number {
    return this.queue.length - this.head;
  }

  /** Live lines of this operation, in seq order. Called from the bus listener: never blocks. */
  offer(lines: LogLine[]): void {
    if (this.closed) return;
    if (this.replaying) {
      for (const line of lines) this.live.push(line);
      if (this.live.length > this.hub.maxBufferedLines) {
        // Everything dropped here was stored before it was announced: the replay reads it.
        this.live = [];
        this.liveDropped = true;
      }
      return;
    }
    this.enqueue(lines, true);
  }

  /** Reads the store from `lastSent` on, then switches to live lines (see the seam invariant). */
  async replay(): Promise<void> {
    try {
      for (;;) {
        this.liveDropped = false;
        const page = await this.hub.store.getLogLines(
          this.operationId,
          this.lastQueued,
          this.hub.replayPage,
        );
        if (this.closed) return;
        this.enqueue(page, false);
        if (page.length < this.hub.replayPage && !this.liveDropped) break;
        await this.waitForEmptyQueue();
        if (this.closed) return;
      }
      const live = this.live;
      this.live = [];
      this.replaying = false;
      this.enqueue(live, true);
    } catch (error) {
      if (this.closed) return;
      this.hub.logger.warn(
        { err: error, operationId: this.operationId, socketId: this.socket.id },
        "log replay failed; asking the client to resubscribe",
      );
      this.stop();
    }
  }

  /** Hands queued lines to the socket while its engine buffer has room. */
  pump(): void {
    // An emit on an idle connection flushes at once and emits "drain" synchronously, which
    // calls pump again: the guard keeps one loop running (it goes on by itself).
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.closed && this.pending > 0 && engineBacklog(this.socket) < this.hub.sendWindow) {
        const line = this.queue[this.head];
        this.head += 1;
        if (line === undefined) break;
        this.lastSent = line.seq;
        this.socket.emit("operation.log", lineEvent(line));
      }
    } finally {
      this.pumping = false;
    }
    if (this.pending === 0) {
      this.queue = [];
      this.head = 0;
      this.wake?.();
    }
  }

  /** Stops streaming and tells the client where to resume. */
  stop(): void {
    if (this.closed) return;
    this.close();
    this.hub.resubscribesSent += 1;
    this.socket.emit("resubscribe", { operationId: this.operationId, since: this.lastSent });
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    this.head = 0;
    this.live = [];
    this.hub.removeFollow(this);
    this.wake?.();
  }

  private enqueue(lines: LogLine[], bounded: boolean): void {
    const fresh = lines.filter((l) => l.seq > this.lastQueued);
    if (fresh.length === 0) return;
    const waiting = this.pending + engineBacklog(this.socket);
    if (bounded && waiting + fresh.length > this.hub.maxBufferedLines) {
      this.stop();
      return;
    }
    for (const line of fresh) this.queue.push(line);
    const last = fresh[fresh.length - 1];
    if (last) this.lastQueued = last.seq;
    this.hub.noteWaiting(waiting + fresh.length);
    this.pump();
  }

  private waitForEmptyQueue(): Promise<void> {
    if (this.pending === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.wake = () => {
        this.wake = undefined;
        resolve();
      };
    });
  }
}

/** Follows by socket and by operation, and the numbers they share. */
class Hub {
  readonly byOperation = new Map<string, Set<LogFollow>>();
  readonly bySocket = new Map<string, Map<string, LogFollow>>();
  readonly replayPage: number;
  readonly sendWindow: number;
  maxWaitingLines = 0;
  resubscribesSent = 0;

  constructor(
    readonly store: Store,
    readonly logger: Logger,
    readonly maxBufferedLines: number,
  ) {
    this.sendWindow = Math.max(1, Math.min(SEND_WINDOW, Math.floor(maxBufferedLines / 4)));
    // A replayed page joins at most a window of packets (plus a few events) in the engine
    // buffer: both fit the limit.
    this.replayPage = Math.max(1, Math.min(REPLAY_PAGE, maxBufferedLines - 2 * this.sendWindow));
  }

  noteWaiting(n: number): void {
    if (n > this.maxWaitingLines) this.maxWaitingLines = n;
  }

  follow(socket: RealtimeSocket, operationId: string, since: number): void {
    this.bySocket.get(socket.id)?.get(operationId)?.close();
    const follow = new LogFollow(socket, operationId, since, this);
    let forSocket = this.bySocket.get(socket.id);
    if (!forSocket) {
      forSocket = new Map();
      this.bySocket.set(socket.id, forSocket);
    }
    forSocket.set(operationId, follow);
    let forOperation = this.byOperation.get(operationId);
    if (!forOperation) {
      forOperation = new Set();
      this.byOperation.set(operationId, forOperation);
    }
    forOperation.add(follow);
    // Registered above (so live lines are buffered) before replay reads the store.
    void follow.replay();
  }

  removeFollow(follow: LogFollow): void {
    const forSocket = this.bySocket.get(follow.socket.id);
    if (forSocket?.get(follow.operationId) === follow) {
      forSocket.delete(follow.operationId);
      if (forSocket.size === 0) this.bySocket.delete(follow.socket.id);
    }
    const forOperation = this.byOperation.get(follow.operationId);
    if (forOperation) {
      forOperation.delete(follow);
      if (forOperation.size === 0) this.byOperation.delete(follow.operationId);
    }
  }

  /** Lines already stored, in seq order per operation (from this replica's bus or another's). */
  deliver(lines: LogLine[]): void {
    if (this.byOperation.size === 0) return;
    const byOp = new Map<string, LogLine[]>();
    for (const line of lines) {
      if (!this.byOperation.has(line.operationId)) continue;
      const list = byOp.get(line.operationId);
      if (list) list.push(line);
      else byOp.set(line.operationId, [line]);
    }
    for (const [operationId, opLines] of byOp) {
      for (const follow of [...(this.byOperation.get(operationId) ?? [])]) follow.offer(opLines);
    }
  }

  pumpSocket(socketId: string): void {
    for (const follow of [...(this.bySocket.get(socketId)?.values() ?? [])]) follow.pump();
  }

  closeSocket(socketId: string): void {
    for (const follow of [...(this.bySocket.get(socketId)?.values() ?? [])]) follow.close();
  }

  closeAll(): void {
    for (const socketId of [...this.bySocket.keys()]) this.closeSocket(socketId);
  }

  get followCount(): number {
    let n = 0;
    for (const forSocket of this.bySocket.values()) n += forSocket.size;
    return n;
  }
}

function chunkForRemote(lines: LogLine[]): LogLine[][] {
  const chunks: LogLine[][] = [];
  let current: LogLine[] = [];
  let chars = 0;
  for (const line of lines) {
    const size = line.text.length + 100;
    if (current.length > 0 && chars + size > REMOTE_CHUNK_CHARS) {
      chunks.push(current);
      current = [];
      chars = 0;
    }
    current.push(line);
    chars += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function operationRooms(op: OperationRecord): string[] {
  return [`op:${op.id}`, `version:${op.versionId}`, `project:${op.projectId}`, "all"];
}

function versionRooms(v: VersionRecord): string[] {
  return [`version:${v.id}`, `project:${v.projectId}`, "all"];
}

function roomsOf(request: Subscription): string[] {
  if ("operationId" in request) return [`op:${request.operationId}`];
  if ("versionId" in request) return [`version:${request.versionId}`];
  if ("projectId" in request) return [`project:${request.projectId}`];
  return ["all"];
}

type Ack = (answer: SubscribeAck) => void;

function ackOf(value: unknown): Ack {
  return typeof value === "function" ? (answer) => void (value as Ack)(answer) : () => undefined;
}

/** Attaches Socket.io (path /socket.io) to the HTTP server and fans the bus out to it. */
export function attachSocketServer(
  httpServer: HttpServer,
  deps: SocketServerDeps,
): AttachedSocketServer {
  const logger = deps.logger.child({ module: "realtime" });
  const hub = new Hub(
    deps.store,
    logger,
    Math.max(1, deps.maxBufferedLines ?? DEFAULT_MAX_BUFFERED_LINES),
  );
  let closing = false;

  const io: RealtimeServer = new Server(httpServer, {
    path: "/socket.io",
    serveClient: true,
    allowRequest: (req: IncomingMessage, callback) => {
      if (closing) return callback("shutting down", false);
      const allowed = originAllowed(req.headers.origin, req.headers.host, deps.publicUrl);
      if (!allowed)
        logger.warn(
          { origin: req.headers.origin },
          "socket.io handshake from a foreign origin refused",
        );
      callback(allowed ? null : "origin not allowed", allowed);
    },
  });

  // Redis: connect both clients, then swap in the adapter before any socket can join a room.
  let redisClients: Array<{ readonly isOpen: boolean; close(): Promise<void>; destroy(): void }> =
    [];
  let ready: Promise<void> = Promise.resolve();
  if (deps.redisUrl !== undefined) {
    const pub = createClient({ url: deps.redisUrl });
    const sub = pub.duplicate();
    redisClients = [pub, sub];
    // Without an "error" listener a lost Redis connection would crash the process; node-redis
    // reconnects on its own and queues commands meanwhile.
    pub.on("error", (error: unknown) => logger.error({ err: error }, "redis client error"));
    sub.on("error", (error: unknown) => logger.error({ err: error }, "redis subscriber error"));
    ready = (async () => {
      await withTimeout(
        Promise.all([pub.connect(), sub.connect()]),
        REDIS_CONNECT_TIMEOUT_MS,
        "redis",
      );
      io.adapter(createAdapter(pub, sub));
      // Commands on one connection run in order: once this subscribe is answered, the adapter's
      // own subscriptions (sent before it) are active, so no broadcast published after
      // `ready` is missed.
      const barrier = `dockbot:ready:${randomUUID()}`;
      await sub.subscribe(barrier, () => undefined);
      await sub.unsubscribe(barrier);
      logger.info("socket.io uses the redis adapter");
    })();
    ready.catch((error: unknown) =>
      logger.error({ err: error }, "socket.io redis adapter unavailable"),
    );
  }

  io.use((socket, next) => {
    if (closing) {
      next(new Error("unavailable"));
      return;
    }
    const auth: unknown = socket.handshake.auth;
    const token =
      typeof auth === "object" &&
      auth !== null &&
      typeof (auth as { token?: unknown }).token === "string"
        ? (auth as { token: string }).token
        : undefined;
    if (!deps.token.verify(token)) {
      next(new Error("unauthorized"));
      return;
    }
    ready.then(
      () => next(),
      () => next(new Error("unavailable")),
    );
  });

  io.on("connection", (socket) => {
    const onDrain = () => hub.pumpSocket(socket.id);
    socket.conn.on("drain", onDrain);
    socket.on("disconnect", () => {
      socket.conn.off("drain", onDrain);
      hub.closeSocket(socket.id);
    });

    socket.on("subscribe", (payload: unknown, ackArg?: unknown) => {
      const ack = ackOf(ackArg);
      const parsed = SubscribeSchema.safeParse(payload ?? {});
      if (!parsed.success) {
        ack({
          ok: false,
          error: {
            code: "invalid_request",
            message: "subscribe takes {operationId, since?}, {versionId}, {projectId} or {}",
          },
        });
        return;
      }
      const request = parsed.data;
      void (async () => {
        try {
          const exists =
            "operationId" in request
              ? (await deps.store.getOperation(request.operationId)) !== undefined
              : "versionId" in request
                ? (await deps.store.getVersion(request.versionId)) !== undefined
                : "projectId" in request
                  ? (await deps.store.getProject(request.projectId)) !== undefined
                  : true;
          if (!exists) {
            ack({
              ok: false,
              error: { code: "not_found", message: "no such operation, version or project" },
            });
            return;
          }
          if (!socket.connected) return;
          await socket.join(roomsOf(request));
          if ("operationId" in request) hub.follow(socket, request.operationId, request.since ?? 0);
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
      const parsed = SubscribeSchema.safeParse(payload ?? {});
      if (!parsed.success) {
        ack({
          ok: false,
          error: { code: "invalid_request", message: "unsubscribe takes what subscribe took" },
        });
        return;
      }
      const request = parsed.data;
      for (const room of roomsOf(request)) void socket.leave(room);
      if ("operationId" in request) hub.bySocket.get(socket.id)?.get(request.operationId)?.close();
      ack({ ok: true });
    });
  });

  // Bus -> sockets. Every listener is synchronous: Socket.io's emit only queues, and log lines
  // are bounded per follow (see LogFollow), so the runner is never slowed by a client.
  const onQueued = (op: OperationRecord) =>
    io.to(operationRooms(op)).emit("operation.queued", operationJson(op));
  const onStarted = (op: OperationRecord) =>
    io.to(operationRooms(op)).emit("operation.started", operationJson(op));
  const onFinished = (op: OperationRecord) =>
    io.to(operationRooms(op)).emit("operation.finished", operationJson(op));
  const onVersionUpdated = (v: VersionRecord) =>
    io.to(versionRooms(v)).emit("version.updated", versionJson(v));
  const onVersionDeleted = (v: VersionRecord) =>
    io.to(versionRooms(v)).emit("version.deleted", versionJson(v));
  const onLog = (lines: LogLine[]) => {
    try {
      hub.deliver(lines);
      if (deps.redisUrl !== undefined) {
        for (const chunk of chunkForRemote(lines)) io.serverSideEmit("operation.log", chunk);
      }
    } catch (error) {
      // The bus is the runner's hot path: a listener must not throw into it.
      logger.error({ err: error }, "delivering log lines failed");
    }
  };
  // Lines from the other replicas' buses (never our own: the adapter skips its own messages).
  io.on("operation.log", (lines) => hub.deliver(lines));

  deps.bus.on("operation.queued", onQueued);
  deps.bus.on("operation.started", onStarted);
  deps.bus.on("operation.finished", onFinished);
  deps.bus.on("version.updated", onVersionUpdated);
  deps.bus.on("version.deleted", onVersionDeleted);
  deps.bus.on("operation.log", onLog);

  return {
    io,
    ready,
    stats: () => ({
      follows: hub.followCount,
      maxWaitingLines: hub.maxWaitingLines,
      resubscribesSent: hub.resubscribesSent,
    }),
    async close() {
      if (closing) return;
      closing = true;
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
      const redisReady = await ready.then(
        () => true,
        () => false,
      );
      await io.of("/").adapter.close();
      await Promise.all(
        redisClients.map(async (client) => {
          // A client that never connected may still be retrying: stop it outright.
          if (redisReady && client.isOpen) await client.close();
          else if (client.isOpen) client.destroy();
        }),
      );
    },
  };
}
