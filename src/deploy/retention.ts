// Retention (docs/api.md, "Retention"): operations and their log lines that finished more than
// `retentionDays` ago are deleted from the store, except each version's last operation and the
// operations of its kept verified deploys (the store's deleteOldOperations and
// src/store/retention-keep.ts say which). It runs a minute after start and then hourly, in small
// batches with a pause between them, so the store is never held for long.
import type { Logger } from "pino";
import type { RetentionCursor, Store } from "../store/store.js";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export interface RetentionOptions {
  store: Pick<Store, "deleteOldOperations">;
  logger: Logger;
  retentionDays: number;
  /** The clock (tests move it instead of waiting for days). */
  now?: () => number;
  /** Between runs; default one hour. */
  intervalMs?: number;
  /** Operations looked at per batch (default 100) and log lines deleted per batch (5,000). */
  batchOperations?: number;
  batchLogLines?: number;
  /** Pause between two batches, so other store work goes first (default 50 ms). */
  pauseMs?: number;
  /** The first run after start() waits this long (default 1 minute), off start-up's path. */
  firstRunDelayMs?: number;
}

export interface RetentionRun {
  deletedOperations: number;
  deletedLogLines: number;
  batches: number;
}

export interface Retention {
  /** One whole run (every batch); a run already under way is joined, not doubled. */
  runOnce(): Promise<RetentionRun>;
  /** Runs shortly after start (recovery and reconcile go first), then every interval. */
  start(): void;
  /** No new run; resolves when the one under way has finished its batch. */
  stop(): Promise<void>;
}

export function createRetention(opts: RetentionOptions): Retention {
  const log = opts.logger.child({ component: "retention" });
  const now = opts.now ?? Date.now;
  const intervalMs = opts.intervalMs ?? HOUR_MS;
  const limit = opts.batchOperations ?? 100;
  const maxLogLines = opts.batchLogLines ?? 5000;
  const pauseMs = opts.pauseMs ?? 50;
  let running: Promise<RetentionRun> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let first: NodeJS.Timeout | undefined;
  let stopped = false;

  async function run(): Promise<RetentionRun> {
    const finishedBefore = new Date(now() - opts.retentionDays * DAY_MS).toISOString();
    const total: RetentionRun = { deletedOperations: 0, deletedLogLines: 0, batches: 0 };
    let after: RetentionCursor | undefined;
    do {
      const r = await opts.store.deleteOldOperations({
        finishedBefore,
        limit,
        maxLogLines,
        ...(after === undefined ? {} : { after }),
      });
      total.batches += 1;
      total.deletedOperations += r.deletedOperations;
      total.deletedLogLines += r.deletedLogLines;
      after = r.next;
      if (after !== undefined && pauseMs > 0) {
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    } while (after !== undefined && !stopped);
    if (total.deletedOperations > 0 || total.deletedLogLines > 0) {
      log.info(
        { ...total, finishedBefore, retentionDays: opts.retentionDays },
        "retention deleted old operations and their logs",
      );
    }
    return total;
  }

  function runOnce(): Promise<RetentionRun> {
    running ??= run().finally(() => {
      running = undefined;
    });
    return running;
  }

  function scheduled(): void {
    runOnce().then(
      () => undefined,
      (error: unknown) => log.error({ err: error }, "retention run failed; next run in an hour"),
    );
  }

  return {
    runOnce,
    start() {
      stopped = false;
      first = setTimeout(scheduled, opts.firstRunDelayMs ?? 60_000);
      first.unref();
      timer = setInterval(scheduled, intervalMs);
      timer.unref();
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      if (first) clearTimeout(first);
      timer = first = undefined;
      // A failed run was logged by scheduled() (or thrown to runOnce's caller): only wait here.
      await running?.then(
        () => undefined,
        () => undefined,
      );
    },
  };
}
