// Whether an `up` is done, failed or still waiting, from what Docker says of the version's
// containers (docs/api.md, "Health"). Pure: compose.ts inspects the containers, health-wait.ts
// polls and acts on the verdict.
//
// The rules, per container:
// - exited (or dead) with code 0: a one-shot service (a migration others wait for), done;
//   with any other code: failed;
// - restarted RESTART_LIMIT times or more since the wait began: failed (a crash loop), whatever
//   state it is in at that moment;
// - running with a healthcheck: done when `healthy`; `starting` and `unhealthy` wait (a check
//   may still pass) until the deadline, then fail;
// - running without a healthcheck: done once it has run SETTLE_MS without a restart (its start
//   time is Docker's, so a restart starts the window again);
// - created, restarting, removing: waiting; paused: failed (nothing will unpause it).

/** What compose.ts reads of one container of the version (`docker inspect`). */
export interface ContainerState {
  id: string;
  /** The container's name, without Docker's leading `/`. */
  name: string;
  /** Its compose service (`com.docker.compose.service`). */
  service: string;
  /** State.Status: created | running | paused | restarting | removing | exited | dead. */
  status: string;
  /** State.Health.Status; absent when the container has no healthcheck. */
  health?: string;
  exitCode: number;
  restartCount: number;
  /** State.StartedAt in epoch milliseconds (0 when never started). */
  startedAt: number;
}

/** How long a service without a healthcheck must stay running before the up counts. */
export const SETTLE_MS = 2000;
/** Restarts during the wait that make a service a crash loop. */
export const RESTART_LIMIT = 2;
/** How often the containers are inspected while waiting. */
export const HEALTH_POLL_MS = 500;

export interface ServiceProblem {
  service: string;
  container: string;
  /** The container's id ("" when there is none). */
  containerId: string;
  /** The state in words, for the operation log and error ("exited with code 3"). */
  state: string;
}

export type HealthVerdict =
  | { kind: "healthy" }
  | { kind: "failed"; failures: ServiceProblem[] }
  | { kind: "waiting"; pending: ServiceProblem[] };

export interface JudgeOptions {
  now: number;
  /** Restart count of each container id when the wait first saw it. */
  baseline: ReadonlyMap<string, number>;
  /** The deadline has passed: whatever still waits has failed. */
  final: boolean;
}

type One = { kind: "done" } | { kind: "failed" | "waiting"; state: string };

function judgeOne(c: ContainerState, o: JudgeOptions): One {
  const restarts = c.restartCount - (o.baseline.get(c.id) ?? c.restartCount);
  if (c.status === "exited" || c.status === "dead") {
    if (c.exitCode === 0 && restarts < RESTART_LIMIT) return { kind: "done" };
    return { kind: "failed", state: `${c.status} with code ${c.exitCode}` };
  }
  if (restarts >= RESTART_LIMIT) {
    // Docker keeps the last exit code only while the container is down between two restarts.
    const code = c.exitCode === 0 ? "" : `, last exit code ${c.exitCode}`;
    return {
      kind: "failed",
      state: `keeps restarting: ${restarts} restarts during the health check${code}`,
    };
  }
  if (c.status === "paused") return { kind: "failed", state: "paused" };
  if (c.status !== "running") return { kind: "waiting", state: c.status };
  if (c.health !== undefined) {
    if (c.health === "healthy") return { kind: "done" };
    return { kind: "waiting", state: c.health };
  }
  const ranMs = o.now - c.startedAt;
  if (ranMs >= SETTLE_MS) return { kind: "done" };
  return { kind: "waiting", state: `running for ${(Math.max(0, ranMs) / 1000).toFixed(1)} s` };
}

/** The verdict on a version's containers right after (or a while after) its `up`. */
export function judgeHealth(containers: readonly ContainerState[], o: JudgeOptions): HealthVerdict {
  if (containers.length === 0) {
    return {
      kind: "failed",
      failures: [
        {
          service: "*",
          container: "",
          containerId: "",
          state: "no containers of the version exist",
        },
      ],
    };
  }
  const failures: ServiceProblem[] = [];
  const pending: ServiceProblem[] = [];
  for (const c of containers) {
    const one = judgeOne(c, o);
    if (one.kind === "done") continue;
    const problem = { service: c.service, container: c.name, containerId: c.id, state: one.state };
    if (one.kind === "failed" || o.final) failures.push(problem);
    else pending.push(problem);
  }
  if (failures.length > 0) return { kind: "failed", failures };
  if (pending.length > 0) return { kind: "waiting", pending };
  return { kind: "healthy" };
}

/** "web (starting), db (restarting)": problems as one line. */
export function describeProblems(problems: readonly ServiceProblem[]): string {
  return problems.map((p) => `${p.service} (${p.state})`).join(", ");
}
