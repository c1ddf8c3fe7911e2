// The review-app reporter against the fake GitLab (test/support/fake-gitlab-review.ts), driven
// by the runner's events on a real bus over the real SQLite store: the refs each kind of
// version deploys on, what a delete and a turn-off do to the environment, and GitLab faults
// (down, 401, unknown ref, 502s) that never delay the deploy nor duplicate anything.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventBus } from "../../src/deploy/events.js";
import { createGitlabApi } from "../../src/gitlab/gitlab-call.js";
import { createReportLog } from "../../src/gitlab/report-log.js";
import { createReviewApps, type ReviewApps } from "../../src/gitlab/review-apps.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import type {
  OperationRecord,
  OperationStatus,
  ProjectRecord,
  VersionRecord,
  VersionRef,
} from "../../src/store/types.js";
import { startFakeGitlab, type FakeGitlab } from "../support/fake-gitlab.js";

const GITLAB_PROJECT = 88;
const SHA = "3f1e0c9a8b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f";
const NOW = "2024-05-01T10:00:00.000Z";
const SECRET = "webhook-secret-value-456";

let dir: string;
let store: Store;
let gitlab: FakeGitlab;
let bus: EventBus;
let apps: ReviewApps;
let logLines: string[];
let seq = 0;

function start(opts: { url?: string; token?: string } = {}): ReviewApps {
  const logger = pino({ level: "debug" }, { write: (l: string) => void logLines.push(l) });
  const token = opts.token ?? gitlab.token;
  return createReviewApps({
    bus,
    store,
    api: createGitlabApi({ url: opts.url ?? gitlab.url, token, timeoutMs: 2000 }),
    token,
    publicUrl: "https://dockbot.example.com",
    logger,
    reportLog: createReportLog(store),
    retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20, totalMs: 5_000 },
  });
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "dockbot-grevents-"));
  store = await openSqliteStore(path.join(dir, "dockbot.sqlite"));
  gitlab = await startFakeGitlab();
  gitlab.registerCommit(GITLAB_PROJECT, SHA, "main");
  gitlab.registerCommit(GITLAB_PROJECT, SHA, "v1.2.0");
  bus = new EventBus();
  logLines = [];
  apps = start();
});

afterEach(async () => {
  apps.stop();
  await apps.idle();
  await gitlab.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function seed(ref: VersionRef, urls: string[] = ["http://127.0.0.1:20123"]) {
  seq += 1;
  const project: ProjectRecord = {
    id: `prj-${seq}`,
    name: `app-${seq}`,
    repoUrl: "git@gitlab.example.com:group/app.git",
    gitlab: { projectId: GITLAB_PROJECT },
    autoDeploy: { branches: ["*"], tags: true, mergeRequests: true },
    env: {},
    webhookSecret: SECRET,
    createdAt: NOW,
    updatedAt: NOW,
  };
  await store.createProject(project);
  const version = {
    id: `ver-${seq}`,
    projectId: project.id,
    name: `v-${seq}`,
    ref,
    sha: SHA,
    state: "running",
    composeProject: `dockbot-${project.name}-v-${seq}`,
    urls,
    ports: [],
    createdAt: NOW,
    updatedAt: NOW,
  } as VersionRecord;
  await store.createVersion(version);
  return { project, version };
}

async function runOp(
  version: VersionRecord,
  kind: OperationRecord["kind"],
  status: OperationStatus,
): Promise<OperationRecord> {
  seq += 1;
  const op: OperationRecord = {
    id: `op-${seq}`,
    projectId: version.projectId,
    versionId: version.id,
    kind,
    sha: SHA,
    trigger: { source: "api" },
    status: "queued",
    queuedAt: NOW,
  };
  await store.enqueueOperation(op);
  const started = await store.updateOperation(op.id, { status: "running", startedAt: NOW });
  bus.emit("operation.started", started!);
  if (kind === "delete" && status === "succeeded") {
    await store.deleteVersion(version.id);
    bus.emit("version.deleted", version);
  }
  const finished = await store.updateOperation(op.id, { status, finishedAt: NOW });
  bus.emit("operation.finished", finished!);
  await apps.idle();
  return (await store.getOperation(op.id))!;
}

describe("review apps from the runner's events", () => {
  it("deploys a branch version on its branch and points the environment at its URL", async () => {
    const { version } = await seed({ type: "branch", name: "main" });
    const op = await runOp(version, "up", "succeeded");
    const [d] = gitlab.deployments(GITLAB_PROJECT);
    expect(d).toMatchObject({ ref: "main", tag: false, sha: SHA, status: "success" });
    expect(d?.history).toEqual(["running", "success"]);
    const [env] = gitlab.environments(GITLAB_PROJECT);
    expect(env).toMatchObject({
      name: `dockbot/${version.name}`,
      external_url: "http://127.0.0.1:20123",
    });
    expect((await store.getVersion(version.id))?.gitlab?.environmentId).toBe(env?.id);
    expect(op.gitlabReports?.map((r) => [r.kind, r.state, r.ok])).toEqual([
      ["environment", "created", true],
      ["deployment", "running", true],
      ["deployment", "success", true],
    ]);
    // Not a merge request: no note anywhere.
    expect(gitlab.received.some((r) => r.path.includes("/notes"))).toBe(false);
  });

  it("deploys a tag version with tag: true", async () => {
    const { version } = await seed({ type: "tag", name: "v1.2.0" });
    await runOp(version, "up", "failed");
    expect(gitlab.deployments(GITLAB_PROJECT)[0]).toMatchObject({
      ref: "v1.2.0",
      tag: true,
      status: "failed",
    });
  });

  it("makes no environment and no deployment for a bare commit version", async () => {
    const { version } = await seed({ type: "commit", name: SHA });
    const op = await runOp(version, "up", "succeeded");
    expect(gitlab.environments(GITLAB_PROJECT)).toEqual([]);
    expect(gitlab.deployments(GITLAB_PROJECT)).toEqual([]);
    expect(op.gitlabReports ?? []).toEqual([]);
  });

  it("reuses the environment on the next deploy and updates its URL when it changes", async () => {
    const { version } = await seed({ type: "branch", name: "main" });
    await runOp(version, "up", "succeeded");
    await store.updateVersion(version.id, { urls: ["http://127.0.0.1:20999"] });
    const again = (await store.getVersion(version.id))!;
    const op = await runOp(again, "up", "succeeded");
    expect(gitlab.environments(GITLAB_PROJECT)).toHaveLength(1);
    expect(gitlab.environments(GITLAB_PROJECT)[0]?.external_url).toBe("http://127.0.0.1:20999");
    expect(gitlab.deployments(GITLAB_PROJECT)).toHaveLength(2);
    expect(op.gitlabReports?.map((r) => [r.kind, r.state])).toEqual([
      ["deployment", "running"],
      ["deployment", "success"],
      ["environment", "external_url"],
    ]);
  });

  it("finds an environment GitLab already has by name instead of making a second one", async () => {
    const { version } = await seed({ type: "branch", name: "main" });
    const res = await fetch(`${gitlab.url}/api/v4/projects/${GITLAB_PROJECT}/environments`, {
      method: "POST",
      headers: { "private-token": gitlab.token, "content-type": "application/json" },
      body: JSON.stringify({ name: `dockbot/${version.name}` }),
    });
    expect(res.status).toBe(201);
    await runOp(version, "up", "succeeded");
    expect(gitlab.environments(GITLAB_PROJECT)).toHaveLength(1);
  });

  it("keeps the environment when a version is turned off and stops it when it is deleted", async () => {
    const { version } = await seed({ type: "branch", name: "main" });
    await runOp(version, "up", "succeeded");
    await runOp(version, "down", "succeeded");
    expect(gitlab.environments(GITLAB_PROJECT)[0]?.state).toBe("available");
    expect(gitlab.deployments(GITLAB_PROJECT)[0]?.status).toBe("success");
    const del = await runOp(version, "delete", "succeeded");
    expect(gitlab.environments(GITLAB_PROJECT)[0]?.state).toBe("stopped");
    expect(del.gitlabReports?.map((r) => [r.kind, r.ok])).toEqual([["stop", true]]);
  });

  it("reports a canceled deploy as a canceled deployment and never moves a finished one again", async () => {
    const { version } = await seed({ type: "branch", name: "main" });
    const op = await runOp(version, "up", "canceled");
    // The same finish announced twice (a takeover after a restart): no second transition.
    bus.emit("operation.finished", op);
    await apps.idle();
    const [d] = gitlab.deployments(GITLAB_PROJECT);
    expect(d?.history).toEqual(["running", "canceled"]);
    expect(
      gitlab.received.filter((r) => r.method === "PUT" && r.path.includes("/deployments/")),
    ).toHaveLength(1);
  });

  it("keeps GitLab's 400 for a ref it does not have, and makes no deployment", async () => {
    const { version } = await seed({ type: "branch", name: "gone-branch" });
    const op = await runOp(version, "up", "succeeded");
    expect(gitlab.deployments(GITLAB_PROJECT)).toEqual([]);
    const failed = op.gitlabReports?.find((r) => r.kind === "deployment" && !r.ok);
    expect(failed?.error).toContain("HTTP 400");
    expect(failed?.error).toContain("The branch or tag does not exist");
    expect(failed?.attempts).toBe(1);
  });

  it("lands everything exactly once through more 502s than gitbeaker retries by itself", async () => {
    const { version } = await seed({ type: "branch", name: "main" });
    gitlab.failWhen({ path: /\/environments/, times: 12, status: 502 });
    gitlab.failWhen({ method: "POST", path: /\/deployments$/, times: 11, status: 502 });
    gitlab.loseAnswer({ method: "POST", path: /\/deployments$/, times: 1 });
    const op = await runOp(version, "up", "succeeded");
    expect(gitlab.environments(GITLAB_PROJECT)).toHaveLength(1);
    expect(gitlab.deployments(GITLAB_PROJECT)).toHaveLength(1);
    expect(gitlab.deployments(GITLAB_PROJECT)[0]?.history).toEqual(["running", "success"]);
    const created = op.gitlabReports?.find((r) => r.kind === "deployment" && r.state === "running");
    expect(created?.attempts).toBeGreaterThan(1);
  });

  it("never waits for GitLab: announcing the events returns at once while GitLab is down, and the failure is kept", async () => {
    apps.stop();
    const unreachable = await startFakeGitlab();
    const url = unreachable.url;
    await unreachable.close();
    apps = start({ url });
    const { version } = await seed({ type: "branch", name: "main" });
    const op0 = (await store.getOperation((await runOp(version, "down", "succeeded")).id))!;
    // The runner's emit returns before any GitLab call is made.
    const t0 = performance.now();
    bus.emit("operation.started", { ...op0, kind: "up" });
    expect(performance.now() - t0).toBeLessThan(50);
    await apps.idle();
    const started = Date.now();
    const op = await runOp(version, "up", "succeeded");
    expect(op.status).toBe("succeeded");
    // Retries stop within the policy's bounds (3 tries here).
    expect(Date.now() - started).toBeLessThan(10_000);
    const env = op.gitlabReports?.find((r) => r.kind === "environment");
    expect(env).toMatchObject({ ok: false, attempts: 3 });
    expect(env?.error).toContain("network error");
  });

  it("keeps GitLab's 401 without the token in any report or log line", async () => {
    apps.stop();
    apps = start({ token: "glpat-wrong-token-abcdef123456" });
    const { version } = await seed({ type: "mergeRequest", name: "5", sourceBranch: "main" });
    gitlab.registerMergeRequest(GITLAB_PROJECT, 5);
    const op = await runOp(version, "up", "succeeded");
    const texts = JSON.stringify(op.gitlabReports);
    expect(texts).toContain("HTTP 401");
    expect(texts).toContain("DOCKBOT_GITLAB_TOKEN");
    for (const text of [texts, logLines.join("\n")]) {
      expect(text).not.toContain("glpat-wrong-token-abcdef123456");
      expect(text).not.toContain(SECRET);
    }
  });
});
