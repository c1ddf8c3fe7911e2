// The runner claims queued operations and runs them. This file holds what every kind shares:
// the claim loop, leases and takeovers, abort reasons, `run` (the one place an operation's
// outcome is decided and stored), recovery and reconcile. The steps of each kind live in
// steps/deploy-steps.ts (up, rollback) and steps/stop-steps.ts (down, delete) and get a
// StepContext (steps/context.ts) rather than the runner.
// Invariants (docs/architecture.md, "Invariants"):
// - an operation is claimed atomically in the store (status running, owner, lease) before it
//   runs, so no two runners ever run it, and a version's operations run one at a time, in order
//   (invariant 6);
// - at most `concurrency` operations run in this process;
// - every state change is stored before it is announced on the bus (invariant 3);
// - cancel, timeout and shutdown abort the operation's signal, which kills the whole process
//   group of the command in flight (run-command.ts);
// - no operation stays `running` forever: at start (and whenever a lease runs out) operations
//   left running by a dead runner are marked failed, and versions are reconciled with what
//   Docker actually runs (invariant 4).
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { DeployService, RunnerControl } from "./deploy-service.js";
import type { EventBus } from "./events.js";
import { OperationLog } from "./operation-log.js";
import { policyReasonText } from "./policy-reasons.js";
import { killOrphanCommands } from "./orphans.js";
import type { PortProbe, PortRange } from "./port-allocator.js";
import type { ComposePort, GitPort, RunIo } from "./ports.js";
import { makeRoom } from "./running-limit.js";
import {
  oneLine,
  RolledBackError,
  throwIfAborted,
  urlFor,
  urlsOf,
  type StepContext,
} from "./steps/context.js";
import { rollback, up } from "./steps/deploy-steps.js";
import { deleteVersion, down } from "./steps/stop-steps.js";
import type { ServiceLocator } from "../preview/preview-upstream.js";
import { StoreUnavailableError, type Store } from "../store/store.js";
import type {
  OperationRecord,
  OperationStatus,
  ProjectRecord,
  VersionRecord,
  VersionState,
} from "../store/types.js";

export interface RunnerOptions {
  concurrency: number;
  operationTimeoutSeconds: number;
  /** Seconds an `up` waits for its services to be healthy (DOCKBOT_HEALTH_TIMEOUT). Default 120. */
  healthTimeoutSeconds?: number;
  logMaxBytes: number;
  /** Base of the URLs shown for published ports, e.g. http://localhost. */
  publicUrl: string;
  /** Lease length; renewed every third of it while the operation runs. */
  leaseMs?: number;
  /** How often to look for work queued by other replicas and for dead leases. */
  pollMs?: number;
  /** Secrets of the instance (tokens) masked in every log line. */
  secrets?: readonly string[];
  /** Host ports for versions' published ports (DOCKBOT_PORT_RANGE). Default 20000-29999. */
  portRange?: PortRange;
  /** Whether a host port is free on this host; default: bind it for a moment. */
  probePort?: PortProbe;
  /** Versions running at once on this instance (DOCKBOT_MAX_RUNNING); 0 or unset: no limit. */
  maxRunning?: number;
}

export interface RunnerDeps {
  store: Store;
  bus: EventBus;
  logger: Logger;
  git: GitPort;
  compose: ComposePort;
  service: DeployService;
  options: RunnerOptions;
  /**
   * Where the preview router reaches a service (preview-upstream.ts); the `healthPath` probe
   * asks there. Unset (tests): on this host at the published port.
   */
  locator?: Pick<ServiceLocator, "locate">;
  /** A project's default branch (git.ts `defaultBranch`), exempt from the running limit. */
  defaultBranch?: (project: string) => Promise<string | undefined>;
}

type AbortReason = "cancel" | "timeout" | "shutdown" | "lease-lost";

/** How often an operation may be taken over from a dead replica before it is failed. */
const MAX_TAKEOVERS = 2;
/** How long a write of an operation's outcome is retried while the database is away. */
const PERSIST_RETRY_MS = 5 * 60_000;

interface ActiveOperation {
  op: OperationRecord;
  controller: AbortController;
  done: Promise<void>;
}

export class Runner implements RunnerControl {
  readonly instanceId = `${process.pid}-${randomUUID().slice(0, 8)}`;
  private readonly active = new Map<string, ActiveOperation>();
  private pumping = false;
  private pumpAgain = false;
  private lastLeaseCheck = 0;
  private stopping = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private readonly leaseMs: number;
  private readonly log: Logger;

  constructor(private readonly deps: RunnerDeps) {
    this.leaseMs = deps.options.leaseMs ?? 30_000;
    this.log = deps.logger.child({ component: "runner", instance: this.instanceId });
  }

  /** Recovers what a crash left behind, then starts taking work. */
  async start(): Promise<void> {
    await this.recover();
    if (this.deps.options.concurrency === 0) return;
    this.pollTimer = setInterval(() => this.wake(), this.deps.options.pollMs ?? 1000);
    this.leaseTimer = setInterval(() => void this.renewLeases(), Math.max(200, this.leaseMs / 3));
    this.wake();
  }

  /** Stops taking work; waits up to graceMs for running operations, then interrupts them. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    clearInterval(this.pollTimer);
    clearInterval(this.leaseTimer);
    const all = () => Promise.all([...this.active.values()].map((a) => a.done));
    const timedOut = await Promise.race([
      all().then(() => false),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(true), graceMs).unref()),
    ]);
    if (timedOut) {
      for (const a of this.active.values()) a.controller.abort("shutdown" satisfies AbortReason);
      await all();
    }
  }

  /** Resolves when nothing runs and nothing claimable is queued (tests, benchmarks). */
  async idle(): Promise<void> {
    for (;;) {
      await Promise.all([...this.active.values()].map((a) => a.done));
      const queued = await this.deps.store.listOperations({
        status: ["queued", "running"],
        limit: 1,
      });
      if (queued.length === 0 && this.active.size === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  wake(): void {
    if (this.stopping || this.deps.options.concurrency === 0) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pump()
      .catch((error: unknown) => this.log.error({ err: error }, "claiming operations failed"))
      .finally(() => {
        this.pumping = false;
        if (this.pumpAgain) {
          this.pumpAgain = false;
          this.wake();
        }
      });
  }

  cancelLocal(operationId: string): boolean {
    const active = this.active.get(operationId);
    if (!active) return false;
    active.controller.abort("cancel" satisfies AbortReason);
    return true;
  }

  private async pump(): Promise<void> {
    // Dead leases are rare: look for them once per poll interval, not on every wake.
    const pollMs = this.deps.options.pollMs ?? 1000;
    if (Date.now() - this.lastLeaseCheck >= pollMs) {
      this.lastLeaseCheck = Date.now();
      await this.failDeadLeases();
    }
    while (!this.stopping && this.active.size < this.deps.options.concurrency) {
      const at = Date.now();
      const op = await this.deps.store.claimOperation({
        owner: this.instanceId,
        leaseUntil: new Date(at + this.leaseMs).toISOString(),
        now: new Date(at).toISOString(),
      });
      if (!op) return;
      const controller = new AbortController();
      const entry: ActiveOperation = { op, controller, done: Promise.resolve() };
      this.active.set(op.id, entry);
      entry.done = this.run(op, controller)
        .catch((error: unknown) =>
          this.log.error({ err: error, operationId: op.id }, "operation crashed"),
        )
        .finally(() => {
          this.active.delete(op.id);
          this.wake();
        });
    }
  }

  // ------------------------------------------------------------------ one operation

  private async run(op: OperationRecord, controller: AbortController): Promise<void> {
    const log = this.log.child({ operationId: op.id, kind: op.kind });
    const { store, bus } = this.deps;
    const timeoutMs = this.deps.options.operationTimeoutSeconds * 1000;
    const timer = setTimeout(() => controller.abort("timeout" satisfies AbortReason), timeoutMs);
    const [project, version] = await Promise.all([
      store.getProject(op.projectId),
      store.getVersion(op.versionId),
    ]);
    const startSeq = op.options?.takeovers ? await this.lastLogSeq(op.id) : 0;
    const opLog = new OperationLog({
      operationId: op.id,
      startSeq,
      store,
      bus,
      secrets: [
        ...Object.values(project?.env ?? {}),
        ...(project ? [project.webhookSecret] : []),
        ...(this.deps.options.secrets ?? []),
      ],
      maxBytes: this.deps.options.logMaxBytes,
      onStoreError: (error) => log.warn({ err: error }, "storing log lines failed; retrying"),
    });
    bus.emit("operation.started", op);
    if (op.trigger.source === "policy") {
      opLog.system(`[dockbot] started by dockbot itself: ${policyReasonText(op.trigger.reason)}`);
    }
    if (op.options?.takeovers) {
      opLog.system(
        `[dockbot] the runner of this operation stopped; taken over by ${this.instanceId}, starting again`,
      );
    }
    let status: OperationStatus = "succeeded";
    let error: string | undefined;
    let exitCode: number | undefined;
    let rolledBackTo: string | undefined;
    let current = version;
    try {
      if (!project || !version) throw new Error("the version of this operation no longer exists");
      current = await this.setVersionState(
        version,
        op.kind === "up" || op.kind === "rollback"
          ? "deploying"
          : op.kind === "down"
            ? "stopping"
            : "deleting",
      );
      const io: RunIo = {
        signal: controller.signal,
        onLine: (stream, text) => opLog.write(stream, text),
      };
      const ctx: StepContext = {
        deps: this.deps,
        options: this.deps.options,
        op,
        project,
        io,
        opLog,
        persist: (write) => this.persist(write),
        saveVersion: (v, patch) => this.saveVersion(v, patch),
        makeRoom: (v) => this.makeRoom(project, v, io, opLog),
      };
      if (op.kind === "up") current = await up(ctx, current);
      else if (op.kind === "rollback") current = await rollback(ctx, current);
      else if (op.kind === "down") current = await down(ctx, current);
      else await deleteVersion(ctx, current);
    } catch (caught) {
      const reason = controller.signal.aborted
        ? (controller.signal.reason as AbortReason)
        : undefined;
      if (reason === "cancel") {
        status = "canceled";
        error = (await store.getOperation(op.id))?.error ?? "canceled by request";
        if (error === undefined || error === "") error = "canceled by request";
      } else {
        status = "failed";
        error =
          reason === "timeout"
            ? `timed out after ${this.deps.options.operationTimeoutSeconds} s (DOCKBOT_OPERATION_TIMEOUT)`
            : reason === "shutdown"
              ? "interrupted by shutdown"
              : reason === "lease-lost"
                ? "interrupted: this runner lost its lease"
                : oneLine(caught instanceof Error ? caught.message : String(caught));
        const code = (caught as { exitCode?: unknown }).exitCode;
        if (typeof code === "number") exitCode = code;
        if (caught instanceof RolledBackError) {
          rolledBackTo = caught.sha;
          current = caught.version;
        }
      }
      if (!reason) log.info({ err: caught }, "operation failed");
    } finally {
      clearTimeout(timer);
    }
    opLog.system(
      status === "succeeded"
        ? `[dockbot] ${op.kind} succeeded`
        : `[dockbot] ${op.kind} ${status}: ${error ?? ""}`,
    );
    await opLog.close();
    const patch: Partial<OperationRecord> = { status, finishedAt: new Date().toISOString() };
    if (error !== undefined) patch.error = error;
    if (exitCode !== undefined) patch.exitCode = exitCode;
    if (rolledBackTo !== undefined) patch.rolledBackTo = rolledBackTo;
    const finished = await this.persist(() =>
      store.updateOperation(op.id, patch, { ifStatus: ["running"], ifOwner: this.instanceId }),
    );
    if (finished) bus.emit("operation.finished", finished);
    // Rolled back: the version runs its last good commit, its state is what Docker runs. A
    // manual rollback that failed leaves it as Docker runs it too (docs/api.md, "Rollback").
    try {
      if ((rolledBackTo !== undefined || op.kind === "rollback") && current)
        await this.reconcileVersion(current.id);
      else if (status !== "succeeded" && current) await this.afterFailure(op, current, status);
    } catch (error) {
      // Docker went away with the operation: what runs cannot be asked now. The version is
      // failed rather than left deploying; the next reconcile (a start, its next operation)
      // sets it from what Docker runs again.
      log.warn({ err: error }, "the version could not be reconciled after its operation");
      if (current && status !== "succeeded") await this.saveVersion(current, { state: "failed" });
      else throw error;
    }
  }

  /**
   * The running limit (running-limit.ts): before anything of the version starts, versions that
   * must make room for it are turned off by downs this runner runs itself, in this slot.
   */
  private async makeRoom(
    project: ProjectRecord,
    version: VersionRecord,
    io: RunIo,
    opLog: OperationLog,
  ): Promise<void> {
    await makeRoom(
      {
        store: this.deps.store,
        runningProjects: () => this.deps.compose.runningProjects(),
        defaultBranch: this.deps.defaultBranch ?? (() => Promise.resolve(undefined)),
        instanceMax: this.deps.options.maxRunning ?? 0,
      },
      project,
      version,
      {
        owner: this.instanceId,
        leaseMs: this.leaseMs,
        log: (line) => opLog.system(line),
        runStarted: (op) => this.runStarted(op, io.signal),
        throwIfAborted: () => throwIfAborted(io),
      },
    );
  }

  /**
   * Runs an operation this runner stored as running itself (Store.startOperation) as if it had
   * claimed it: its lease renewed, cancel and shutdown heard, stopped with `parent` (the
   * operation it makes room for). Returns it as stored once it ended.
   */
  private async runStarted(
    op: OperationRecord,
    parent: AbortSignal | undefined,
  ): Promise<OperationRecord | undefined> {
    const controller = new AbortController();
    const follow = () => controller.abort(parent?.reason);
    parent?.addEventListener("abort", follow, { once: true });
    const entry: ActiveOperation = { op, controller, done: Promise.resolve() };
    this.active.set(op.id, entry);
    this.deps.bus.emit("operation.queued", op);
    entry.done = this.run(op, controller).finally(() => {
      this.active.delete(op.id);
      parent?.removeEventListener("abort", follow);
    });
    await entry.done;
    return this.deps.store.getOperation(op.id);
  }

  /**
   * A write the operation's outcome depends on: while the database is away (MongoDB restarting,
   * network cut) it is retried with backoff for a few minutes rather than losing the result.
   */
  private async persist<T>(write: () => Promise<T>): Promise<T> {
    let delay = 200;
    const until = Date.now() + PERSIST_RETRY_MS;
    for (;;) {
      try {
        return await write();
      } catch (error) {
        if (!(error instanceof StoreUnavailableError) || Date.now() > until) throw error;
        this.log.warn({ err: error }, "database unavailable; retrying a write");
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  private async lastLogSeq(operationId: string): Promise<number> {
    let last = 0;
    for (;;) {
      const page = await this.deps.store.getLogLines(operationId, last, 10_000);
      const end = page.at(-1);
      if (!end) return last;
      last = end.seq;
    }
  }

  // ------------------------------------------------------------------ version state

  private async setVersionState(
    version: VersionRecord,
    state: VersionState,
  ): Promise<VersionRecord> {
    return this.saveVersion(version, { state });
  }

  private async saveVersion(
    version: VersionRecord,
    patch: Partial<VersionRecord>,
  ): Promise<VersionRecord> {
    const updated = await this.persist(() =>
      this.deps.store.updateVersion(version.id, { ...patch, updatedAt: new Date().toISOString() }),
    );
    if (!updated) return version;
    this.deps.bus.emit("version.updated", updated);
    return updated;
  }

  private async afterFailure(
    op: OperationRecord,
    version: VersionRecord,
    status: OperationStatus,
  ): Promise<void> {
    if (status === "failed" && op.kind !== "down") {
      const pending = await this.deps.store.listOperations({
        versionId: version.id,
        status: ["queued"],
        limit: 1,
      });
      if (pending.length === 0) {
        await this.saveVersion(version, { state: "failed" });
        return;
      }
    }
    await this.reconcileVersion(version.id);
  }

  /** Sets a version's state from its operations and what Docker runs for it. */
  async reconcileVersion(
    versionId: string,
    running?: Map<string, { running: number; total: number }>,
    /** The version and its queued or running operations as just read (recover reads them all). */
    known?: { version: VersionRecord; active: OperationRecord[] },
  ): Promise<void> {
    const version = known?.version ?? (await this.deps.store.getVersion(versionId));
    if (!version) return;
    const active =
      known?.active ??
      (await this.deps.store.listOperations({ versionId, status: ["queued", "running"] }));
    if (active.some((o) => o.status === "running")) return;
    if (active.length > 0) {
      if (version.state !== "queued") await this.saveVersion(version, { state: "queued" });
      return;
    }
    const projects = running ?? (await this.deps.compose.runningProjects());
    const live = projects.get(version.composeProject);
    let state: VersionState;
    const patch: Partial<VersionRecord> = {};
    if (live && live.running > 0) {
      state = "running";
      if (version.ports.length > 0) patch.urls = urlsOf(this.deps.options.publicUrl, version.ports);
      else {
        // A version started before dockbot allocated ports: what Docker published.
        const ports = await this.deps.compose.publishedPorts(version.composeProject);
        patch.urls = ports.map((p) => urlFor(this.deps.options.publicUrl, p.port));
      }
    } else {
      state = ["deploying", "deleting", "failed"].includes(version.state) ? "failed" : "off";
      patch.urls = [];
    }
    if (state !== version.state || JSON.stringify(patch.urls) !== JSON.stringify(version.urls)) {
      await this.saveVersion(version, { ...patch, state });
    }
  }

  // ------------------------------------------------------------------ crashes and leases

  /** At start: fail what a dead process left running, then reconcile every version with Docker. */
  private async recover(): Promise<void> {
    const { store } = this.deps;
    const running = await store.listOperations({ status: ["running"] });
    const now = Date.now();
    const interrupted: string[] = [];
    for (const op of running) {
      // The embedded store belongs to this one process, so whatever it shows running died with
      // the previous process; with MongoDB another replica may hold a live lease.
      const dead = store.kind === "sqlite" || !op.leaseUntil || Date.parse(op.leaseUntil) < now;
      if (!dead) continue;
      if (store.kind === "sqlite") await this.failInterrupted(op, "interrupted by restart");
      else await this.takeOver(op);
      const version = await store.getVersion(op.versionId);
      if (version) interrupted.push(version.composeProject);
    }
    const killed = await killOrphanCommands(interrupted);
    if (killed.length > 0)
      this.log.warn({ pids: killed }, "killed commands left running by the previous process");
    let projects: Map<string, { running: number; total: number }>;
    try {
      projects = await this.deps.compose.runningProjects();
    } catch (error) {
      this.log.warn({ err: error }, "cannot list Docker projects; versions are not reconciled");
      return;
    }
    // One read of the queued and running operations and one of every version, then each version
    // reconciled from them: reading each version again and its operations made two queries per
    // version, ~35 s at 100k versions (docs/architecture.md, "Indexes").
    const active = new Map<string, OperationRecord[]>();
    for (const op of await store.listOperations({ status: ["queued", "running"] })) {
      active.set(op.versionId, [...(active.get(op.versionId) ?? []), op]);
    }
    for (const version of await store.listVersions()) {
      await this.reconcileVersion(version.id, projects, {
        version,
        active: active.get(version.id) ?? [],
      });
    }
  }

  private async failInterrupted(op: OperationRecord, error: string): Promise<void> {
    const cond =
      op.owner === undefined
        ? { ifStatus: ["running" as const] }
        : { ifStatus: ["running" as const], ifOwner: op.owner };
    const failed = await this.deps.store.updateOperation(
      op.id,
      { status: "failed", error, finishedAt: new Date().toISOString() },
      cond,
    );
    if (!failed) return;
    this.log.warn({ operationId: op.id }, error);
    this.deps.bus.emit("operation.finished", failed);
  }

  /**
   * Operations whose runner stopped renewing its lease (the replica died) are taken over: put
   * back in the queue for any replica to claim and run again from the start (up, down and delete
   * are idempotent), at most MAX_TAKEOVERS times, then failed.
   */
  private async failDeadLeases(): Promise<void> {
    const now = Date.now();
    const running = await this.deps.store.listOperations({ status: ["running"] });
    for (const op of running) {
      if (this.active.has(op.id) || !op.leaseUntil || Date.parse(op.leaseUntil) >= now) continue;
      const version = await this.deps.store.getVersion(op.versionId);
      if (version) await killOrphanCommands([version.composeProject]);
      await this.takeOver(op);
    }
  }

  private async takeOver(op: OperationRecord): Promise<void> {
    const takeovers = (op.options?.takeovers ?? 0) + 1;
    if (takeovers > MAX_TAKEOVERS) {
      await this.failInterrupted(
        op,
        `interrupted: its runner stopped ${MAX_TAKEOVERS} times (lease expired)`,
      );
      await this.reconcileVersion(op.versionId);
      return;
    }
    const requeued = await this.deps.store.updateOperation(
      op.id,
      { status: "queued", options: { ...op.options, takeovers }, cancelRequested: false },
      op.owner === undefined
        ? { ifStatus: ["running"] }
        : { ifStatus: ["running"], ifOwner: op.owner },
    );
    if (requeued)
      this.log.warn(
        { operationId: op.id, previousOwner: op.owner, takeovers },
        "taking over an operation whose runner stopped",
      );
  }

  private async renewLeases(): Promise<void> {
    for (const [id, active] of this.active) {
      try {
        const renewed = await this.deps.store.updateOperation(
          id,
          { leaseUntil: new Date(Date.now() + this.leaseMs).toISOString() },
          { ifStatus: ["running"], ifOwner: this.instanceId },
        );
        if (!renewed) active.controller.abort("lease-lost" satisfies AbortReason);
        else if (renewed.cancelRequested) active.controller.abort("cancel" satisfies AbortReason);
      } catch (error) {
        this.log.warn({ err: error, operationId: id }, "renewing a lease failed");
      }
    }
  }
}
