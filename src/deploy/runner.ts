// The runner claims queued operations and runs them.
// Invariants:
// - an operation is claimed atomically in the store (status running, owner, lease) before it
//   runs, so no two runners ever run it, and a version's operations run one at a time, in order;
// - at most `concurrency` operations run in this process;
// - every state change is stored before it is announced on the bus;
// - cancel, timeout and shutdown abort the operation's signal, which kills the whole process
//   group of the command in flight (run-command.ts);
// - no operation stays `running` forever: at start (and whenever a lease runs out) operations
//   left running by a dead runner are marked failed, and versions are reconciled with what
//   Docker actually runs.
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import type { DeployService, RunnerControl } from "./deploy-service.js";
import type { EventBus } from "./events.js";
import {
  historyOf,
  imageRepoOf,
  keptImageTag,
  planRollback,
  recordGoodDeploy,
  removableTags,
  versionImageRepos,
} from "./deploy-history.js";
import { HealthCheckError, waitForHealth } from "./health-wait.js";
import {
  builtImagesByService,
  readCurrentModel,
  readKeptModel,
  removeKeptModels,
  restoreKeptModel,
  saveKeptModel,
} from "./kept-models.js";
import { OperationLog } from "./operation-log.js";
import { policyReasonText } from "./policy-reasons.js";
import { killOrphanCommands } from "./orphans.js";
import type { PortProbe, PortRange } from "./port-allocator.js";
import type { ComposePort, GitPort, RunIo } from "./ports.js";
import { makeRoom, RunningLimitError } from "./running-limit.js";
import { prepareModel, readRenderedModel, renderedModelPath } from "./prepare-model.js";
import { StoreUnavailableError, type Store } from "../store/store.js";
import type {
  GoodDeploy,
  OperationRecord,
  OperationStatus,
  ProjectRecord,
  VersionPort,
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

class OperationAbortedError extends Error {
  override readonly name = "OperationAbortedError";
}

/** An up that failed and brought the version's last good commit back. */
class RolledBackError extends Error {
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

function oneLine(message: string): string {
  const line = message.split("\n").find((l) => l.trim() !== "") ?? message;
  return line.trim().slice(0, 500);
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
      if (op.kind === "up") current = await this.up(op, project, current, io, opLog);
      else if (op.kind === "rollback")
        current = await this.rollback(op, project, current, io, opLog);
      else if (op.kind === "down") current = await this.down(project, current, io, opLog);
      else await this.delete(op, project, current, io, opLog);
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

  private async up(
    op: OperationRecord,
    project: ProjectRecord,
    version: VersionRecord,
    io: RunIo,
    opLog: OperationLog,
  ): Promise<VersionRecord> {
    const { git, store } = this.deps;
    opLog.system(`[dockbot] fetching ${project.repoUrl}`);
    const { cloned } = await git.syncMirror(project.name, project.repoUrl, io);
    opLog.system(cloned ? "[dockbot] cloned the repository" : "[dockbot] fetched the repository");
    this.throwIfAborted(io);
    const sha = await git.resolveRef(project.name, version.ref, op.sha);
    if (op.sha !== sha) await this.persist(() => store.updateOperation(op.id, { sha }));
    try {
      return await this.deployCommit(op, project, version, sha, io, opLog);
    } catch (error) {
      // docs/api.md, "Health and rollback": a failed up brings the last good deploy back,
      // unless the project says "off" or the operation itself was stopped.
      const good = historyOf(version)[0];
      if (
        io.signal?.aborted ||
        error instanceof RunningLimitError ||
        project.rollback === "off" ||
        !good ||
        good.sha === sha
      )
        throw error;
      const why = oneLine(error instanceof Error ? error.message : String(error));
      opLog.system(
        `[dockbot] ${why}; rolling back to ${good.sha.slice(0, 8)} (the last good deploy)`,
      );
      let back: VersionRecord;
      try {
        const latest = (await store.getVersion(version.id)) ?? version;
        back = await this.restoreDeploy(project, latest, good, io, opLog);
      } catch (rollbackError) {
        const reason =
          rollbackError instanceof Error ? rollbackError.message : String(rollbackError);
        opLog.system(
          `[dockbot] the rollback to ${good.sha.slice(0, 8)} failed too: ${oneLine(reason)}`,
        );
        throw error;
      }
      throw new RolledBackError(`${why}; rolled back to ${good.sha.slice(0, 8)}`, good.sha, back, {
        cause: error,
      });
    }
  }

  /**
   * Checks out `sha`, renders, builds, starts and waits for health; a deploy that passes is
   * kept (keepDeploy) and becomes the version's `sha`, `deployedSha` and `lastGood`.
   */
  private async deployCommit(
    op: OperationRecord,
    project: ProjectRecord,
    version: VersionRecord,
    sha: string,
    io: RunIo,
    opLog: OperationLog,
  ): Promise<VersionRecord> {
    const { git, compose, store } = this.deps;
    opLog.system(`[dockbot] checking out ${sha}`);
    const dir = await git.checkout(project.name, version.name, sha, io);
    this.throwIfAborted(io);
    const file = await compose.findComposeFile(dir, project.composeFile);
    const target = { dir, file, projectName: version.composeProject, env: project.env, ...io };
    opLog.system(`[dockbot] rendering ${file} (project ${version.composeProject})`);
    const prepared = await prepareModel(
      {
        compose,
        store,
        portRange: this.deps.options.portRange ?? { from: 20000, to: 29999 },
        ...(this.deps.options.probePort === undefined
          ? {}
          : { probePort: this.deps.options.probePort }),
      },
      project,
      version,
      target,
      (line) => opLog.system(line),
    );
    this.throwIfAborted(io);
    const withPorts = await this.saveVersion(version, {
      ports: prepared.ports,
      ...(prepared.primaryService === undefined ? {} : { primaryService: prepared.primaryService }),
    });
    opLog.system(
      `[dockbot] docker compose up (project ${version.composeProject}, from ${path.basename(prepared.rendered)})`,
    );
    // Checked before anything starts: a healthPath with no port to ask can never pass.
    const probe = this.probeUrlOf(project, withPorts);
    await this.makeRoom(project, version, io, opLog);
    await compose.up({ ...target, rendered: prepared.rendered });
    // docs/api.md, "Health": the up counts only once its services are healthy.
    await waitForHealth(
      { compose },
      {
        projectName: version.composeProject,
        timeoutSeconds: this.deps.options.healthTimeoutSeconds ?? 120,
        ...probe,
        io,
        log: (line) => opLog.system(line),
      },
    );
    const running = await this.saveVersion(withPorts, {
      state: "running",
      deployedSha: sha,
      sha,
      urls: this.urlsOf(prepared.ports),
    });
    return this.keepDeploy(op, running, dir, sha, io, opLog);
  }

  /**
   * A verified deploy is kept (docs/api.md, "Rollback"): its built images under the version's
   * own `good-<sha12>` tags, its rendered model beside the checkout, its entry at the head of
   * the version's `goodDeploys` (and `lastGood`); what is no longer kept goes. Keeping is
   * best effort: the deploy stands when a tag cannot be made (a rollback then builds).
   */
  private async keepDeploy(
    op: OperationRecord,
    version: VersionRecord,
    checkoutDir: string,
    sha: string,
    io: RunIo,
    opLog: OperationLog,
  ): Promise<VersionRecord> {
    const { compose } = this.deps;
    const model = await readCurrentModel(checkoutDir);
    const images: Record<string, string> = {};
    for (const [service, image] of Object.entries(builtImagesByService(model))) {
      const kept = keptImageTag(image, sha);
      try {
        await compose.tagImage(image, kept, io);
        images[service] = kept;
      } catch (error) {
        opLog.system(
          `[dockbot] could not keep the image of ${service} as ${kept}: ${oneLine(String((error as Error).message ?? error))}`,
        );
      }
    }
    await saveKeptModel(checkoutDir, sha, {
      model,
      ports: version.ports,
      ...(version.primaryService === undefined ? {} : { primaryService: version.primaryService }),
    });
    const deployedAt = new Date().toISOString();
    const previous = historyOf(version);
    const change = recordGoodDeploy(previous, { sha, deployedAt, operationId: op.id, images });
    const kept = Object.values(images);
    opLog.system(
      `[dockbot] kept this deploy${kept.length > 0 ? ` (${kept.join(", ")})` : ""}; ${change.kept.length} verified deploy${change.kept.length === 1 ? "" : "s"} kept`,
    );
    const saved = await this.saveVersion(version, {
      lastGood: { sha, deployedAt },
      goodDeploys: change.kept,
    });
    await this.pruneDeploys(saved, checkoutDir, [...previous, ...change.kept], change, io, opLog);
    return saved;
  }

  /**
   * Removes the kept images and models of deploys no longer kept: only tags of the version's own
   * built repositories that no kept deploy names (deploy-history.ts). A failure is said in the
   * log and changes nothing of the operation's outcome.
   */
  private async pruneDeploys(
    version: VersionRecord,
    checkoutDir: string,
    seen: readonly GoodDeploy[],
    change: { kept: GoodDeploy[]; dropped: GoodDeploy[] },
    io: RunIo,
    opLog: OperationLog,
  ): Promise<void> {
    const { compose } = this.deps;
    const keptShas = new Set(change.kept.map((d) => d.sha));
    await removeKeptModels(
      checkoutDir,
      change.dropped.map((d) => d.sha).filter((s) => !keptShas.has(s)),
    );
    const repos = versionImageRepos(seen, version.composeProject);
    if (repos.length === 0) return;
    try {
      const gone = removableTags(await compose.imageTags(repos, io), change.kept, repos);
      if (gone.length === 0) return;
      opLog.system(`[dockbot] removing the images of older deploys: ${gone.join(", ")}`);
      await compose.removeImageTags(gone, io);
    } catch (error) {
      opLog.system(
        `[dockbot] removing the images of older deploys failed: ${oneLine((error as Error).message ?? String(error))}`,
      );
    }
  }

  /**
   * Brings a kept deploy back (docs/api.md, "Rollback"): checks out its commit, runs its kept
   * model, re-tags its kept images to the names the model runs and starts without building;
   * only when its images are gone it builds them again (said in the log), and when that fails
   * too the error names what is missing. Then the health wait, as for any up. The version's
   * `sha` (what its ref asks for) and its history stay; the caller changes the history.
   */
  private async restoreDeploy(
    project: ProjectRecord,
    version: VersionRecord,
    deploy: GoodDeploy,
    io: RunIo,
    opLog: OperationLog,
  ): Promise<VersionRecord> {
    const { git, compose, store } = this.deps;
    const short = deploy.sha.slice(0, 8);
    opLog.system(`[dockbot] checking out ${deploy.sha}`);
    const dir = await git.checkout(project.name, version.name, deploy.sha, io);
    this.throwIfAborted(io);
    const file = await compose.findComposeFile(dir, project.composeFile);
    const target = { dir, file, projectName: version.composeProject, env: project.env, ...io };
    let rendered: string;
    let ports: VersionPort[];
    let primaryService: string | undefined;
    const kept = await readKeptModel(dir, deploy.sha);
    if (kept) {
      opLog.system(`[dockbot] running the kept model of ${short}`);
      rendered = await restoreKeptModel(dir, kept);
      ports = kept.ports;
      primaryService = kept.primaryService;
    } else {
      // Kept from before models were kept, or removed by hand: rendered again as for an up.
      opLog.system(`[dockbot] no kept model of ${short}: rendering ${file} again`);
      const prepared = await prepareModel(
        {
          compose,
          store,
          portRange: this.deps.options.portRange ?? { from: 20000, to: 29999 },
          ...(this.deps.options.probePort === undefined
            ? {}
            : { probePort: this.deps.options.probePort }),
        },
        project,
        version,
        target,
        (line) => opLog.system(line),
      );
      rendered = prepared.rendered;
      ports = prepared.ports;
      primaryService = prepared.primaryService;
    }
    this.throwIfAborted(io);
    const withPorts = await this.saveVersion(version, {
      ports,
      ...(primaryService === undefined ? {} : { primaryService }),
    });
    const probe = this.probeUrlOf(project, withPorts);
    const running = builtImagesByService(await readCurrentModel(dir));
    const wanted = Object.entries(running).map(([service, image]) => ({
      service,
      image,
      kept: deploy.images?.[service],
    }));
    const keptRepos = wanted.flatMap((w) => (w.kept === undefined ? [] : [imageRepoOf(w.kept)]));
    const present = new Set(await compose.imageTags([...new Set(keptRepos)], io));
    const missing = wanted.filter((w) => w.kept === undefined || !present.has(w.kept));
    await this.makeRoom(project, version, io, opLog);
    const up = { ...target, rendered };
    if (missing.length === 0) {
      for (const w of wanted) {
        if (w.kept === undefined) continue;
        opLog.system(`[dockbot] ${w.service} runs the kept image ${w.kept} as ${w.image}`);
        await compose.tagImage(w.kept, w.image, io);
      }
      opLog.system(
        `[dockbot] docker compose up without building (project ${version.composeProject})`,
      );
      await compose.up(up, { build: false });
    } else {
      const names = missing.map((w) => w.kept ?? `${w.service} (never kept)`).join(", ");
      opLog.system(
        `[dockbot] the kept images of ${short} are gone (${names}): building them again`,
      );
      try {
        await compose.up(up);
      } catch (error) {
        throw new Error(
          `the rollback to ${short} cannot start: its kept images are gone (${names}) and building them again failed: ${oneLine((error as Error).message ?? String(error))}`,
          { cause: error },
        );
      }
    }
    // Docker runs the kept deploy from here on, whatever its health check says.
    const started = await this.saveVersion(withPorts, { deployedSha: deploy.sha });
    await waitForHealth(
      { compose },
      {
        projectName: version.composeProject,
        timeoutSeconds: this.deps.options.healthTimeoutSeconds ?? 120,
        ...probe,
        io,
        log: (line) => opLog.system(line),
      },
    );
    // Built again and verified: kept again under the tags the deploy recorded.
    for (const w of missing) {
      if (w.kept === undefined) continue;
      try {
        await compose.tagImage(w.image, w.kept, io);
        opLog.system(`[dockbot] kept the rebuilt image of ${w.service} as ${w.kept}`);
      } catch (error) {
        opLog.system(
          `[dockbot] could not keep the rebuilt image of ${w.service} as ${w.kept}: ${oneLine((error as Error).message ?? String(error))}`,
        );
      }
    }
    return this.saveVersion(started, { state: "running", urls: this.urlsOf(ports) });
  }

  /**
   * A manual rollback (docs/api.md, "Rollback"): back to the verified deploy before the current
   * one (the one named when it was asked for); the deploys newer than it are dropped and their
   * kept images go.
   */
  private async rollback(
    op: OperationRecord,
    project: ProjectRecord,
    version: VersionRecord,
    io: RunIo,
    opLog: OperationLog,
  ): Promise<VersionRecord> {
    const plan = planRollback(historyOf(version), op.sha);
    if (!plan.ok) throw new Error(`cannot roll back: ${plan.reason}`);
    opLog.system(
      `[dockbot] rolling back to ${plan.target.sha.slice(0, 8)} (verified ${plan.target.deployedAt})`,
    );
    const back = await this.restoreDeploy(project, version, plan.target, io, opLog);
    // It passed its health check again just now: that is when it was last deployed (what idle
    // stop counts from, docs/api.md "Idle stop").
    const deployedAt = new Date().toISOString();
    const [, ...older] = plan.kept;
    const saved = await this.saveVersion(back, {
      lastGood: { sha: plan.target.sha, deployedAt },
      goodDeploys: [{ ...plan.target, deployedAt }, ...older],
    });
    const dir = this.deps.git.checkoutDir(project.name, version.name);
    await this.pruneDeploys(saved, dir, [...plan.dropped, ...plan.kept], plan, io, opLog);
    return saved;
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
        throwIfAborted: () => this.throwIfAborted(io),
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
   * The project's `healthPath` on the primary service's first published TCP port, asked on this
   * host (docs/api.md, "Health"); an error when the version has no such port to ask.
   */
  private probeUrlOf(project: ProjectRecord, version: VersionRecord): { probeUrl?: string } {
    if (project.healthPath === undefined) return {};
    const port = version.ports.find(
      (p) => p.service === version.primaryService && p.protocol === "tcp",
    );
    if (!port) {
      throw new HealthCheckError(
        `healthPath ${project.healthPath} is set but the version has no primary service with a published TCP port`,
      );
    }
    return { probeUrl: `http://127.0.0.1:${port.hostPort}${project.healthPath}` };
  }

  /** docs/api.md: one URL per published TCP port, on the host of DOCKBOT_PUBLIC_URL. */
  private urlsOf(ports: VersionRecord["ports"]): string[] {
    return ports.filter((p) => p.protocol === "tcp").map((p) => this.urlFor(p.hostPort));
  }

  /** The version's rendered model as a compose target, when it ran from one. */
  private async renderedTarget(project: ProjectRecord, version: VersionRecord, io: RunIo) {
    const dir = this.deps.git.checkoutDir(project.name, version.name);
    const found = await readRenderedModel(dir);
    if (!found) return undefined;
    const target = {
      dir,
      file: path.basename(found.rendered),
      rendered: found.rendered,
      projectName: version.composeProject,
      env: project.env,
      ...io,
    };
    return { target, services: found.builtServices };
  }

  private async down(
    project: ProjectRecord,
    version: VersionRecord,
    io: RunIo,
    opLog: OperationLog,
  ): Promise<VersionRecord> {
    const rendered = await this.renderedTarget(project, version, io);
    const target = rendered?.target ?? (await this.composeTarget(project, version, io));
    opLog.system(`[dockbot] docker compose down (project ${version.composeProject})`);
    if (target) await this.deps.compose.down(target);
    else
      await this.deps.compose.removeByLabel(version.composeProject, {
        keepVolumes: true,
        images: false,
        ...io,
      });
    return this.saveVersion(version, { state: "off", urls: [] });
  }

  private async delete(
    op: OperationRecord,
    project: ProjectRecord,
    version: VersionRecord,
    io: RunIo,
    opLog: OperationLog,
  ): Promise<void> {
    const keepVolumes = op.options?.keepVolumes ?? false;
    const rendered = await this.renderedTarget(project, version, io);
    const target = rendered?.target ?? (await this.composeTarget(project, version, io));
    opLog.system(
      `[dockbot] removing containers, images, networks${keepVolumes ? "" : ", volumes"} of ${version.composeProject}`,
    );
    // The kept images of older deploys too, also of services the current model no longer has.
    const services = [
      ...new Set([
        ...(rendered?.services ?? []),
        ...historyOf(version).flatMap((d) => Object.keys(d.images ?? {})),
      ]),
    ];
    if (target) await this.deps.compose.remove({ ...target, keepVolumes, services });
    else
      await this.deps.compose.removeByLabel(version.composeProject, {
        keepVolumes,
        images: true,
        services,
        ...io,
      });
    opLog.system("[dockbot] removing the checkout");
    const checkoutDir = this.deps.git.checkoutDir(project.name, version.name);
    await rm(renderedModelPath(checkoutDir), { force: true });
    await removeKeptModels(checkoutDir);
    await this.deps.git.removeCheckout(project.name, version.name);
    await this.persist(() => this.deps.store.deleteVersion(version.id));
    this.deps.bus.emit("version.deleted", version);
    if (await this.deps.service.finishProjectDeletion(project.id)) {
      await this.deps.git.removeMirror(project.name);
    }
  }

  /** The checkout and compose file of a version, when both are still there. */
  private async composeTarget(project: ProjectRecord, version: VersionRecord, io: RunIo) {
    const dir = this.deps.git.checkoutDir(project.name, version.name);
    try {
      const file = await this.deps.compose.findComposeFile(dir, project.composeFile);
      return { dir, file, projectName: version.composeProject, env: project.env, ...io };
    } catch {
      // No checkout (never deployed, or removed by hand) or no compose file in it: the caller
      // falls back to removing the project's objects by their compose label.
      return undefined;
    }
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

  private throwIfAborted(io: RunIo): void {
    if (io.signal?.aborted) throw new OperationAbortedError("aborted");
  }

  private urlFor(port: number): string {
    const url = new URL(this.deps.options.publicUrl);
    return `${url.protocol}//${url.hostname}:${port}`;
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
      if (version.ports.length > 0) patch.urls = this.urlsOf(version.ports);
      else {
        // A version started before dockbot allocated ports: what Docker published.
        const ports = await this.deps.compose.publishedPorts(version.composeProject);
        patch.urls = ports.map((p) => this.urlFor(p.port));
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
