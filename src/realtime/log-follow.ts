// One socket following one operation's log: replay from the store, then live lines, handed to
// Socket.io at the client's pace (docs/api.md, "Socket.io").
//
// Invariants:
// - No repeat: a follow remembers the last seq it queued and handed to the socket and takes only
//   lines after it. This is what makes "no repeat" a local, checkable property instead of a
//   client's duty.
// - Replay seam, no gap: a follow starts listening (buffering live lines) BEFORE it reads the
//   store. OperationLog stores a line before it announces it (docs/architecture.md, invariant
//   3), so any line announced before the follow existed is in the store read, and any line
//   announced after is in the buffer. Lines are deduplicated by seq when the buffer is spliced
//   on. If the buffer outgrows `maxBufferedLines` during replay it is dropped and the store is
//   read again (everything dropped was stored before it was dropped); the replay ends only on a
//   short page read with no drop since that read began.
// - Slow clients: `offer` (the bus listener's path) never awaits and never writes unboundedly. A
//   follow hands lines to Socket.io only while the connection's engine write buffer is below a
//   small window, and continues on the engine's "drain". If the lines waiting for one socket
//   (follow queue plus engine buffer) would exceed `maxBufferedLines`, the follow stops, drops
//   its queue and emits `resubscribe {operationId, since: lastSentSeq}` after every line it did
//   send; the client resubscribes with `since` and catches up from the store at its own pace.
//   Memory per socket is bounded by `maxBufferedLines` per followed operation.
// - Batch mode (`operation.logs`): the same seam, dedupe and resubscribe; the hub sends the queue
//   in send rounds (log-hub.ts). A batch follow judges its client when lines arrived, by the lines
//   that were ALREADY waiting when they came: more than `maxBufferedLines` of those (queue plus
//   engine) and it stops with `resubscribe`. The runner announces a whole pipe read at once (a
//   chain of 1000-line batches in one microtask run; 64 KB of short build lines is 10,000 to
//   30,000 lines) that the engine cannot write out in between: counted with the arrivals, idle
//   fast clients would be told to resubscribe, and replaying from the store costs far more than
//   the live lines it replaces, for every such client at once. So a batch follow holds at most
//   `maxBufferedLines` plus one read's lines: references to line objects the bus batches hold
//   anyway, never encoded copies. Replay pages are larger (up to half the limit) for the same
//   reason.
// - A follow opened by a version or project subscription (`endsWithOperation`) closes itself
//   once its operation finished and every line was handed over: the runner announces the last
//   line before `operation.finished`, so nothing can come after. One opened by an operation
//   subscription stays until unsubscribe or disconnect.
import type { Logger } from "pino";
import type { Store } from "../store/store.js";
import type { LogLine } from "../store/types.js";
import { lineEvent, type RealtimeSocket } from "./protocol.js";

/** Most text (UTF-16 units, plus a small per-line allowance) in one `operation.logs` packet. */
export const BATCH_MAX_CHARS = 256 * 1024;

/** What a follow shares with the other follows (log-hub.ts). */
export interface FollowHost {
  readonly store: Pick<Store, "getLogLines">;
  readonly logger: Logger;
  readonly maxBufferedLines: number;
  readonly replayPage: number;
  readonly batchReplayPage: number;
  readonly sendWindow: number;
  readonly batchLines: number;
  readonly batchWindow: number;
  /** Queues a batch follow for the next send round. */
  schedule(follow: LogFollow): void;
  noteWaiting(lines: number): void;
  noteResubscribe(): void;
  removeFollow(follow: LogFollow): void;
}

/**
 * Packets queued in the engine.io connection and not yet handed to the transport. engine.io
 * keeps this array private in its types but it is the one honest measure of a slow client:
 * it grows while the transport is still busy writing earlier packets.
 */
export function engineBacklog(socket: RealtimeSocket): number {
  const buffer = (socket.conn as unknown as { writeBuffer?: unknown }).writeBuffer;
  return Array.isArray(buffer) ? buffer.length : 0;
}

export interface LogFollowOptions {
  /** Hands lines over as `operation.logs` batches instead of one `operation.log` each. */
  batch: boolean;
  /** Closes once the operation finished and its lines were handed over. */
  endsWithOperation: boolean;
}

export class LogFollow {
  /** Seq of the last line handed to the socket (or replayed past). */
  lastSent: number;
  readonly batch: boolean;
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
  /** The operation finished: close once everything was handed over. */
  private ending = false;
  private endsWithIt: boolean;
  private wake: (() => void) | undefined;
  /** Batch mode: lines queued since the client was last judged (keepsUp). */
  private arrived = 0;

  constructor(
    readonly socket: RealtimeSocket,
    readonly operationId: string,
    since: number,
    private readonly host: FollowHost,
    options: LogFollowOptions,
  ) {
    this.lastSent = since;
    this.lastQueued = since;
    this.batch = options.batch;
    this.endsWithIt = options.endsWithOperation;
  }

  get endsWithOperation(): boolean {
    return this.endsWithIt;
  }

  /** An operation subscription takes this follow over: it stays after the operation ends. */
  outliveOperation(): void {
    this.endsWithIt = false;
    this.ending = false;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private get pending(): number {
    return this.queue.length - this.head;
  }

  private get replayPage(): number {
    return this.batch ? this.host.batchReplayPage : this.host.replayPage;
  }

  /** Lines in the engine buffer, at most: a batch packet may be a whole batch. */
  private engineLines(): number {
    const packets = engineBacklog(this.socket);
    return this.batch ? packets * this.host.batchLines : packets;
  }

  /** Live lines of this operation, in seq order. Called from the bus listener: never blocks. */
  offer(lines: LogLine[]): void {
    if (this.closed) return;
    if (this.replaying) {
      for (const line of lines) this.live.push(line);
      if (this.live.length > this.host.maxBufferedLines) {
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
        const page = await this.host.store.getLogLines(
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
      this.endIfDone();
    } catch (error) {
      if (this.closed) return;
      this.host.logger.warn(
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
      if (!this.closed && this.pending > 0) this.host.schedule(this);
      return;
    }
    // An emit on an idle connection flushes at once and emits "drain" synchronously, which
    // calls pump again: the guard keeps one loop running (it goes on by itself).
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (
        !this.closed &&
        this.pending > 0 &&
        engineBacklog(this.socket) < this.host.sendWindow
      ) {
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
      this.endIfDone();
    }
  }

  /**
   * Batch mode, at each send round: false when the client fell behind (it was told to
   * resubscribe) or the follow is closed. See the opening comment, "Batch mode".
   */
  keepsUp(): boolean {
    if (this.closed) return false;
    if (this.arrived === 0) return true; // a drain: nothing new to judge
    const waiting = this.pending + this.engineLines();
    const before = waiting - this.arrived;
    this.arrived = 0;
    if (before > this.host.maxBufferedLines) {
      this.stop();
      return false;
    }
    this.host.noteWaiting(waiting);
    return true;
  }

  /** Batch mode: the next line to hand over, when there is one and the connection has room. */
  nextLine(): LogLine | undefined {
    if (this.closed || engineBacklog(this.socket) >= this.host.batchWindow) return undefined;
    return this.queue[this.head];
  }

  /** Batch mode: the lines of the next batch, not taken yet. */
  peekBatch(): LogLine[] {
    const lines: LogLine[] = [];
    let chars = 0;
    for (let i = this.head; i < this.queue.length && lines.length < this.host.batchLines; i++) {
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
      this.endIfDone();
    }
  }

  /** The operation finished: a follow that ends with it closes once it handed everything over. */
  operationFinished(): void {
    if (!this.endsWithIt || this.closed) return;
    this.ending = true;
    this.endIfDone();
  }

  /** Stops streaming and tells the client where to resume. */
  stop(): void {
    if (this.closed) return;
    this.close();
    this.host.noteResubscribe();
    this.socket.emit("resubscribe", { operationId: this.operationId, since: this.lastSent });
  }

  close(): void {
    this.closed = true;
    this.queue = [];
    this.head = 0;
    this.live = [];
    this.host.removeFollow(this);
    this.wake?.();
  }

  private endIfDone(): void {
    if (this.ending && !this.closed && !this.replaying && this.pending === 0) this.close();
  }

  private enqueue(lines: LogLine[], bounded: boolean): void {
    const fresh = lines.filter((l) => l.seq > this.lastQueued);
    if (fresh.length === 0) return;
    if (this.batch) {
      // Judged at the send round (see the opening comment, "Batch mode").
      for (const line of fresh) this.queue.push(line);
      const last = fresh[fresh.length - 1];
      if (last) this.lastQueued = last.seq;
      this.arrived += fresh.length;
      this.host.schedule(this);
      return;
    }
    const waiting = this.pending + this.engineLines();
    if (bounded && waiting + fresh.length > this.host.maxBufferedLines) {
      this.stop();
      return;
    }
    for (const line of fresh) this.queue.push(line);
    const last = fresh[fresh.length - 1];
    if (last) this.lastQueued = last.seq;
    this.host.noteWaiting(waiting + fresh.length);
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
