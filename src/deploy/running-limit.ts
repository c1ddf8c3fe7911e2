// The running limit (docs/api.md, "Idle stop and limits"): DOCKBOT_MAX_RUNNING versions of all
// projects, and a project's `maxRunning` versions of its own, run at once. An up that would go past
// one first turns off the least recently used version that may go, by an operation `down` with
// trigger `{source: "policy", reason: "limit"}`, and goes on once that has stopped; when none may
// go, it fails with an error that starts with "limit:" and names the limit.
//
// Invariants:
// - The choice is one pure function (`chooseRunningLimit`) of facts read just before it.
// - What counts: a version with an up or rollback under way (state `deploying`, or such an
//   operation running), or one Docker runs a container of, unless a down or delete of it is
//   running (it is on its way out). Docker, not the store's `state`, says what runs: a running
//   version with a redeploy queued shows `queued` but still runs. The version being turned on
//   never counts against itself.
// - What may go: a counted version with no operation queued or running (never the one being
//   turned on, never one somebody else is acting on), not exempt by its project's `autoStop`
//   (policyExemption: the default branch and tags, the same rule as idle stop). Least recently
//   used first: the oldest last sign of use (lastActivityAt, as idle stop reads it), then by name.
// - No deadlock at any DOCKBOT_CONCURRENCY, on any number of replicas: the up never waits for a
//   queued operation. It stores the victim's down as already running and held by its own runner
//   (Store.startOperation, which refuses when the victim has an operation queued or running), and
//   its runner runs that down itself, in the up's slot, before its own compose up. Two ups that
//   pick one victim at once: one start goes through, the other looks again (the victim is then
//   on its way out and no longer counts). Each up sees the other's `deploying` written before it
//   looked, so two ups never both fit into the last place.
import { AppError } from "../errors.js";
import { newId } from "../ids.js";
import type { Store } from "../store/store.js";
import type {
  OperationRecord,
  OperationTrigger,
  ProjectRecord,
  VersionRecord,
  VersionState,
} from "../store/types.js";
import { lastActivityAt } from "./idle-stop.js";
import { autoStopOf, policyExemption } from "./project-settings.js";

/** The trigger of every down the running limit makes (docs/api.md, "Resources", Operation). */
export const LIMIT_TRIGGER: OperationTrigger = { source: "policy", reason: "limit" };

/** Looks (and downs) one up makes at most before it gives up on making room. */
const MAX_ROUNDS = 20;

/** An up the running limit refuses: the message starts with "limit:" and names the limit. */
export class RunningLimitError extends AppError {
  override readonly name = "RunningLimitError";
  constructor(message: string) {
    super("conflict", message);
  }
}

/** What the choice knows of one version of the store. */
export interface LimitFacts {
  id: string;
  name: string;
  projectId: string;
  projectName: string;
  state: VersionState;
  /** Docker runs at least one container of the version's compose project. */
  dockerRunning: boolean;
  /** The version's queued and running operations. */
  active: ReadonlyArray<Pick<OperationRecord, "kind" | "status">>;
  /** Why dockbot never turns it off itself, if it never does. */
  exempt?: "tag" | "default-branch" | undefined;
  /** Its last sign of use (ms): the older, the sooner it goes. */
  lastUsedAt: number;
}

export interface LimitInput {
  /** The version being turned on. */
  self: { id: string; projectId: string; projectName: string };
  versions: readonly LimitFacts[];
  /** DOCKBOT_MAX_RUNNING; 0: no limit. */
  instanceMax: number;
  /** The project's `maxRunning`; unset: no project limit. */
  projectMax?: number | undefined;
}

export type LimitDecision =
  | { action: "start" }
  | { action: "stop"; victim: LimitFacts; because: string }
  | { action: "refuse"; message: string };

/** Whether a version takes a place under the limits (see the top of this file). */
export function countsAsRunning(v: LimitFacts): boolean {
  const running = v.active.filter((o) => o.status === "running");
  if (running.some((o) => o.kind === "down" || o.kind === "delete")) return false;
  if (v.state === "deploying" || running.some((o) => o.kind === "up" || o.kind === "rollback"))
    return true;
  return v.dockerRunning;
}

/** Why a counted version may not be turned off for the limit; undefined when it may. */
function whyKept(v: LimitFacts): string | undefined {
  if (v.active.length > 0) return "an operation of it is queued or running";
  if (v.exempt === "tag") return "a tag";
  if (v.exempt === "default-branch") return "the default branch";
  return undefined;
}

const NAMED_AT_MOST = 5;

function refusal(what: string, counted: readonly LimitFacts[]): string {
  const named = counted
    .slice(0, NAMED_AT_MOST)
    .map((v) => `${v.projectName}/${v.name} (${whyKept(v) ?? "kept"})`);
  const more = counted.length > NAMED_AT_MOST ? ` and ${counted.length - NAMED_AT_MOST} more` : "";
  return `limit: ${what} and none can be turned off: ${named.join(", ")}${more}`;
}

function leastRecentlyUsed(candidates: readonly LimitFacts[]): LimitFacts | undefined {
  return [...candidates].sort(
    (a, b) =>
      a.lastUsedAt - b.lastUsedAt ||
      a.projectName.localeCompare(b.projectName) ||
      a.name.localeCompare(b.name),
  )[0];
}

const plural = (n: number) => `${n} version${n === 1 ? "" : "s"}`;

/**
 * Whether the version may start now, which version goes first to make room (one per call: the
 * caller stops it and asks again), or why it may not start. The project's limit is looked at
 * first: making room in the project makes room in the instance too.
 */
export function chooseRunningLimit(input: LimitInput): LimitDecision {
  const counted = input.versions.filter((v) => v.id !== input.self.id && countsAsRunning(v));
  const stoppable = (v: LimitFacts) => whyKept(v) === undefined;
  const { projectMax, instanceMax } = input;
  if (projectMax !== undefined) {
    const mine = counted.filter((v) => v.projectId === input.self.projectId);
    if (mine.length + 1 > projectMax) {
      const what = `${plural(mine.length)} of project '${input.self.projectName}' running (its maxRunning is ${projectMax})`;
      const victim = leastRecentlyUsed(mine.filter(stoppable));
      if (!victim) return { action: "refuse", message: refusal(what, mine) };
      return { action: "stop", victim, because: `limit: ${what}` };
    }
  }
  if (instanceMax > 0 && counted.length + 1 > instanceMax) {
    const what = `${plural(counted.length)} running (DOCKBOT_MAX_RUNNING=${instanceMax})`;
    const victim = leastRecentlyUsed(counted.filter(stoppable));
    if (!victim) return { action: "refuse", message: refusal(what, counted) };
    return { action: "stop", victim, because: `limit: ${what}` };
  }
  return { action: "start" };
}

// ------------------------------------------------------------------ acting on the choice

export interface RunningLimitDeps {
  store: Store;
  /** Compose projects Docker runs containers of (compose.ts `runningProjects`). */
  runningProjects: () => Promise<Map<string, { running: number; total: number }>>;
  /** The project's default branch from its local mirror (git.ts `defaultBranch`). */
  defaultBranch: (project: string) => Promise<string | undefined>;
  /** DOCKBOT_MAX_RUNNING; 0: no instance limit. */
  instanceMax: number;
}

export interface MakeRoomContext {
  /** The runner that will hold the down (its instance id) and how long its lease is. */
  owner: string;
  leaseMs: number;
  log: (line: string) => void;
  /** Runs the stored, running down to its end and returns it as stored then. */
  runStarted: (op: OperationRecord) => Promise<OperationRecord | undefined>;
  throwIfAborted: () => void;
}

/**
 * Makes room for `version` of `project` under the running limits before it starts, turning off
 * least recently used versions one at a time; throws RunningLimitError when it cannot.
 */
export async function makeRoom(
  deps: RunningLimitDeps,
  project: ProjectRecord,
  version: VersionRecord,
  ctx: MakeRoomContext,
): Promise<void> {
  if (deps.instanceMax === 0 && project.maxRunning === undefined) return;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    ctx.throwIfAborted();
    const decision = chooseRunningLimit({
      self: { id: version.id, projectId: project.id, projectName: project.name },
      versions: await gatherFacts(deps, project, version),
      instanceMax: deps.instanceMax,
      projectMax: project.maxRunning,
    });
    if (decision.action === "start") return;
    if (decision.action === "refuse") throw new RunningLimitError(decision.message);
    const { victim } = decision;
    const at = Date.now();
    const op: OperationRecord = {
      id: newId(at),
      projectId: victim.projectId,
      versionId: victim.id,
      kind: "down",
      trigger: LIMIT_TRIGGER,
      status: "running",
      queuedAt: new Date(at).toISOString(),
      startedAt: new Date(at).toISOString(),
      owner: ctx.owner,
      leaseUntil: new Date(at + ctx.leaseMs).toISOString(),
    };
    // Somebody acted on the victim meanwhile: look again.
    if (!(await deps.store.startOperation(op))) continue;
    const who = `${victim.projectName}/${victim.name}`;
    ctx.log(
      `[dockbot] ${decision.because}: turning off ${who} first, the least recently used (operation ${op.id})`,
    );
    const done = await ctx.runStarted(op);
    if (done?.status !== "succeeded") {
      throw new RunningLimitError(
        `limit: turning off ${who} to make room ${done?.status ?? "failed"}${done?.error === undefined ? "" : `: ${done.error}`}`,
      );
    }
    ctx.log(`[dockbot] ${who} is off`);
  }
  throw new RunningLimitError(
    `limit: no room after turning off or trying ${MAX_ROUNDS} versions; try again`,
  );
}

/** The facts of every version that counts, read now (Docker, the store, the mirrors). */
async function gatherFacts(
  deps: RunningLimitDeps,
  project: ProjectRecord,
  self: VersionRecord,
): Promise<LimitFacts[]> {
  const { store } = deps;
  // Only the project's versions matter when the instance has no limit.
  const scope = deps.instanceMax === 0 ? project.id : undefined;
  const [versions, active, docker, projects] = await Promise.all([
    store.listVersions(scope),
    store.listOperations({ status: ["queued", "running"] }),
    deps.runningProjects(),
    scope === undefined ? store.listProjects() : Promise.resolve([project]),
  ]);
  const projectById = new Map(projects.map((p) => [p.id, p]));
  const activeOf = new Map<string, OperationRecord[]>();
  for (const op of active) activeOf.set(op.versionId, [...(activeOf.get(op.versionId) ?? []), op]);
  const branches = new Map<string, Promise<string | undefined>>();
  const facts: LimitFacts[] = [];
  for (const v of versions) {
    const owner = projectById.get(v.projectId);
    if (!owner || v.id === self.id) continue;
    const fact: LimitFacts = {
      id: v.id,
      name: v.name,
      projectId: v.projectId,
      projectName: owner.name,
      state: v.state,
      dockerRunning: (docker.get(v.composeProject)?.running ?? 0) > 0,
      active: activeOf.get(v.id) ?? [],
      lastUsedAt: 0,
    };
    if (!countsAsRunning(fact)) continue;
    // The exemption and the last use only of the few that count.
    const autoStop = autoStopOf(owner, 0);
    let defaultBranch: string | undefined;
    if (v.ref.type === "branch" && autoStop.exemptDefaultBranch) {
      let pending = branches.get(owner.name);
      if (!pending) {
        pending = deps.defaultBranch(owner.name);
        branches.set(owner.name, pending);
      }
      defaultBranch = await pending;
    }
    fact.exempt = policyExemption(v.ref, autoStop, defaultBranch);
    const recent = await store.listOperations({ versionId: v.id, newestFirst: true, limit: 5 });
    const lastUp = recent.find(
      (op) => (op.kind === "up" || op.kind === "rollback") && op.finishedAt !== undefined,
    );
    fact.lastUsedAt = lastActivityAt({
      version: v,
      lastUpFinishedAt: lastUp?.finishedAt,
      recentRequestAt: undefined,
    });
    facts.push(fact);
  }
  return facts;
}
