// Posts the outcome of deploys back to GitLab as commit statuses (API.md "Posted back to
// GitLab"). The only user of @gitbeaker/rest.
//
// Invariants:
// - Off the hot path: bus listeners only append to a per-operation promise chain and return;
//   nothing here can throw into the runner, delay it, or fail a deploy.
// - Per operation, posts go out in event order (pending, running, then the final state) and each
//   outcome is appended to `operation.gitlabReports` before the next post starts, so appends of
//   one operation never overwrite each other.
// - The token never leaves the Authorization header: error texts are built from the status code
//   and GitLab's message, scrubbed of the token, and raw errors (whose `cause` holds the request
//   with its headers) are never logged.
import {
  Commits,
  GitbeakerRequestError,
  GitbeakerRetryError,
  GitbeakerTimeoutError,
} from "@gitbeaker/rest";
import type { Logger } from "pino";
import type { EventBus } from "../deploy/events.js";
import type { Store } from "../store/store.js";
import type { GitlabReport, OperationRecord } from "../store/types.js";

export interface GitlabReporterRetry {
  /** Total tries per status, the first one included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface GitlabReporterDeps {
  bus: EventBus;
  store: Store;
  /** GitLab base URL, e.g. https://gitlab.com (the API is under /api/v4). */
  gitlabUrl: string;
  token: string;
  /** dockbot's public base URL; statuses link to `<publicUrl>/operations/<id>`. */
  publicUrl: string;
  logger: Logger;
  retry?: GitlabReporterRetry;
}

export interface GitlabReporter {
  /** Stops listening and cuts retry waits short; posts in flight still record their outcome. */
  stop(): void;
  /** Resolves when every post in flight (and its record) is done: for tests and shutdown. */
  idle(): Promise<void>;
}

type CommitState = "pending" | "running" | "success" | "failed" | "canceled";

/** What the reporter knows about an operation across its events. */
interface Tracked {
  chain: Promise<void>;
  /** Resolved once, on the first event: undefined when nothing is to be posted. */
  target?: Promise<Target | undefined>;
}

interface Target {
  gitlabProjectId: number;
  sha: string;
  versionName: string;
  ref?: string;
  /** Values that must never reach GitLab (the project's env values and webhook secret). */
  secrets: string[];
}

const DEFAULT_RETRY: GitlabReporterRetry = { attempts: 6, baseDelayMs: 1_000, maxDelayMs: 60_000 };
/** GitLab's limit for name, target_url and description of a commit status. */
const MAX_FIELD = 255;
/** A single request may not hang a report forever (gitbeaker's default is 5 minutes). */
const REQUEST_TIMEOUT_MS = 30_000;

export function createGitlabReporter(deps: GitlabReporterDeps): GitlabReporter {
  const retry = deps.retry ?? DEFAULT_RETRY;
  const log = deps.logger.child({ module: "gitlab-reporter" });
  const commits = new Commits({
    host: deps.gitlabUrl.replace(/\/+$/, ""),
    token: deps.token,
    queryTimeout: REQUEST_TIMEOUT_MS,
  });
  const publicUrl = deps.publicUrl.replace(/\/+$/, "");
  const tracked = new Map<string, Tracked>();
  const inFlight = new Set<Promise<void>>();
  const stopping = new AbortController();

  const scrub = (text: string, extra: readonly string[] = []): string => {
    let out = text;
    for (const secret of [deps.token, ...extra]) {
      // Short values (e.g. an env value "1") would mangle every text; they are not secrets
      // worth that, and the runner masks logs anyway.
      if (secret.length >= 4) out = out.split(secret).join("***");
    }
    return out;
  };

  async function resolveTarget(op: OperationRecord): Promise<Target | undefined> {
    if (op.kind !== "up" || !op.sha) return undefined;
    const project = await deps.store.getProject(op.projectId);
    const gitlabProjectId = project?.gitlab?.projectId;
    if (!project || gitlabProjectId === undefined) return undefined;
    // Read the version now: by the time the operation finishes it may be deleted.
    const version = await deps.store.getVersion(op.versionId);
    const target: Target = {
      gitlabProjectId,
      sha: op.sha,
      versionName: version?.name ?? op.versionId,
      secrets: [...Object.values(project.env), project.webhookSecret],
    };
    // A merge request's commit lives on its source branch, whose name dockbot does not keep:
    // GitLab picks the ref itself when none is given.
    if (version && (version.ref.type === "branch" || version.ref.type === "tag")) {
      target.ref = version.ref.name;
    }
    return target;
  }

  function describe(state: CommitState, op: OperationRecord, target: Target): string {
    switch (state) {
      case "pending":
        return `Deploy of ${target.versionName} queued`;
      case "running":
        return `Deploying ${target.versionName}`;
      case "success":
        return `${target.versionName} is running`;
      case "failed": {
        const firstLine = (op.error ?? "")
          .split(/\r?\n/)
          .find((l) => l.trim() !== "")
          ?.trim();
        return firstLine ? firstLine : "Deploy failed";
      }
      case "canceled":
        return op.status === "superseded" ? "Superseded by a newer deploy" : "Deploy canceled";
    }
  }

  function stateFor(
    event: "queued" | "started" | "finished",
    op: OperationRecord,
  ): CommitState | undefined {
    if (event === "queued") return "pending";
    if (event === "started") return "running";
    switch (op.status) {
      case "succeeded":
        return "success";
      case "failed":
        return "failed";
      case "canceled":
      case "superseded":
        return "canceled";
      default:
        return undefined;
    }
  }

  async function post(
    state: CommitState,
    op: OperationRecord,
    target: Target,
  ): Promise<GitlabReport> {
    const targetUrl = `${publicUrl}/operations/${encodeURIComponent(op.id)}`;
    const options: { name: string; description: string; targetUrl?: string; ref?: string } = {
      name: clip(`dockbot/${target.versionName}`),
      description: clip(scrub(describe(state, op, target), target.secrets)),
    };
    // GitLab answers 400 for a target_url it does not accept; a status without a link is
    // better than none.
    if (/^https?:\/\//i.test(targetUrl) && targetUrl.length <= MAX_FIELD)
      options.targetUrl = targetUrl;
    if (target.ref !== undefined && target.ref.length <= MAX_FIELD) options.ref = target.ref;

    let attempts = 0;
    let lastError: string;
    for (;;) {
      attempts += 1;
      try {
        await commits.editStatus(target.gitlabProjectId, target.sha, state, options);
        return { state, ok: true, attempts, at: new Date().toISOString() };
      } catch (error) {
        const verdict = classify(error);
        lastError = scrub(verdict.message, target.secrets);
        if (verdict.kind === "done") {
          // "Cannot transition status via :enqueue from :pending": GitLab has that state (or a
          // later one) already, e.g. a redelivered event or another replica's post.
          return { state, ok: true, attempts, at: new Date().toISOString() };
        }
        if (verdict.kind === "fatal" || attempts >= retry.attempts || stopping.signal.aborted)
          break;
        const delay = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempts - 1));
        // Jitter (50-100 %) so replicas and operations don't retry in lockstep.
        await sleep(delay * (0.5 + Math.random() / 2), stopping.signal);
      }
    }
    if (stopping.signal.aborted) lastError = `${lastError} (reporter stopped)`;
    return { state, ok: false, attempts, at: new Date().toISOString(), error: clip(lastError) };
  }

  async function record(opId: string, report: GitlabReport): Promise<void> {
    const current = await deps.store.getOperation(opId);
    if (!current) return;
    await deps.store.updateOperation(opId, {
      gitlabReports: [...(current.gitlabReports ?? []), report],
    });
  }

  async function report(
    event: "queued" | "started" | "finished",
    op: OperationRecord,
    entry: Tracked,
  ): Promise<void> {
    entry.target ??= resolveTarget(op);
    const target = await entry.target;
    const state = stateFor(event, op);
    if (!target || !state) return;
    const outcome = await post(state, op, target);
    const fields = { operationId: op.id, state, attempts: outcome.attempts, sha: target.sha };
    if (outcome.ok) log.debug(fields, "commit status posted");
    else log.warn({ ...fields, error: outcome.error }, "commit status not posted");
    await record(op.id, outcome);
  }

  function enqueue(event: "queued" | "started" | "finished", op: OperationRecord): void {
    if (op.kind !== "up" || !op.sha) return;
    let entry = tracked.get(op.id);
    if (!entry) {
      entry = { chain: Promise.resolve() };
      tracked.set(op.id, entry);
    }
    const current = entry;
    const step = current.chain
      .then(() => report(event, op, current))
      .catch((error: unknown) => {
        // Store or programming errors: keep them off the deploy, but never silent.
        log.error(
          { operationId: op.id, event, error: scrub(errorText(error)) },
          "reporting to GitLab failed",
        );
      });
    current.chain = step;
    inFlight.add(step);
    void step.finally(() => {
      inFlight.delete(step);
      if (event === "finished" && tracked.get(op.id)?.chain === step) tracked.delete(op.id);
    });
  }

  const onQueued = (op: OperationRecord): void => enqueue("queued", op);
  const onStarted = (op: OperationRecord): void => enqueue("started", op);
  const onFinished = (op: OperationRecord): void => enqueue("finished", op);
  deps.bus.on("operation.queued", onQueued);
  deps.bus.on("operation.started", onStarted);
  deps.bus.on("operation.finished", onFinished);

  return {
    stop() {
      deps.bus.off("operation.queued", onQueued);
      deps.bus.off("operation.started", onStarted);
      deps.bus.off("operation.finished", onFinished);
      stopping.abort();
    },
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}

type Verdict = { kind: "retry" | "fatal" | "done"; message: string };

/** Sorts a failed request into retry (transient), done (already in that state) or fatal. */
function classify(error: unknown): Verdict {
  if (error instanceof GitbeakerRequestError) {
    const cause = error.cause as
      { response?: { status?: number }; description?: unknown } | undefined;
    const status = cause?.response?.status;
    const description = typeof cause?.description === "string" ? cause.description : error.message;
    const message = `HTTP ${status ?? "?"}: ${firstLine(description) || "no message"}`;
    if (status === undefined) return { kind: "retry", message };
    if (status === 400 && /Cannot transition status via :\w+ from :\w+/.test(description)) {
      return { kind: "done", message };
    }
    // 409: "Another update to this commit status is in progress" (a 5 s lock per SHA).
    if (status === 409 || status === 429 || status >= 500) return { kind: "retry", message };
    return { kind: "fatal", message };
  }
  // gitbeaker already retried 429/502 ten times in a row, or the request timed out: transient.
  if (error instanceof GitbeakerRetryError || error instanceof GitbeakerTimeoutError) {
    return { kind: "retry", message: firstLine(error.message) };
  }
  // fetch rejects with a TypeError ("fetch failed") whose cause names the network error.
  return { kind: "retry", message: `network error: ${errorText(error)}` };
}

function errorText(error: unknown): string {
  if (!(error instanceof Error)) return firstLine(String(error));
  const cause = error.cause;
  const code =
    typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
      ? ` (${cause.code})`
      : "";
  return `${firstLine(error.message)}${code}`;
}

function firstLine(text: string): string {
  return (text.split(/\r?\n/)[0] ?? "").trim();
}

function clip(text: string): string {
  const line = text.replace(/[\r\n]+/g, " ");
  return line.length > MAX_FIELD ? `${line.slice(0, MAX_FIELD - 3)}...` : line;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
