// The log of one running operation.
// Invariants:
// - every line gets the next `seq` (1, 2, 3, ...) in the order it was written;
// - secrets are masked before a line is stored or announced;
// - a line is announced on the bus only after it is stored (invariant 3), in seq order, so a
//   subscriber that replays stored lines and then follows the bus never misses or repeats one;
// - a log past `maxBytes` keeps its head and its tail: lines in the middle are deleted as the tail
//   moves on, and a system line in the gap says what was cut.
import type { EventBus } from "./events.js";
import type { Store } from "../store/store.js";
import type { LogLine, LogStream } from "../store/types.js";

export interface OperationLogOptions {
  operationId: string;
  store: Store;
  bus: EventBus;
  /** Values replaced by `***` wherever they appear. */
  secrets: readonly string[];
  maxBytes: number;
  /** Called when a batch cannot be stored; the log keeps the lines and tries again. */
  onStoreError: (error: unknown) => void;
  /** Seq of the last line already stored (when a log is resumed). */
  startSeq?: number;
  flushIntervalMs?: number;
  maxBatch?: number;
}

const MASK = "***";
/** Secrets shorter than this are not masked: masking "1" or "on" would shred every line. */
const MIN_SECRET_LENGTH = 4;
const MAX_LINE_CHARS = 16 * 1024;
const STORE_RETRY_MS = 5 * 60_000;

export function buildMasker(secrets: readonly string[]): (text: string) => string {
  const usable = [...new Set(secrets.filter((s) => s.length >= MIN_SECRET_LENGTH))].sort(
    (a, b) => b.length - a.length,
  );
  if (usable.length === 0) return (text) => text;
  const pattern = new RegExp(
    usable.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"),
    "g",
  );
  return (text) => text.replace(pattern, MASK);
}

export class OperationLog {
  private seq: number;
  private pending: LogLine[] = [];
  private flushing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private readonly mask: (text: string) => string;
  private readonly headBudget: number;
  private readonly tailBudget: number;
  private headBytes = 0;
  /** Last seq of the head; 0 while the head is still filling. */
  private headEndSeq = 0;
  /** Sizes of the tail lines still stored, oldest first (seq = tailFirstSeq + index). */
  private tailSizes: number[] = [];
  private tailFirstSeq = 0;
  private tailBytes = 0;
  /** Highest seq deleted from the middle so far (0: nothing cut). */
  private cutToSeq = 0;
  private closed = false;
  private lastTimeMs = 0;
  private lastTime = "";

  constructor(private readonly options: OperationLogOptions) {
    this.seq = options.startSeq ?? 0;
    this.mask = buildMasker(options.secrets);
    this.headBudget = Math.floor(options.maxBytes / 2);
    this.tailBudget = options.maxBytes - this.headBudget;
  }

  get lastSeq(): number {
    return this.seq;
  }

  write(stream: LogStream, text: string): void {
    if (this.closed) return;
    let clean = this.mask(text.endsWith("\r") ? text.slice(0, -1) : text);
    if (clean.length > MAX_LINE_CHARS) clean = `${clean.slice(0, MAX_LINE_CHARS)} [line cut]`;
    const line: LogLine = {
      operationId: this.options.operationId,
      seq: ++this.seq,
      stream,
      text: clean,
      time: this.now(),
    };
    this.track(line);
    this.pending.push(line);
    if (this.pending.length >= (this.options.maxBatch ?? 1000)) {
      void this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.options.flushIntervalMs ?? 50);
    }
  }

  /** The time of a line, formatted once per millisecond: bursts share one string. */
  private now(): string {
    const ms = Date.now();
    if (ms !== this.lastTimeMs) {
      this.lastTimeMs = ms;
      this.lastTime = new Date(ms).toISOString();
    }
    return this.lastTime;
  }

  system(text: string): void {
    this.write("system", text);
  }

  /** Stores and announces every line written so far. Never rejects. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.flushing = this.flushing.then(() => this.flushPending());
    return this.flushing;
  }

  /** Flushes, writes the cut marker if the middle was cut, and stops taking lines. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    if (this.cutToSeq > 0) {
      const marker: LogLine = {
        operationId: this.options.operationId,
        seq: this.headEndSeq + 1,
        stream: "system",
        text: `[dockbot] log larger than ${this.options.maxBytes} bytes: lines ${this.headEndSeq + 1} to ${this.cutToSeq} were cut, the head and the tail are kept`,
        time: new Date().toISOString(),
      };
      await this.storeWithRetry(async () => {
        await this.options.store.deleteLogLines(this.options.operationId, marker.seq, marker.seq);
        await this.options.store.appendLogLines([marker]);
      });
    }
  }

  private track(line: LogLine): void {
    const size = Buffer.byteLength(line.text) + 1;
    if (this.headEndSeq === 0) {
      if (this.headBytes + size <= this.headBudget) {
        this.headBytes += size;
        return;
      }
      this.headEndSeq = line.seq - 1;
      this.tailFirstSeq = line.seq;
    }
    this.tailSizes.push(size);
    this.tailBytes += size;
    while (this.tailBytes > this.tailBudget && this.tailSizes.length > 1) {
      this.tailBytes -= this.tailSizes.shift() ?? 0;
      this.cutToSeq = this.tailFirstSeq;
      this.tailFirstSeq += 1;
    }
  }

  private async flushPending(): Promise<void> {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const cutTo = this.cutToSeq;
    // Lines already cut before they were ever stored need not be stored at all.
    const keep = batch.filter(
      (l) => l.seq <= this.headEndSeq || this.headEndSeq === 0 || l.seq > cutTo,
    );
    await this.storeWithRetry(async () => {
      if (keep.length > 0) await this.options.store.appendLogLines(keep);
      if (cutTo > this.headEndSeq && this.headEndSeq > 0) {
        await this.options.store.deleteLogLines(
          this.options.operationId,
          this.headEndSeq + 1,
          cutTo,
        );
      }
    });
    // Announce everything in seq order, also the lines cut in the meantime: live watchers saw
    // them happen; only the stored copy is trimmed.
    this.options.bus.emit("operation.log", batch);
  }

  /**
   * The database may be away for a while (MongoDB restarting): keep the lines and retry, so no
   * line is lost; give up only after STORE_RETRY_MS, saying so through onStoreError.
   */
  private async storeWithRetry(work: () => Promise<void>): Promise<void> {
    let delay = 100;
    const until = Date.now() + STORE_RETRY_MS;
    for (;;) {
      try {
        await work();
        return;
      } catch (error) {
        this.options.onStoreError(error);
        if (Date.now() > until) return;
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 10_000);
      }
    }
  }
}
