// Posts the outcome of deploys back to GitLab as commit statuses (docs/api.md, "Posted
// back to GitLab"). The only user of @gitbeaker/rest.
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
import type { Logger } from "pino";
import {
  callGitlab,
  clip,
  createGitlabApi,
  errorText,
  makeScrubber,
  MAX_FIELD,
  type GitlabApi,
  type RetryPolicy,
} from "./gitlab-call.js";
import { createReportLog, type ReportLog } from "./report-log.js";
import { deploysCommit, finalStatusOf } from "./review-app-rules.js";
import type { EventBus } from "../deploy/events.js";
import type { Store } from "../store/store.js";
import type { GitlabReport, OperationRecord } from "../store/types.js";

export type GitlabReporterRetry = RetryPolicy;

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
  /** Shared with the other GitLab modules when given (one client, one set of rate limits). */
  api?: GitlabApi;
  /** Shared with the review-app reporter, which appends to the same operations. */
  reportLog?: ReportLog;
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

const DEFAULT_RETRY: GitlabReporterRetry = {
  attempts: 6,
  baseDelayMs: 1_000,
  maxDelayMs: 60_000,
  totalMs: 10 * 60_000,
};

export function createGitlabReporter(deps: GitlabReporterDeps): GitlabReporter {
  const retry = deps.retry ?? DEFAULT_RETRY;
  const log = deps.logger.child({ module: "gitlab-reporter" });
  const { commits } = deps.api ?? createGitlabApi({ url: deps.gitlabUrl, token: deps.token });
  const reportLog = deps.reportLog ?? createReportLog(deps.store);
  const publicUrl = deps.publicUrl.replace(/\/+$/, "");
  const tracked = new Map<string, Tracked>();
  const inFlight = new Set<Promise<void>>();
  const stopping = new AbortController();

  const scrub = (text: string, extra: readonly string[] = []): string =>
    makeScrubber([deps.token, ...extra])(text);

  async function resolveTarget(op: OperationRecord): Promise<Target | undefined> {
    if (!deploysCommit(op) || !op.sha) return undefined;
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
    // A merge request's commit lives on its source branch (kept from its webhook); without it
    // GitLab picks the ref itself.
    if (version && (version.ref.type === "branch" || version.ref.type === "tag")) {
      target.ref = version.ref.name;
    } else if (version?.ref.type === "mergeRequest" && version.ref.sourceBranch !== undefined) {
      target.ref = version.ref.sourceBranch;
    }
    return target;
  }

  function describe(state: CommitState, op: OperationRecord, target: Target): string {
    const rollback = op.kind === "rollback";
    switch (state) {
      case "pending":
        return rollback
          ? `Rollback of ${target.versionName} queued`
          : `Deploy of ${target.versionName} queued`;
      case "running":
        return rollback ? `Rolling ${target.versionName} back` : `Deploying ${target.versionName}`;
      case "success":
        return rollback
          ? `${target.versionName} is running (rolled back)`
          : `${target.versionName} is running`;
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
    return finalStatusOf(op);
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

    const outcome = await callGitlab(
      async () => {
        await commits.editStatus(target.gitlabProjectId, target.sha, state, options);
        return true;
      },
      {
        policy: retry,
        signal: stopping.signal,
        scrub: (text) => scrub(text, target.secrets),
        // "Cannot transition status via :enqueue from :pending": GitLab has that state (or a
        // later one) already, e.g. a redelivered event or another replica's post.
        recover: (failure) =>
          failure.status === 400 &&
          /Cannot transition status via :\w+ from :\w+/.test(failure.description)
            ? true
            : undefined,
      },
    );
    const at = new Date().toISOString();
    if (outcome.ok) return { state, ok: true, attempts: outcome.attempts, at };
    const error = stopping.signal.aborted
      ? outcome.error.replace(/ \(stopped\)$/, " (reporter stopped)")
      : outcome.error;
    return { state, ok: false, attempts: outcome.attempts, at, error };
  }

  const record = (opId: string, report: GitlabReport): Promise<void> =>
    reportLog.append(opId, report);

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
    if (!deploysCommit(op) || !op.sha) return;
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
