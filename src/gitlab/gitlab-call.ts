// One GitLab call, retried with backoff for a bounded time, its failure turned into a short text
// that carries GitLab's status and message and never the token (docs/gitlab.md, "Faults").
// Every module of src/gitlab goes through here, so the rules for what is retried, for how long
// and how an error reads are written once.
import {
  Commits,
  DeployKeys,
  Deployments,
  Environments,
  GitbeakerRequestError,
  GitbeakerRetryError,
  GitbeakerTimeoutError,
  MergeRequestNotes,
  ProjectHooks,
  Projects,
} from "@gitbeaker/rest";

export interface RetryPolicy {
  /** Total tries per call, the first one included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** No new try starts after this long since the first one (retries stop in bounded time). */
  totalMs?: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 8,
  baseDelayMs: 1_000,
  maxDelayMs: 60_000,
  totalMs: 10 * 60_000,
};

/** A single request may not hang a report forever (gitbeaker's default is 5 minutes). */
export const REQUEST_TIMEOUT_MS = 30_000;

/** Why a call failed. `status` is GitLab's HTTP status when it answered. */
export interface CallFailure {
  kind: "retry" | "fatal";
  status?: number;
  /** GitLab's own message (`error` or `message` of its JSON), first line. */
  description: string;
  /** `HTTP 403: 403 Forbidden`, `network error: fetch failed (ECONNREFUSED)`... */
  message: string;
}

export type CallOutcome<T> =
  | { ok: true; value: T; attempts: number }
  | { ok: false; attempts: number; failure: CallFailure; error: string };

export interface CallOptions<T> {
  policy: RetryPolicy;
  signal: AbortSignal;
  /** Removes secrets from a text (the token, the project's secrets). */
  scrub: (text: string) => string;
  /**
   * Looks at a failure before it is retried or given up on: a value means the call's effect is
   * already there (e.g. "already in that state", or found by looking it up after a timeout).
   */
  recover?: (failure: CallFailure, attempt: number) => Promise<T | undefined> | T | undefined;
}

/** Runs `fn` until it succeeds, fails for good, runs out of tries or time, or `signal` aborts. */
export async function callGitlab<T>(
  fn: (attempt: number) => Promise<T>,
  opts: CallOptions<T>,
): Promise<CallOutcome<T>> {
  const started = Date.now();
  const { policy } = opts;
  let attempts = 0;
  for (;;) {
    attempts += 1;
    let failure: CallFailure;
    try {
      return { ok: true, value: await fn(attempts), attempts };
    } catch (error) {
      failure = classifyGitlabError(error);
    }
    failure = {
      ...failure,
      description: opts.scrub(failure.description),
      message: opts.scrub(failure.message),
    };
    const recovered = await opts.recover?.(failure, attempts);
    if (recovered !== undefined) return { ok: true, value: recovered, attempts };
    const outOfTime = policy.totalMs !== undefined && Date.now() - started >= policy.totalMs;
    if (
      failure.kind === "fatal" ||
      attempts >= policy.attempts ||
      outOfTime ||
      opts.signal.aborted
    ) {
      const stopped = opts.signal.aborted ? " (stopped)" : "";
      return { ok: false, attempts, failure, error: clip(`${failure.message}${stopped}`) };
    }
    const delay = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempts - 1));
    // Jitter (50-100 %) so replicas and operations don't retry in lockstep.
    await sleep(delay * (0.5 + Math.random() / 2), opts.signal);
  }
}

/** Sorts a failed request into retry (transient) or fatal, with GitLab's status and message. */
export function classifyGitlabError(error: unknown): CallFailure {
  if (error instanceof GitbeakerRequestError) {
    const cause = error.cause as
      { response?: { status?: number }; description?: unknown } | undefined;
    const status = cause?.response?.status;
    const description = firstLine(
      typeof cause?.description === "string" ? cause.description : error.message,
    );
    const message = `HTTP ${status ?? "?"}: ${description || "no message"}`;
    if (status === undefined) return { kind: "retry", description, message };
    // 409 from commit statuses: "Another update to this commit status is in progress" (a 5 s
    // lock per SHA); 429 and 5xx: GitLab or a proxy under load.
    const kind = status === 409 || status === 429 || status >= 500 ? "retry" : "fatal";
    return { kind, status, description, message };
  }
  // gitbeaker already retried 429/502 ten times in a row, or the request timed out: transient.
  if (error instanceof GitbeakerRetryError || error instanceof GitbeakerTimeoutError) {
    const description = firstLine(error.message);
    return { kind: "retry", description, message: description };
  }
  // fetch rejects with a TypeError ("fetch failed") whose cause names the network error.
  const text = errorText(error);
  return { kind: "retry", description: text, message: `network error: ${text}` };
}

/** What a GitLab failure means for a user of dockbot (token rights, project id, URL). */
export function explainFailure(failure: CallFailure): string {
  switch (failure.status) {
    case 401:
      return `${failure.message} (DOCKBOT_GITLAB_TOKEN is wrong, expired or revoked)`;
    case 403:
      return `${failure.message} (the token's user needs the Maintainer role on the project and the api scope)`;
    case 404:
      return `${failure.message} (no such GitLab project, or the token cannot see it: check gitlab.projectId)`;
    default:
      return failure.message;
  }
}

/** Texts with secrets replaced by `***`. Short values (an env value "1") are left alone. */
export function makeScrubber(secrets: readonly (string | undefined)[]): (text: string) => string {
  const list = secrets.filter((s): s is string => s !== undefined && s.length >= 4);
  return (text) => {
    let out = text;
    for (const secret of list) out = out.split(secret).join("***");
    return out;
  };
}

export function errorText(error: unknown): string {
  if (!(error instanceof Error)) return firstLine(String(error));
  const cause = error.cause;
  const code =
    typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
      ? ` (${cause.code})`
      : "";
  return `${firstLine(error.message)}${code}`;
}

export function firstLine(text: string): string {
  return (text.split(/\r?\n/)[0] ?? "").trim();
}

/** GitLab's limit for names, URLs and descriptions of statuses; errors kept are as short. */
export const MAX_FIELD = 255;

export function clip(text: string, max = MAX_FIELD): string {
  const line = text.replace(/[\r\n]+/g, " ");
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
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

/** The gitbeaker resources dockbot uses, built once with the same host, token and limits. */
export function createGitlabApi(opts: { url: string; token: string; timeoutMs?: number }) {
  const base = {
    host: opts.url.replace(/\/+$/, ""),
    token: opts.token,
    queryTimeout: opts.timeoutMs ?? REQUEST_TIMEOUT_MS,
  };
  return {
    commits: new Commits(base),
    deployments: new Deployments(base),
    environments: new Environments(base),
    // GitLab.com allows 60 note creations a minute per user (gitbeaker's own default is 300).
    notes: new MergeRequestNotes({
      ...base,
      rateLimits: { "projects/*/merge_requests/*/notes": { method: "post", limit: 60 } },
    }),
    hooks: new ProjectHooks(base),
    deployKeys: new DeployKeys(base),
    projects: new Projects(base),
  };
}

export type GitlabApi = ReturnType<typeof createGitlabApi>;
