// Idle stop (docs/api.md, "Idle stop and limits"): a running version with no deploy and no request
// through the preview router for its project's `autoStop.idleHours` is turned off by a queued
// operation `down` with trigger `{source: "policy", reason: "idle"}`: containers go, volumes,
// images and the checkout stay, and turning it on again deploys as usual.
//
// Invariants:
// - The decision is one pure function (`idleVerdict`) of facts read just before it; the clock is
//   injected, so tests move time instead of waiting for hours.
// - Nothing is queued for a version with an operation queued or running (a down on its way, or a
//   deploy somebody asked for): several replicas sharing one MongoDB each look at least once a
//   minute, and the second to look finds the first one's down and leaves it alone. Two that look
//   at the same moment both decide to stop it, but the down is stored only with no operation of
//   the version queued or running, checked in the same step (Store.enqueueOperationIfIdle).
// - The default branch (the mirror's HEAD, read locally) and tags are exempt unless the project
//   sets `exemptDefaultBranch` / `exemptTags` to false; `idleHours: 0` never stops anything.
import type { Logger } from "pino";
import type { Store } from "../store/store.js";
import type {
  OperationRecord,
  OperationTrigger,
  ProjectRecord,
  VersionRecord,
} from "../store/types.js";
import { autoStopOf, policyExemption, type EffectiveAutoStop } from "./project-settings.js";

/** The trigger of every idle stop (docs/api.md, "Resources", Operation). */
export const IDLE_TRIGGER: OperationTrigger = { source: "policy", reason: "idle" };

/** How often the instance looks for idle versions (docs/api.md: at least once a minute). */
export const IDLE_CHECK_MS = 60_000;

const HOUR_MS = 3_600_000;

/** What the decision about one version rests on. */
export interface IdleFacts {
  version: Pick<VersionRecord, "state" | "ref" | "lastGood" | "lastRequestAt" | "updatedAt">;
  autoStop: EffectiveAutoStop;
  /** The repository's default branch; undefined when unknown (then no branch is exempt as it). */
  defaultBranch: string | undefined;
  /** When the version's newest finished `up` (or `rollback`) ended, ISO. */
  lastUpFinishedAt: string | undefined;
  /** The newest request this replica saw that is not stored yet (ms), see request-tracker.ts. */
  recentRequestAt: number | undefined;
  /** An operation of the version is queued or running. */
  busy: boolean;
  now: number;
}

export type IdleVerdict =
  | { stop: true; idleSince: number }
  | {
      stop: false;
      why: "not-running" | "busy" | "never" | "tag" | "default-branch" | "in-use";
      /** `in-use`: when the version becomes idle if nothing happens meanwhile (ms). */
      idleAt?: number;
    };

function parseTime(iso: string | undefined): number | undefined {
  if (iso === undefined) return undefined;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * The version's last sign of use (ms): the newest of its last verified deploy, its last finished
 * up and its last preview request. A version that has none of these (started before dockbot
 * kept them) counts from its last change, never from nothing.
 */
export function lastActivityAt(
  facts: Pick<IdleFacts, "version" | "lastUpFinishedAt" | "recentRequestAt">,
): number {
  const times = [
    parseTime(facts.version.lastGood?.deployedAt),
    parseTime(facts.lastUpFinishedAt),
    parseTime(facts.version.lastRequestAt),
    facts.recentRequestAt,
  ].filter((t): t is number => t !== undefined);
  if (times.length === 0) return parseTime(facts.version.updatedAt) ?? 0;
  return Math.max(...times);
}

/** Whether a version should be turned off now for being idle, and if not, why not. */
export function idleVerdict(facts: IdleFacts): IdleVerdict {
  const { version, autoStop } = facts;
  if (version.state !== "running") return { stop: false, why: "not-running" };
  if (facts.busy) return { stop: false, why: "busy" };
  if (!(autoStop.idleHours > 0)) return { stop: false, why: "never" };
  const exempt = policyExemption(version.ref, autoStop, facts.defaultBranch);
  if (exempt !== undefined) return { stop: false, why: exempt };
  const since = lastActivityAt(facts);
  const idleAt = since + autoStop.idleHours * HOUR_MS;
  if (facts.now >= idleAt) return { stop: true, idleSince: since };
  return { stop: false, why: "in-use", idleAt };
}

/** Requests this replica saw and has not stored yet (src/preview/request-tracker.ts). */
export interface RecentRequests {
  lastRequestAt(versionId: string): number | undefined;
}

export interface IdleStopDeps {
  store: Store;
  /**
   * Queues the down unless the version has an operation queued or running, checked in the same
   * step as the insert (DeployService.requestOperationUnlessBusy: stored, announced, the runner
   * woken); undefined when it had one, e.g. another replica's down queued a moment ago.
   */
  requestDown: (
    version: VersionRecord,
    trigger: OperationTrigger,
  ) => Promise<OperationRecord | undefined>;
  /** The project's default branch from its local mirror (git.ts `defaultBranch`). */
  defaultBranch: (project: string) => Promise<string | undefined>;
  /** DOCKBOT_IDLE_HOURS: the `autoStop.idleHours` of projects that set none. */
  defaultIdleHours: number;
  recentRequests?: RecentRequests;
  now?: () => number;
  logger: Logger;
  /** Default IDLE_CHECK_MS. */
  intervalMs?: number;
}

/** One look at a running version: stopped (the down queued) or left, and why. */
export interface IdleOutcome {
  version: VersionRecord;
  verdict: IdleVerdict;
  operation?: OperationRecord;
}

export class IdleStop {
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly deps: IdleStopDeps) {
    this.now = deps.now ?? Date.now;
    this.log = deps.logger.child({ component: "idle-stop" });
  }

  /** Looks once now, then every interval. */
  start(): void {
    if (this.timer) return;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.deps.intervalMs ?? IDLE_CHECK_MS);
    this.timer.unref();
  }

  /** Stops looking; resolves when a look under way is done. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.chain;
  }

  /**
   * Looks at every running version once (after a look under way, never two at once) and queues
   * a down for each idle one. Resolves with what it decided about each running version.
   */
  check(): Promise<IdleOutcome[]> {
    const next = this.chain.then(() => this.sweep());
    this.chain = next.catch(() => undefined);
    return next;
  }

  private tick(): void {
    this.check().catch((error: unknown) =>
      this.log.warn({ err: error }, "looking for idle versions failed; trying again later"),
    );
  }

  private async sweep(): Promise<IdleOutcome[]> {
    const { store } = this.deps;
    const running = (await store.listVersions()).filter((v) => v.state === "running");
    if (running.length === 0) return [];
    const projects = new Map((await store.listProjects()).map((p) => [p.id, p]));
    const branches = new Map<string, Promise<string | undefined>>();
    const outcomes: IdleOutcome[] = [];
    for (const candidate of running) {
      const project = projects.get(candidate.projectId);
      // A project being deleted has a delete queued for each version already.
      if (!project || project.deletion) continue;
      try {
        const outcome = await this.look(project, candidate.id, branches);
        if (outcome) outcomes.push(outcome);
      } catch (error) {
        this.log.warn(
          { err: error, versionId: candidate.id, project: project.name },
          "could not decide whether a version is idle",
        );
      }
    }
    return outcomes;
  }

  private async look(
    project: ProjectRecord,
    versionId: string,
    branches: Map<string, Promise<string | undefined>>,
  ): Promise<IdleOutcome | undefined> {
    const { store } = this.deps;
    const autoStop = autoStopOf(project, this.deps.defaultIdleHours);
    if (!(autoStop.idleHours > 0)) return undefined;
    // Read again now: the list is a moment old, and a deploy may have been queued meanwhile.
    const [version, recent] = await Promise.all([
      store.getVersion(versionId),
      store.listOperations({ versionId, newestFirst: true, limit: 5 }),
    ]);
    if (!version) return undefined;
    let defaultBranch: string | undefined;
    if (version.ref.type === "branch" && autoStop.exemptDefaultBranch) {
      let pending = branches.get(project.name);
      if (!pending) {
        pending = this.deps.defaultBranch(project.name);
        branches.set(project.name, pending);
      }
      defaultBranch = await pending;
    }
    const lastUp = recent.find(
      (op) => (op.kind === "up" || op.kind === "rollback") && op.finishedAt !== undefined,
    );
    const verdict = idleVerdict({
      version,
      autoStop,
      defaultBranch,
      lastUpFinishedAt: lastUp?.finishedAt,
      recentRequestAt: this.deps.recentRequests?.lastRequestAt(version.id),
      busy: recent.some((op) => op.status === "queued" || op.status === "running"),
      now: this.now(),
    });
    if (!verdict.stop) return { version, verdict };
    const operation = await this.deps.requestDown(version, IDLE_TRIGGER);
    // Somebody acted on it between the look and the insert (another replica's down, a deploy).
    if (!operation) return { version, verdict: { stop: false, why: "busy" } };
    this.log.info(
      {
        project: project.name,
        version: version.name,
        operationId: operation.id,
        idleSince: new Date(verdict.idleSince).toISOString(),
        idleHours: autoStop.idleHours,
      },
      "turning an idle version off",
    );
    return { version, verdict, operation };
  }
}
