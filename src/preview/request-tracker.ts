// When each version last had a request through the preview router (docs/api.md, "Idle stop and
// limits"; the version's `lastRequestAt`), kept without a store write per request: the router's
// hot path only sets a number in a Map. The time is written to the version at most once per
// `writeEveryMs` (a minute) per version, at the first request after that, by a background flush,
// and on shutdown. A WebSocket counts as a request for as long as it stays open.
//
// Idle stop asks `lastRequestAt` here too, so on this replica it sees requests that are not
// stored yet; other replicas see them in the store, at most about a minute late.
import type { Logger } from "pino";
import type { RecentRequests } from "../deploy/idle-stop.js";
import type { Store } from "../store/store.js";

/** A version's lastRequestAt is written at most this often (ms). */
export const REQUEST_WRITE_EVERY_MS = 60_000;
/** How often the background flush looks for times not written yet (ms). */
const FLUSH_EVERY_MS = 10_000;
/** Entries neither used nor written for this long are forgotten (ms). */
const FORGET_AFTER_MS = 3_600_000;

interface Entry {
  /** Newest request (ms). */
  last: number;
  /** Clock time of the last write, or of its start while one is under way. */
  writtenAt: number;
  /** The value stored by that write. */
  stored: number;
  /** WebSockets open to the version through this router. */
  open: number;
  writing: boolean;
}

export interface RequestTrackerDeps {
  store: Store;
  logger: Logger;
  now?: () => number;
  writeEveryMs?: number;
  flushEveryMs?: number;
}

export class RequestTracker implements RecentRequests {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly writeEveryMs: number;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private readonly writes = new Set<Promise<void>>();

  constructor(private readonly deps: RequestTrackerDeps) {
    this.now = deps.now ?? Date.now;
    this.writeEveryMs = deps.writeEveryMs ?? REQUEST_WRITE_EVERY_MS;
    this.log = deps.logger.child({ component: "request-tracker" });
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.flushDue(), this.deps.flushEveryMs ?? FLUSH_EVERY_MS);
    this.timer.unref();
  }

  /** Stops the background flush and writes every time not written yet. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** A request to the version (the router's hot path: no I/O here). */
  record(versionId: string): void {
    const at = this.now();
    const entry = this.entries.get(versionId);
    if (!entry) {
      const fresh: Entry = {
        last: at,
        writtenAt: -Infinity,
        stored: -Infinity,
        open: 0,
        writing: false,
      };
      this.entries.set(versionId, fresh);
      this.write(versionId, fresh);
      return;
    }
    entry.last = at;
    if (at - entry.writtenAt >= this.writeEveryMs) this.write(versionId, entry);
  }

  /** A WebSocket to the version opened; call the answer when it closes. */
  opened(versionId: string): () => void {
    this.record(versionId);
    const entry = this.entries.get(versionId);
    if (entry) entry.open++;
    let closed = false;
    return () => {
      if (closed) return;
      closed = true;
      const current = this.entries.get(versionId);
      if (current) current.open = Math.max(0, current.open - 1);
      this.record(versionId);
    };
  }

  /** The newest request this replica saw (now while a WebSocket is open), in ms. */
  lastRequestAt(versionId: string): number | undefined {
    const entry = this.entries.get(versionId);
    if (!entry) return undefined;
    return entry.open > 0 ? this.now() : entry.last;
  }

  /** Writes every time not stored yet, now (shutdown, tests). */
  async flush(): Promise<void> {
    await Promise.all([...this.writes]);
    for (const [versionId, entry] of this.entries) {
      if (entry.open > 0) entry.last = this.now();
      if (entry.last > entry.stored) this.write(versionId, entry);
    }
    await Promise.all([...this.writes]);
  }

  /** The background flush: what is due, and forgetting what went quiet. */
  private flushDue(): void {
    const at = this.now();
    for (const [versionId, entry] of this.entries) {
      if (entry.open > 0) entry.last = at;
      if (entry.last > entry.stored && at - entry.writtenAt >= this.writeEveryMs) {
        this.write(versionId, entry);
      } else if (
        entry.open === 0 &&
        !entry.writing &&
        entry.last <= entry.stored &&
        at - entry.last > FORGET_AFTER_MS
      ) {
        this.entries.delete(versionId);
      }
    }
  }

  private write(versionId: string, entry: Entry): void {
    if (entry.writing) return;
    entry.writing = true;
    entry.writtenAt = this.now();
    const value = entry.last;
    const done = this.deps.store
      .updateVersion(versionId, { lastRequestAt: new Date(value).toISOString() })
      .then(
        (updated) => {
          entry.stored = value;
          // Deleted meanwhile: nothing to keep a time for.
          if (!updated && entry.open === 0) this.entries.delete(versionId);
        },
        (error: unknown) => {
          // Kept in memory and tried again at the next flush.
          this.log.warn({ err: error, versionId }, "storing a version's last request failed");
        },
      )
      .finally(() => {
        entry.writing = false;
        this.writes.delete(done);
      });
    this.writes.add(done);
  }
}
