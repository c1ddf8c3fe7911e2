// Every log follow of this replica, by socket and by operation: live lines go in here (from this
// replica's bus or another's), and batch follows are sent out together in send rounds.
//
// Batched delivery (`batch: true` -> `operation.logs` `{operationId, lines}`, packets of
// consecutive seqs, at most `batchLines` lines and BATCH_MAX_CHARS of text each): one emit per
// line costs an encode, a frame and a decode for every line and every client; at 10 clients and
// 100k lines/s that is a million packets a second, more than the server or a browser can do. A
// batch follow keeps at most BATCH_WINDOW packets in the engine buffer and counts each as a full
// batch. Batches go out in send rounds (process.nextTick), after the microtasks that announced
// lines or after engine "drain"s, for all batch follows together: follows whose next lines are
// the same line objects get one packet, encoded once (a local room broadcast), so ten clients
// cost about one encode, not ten.
import type { Logger } from "pino";
import type { Store } from "../store/store.js";
import type { LogLine } from "../store/types.js";
import { LogFollow, type FollowHost } from "./log-follow.js";
import { batchLine, type LogBatchEvent, type RealtimeSocket } from "./protocol.js";

export const DEFAULT_MAX_BUFFERED_LINES = 10_000;
/** Store page size for replay (also capped by maxBufferedLines). */
const REPLAY_PAGE = 500;
/** Engine packets allowed in flight per socket before a follow waits for "drain". */
const SEND_WINDOW = 256;
/** Most lines in one `operation.logs` packet (fewer when maxBufferedLines is small). */
const BATCH_MAX_LINES = 1000;
/** `operation.logs` packets allowed in the engine buffer per socket before a follow waits. */
const BATCH_WINDOW = 4;

export interface FollowRequest {
  since: number;
  batch: boolean;
  /** See LogFollow: a version or project subscription's follow ends with its operation. */
  endsWithOperation: boolean;
}

export class LogHub implements FollowHost {
  private readonly byOperation = new Map<string, Set<LogFollow>>();
  private readonly bySocket = new Map<string, Map<string, LogFollow>>();
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
    readonly store: Pick<Store, "getLogLines">,
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

  noteResubscribe(): void {
    this.resubscribesSent += 1;
  }

  /** The socket's follow of this operation, if it has one open. */
  followOf(socketId: string, operationId: string): LogFollow | undefined {
    return this.bySocket.get(socketId)?.get(operationId);
  }

  /**
   * An operation subscription. A socket follows an operation once: a new follow (per-line or
   * batch) replaces the old, except one that a version or project subscription opened in the
   * same mode and that has handed over the lines up to `since` already: it is taken over as it
   * is. Replacing it would send again what it sent (the client subscribed to the version, then
   * to the operation it saw starting there).
   */
  followOperation(
    socket: RealtimeSocket,
    operationId: string,
    since: number,
    batch: boolean,
  ): LogFollow {
    const existing = this.followOf(socket.id, operationId);
    if (
      existing?.endsWithOperation === true &&
      existing.batch === batch &&
      since <= existing.lastSent
    ) {
      existing.outliveOperation();
      return existing;
    }
    return this.follow(socket, operationId, { since, batch, endsWithOperation: false });
  }

  /** A socket follows an operation once: a new follow (per-line or batch) replaces the old. */
  follow(socket: RealtimeSocket, operationId: string, request: FollowRequest): LogFollow {
    this.followOf(socket.id, operationId)?.close();
    const follow = new LogFollow(socket, operationId, request.since, this, request);
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
    return follow;
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

  /** The operation finished: its last line was announced before this. */
  operationFinished(operationId: string): void {
    for (const follow of [...(this.byOperation.get(operationId) ?? [])]) follow.operationFinished();
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
