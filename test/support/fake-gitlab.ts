// A stand-in for GitLab's REST API on 127.0.0.1, for tests: GitLab itself cannot run here.
// @gitbeaker/rest talks to it exactly as to gitlab.com (real HTTP, /api/v4, PRIVATE-TOKEN), and
// it rejects what real GitLab rejects, following lib/api/commit_statuses.rb and
// app/services/ci/create_commit_status_service.rb (see docs/gitlab.md §4):
//
// POST /api/v4/projects/:id/statuses/:sha
//   401 without the token; 404 "Project Not Found" / "Commit Not Found" for what was not
//   registered; 400 when `state` is missing or not one of the six states; 400 for a target_url
//   that is not http(s), or a ref / target_url / description over 255 characters.
//   One job per (sha, name, ref) while it is pending or running; the same state posted twice,
//   or any move GitLab's state machine refuses, is 400 "Cannot transition status via :x from :y".
//   After a terminal state a new post creates a new job and the old one is marked retried.
//   Success: 201 with the CommitStatus entity.
// GET /api/v4/projects/:id/repository/commits/:sha/statuses (name, ref, all filters)
//
// Review apps and onboarding (docs/gitlab.md; GitLab's lib/api/{deployments,environments,
// notes,project_hooks,deploy_keys}.rb), in fake-gitlab-review.ts: environments with unique
// names, stop, DELETE of an available one refused; deployments on known refs only with
// running -> success | failed | canceled and no move out of a finished one; merge request notes
// that can be edited; project hooks that never show their token; deploy keys where adding the
// same key again returns the one there; the projects the token sees.
//
// `failNext(n, status)` answers the next n requests with that status before anything else (a
// proxy or GitLab under load), `failWhen(...)` does so for matching requests only, `stall(...)`
// holds matching requests without an answer (a GitLab that times out), and `received` keeps
// every request as it arrived.
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createReviewEndpoints, type FakeReview } from "./fake-gitlab-review.js";

export interface FakeGitlabRequest {
  method: string;
  /** Path without the query string, e.g. `/api/v4/projects/7/statuses/<sha>`. */
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** Parsed JSON or form body; the raw text when it is neither; undefined when empty. */
  body: unknown;
}

export type FakeStatusState =
  "created" | "pending" | "running" | "success" | "failed" | "canceled" | "skipped";

export interface FakeCommitStatus {
  id: number;
  sha: string;
  ref: string;
  status: FakeStatusState;
  name: string;
  target_url: string | null;
  description: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  allow_failure: boolean;
  coverage: number | null;
  pipeline_id: number;
  author: { id: number; username: string; name: string; state: string; web_url: string };
  /** Not part of GitLab's entity: true once a newer job of the same name replaced it. */
  retried: boolean;
}

export interface FakeFault {
  method?: string;
  /** Matched against the path (without /api/v4). */
  path: RegExp;
  /** How many matching requests get it. */
  times: number;
}

export interface FakeGitlab extends FakeReview {
  /** Base URL to give @gitbeaker/rest as `host`, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** The only token the fake accepts. */
  token: string;
  registerProject(id: number): void;
  /** Makes `sha` a commit of the project (registering the project too); `ref` defaults to main. */
  registerCommit(projectId: number, sha: string, ref?: string): void;
  /** Answers the next `n` requests with `status` (409, 429, 500, 502...). */
  failNext(n: number, status: number): void;
  /** Answers matching requests with `status` (and GitLab's message for it), `times` times. */
  failWhen(fault: FakeFault & { status: number; body?: unknown }): void;
  /** Holds matching requests, never answering them (until close), `times` times. */
  stall(fault: FakeFault): void;
  /** Does what matching requests ask, then drops the connection instead of answering. */
  loseAnswer(fault: FakeFault): void;
  received: FakeGitlabRequest[];
  /** Every status job of the commit, oldest first, retried ones included. */
  statuses(projectId: number, sha: string): FakeCommitStatus[];
  close(): Promise<void>;
}

export interface FakeGitlabOptions {
  token?: string;
  /**
   * More endpoints (test/support/fake-gitlab-oauth.ts): each is asked first and answers with
   * `true` when it wrote the response itself.
   */
  plugins?: FakeGitlabPlugin[];
}

export type FakeGitlabPlugin = (req: FakeGitlabRequest, res: ServerResponse) => boolean;

const STATES = ["pending", "running", "success", "failed", "canceled", "skipped"] as const;
type PostedState = (typeof STATES)[number];
const TERMINAL: readonly FakeStatusState[] = ["success", "failed", "canceled", "skipped"];

/** The state machine event GitLab's service fires for each posted state. */
const EVENT: Record<PostedState, string> = {
  pending: "enqueue",
  running: "run",
  success: "success",
  failed: "drop",
  canceled: "cancel",
  skipped: "skip",
};

/** Which current states an event may leave (Ci::HasStatus / CommitStatus state machine). */
const ALLOWED_FROM: Record<PostedState, readonly FakeStatusState[]> = {
  pending: ["created"],
  running: ["created", "pending"],
  success: ["created", "pending", "running"],
  failed: ["created", "pending", "running"],
  canceled: ["created", "pending", "running"],
  skipped: ["created", "pending"],
};

const MAX_LENGTH = 255;

/** Thrown inside a handler to answer with a GitLab error; caught in the request handler. */
class HttpAnswer extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}`);
  }
}

export async function startFakeGitlab(opts: FakeGitlabOptions = {}): Promise<FakeGitlab> {
  const token = opts.token ?? "glpat-fake-token-0123456789abcdef";
  const projects = new Set<number>();
  /** `${projectId}:${sha}` -> ref the commit is on. */
  const commits = new Map<string, string>();
  const jobs = new Map<string, FakeCommitStatus[]>();
  const received: FakeGitlabRequest[] = [];
  const failures: number[] = [];
  /** `${projectId}:${name}`: the branches and tags the project has. */
  const refs = new Set<string>();
  const matchingFailures: Array<FakeFault & { status: number; body?: unknown }> = [];
  const stalls: FakeFault[] = [];
  const lostAnswers: FakeFault[] = [];
  const review = createReviewEndpoints({
    hasProject: (id) => projects.has(id),
    knownRef: (projectId, ref) => refs.has(`${projectId}:${ref}`),
    answer: (status, body) => new HttpAnswer(status, body),
  });
  let nextId = 1000;
  let nextPipeline = 1;
  const pipelines = new Map<string, number>();

  const commitKey = (projectId: number, sha: string): string => `${projectId}:${sha}`;

  function requireToken(headers: IncomingHttpHeaders): void {
    const privateToken = headers["private-token"];
    const auth = headers.authorization;
    if (privateToken === token || auth === `Bearer ${token}`) return;
    throw new HttpAnswer(401, { message: "401 Unauthorized" });
  }

  function requireCommit(rawProjectId: string, sha: string): { projectId: number; ref: string } {
    const projectId = Number(rawProjectId);
    if (!Number.isInteger(projectId) || !projects.has(projectId)) {
      throw new HttpAnswer(404, { message: "404 Project Not Found" });
    }
    const ref = commits.get(commitKey(projectId, sha));
    if (ref === undefined) throw new HttpAnswer(404, { message: "404 Commit Not Found" });
    return { projectId, ref };
  }

  function optionalString(params: Record<string, unknown>, key: string): string | undefined {
    const value = params[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    throw new HttpAnswer(400, { error: `${key} is invalid` });
  }

  function postStatus(
    rawProjectId: string,
    sha: string,
    params: Record<string, unknown>,
  ): FakeCommitStatus {
    // Grape validates params before the endpoint runs, like GitLab.
    const state = params.state;
    if (state === undefined || state === null || state === "") {
      throw new HttpAnswer(400, { error: "state is missing" });
    }
    if (typeof state !== "string" || !(STATES as readonly string[]).includes(state)) {
      throw new HttpAnswer(400, { error: "state does not have a valid value" });
    }
    const posted = state as PostedState;
    const { projectId, ref: commitRef } = requireCommit(rawProjectId, sha);

    const ref = optionalString(params, "ref") ?? commitRef;
    const name = optionalString(params, "name") ?? optionalString(params, "context") ?? "default";
    const targetUrl = optionalString(params, "target_url");
    const description = optionalString(params, "description");
    for (const [key, value] of [
      ["Ref", ref],
      ["Target url", targetUrl],
      ["Description", description],
    ] as const) {
      if (value !== undefined && value.length > MAX_LENGTH) {
        throw new HttpAnswer(400, { message: `${key} is too long (maximum is 255 characters)` });
      }
    }
    if (targetUrl !== undefined && !/^https?:\/\//i.test(targetUrl)) {
      throw new HttpAnswer(400, {
        message: "Target url is blocked: Only allowed schemes are http, https",
      });
    }

    const key = commitKey(projectId, sha);
    const list = jobs.get(key) ?? [];
    jobs.set(key, list);
    const now = new Date().toISOString();
    let job = list.find(
      (j) => !j.retried && j.name === name && j.ref === ref && !TERMINAL.includes(j.status),
    );
    if (job) {
      if (!ALLOWED_FROM[posted].includes(job.status)) {
        const event = EVENT[posted];
        throw new HttpAnswer(400, {
          message: `Cannot transition status via :${event} from :${job.status} (Reason(s): Status cannot transition via "${event}")`,
        });
      }
    } else {
      // A terminal job of the same name is superseded by a new one (GitLab marks it retried).
      for (const old of list) if (old.name === name && old.ref === ref) old.retried = true;
      let pipelineId = pipelines.get(key);
      if (pipelineId === undefined) {
        pipelineId = nextPipeline++;
        pipelines.set(key, pipelineId);
      }
      job = {
        id: nextId++,
        sha,
        ref,
        status: "created",
        name,
        target_url: null,
        description: null,
        created_at: now,
        started_at: null,
        finished_at: null,
        allow_failure: false,
        coverage: null,
        pipeline_id: pipelineId,
        author: {
          id: 1,
          username: "dockbot",
          name: "dockbot",
          state: "active",
          web_url: "http://gitlab.example/dockbot",
        },
        retried: false,
      };
      list.push(job);
    }
    // Only target_url, description and coverage are updated on an existing job.
    if (targetUrl !== undefined) job.target_url = targetUrl;
    if (description !== undefined) job.description = description;
    job.status = posted;
    if (posted === "running") job.started_at = now;
    if (TERMINAL.includes(posted)) job.finished_at = now;
    return job;
  }

  function listStatuses(
    rawProjectId: string,
    sha: string,
    query: Record<string, string>,
  ): Omit<FakeCommitStatus, "retried">[] {
    const { projectId } = requireCommit(rawProjectId, sha);
    return (jobs.get(commitKey(projectId, sha)) ?? [])
      .filter((j) => query.all === "true" || !j.retried)
      .filter((j) => query.name === undefined || j.name === query.name)
      .filter((j) => query.ref === undefined || j.ref === query.ref)
      .map(entity);
  }

  function takeFault<T extends FakeFault>(list: T[], req: FakeGitlabRequest): T | undefined {
    const path = req.path.replace(/^\/api\/v4/, "");
    const fault = list.find(
      (f) =>
        f.times > 0 && (f.method === undefined || f.method === req.method) && f.path.test(path),
    );
    if (fault) fault.times -= 1;
    return fault;
  }

  function route(req: FakeGitlabRequest): { status: number; body: unknown } {
    const failure = failures.shift();
    if (failure !== undefined) return failureAnswer(failure);
    const matching = takeFault(matchingFailures, req);
    if (matching)
      return { status: matching.status, body: matching.body ?? failureBody(matching.status) };
    requireToken(req.headers);
    const reviewAnswer = review.route(req);
    if (reviewAnswer) return reviewAnswer;

    const parts = req.path.split("/").map((p) => decodeURIComponent(p));
    // ["", "api", "v4", "projects", ":id", ...]
    const [empty, api, v4, projectsSegment, projectId, ...rest] = parts;
    if (
      empty !== "" ||
      api !== "api" ||
      v4 !== "v4" ||
      projectsSegment !== "projects" ||
      !projectId
    ) {
      return { status: 404, body: { error: "404 Not Found" } };
    }
    if (req.method === "POST" && rest.length === 2 && rest[0] === "statuses" && rest[1]) {
      const params = { ...req.query, ...(isRecord(req.body) ? req.body : {}) };
      return { status: 201, body: entity(postStatus(projectId, rest[1], params)) };
    }
    if (
      req.method === "GET" &&
      rest.length === 4 &&
      rest[0] === "repository" &&
      rest[1] === "commits" &&
      rest[2] &&
      rest[3] === "statuses"
    ) {
      return { status: 200, body: listStatuses(projectId, rest[2], req.query) };
    }
    return { status: 404, body: { error: "404 Not Found" } };
  }

  const server = createServer((incoming, res) => {
    const chunks: Buffer[] = [];
    incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
    incoming.on("end", () => {
      const url = new URL(incoming.url ?? "/", "http://fake");
      const text = Buffer.concat(chunks).toString("utf8");
      const req: FakeGitlabRequest = {
        method: incoming.method ?? "GET",
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: incoming.headers,
        body: parseBody(text, incoming.headers["content-type"]),
      };
      received.push(req);
      if (opts.plugins?.some((plugin) => plugin(req, res))) return;
      if (takeFault(stalls, req)) return; // never answered: the client's timeout runs out
      let answer: { status: number; body: unknown };
      try {
        answer = route(req);
      } catch (error) {
        // A bug in the fake shows up as a 500 the test can see, not as a crashed test process.
        answer =
          error instanceof HttpAnswer
            ? { status: error.status, body: error.body }
            : { status: 500, body: { message: `fake-gitlab bug: ${String(error)}` } };
      }
      if (answer.status < 300 && takeFault(lostAnswers, req)) {
        res.destroy(); // done on GitLab's side; the client sees the connection drop
        return;
      }
      send(res, answer.status, answer.body);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    token,
    registerProject(id) {
      projects.add(id);
    },
    registerCommit(projectId, sha, ref = "main") {
      projects.add(projectId);
      commits.set(commitKey(projectId, sha), ref);
      refs.add(`${projectId}:${ref}`);
    },
    failNext(n, status) {
      for (let i = 0; i < n; i++) failures.push(status);
    },
    failWhen(fault) {
      matchingFailures.push({ ...fault });
    },
    stall(fault) {
      stalls.push({ ...fault });
    },
    loseAnswer(fault) {
      lostAnswers.push({ ...fault });
    },
    ...review.api,
    received,
    statuses(projectId, sha) {
      return (jobs.get(commitKey(projectId, sha)) ?? []).map((j) => ({ ...j }));
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

function entity(job: FakeCommitStatus): Omit<FakeCommitStatus, "retried"> {
  const { retried: _retried, ...rest } = job;
  return rest;
}

/** GitLab's message for a status it answers itself (a fault a test injects). */
function failureBody(status: number): unknown {
  switch (status) {
    case 401:
      return { message: "401 Unauthorized" };
    case 403:
      return { message: "403 Forbidden" };
    case 404:
      return { message: "404 Project Not Found" };
    case 422:
      return { error: "Invalid url given" };
    default:
      return failureAnswer(status).body;
  }
}

function failureAnswer(status: number): { status: number; body: unknown } {
  switch (status) {
    case 409:
      return {
        status,
        body: { message: "409 Conflict: Another update to this commit status is in progress" },
      };
    case 429:
      return { status, body: "Retry later\n" };
    case 502:
      return { status, body: "<html><body><h1>502 Bad Gateway</h1></body></html>\n" };
    default:
      return { status, body: { message: `${status} Internal Server Error` } };
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (typeof body === "string") {
    const type = body.startsWith("<html>") ? "text/html" : "text/plain";
    res.writeHead(status, { "content-type": `${type}; charset=utf-8` });
    res.end(body);
    return;
  }
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function parseBody(text: string, contentType: string | undefined): unknown {
  if (text === "") return undefined;
  const type = (contentType ?? "").split(";")[0]?.trim() ?? "";
  if (type === "application/json") {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  if (type === "application/x-www-form-urlencoded") {
    return Object.fromEntries(new URLSearchParams(text));
  }
  return text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
