// What the steps of one operation share (deploy-steps.ts, stop-steps.ts): the runner's
// dependencies and options, the operation, its project, its io and log, and the runner's two
// writes (persist, saveVersion), so a step never reaches into the runner. The outcome of an
// operation is decided and stored only by the runner's `run` (runner.ts); a step returns the
// version as it left it or throws.
import type { OperationLog } from "../operation-log.js";
import type { RunIo } from "../ports.js";
import type { RunnerDeps, RunnerOptions } from "../runner.js";
import type { OperationRecord, ProjectRecord, VersionRecord } from "../../store/types.js";

export interface StepContext {
  deps: RunnerDeps;
  options: RunnerOptions;
  op: OperationRecord;
  project: ProjectRecord;
  io: RunIo;
  opLog: OperationLog;
  /** A write the outcome depends on, retried while the database is away (runner.ts). */
  persist<T>(write: () => Promise<T>): Promise<T>;
  /**
   * Stores a change of the version, then announces it (docs/architecture.md, invariant 3);
   * the version as it was when it is gone.
   */
  saveVersion(version: VersionRecord, patch: Partial<VersionRecord>): Promise<VersionRecord>;
  /**
   * The running limit (running-limit.ts): before anything of the version starts, versions that
   * must make room for it are turned off by downs the runner runs itself, in this slot.
   */
  makeRoom(version: VersionRecord): Promise<void>;
}

export class OperationAbortedError extends Error {
  override readonly name = "OperationAbortedError";
}

/** An up that failed and brought the version's last good commit back. */
export class RolledBackError extends Error {
  override readonly name = "RolledBackError";
  constructor(
    message: string,
    readonly sha: string,
    readonly version: VersionRecord,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The first non-blank line of a message, at most 500 characters (an operation's `error`). */
export function oneLine(message: string): string {
  const line = message.split("\n").find((l) => l.trim() !== "") ?? message;
  return line.trim().slice(0, 500);
}

export function throwIfAborted(io: RunIo): void {
  if (io.signal?.aborted) throw new OperationAbortedError("aborted");
}

/** A published host port as a URL on the host of DOCKBOT_PUBLIC_URL. */
export function urlFor(publicUrl: string, port: number): string {
  const url = new URL(publicUrl);
  return `${url.protocol}//${url.hostname}:${port}`;
}

/** docs/api.md: one URL per published TCP port, on the host of DOCKBOT_PUBLIC_URL. */
export function urlsOf(publicUrl: string, ports: VersionRecord["ports"]): string[] {
  return ports.filter((p) => p.protocol === "tcp").map((p) => urlFor(publicUrl, p.hostPort));
}
