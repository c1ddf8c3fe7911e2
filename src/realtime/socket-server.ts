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
// - Batched delivery (opt-in, `subscribe {operationId, since, batch: true}`): the same follow, the
//   same seam, dedupe and resubscribe, but the queue is handed over as `operation.logs`
//   `{operationId, lines}` packets of consecutive seqs (at most `batchLines` lines and
//   BATCH_MAX_CHARS of text each) instead of one `operation.log` packet per line. One emit per
//   line costs an encode, a frame and a decode for every line and every client: at 10 clients and
//   100k lines/s that is a million packets a second, more than the server or a browser can do. A
//   batch follow keeps at most BATCH_WINDOW packets in the engine buffer and counts each as a
//   full batch. Batches go out in send rounds (process.nextTick), after the microtasks that
//   announced lines or after engine "drain"s, for all batch follows together: follows whose next
//   lines are the same line objects get one packet, encoded once (a local room broadcast), so
//   ten clients cost about one encode, not ten.
//   A batch follow judges its client when lines arrived, by the lines that were ALREADY waiting
//   when they came: more than `maxBufferedLines` of those (queue plus engine) and it stops with
//   `resubscribe`. The runner announces a whole pipe read at once (a chain of 1000-line batches in
//   one microtask run; 64 KB of short build lines is 10,000 to 30,000 lines) that the engine
//   cannot write out in between: counted with the arrivals, idle fast clients would be told to
//   resubscribe, and replaying from the store costs far more than the live lines it replaces,
//   for every such client at once. So a batch follow holds at most `maxBufferedLines` plus one
//   read's lines: references to line objects the bus batches hold anyway, never encoded copies.
//   Replay pages are larger (up to half the limit) for the same reason.
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

/** One line inside an `operation.logs` batch (its operation is named once, on the batch). */
export interface LogBatchLine {
  seq: number;
  stream: LogStream;
  text: string;
}

/** Consecutive lines of one operation, in seq order, for subscribers that asked for `batch`. */
export interface LogBatchEvent {
  operationId: string;
  lines: LogBatchLine[];
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
  /** Instead of `operation.log`, to a socket that subscribed with `batch: true`. */
  "operation.logs": (batch: LogBatchEvent) => void;
  "version.updated": (version: VersionJson) => void;
  "version.deleted": (version: VersionJson) => void;
  resubscribe: (request: ResubscribeEvent) => void;
}

export type SubscribeRequest =
  | { operationId: string; since?: number; batch?: boolean }
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
/** Most lines in one `operation.logs` packet (fewer when maxBufferedLines is small). */
const BATCH_MAX_LINES = 1000;
/** Most text (UTF-16 units, plus a small per-line allowance) in one `operation.logs` packet. */
const BATCH_MAX_CHARS = 256 * 1024;
/** `operation.logs` packets allowed in the engine buffer per socket before a follow waits. */
const BATCH_WINDOW = 4;
/** Remote batches are split so one Redis message stays well under its pub/sub buffer limits. */
const REMOTE_CHUNK_CHARS = 512 * 1024;
const REDIS_CONNECT_TIMEOUT_MS = 10_000;

const Id = z.string().min(1).max(200);
const SubscribeSchema = z.union([
  z.strictObject({
    operationId: Id,
    since: z.number().int().min(0).optional(),
    batch: z.boolean().optional(),
  }),
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

function batchLine(line: LogLine): LogBatchLine {
  return { seq: line.seq, stream: line.stream, text: line.text };
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
  /** Batch mode: lines queued since the client was last judged (keepsUp). */
  private arrived = 0;

  constructor(
    readonly socket: RealtimeSocket,
    readonly operationId: string,
    since: number,
    private readonly hub: Hub,
    /** Hands lines over as `operation.logs` batches instead of one `operation.log` each. */
    private readonly batch: boolean,
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

  private get replayPage(): number {
    return this.batch ? this.hub.batchReplayPage : this.hub.replayPage;
  }

  /** Lines in the engine buffer, at most: a batch packet may be a whole batch. */
  private engineLines(): number {
    const packets = engineBacklog(this.socket);
    return this.batch ? packets * this.hub.batchLines : packets;
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
          this.replayPage,
        );
        if (this.closed) return;
        this.enqueue(page, false);
        if (page.length < this.replayPage && !this.liveDropped) break;
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
    if (this.batch) {
      // Batches go out at the end of the turn, together with the other batch follows.
      if (!this.closed && this.pending > 0) this.hub.schedule(this);
      return;
    }
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

  /**
   * Batch mode, at each send round: false when the client fell behind (it was told to
   * resubscribe) or the follow is closed. See the opening comment, "Batched delivery".
   */
  keepsUp(): boolean {
    if (this.closed) return false;
    if (this.arrived === 0) return true; // a drain: nothing new to judge
    const waiting = this.pending + this.engineLines();
    const before = waiting - this.arrived;
    this.arrived = 0;
    if (before > this.hub.maxBufferedLines) {
      this.stop();
      return false;
    }
    this.hub.noteWaiting(waiting);
    return true;
  }

  /** Batch mode: the next line to hand over, when there is one and the connection has room. */
  nextLine(): LogLine | undefined {
    if (this.closed || engineBacklog(this.socket) >= this.hub.batchWindow) return undefined;
    return this.queue[this.head];
  }

  /** Batch mode: the lines of the next batch, not taken yet. */
  peekBatch(): LogLine[] {
    const lines: LogLine[] = [];
    let chars = 0;
    for (let i = this.head; i < this.queue.length && lines.length < this.hub.batchLines; i++) {
      const line = this.queue[i];
      if (line === undefined) break;
      const size = line.text.length + 32;
      if (lines.length > 0 && chars + size > BATCH_MAX_CHARS) break;
      lines.push(line);
      chars += size;
    }
    return lines;
  }

  /** Batch mode: how many of `lines`, from the first, are next in this queue (same objects). */
  sharedPrefix(lines: readonly LogLine[], max: number): number {
    let n = 0;
    while (n < max && this.queue[this.head + n] === lines[n]) n += 1;
    return n;
  }

  /** Batch mode: the next `count` lines were handed to the socket. */
  took(count: number): void {
    const last = this.queue[this.head + count - 1];
    this.head += count;
    if (last) this.lastSent = last.seq;
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
    if (this.batch) {
      // Judged at the send round (see the opening comment, "Batched delivery").
      for (const line of fresh) this.queue.push(line);
      const last = fresh[fresh.length - 1];
      if (last) this.lastQueued = last.seq;
      this.arrived += fresh.length;
      this.hub.schedule(this);
      return;
    }
    const waiting = this.pending + this.engineLines();
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
  readonly batchLines: number;
  readonly batchReplayPage: number;
  readonly batchWindow = BATCH_WINDOW;
  maxWaitingLines = 0;
  resubscribesSent = 0;
  /** Batch follows with lines to hand over at the next send round. */
  private readonly due = new Set<LogFollow>();
  private roundQueued = false;

  constructor(
    readonly store: Store,
    readonly logger: Logger,
    readonly maxBufferedLines: number,
    /** Sends one batch to these sockets, encoded once. */
    private readonly sendBatch: (socketIds: string[], batch: LogBatchEvent) => void,
  ) {
    this.sendWindow = Math.max(1, Math.min(SEND_WINDOW, Math.floor(maxBufferedLines / 4)));
    // A replayed page joins at most a window of packets (plus a few events) in the engine
    // buffer: both fit the limit.
    this.replayPage = Math.max(1, Math.min(REPLAY_PAGE, maxBufferedLines - 2 * this.sendWindow));
    // A full engine window of batches holds at most half the limit, leaving the other half for
    // the follow's queue (and a replayed page).
    this.batchLines = Math.max(
      1,
      Math.min(BATCH_MAX_LINES, Math.floor(maxBufferedLines / (2 * BATCH_WINDOW))),
    );
    this.batchReplayPage = Math.max(
      1,
      Math.min(BATCH_WINDOW * this.batchLines, Math.floor(maxBufferedLines / 2)),
    );
  }

  /**
   * A send round after the current tick: the bus batches announced in one microtask run, or the
   * drains of several sockets written together, are all in it (so their follows stay in step).
   */
  schedule(follow: LogFollow): void {
    this.due.add(follow);
    if (this.roundQueued) return;
    this.roundQueued = true;
    process.nextTick(() => {
      this.roundQueued = false;
      this.sendBatches();
    });
  }

  /**
   * Hands the queued lines of batch follows over. Follows whose next lines are the same line
   * objects (live followers of one operation, in step) form a group that gets one packet, encoded
   * once: per-socket encoding of the same batch was most of the cost with many clients. Each pass
   * sends every group one batch, until no follow has lines and room in its window.
   */
  private sendBatches(): void {
    const due = [...this.due];
    this.due.clear();
    const follows = due.filter((f) => f.keepsUp());
    for (;;) {
      const groups = new Map<LogLine, LogFollow[]>();
      for (const follow of follows) {
        const next = follow.nextLine();
        if (next === undefined) continue;
        const group = groups.get(next);
        if (group) group.push(follow);
        else groups.set(next, [follow]);
      }
      if (groups.size === 0) return;
      for (const members of groups.values()) {
        const lines = members[0]?.peekBatch() ?? [];
        // At least the first line is shared: it is the group's key.
        const count = members.reduce((n, m) => m.sharedPrefix(lines, n), lines.length);
        for (const member of members) member.took(count);
        this.sendBatch(
          members.map((m) => m.socket.id),
          {
            operationId: members[0]?.operationId ?? "",
            lines: lines.slice(0, count).map(batchLine),
          },
        );
      }
    }
  }

  noteWaiting(n: number): void {
    if (n > this.maxWaitingLines) this.maxWaitingLines = n;
  }

  /** A socket follows an operation once: a new subscribe (per-line or batch) replaces the old. */
  follow(socket: RealtimeSocket, operationId: string, since: number, batch: boolean): void {
    this.bySocket.get(socket.id)?.get(operationId)?.close();
    const follow = new LogFollow(socket, operationId, since, this, batch);
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
    this.due.clear();
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

  const hub = new Hub(
    deps.store,
    logger,
    Math.max(1, deps.maxBufferedLines ?? DEFAULT_MAX_BUFFERED_LINES),
    // `local`: only this replica's sockets (each is in the room of its own id); the adapter
    // encodes the packet once for all of them.
    (socketIds, batch) => io.local.to(socketIds).emit("operation.logs", batch),
  );

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
            message:
              "subscribe takes {operationId, since?, batch?}, {versionId}, {projectId} or {}",
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
          if ("operationId" in request)
            hub.follow(socket, request.operationId, request.since ?? 0, request.batch ?? false);
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
  // Without Redis every listener is on this replica: an event for rooms no socket joined is
  // dropped before it is serialized (in a webhook burst, most are).
  const unheard = (rooms: string[]) =>
    deps.redisUrl === undefined && rooms.every((room) => !io.sockets.adapter.rooms.has(room));
  const onOperation =
    (event: "operation.queued" | "operation.started" | "operation.finished") =>
    (op: OperationRecord) => {
      const rooms = operationRooms(op);
      if (!unheard(rooms)) io.to(rooms).emit(event, operationJson(op));
    };
  const onVersion = (event: "version.updated" | "version.deleted") => (v: VersionRecord) => {
    const rooms = versionRooms(v);
    if (!unheard(rooms)) io.to(rooms).emit(event, versionJson(v));
  };
  const onQueued = onOperation("operation.queued");
  const onStarted = onOperation("operation.started");
  const onFinished = onOperation("operation.finished");
  const onVersionUpdated = onVersion("version.updated");
  const onVersionDeleted = onVersion("version.deleted");
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
