// The GitLab reporter against a real HTTP server that answers like GitLab's commit status API
// (test/support/fake-gitlab.ts), the real SQLite store in a temp file and a real event bus.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventBus } from "../../src/deploy/events.js";
import { createGitlabReporter, type GitlabReporter } from "../../src/gitlab/reporter.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import type {
  OperationRecord,
  OperationStatus,
  ProjectRecord,
  VersionRecord,
} from "../../src/store/types.js";
import { startFakeGitlab, type FakeGitlab } from "../support/fake-gitlab.js";

const GITLAB_PROJECT = 77;
const SHA = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
const PUBLIC_URL = "https://dockbot.example.com";
const NOW = "2024-05-01T10:00:00.000Z";

let dir: string;
let store: Store;
let gitlab: FakeGitlab;
let bus: EventBus;
let reporter: GitlabReporter;
let logLines: string[];
let seq = 0;

function startReporter(overrides: { token?: string; gitlabUrl?: string } = {}): GitlabReporter {
  const logger = pino({ level: "debug" }, { write: (line: string) => void logLines.push(line) });
  return createGitlabReporter({
    bus,
    store,
    gitlabUrl: overrides.gitlabUrl ?? gitlab.url,
    token: overrides.token ?? gitlab.token,
    publicUrl: `${PUBLIC_URL}/`,
    logger,
    retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 },
  });
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "dockbot-reporter-"));
  store = await openSqliteStore(path.join(dir, "dockbot.sqlite"));
  gitlab = await startFakeGitlab();
  gitlab.registerCommit(GITLAB_PROJECT, SHA, "feature/Login_2");
  bus = new EventBus();
  logLines = [];
  reporter = startReporter();
});

afterEach(async () => {
  reporter.stop();
  await reporter.idle();
  await gitlab.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

interface Seeded {
  project: ProjectRecord;
  version: VersionRecord;
  op: OperationRecord;
}

async function seed(
  opts: { gitlabProjectId?: number | null; kind?: OperationRecord["kind"]; sha?: string } = {},
): Promise<Seeded> {
  seq += 1;
  const project: ProjectRecord = {
    id: `prj-${seq}`,
    name: `app-${seq}`,
    repoUrl: "git@gitlab.example.com:group/app.git",
    autoDeploy: { branches: ["*"], tags: true, mergeRequests: true },
    env: { DATABASE_PASSWORD: "hunter2-database-password" },
    webhookSecret: "webhook-secret-value-123",
    createdAt: NOW,
    updatedAt: NOW,
  };
  const linked = opts.gitlabProjectId === undefined ? GITLAB_PROJECT : opts.gitlabProjectId;
  if (linked !== null) project.gitlab = { projectId: linked };
  await store.createProject(project);
  const version: VersionRecord = {
    id: `ver-${seq}`,
    projectId: project.id,
    name: "feature-login-2",
    ref: { type: "branch", name: "feature/Login_2" },
    sha: SHA,
    state: "queued",
    composeProject: `dockbot-${project.name}-feature-login-2`,
    urls: [],
    ports: [],
    createdAt: NOW,
    updatedAt: NOW,
  };
  await store.createVersion(version);
  const op: OperationRecord = {
    id: `op-${seq}`,
    projectId: project.id,
    versionId: version.id,
    kind: opts.kind ?? "up",
    trigger: { source: "webhook", event: "Push Hook" },
    status: "queued",
    queuedAt: NOW,
  };
  const sha = opts.sha ?? SHA;
  if (sha) op.sha = sha;
  await store.enqueueOperation(op);
  return { project, version, op };
}

/** Stores the change first, then announces it (invariant 3), as the runner does. */
async function transition(
  op: OperationRecord,
  status: OperationStatus,
  extra: Partial<OperationRecord> = {},
): Promise<OperationRecord> {
  const updated = await store.updateOperation(op.id, { status, ...extra });
  if (!updated) throw new Error(`operation ${op.id} vanished`);
  if (status === "running") bus.emit("operation.started", updated);
  else bus.emit("operation.finished", updated);
  return updated;
}

async function reports(opId: string): Promise<OperationRecord["gitlabReports"]> {
  return (await store.getOperation(opId))?.gitlabReports;
}

function statusPosts(): {
  state: unknown;
  name: unknown;
  target_url: unknown;
  description: unknown;
  ref: unknown;
}[] {
  return gitlab.received
    .filter((r) => r.method === "POST" && r.path.endsWith(`/statuses/${SHA}`))
    .map(
      (r) =>
        r.body as {
          state: unknown;
          name: unknown;
          target_url: unknown;
          description: unknown;
          ref: unknown;
        },
    );
}

describe("GitLab reporter", () => {
  it("posts pending, running and success in that order as the deploy is queued, started and finished", async () => {
    const { op } = await seed();
    bus.emit("operation.queued", op);
    await transition(op, "running", { startedAt: NOW });
    await transition(op, "succeeded", { finishedAt: NOW });
    await reporter.idle();

    const posts = statusPosts();
    expect(posts.map((p) => p.state)).toEqual(["pending", "running", "success"]);
    for (const p of posts) {
      expect(p).toMatchObject({
        name: "dockbot/feature-login-2",
        target_url: `${PUBLIC_URL}/operations/${op.id}`,
        ref: "feature/Login_2",
      });
      expect(typeof p.description).toBe("string");
    }
    expect(posts.map((p) => p.description)).toEqual([
      "Deploy of feature-login-2 queued",
      "Deploying feature-login-2",
      "feature-login-2 is running",
    ]);
    expect(gitlab.received[0]?.path).toBe(`/api/v4/projects/${GITLAB_PROJECT}/statuses/${SHA}`);

    const jobs = gitlab.statuses(GITLAB_PROJECT, SHA);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ name: "dockbot/feature-login-2", status: "success" });

    const recorded = await reports(op.id);
    expect(recorded?.map((r) => [r.state, r.ok, r.attempts])).toEqual([
      ["pending", true, 1],
      ["running", true, 1],
      ["success", true, 1],
    ]);
    expect(recorded?.every((r) => !Number.isNaN(Date.parse(r.at)))).toBe(true);
  });

  it("posts failed with the first line of the operation's error", async () => {
    const { op } = await seed();
    bus.emit("operation.queued", op);
    await transition(op, "running");
    await transition(op, "failed", {
      error: "docker compose up exited with code 1\nError: port 8080 already allocated\n  at ...",
      exitCode: 1,
    });
    await reporter.idle();

    const last = statusPosts().at(-1);
    expect(last).toMatchObject({
      state: "failed",
      description: "docker compose up exited with code 1",
    });
    expect(gitlab.statuses(GITLAB_PROJECT, SHA)[0]?.status).toBe("failed");
    expect((await reports(op.id))?.at(-1)).toMatchObject({ state: "failed", ok: true });
  });

  it("keeps the project's secrets out of a failure description posted to GitLab", async () => {
    const { op } = await seed();
    bus.emit("operation.queued", op);
    await transition(op, "failed", {
      error: "cannot connect with DATABASE_PASSWORD=hunter2-database-password",
    });
    await reporter.idle();

    const last = statusPosts().at(-1);
    expect(last?.description).toBe("cannot connect with DATABASE_PASSWORD=***");
  });

  it("posts canceled when a queued deploy is superseded by a newer one", async () => {
    const { op } = await seed();
    bus.emit("operation.queued", op);
    await transition(op, "superseded", { finishedAt: NOW });
    await reporter.idle();

    expect(statusPosts().map((p) => [p.state, p.description])).toEqual([
      ["pending", "Deploy of feature-login-2 queued"],
      ["canceled", "Superseded by a newer deploy"],
    ]);
    expect(gitlab.statuses(GITLAB_PROJECT, SHA)[0]?.status).toBe("canceled");
  });

  it("retries after GitLab's 409 and records the post with attempts=2", async () => {
    const { op } = await seed();
    gitlab.failNext(1, 409);
    bus.emit("operation.queued", op);
    await reporter.idle();

    expect(statusPosts()).toHaveLength(2);
    expect(gitlab.statuses(GITLAB_PROJECT, SHA)[0]?.status).toBe("pending");
    expect(await reports(op.id)).toEqual([
      { state: "pending", ok: true, attempts: 2, at: expect.any(String) as string },
    ]);
  });

  it("records a failure, without throwing into the deploy, when GitLab answers 500 to every try", async () => {
    const { op } = await seed();
    gitlab.failNext(100, 500);
    expect(() => bus.emit("operation.queued", op)).not.toThrow();
    await reporter.idle();

    expect(statusPosts()).toHaveLength(3);
    expect(await reports(op.id)).toEqual([
      {
        state: "pending",
        ok: false,
        attempts: 3,
        at: expect.any(String) as string,
        error: "HTTP 500: 500 Internal Server Error",
      },
    ]);
    expect((await store.getOperation(op.id))?.status).toBe("queued");
  });

  it("goes on with the next state after a post that failed for good", async () => {
    const { op } = await seed();
    gitlab.failNext(3, 500);
    bus.emit("operation.queued", op);
    await transition(op, "running");
    await reporter.idle();

    expect((await reports(op.id))?.map((r) => [r.state, r.ok])).toEqual([
      ["pending", false],
      ["running", true],
    ]);
    expect(gitlab.statuses(GITLAB_PROJECT, SHA)[0]?.status).toBe("running");
  });

  it("counts GitLab's 400 for a state the status already has as done, without retrying", async () => {
    const { op } = await seed();
    bus.emit("operation.queued", op);
    bus.emit("operation.queued", op); // a redelivered event, or another replica's post
    await reporter.idle();

    expect(statusPosts()).toHaveLength(2);
    expect(gitlab.statuses(GITLAB_PROJECT, SHA)).toHaveLength(1);
    expect((await reports(op.id))?.map((r) => [r.state, r.ok, r.attempts])).toEqual([
      ["pending", true, 1],
      ["pending", true, 1],
    ]);
    // What the second post got, asked the same way: GitLab's refusal, not a second success.
    const again = await fetch(`${gitlab.url}/api/v4/projects/${GITLAB_PROJECT}/statuses/${SHA}`, {
      method: "POST",
      headers: { "private-token": gitlab.token, "content-type": "application/json" },
      body: JSON.stringify({
        state: "pending",
        name: "dockbot/feature-login-2",
        ref: "feature/Login_2",
      }),
    });
    expect(again.status).toBe(400);
    expect(((await again.json()) as { message: string }).message).toMatch(
      /^Cannot transition status via :enqueue from :pending/,
    );
  });

  it("gives up at once and records GitLab's answer when the commit is unknown", async () => {
    const { op } = await seed({ sha: "1111111111111111111111111111111111111111" });
    bus.emit("operation.queued", op);
    await reporter.idle();

    expect(gitlab.received).toHaveLength(1);
    expect(await reports(op.id)).toEqual([
      {
        state: "pending",
        ok: false,
        attempts: 1,
        at: expect.any(String) as string,
        error: "HTTP 404: 404 Commit Not Found",
      },
    ]);
  });

  it("posts nothing for an operation of a project not linked to a GitLab project", async () => {
    const { op } = await seed({ gitlabProjectId: null });
    bus.emit("operation.queued", op);
    await transition(op, "running");
    await transition(op, "succeeded");
    await reporter.idle();

    expect(gitlab.received).toEqual([]);
    expect(await reports(op.id)).toBeUndefined();
  });

  it("posts nothing for operations that are not deploys of a commit", async () => {
    const down = await seed({ kind: "down" });
    const noSha = await seed({ sha: "" });
    for (const { op } of [down, noSha]) {
      bus.emit("operation.queued", op);
      await transition(op, "running");
      await transition(op, "succeeded");
    }
    await reporter.idle();

    expect(gitlab.received).toEqual([]);
  });

  it("names the status after the version even when the version is deleted before the end", async () => {
    const { op, version } = await seed();
    bus.emit("operation.queued", op);
    await reporter.idle();
    await store.deleteVersion(version.id);
    await transition(op, "running");
    await transition(op, "succeeded");
    await reporter.idle();

    expect(statusPosts().map((p) => p.name)).toEqual([
      "dockbot/feature-login-2",
      "dockbot/feature-login-2",
      "dockbot/feature-login-2",
    ]);
  });

  it("never puts the token in gitlabReports or the log, even when GitLab refuses it", async () => {
    reporter.stop();
    const token = "glpat-this-token-must-stay-secret";
    reporter = startReporter({ token });
    const { op } = await seed();
    bus.emit("operation.queued", op);
    await reporter.idle();

    const request = gitlab.received[0];
    expect(request?.headers["private-token"]).toBe(token);
    const recorded = await reports(op.id);
    expect(recorded).toEqual([
      {
        state: "pending",
        ok: false,
        attempts: 1,
        at: expect.any(String) as string,
        error: "HTTP 401: 401 Unauthorized",
      },
    ]);
    expect(JSON.stringify(await store.getOperation(op.id))).not.toContain(token);
    expect(logLines.join("")).toContain("commit status not posted");
    expect(logLines.join("")).not.toContain(token);
  });

  it("records a network failure when GitLab cannot be reached", async () => {
    reporter.stop();
    const unreachable = await startFakeGitlab();
    const url = unreachable.url;
    await unreachable.close();
    reporter = startReporter({ gitlabUrl: url });
    const { op } = await seed();
    bus.emit("operation.queued", op);
    await reporter.idle();

    const recorded = await reports(op.id);
    expect(recorded).toHaveLength(1);
    expect(recorded?.[0]).toMatchObject({ state: "pending", ok: false, attempts: 3 });
    expect(recorded?.[0]?.error).toMatch(/^network error: /);
    expect(JSON.stringify(recorded)).not.toContain(gitlab.token);
  });

  it("stops posting once stopped", async () => {
    const { op } = await seed();
    reporter.stop();
    bus.emit("operation.queued", op);
    await reporter.idle();

    expect(gitlab.received).toEqual([]);
  });
});
