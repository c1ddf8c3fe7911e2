// The wait after `up` (docs/api.md, "Health"): inspect the version's containers every
// HEALTH_POLL_MS until health.ts says healthy or failed or the deadline passes, then, when the
// project has a `healthPath`, ask the primary service for it where the preview router would
// reach it (steps/deploy-steps.ts locates it). A failure names each failing
// service with its state and puts its last log lines in the operation log.
import { AppError } from "../errors.js";
import {
  describeProblems,
  HEALTH_POLL_MS,
  judgeHealth,
  type ContainerState,
  type ServiceProblem,
} from "./health.js";
import type { ComposePort, RunIo } from "./ports.js";

/** Log lines of a failing container copied into the operation log. */
export const HEALTH_LOG_TAIL = 20;
/** How long one `healthPath` request may take. */
const PROBE_TIMEOUT_MS = 5000;

/** An `up` whose services did not become healthy, or whose health could not be learned. */
export class HealthCheckError extends AppError {
  override readonly name = "HealthCheckError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("unprocessable", message, undefined, options);
  }
}

export interface HealthWaitOptions {
  projectName: string;
  timeoutSeconds: number;
  /** The project's `healthPath` on the primary service, when the project sets one. */
  probe?: HealthProbe;
  io: RunIo;
  /** A line for the operation log. */
  log: (line: string) => void;
}

/** Where a project's `healthPath` is asked. */
export interface HealthProbe {
  /** What is asked, for the log and the error while it cannot be located: "/healthz of web". */
  what: string;
  /**
   * The URL to ask, looked up again each time the containers are healthy (a container
   * recreated may be reached elsewhere); undefined while no running container of it can be
   * reached.
   */
  url: () => Promise<string | undefined>;
}

export interface HealthWaitDeps {
  compose: Pick<ComposePort, "inspectContainers" | "containerLogs">;
  fetch?: typeof fetch;
  now?: () => number;
}

/** Resolves after `ms`, or rejects as soon as the operation is aborted. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new Error("aborted"));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error("aborted"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : "";
  return cause && !message.includes(cause) ? `${message} (${cause})` : message;
}

/** Waits until the version's services are healthy; throws HealthCheckError when they are not. */
export async function waitForHealth(deps: HealthWaitDeps, o: HealthWaitOptions): Promise<void> {
  const now = deps.now ?? Date.now;
  const deadline = now() + o.timeoutSeconds * 1000;
  const baseline = new Map<string, number>();
  let said = "";
  o.log(`[dockbot] waiting up to ${o.timeoutSeconds} s for the services to be healthy`);
  for (;;) {
    let containers: ContainerState[];
    try {
      containers = await deps.compose.inspectContainers(o.projectName, o.io);
    } catch (error) {
      if (o.io.signal?.aborted) throw error;
      throw new HealthCheckError(
        `the health check could not inspect the containers: ${reasonOf(error)}`,
        { cause: error },
      );
    }
    for (const c of containers) if (!baseline.has(c.id)) baseline.set(c.id, c.restartCount);
    const at = now();
    const verdict = judgeHealth(containers, { now: at, baseline, final: at >= deadline });
    if (verdict.kind === "failed") {
      await logFailures(deps, o, verdict.failures);
      const timedOut = at >= deadline ? ` after ${o.timeoutSeconds} s` : "";
      throw new HealthCheckError(
        `health check failed${timedOut}: ${describeProblems(verdict.failures)}`,
      );
    }
    if (verdict.kind === "healthy") {
      if (o.probe === undefined) break;
      const url = await locate(o.probe, o.io);
      const answer =
        url === undefined
          ? { ok: false as const, what: "has no running container to ask" }
          : await probe(deps, url, o.io);
      const asked = url ?? o.probe.what;
      if (answer.ok) {
        o.log(`[dockbot] ${asked} answered ${answer.status}`);
        break;
      }
      if (at >= deadline) {
        throw new HealthCheckError(
          `health check failed after ${o.timeoutSeconds} s: ${asked} ${answer.what}`,
        );
      }
      const line = `[dockbot] waiting for ${asked} (${answer.what})`;
      if (line !== said) o.log((said = line));
    } else {
      const line = `[dockbot] waiting for ${describeProblems(verdict.pending)}`;
      if (line !== said) o.log((said = line));
    }
    await pause(Math.max(0, Math.min(HEALTH_POLL_MS, deadline - at)), o.io.signal);
  }
  o.log("[dockbot] services are healthy");
}

async function locate(p: HealthProbe, io: RunIo): Promise<string | undefined> {
  try {
    return await p.url();
  } catch (error) {
    if (io.signal?.aborted) throw error;
    throw new HealthCheckError(`the health check could not locate ${p.what}: ${reasonOf(error)}`, {
      cause: error,
    });
  }
}

async function probe(
  deps: HealthWaitDeps,
  url: string,
  io: RunIo,
): Promise<{ ok: true; status: number } | { ok: false; what: string }> {
  const timeout = AbortSignal.timeout(PROBE_TIMEOUT_MS);
  const signal = io.signal ? AbortSignal.any([io.signal, timeout]) : timeout;
  try {
    // A redirect counts as an answer (2xx/3xx): it is not followed off the service.
    const res = await (deps.fetch ?? fetch)(url, { redirect: "manual", signal });
    await res.body?.cancel();
    if (res.status >= 200 && res.status < 400) return { ok: true, status: res.status };
    return { ok: false, what: `answered ${res.status}` };
  } catch (error) {
    if (io.signal?.aborted) throw error;
    return { ok: false, what: `did not answer: ${reasonOf(error)}` };
  }
}

async function logFailures(
  deps: HealthWaitDeps,
  o: HealthWaitOptions,
  failures: readonly ServiceProblem[],
): Promise<void> {
  for (const f of failures) {
    if (f.containerId === "") {
      o.log(`[dockbot] ${f.state}`);
      continue;
    }
    o.log(`[dockbot] service ${f.service} (container ${f.container}): ${f.state}`);
    try {
      const lines = await deps.compose.containerLogs(f.containerId, HEALTH_LOG_TAIL, o.io);
      o.log(`[dockbot] last ${lines.length} log lines of ${f.container}:`);
      for (const line of lines) o.log(`[${f.service}] ${line}`);
    } catch (error) {
      o.log(`[dockbot] the log of ${f.container} could not be read: ${reasonOf(error)}`);
    }
  }
}
