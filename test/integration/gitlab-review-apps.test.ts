// GitLab review apps end to end: GitLab's merge request payloads through the real receiver, the
// real sshd git server and the real Docker engine, and what reaches a fake GitLab that follows
// GitLab's own deployments / environments / notes code (test/support/fake-gitlab-review.ts):
// one environment per version, a deployment per deploy on the head SHA, one note edited
// throughout (also across a restart of dockbot), the environment stopped when the MR merges.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";
import { buildDockbot, type Dockbot } from "../../src/main.js";
import { apiClient, waitForOperation, type ApiCall } from "../support/api-client.js";
import { ADMIN_TOKEN, portBlock, webApp, type OperationJson } from "../support/dockbot-harness.js";
import { startFakeGitlab, type FakeGitlab } from "../support/fake-gitlab.js";
import { fakeGitlabOauth } from "../support/fake-gitlab-oauth.js";
import { authorizeKey, createTestRepo, type TestRepo } from "../support/git-server.js";
import { checkDeployServices, describeWithServices } from "../support/services.js";
import { freePort } from "../support/dockbot-process.js";

/** The fake GitLab's token (dockbot's DOCKBOT_GITLAB_TOKEN in these tests). */
const FAKE_GITLAB_TOKEN = "glpat-fake-token-0123456789abcdef";

const GITLAB_PROJECT = 4242;
const IID = 31;
const BRANCH = "feature/review-app";
const PROJECT = "grapps";

const fixture = (name: string) =>
  JSON.parse(
    readFileSync(new URL(`../fixtures/gitlab/${name}.json`, import.meta.url), "utf8"),
  ) as Record<string, unknown>;

function mrPayload(
  kind: "open" | "update-new-commits" | "merge" | "reopen" | "close",
  sha: string,
  oldrev?: string,
): Record<string, unknown> {
  const p = fixture(`merge-request-${kind}`);
  const attrs = p.object_attributes as Record<string, unknown>;
  const out: Record<string, unknown> = {
    ...attrs,
    iid: IID,
    source_branch: BRANCH,
    source_project_id: GITLAB_PROJECT,
    target_project_id: GITLAB_PROJECT,
    last_commit: { ...(attrs.last_commit as object), id: sha },
  };
  if (oldrev !== undefined) out.oldrev = oldrev;
  return {
    ...p,
    project: { ...(p.project as object), id: GITLAB_PROJECT },
    object_attributes: out,
  };
}

async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  ms = 60_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface VersionJson {
  id: string;
  name: string;
  state: string;
  composeProject: string;
  urls: string[];
  previewUrl?: string | null;
  deployedSha?: string;
  ref: { type: string; name: string; sourceBranch?: string };
}

describeWithServices(
  await checkDeployServices(),
  "GitLab review apps: environments, deployments and one merge request note",
  () => {
    let gitlab: FakeGitlab;
    let repo: TestRepo;
    let dataDir: string;
    let dockbot: Dockbot | undefined;
    let baseUrl = "";
    let api: ApiCall;
    let secret = "";
    let composeProject = "";
    const logLines: string[] = [];
    const shas: string[] = [];
    let env: Record<string, string>;

    async function start(): Promise<void> {
      const parsed = parseConfig(env);
      if (!parsed.ok) throw new Error(parsed.errors.join("; "));
      const logger = pino({ level: "debug" }, { write: (l: string) => void logLines.push(l) });
      dockbot = await buildDockbot(parsed.config, logger);
      baseUrl = `http://127.0.0.1:${await dockbot.listen()}`;
      api = apiClient(() => baseUrl, ADMIN_TOKEN);
      const key = (await (await fetch(`${baseUrl}/api/ssh-key`)).json()) as { publicKey: string };
      await authorizeKey(key.publicKey);
    }

    async function deliver(payload: unknown): Promise<string[]> {
      const res = await fetch(`${baseUrl}/webhooks/gitlab`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-gitlab-event": "Merge Request Hook",
          "x-gitlab-token": secret,
          "idempotency-key": randomUUID(),
        },
        body: JSON.stringify(payload),
      });
      expect(res.status).toBe(202);
      return ((await res.json()) as { operations: string[] }).operations;
    }

    const op = (id: string) => waitForOperation<OperationJson>(api, id, 180_000);
    const version = async () =>
      (await api<VersionJson>("GET", `/api/projects/${PROJECT}/versions/mr-${IID}`)).body;
    const deployments = () => gitlab.deployments(GITLAB_PROJECT);
    const notes = () => gitlab.notes(GITLAB_PROJECT, IID);
    /** The operation's GitLab reports once its final deployment and note are in. */
    const settled = (id: string, final: string) =>
      waitFor(`GitLab reports of ${id}`, async () => {
        const body = (
          await api<OperationJson & { gitlab?: Array<Record<string, unknown>> }>(
            "GET",
            `/api/operations/${id}`,
          )
        ).body;
        const reports = body.gitlab ?? [];
        const done =
          reports.some((r) => r.kind === "deployment" && r.state === final) &&
          reports.some((r) => r.kind === "note" && r.state !== "deploying");
        return done ? reports : undefined;
      });

    beforeAll(async () => {
      // The merge requests' author (author_id 51 in GitLab's sample payloads) is a Developer:
      // below that, dockbot deploys no merge request by itself (docs/api.md, "Who may do what").
      const members = fakeGitlabOauth({ privateToken: FAKE_GITLAB_TOKEN });
      members.setAccessLevel(GITLAB_PROJECT, 51, 30);
      gitlab = await startFakeGitlab({ token: FAKE_GITLAB_TOKEN, plugins: [members.plugin] });
      gitlab.registerProject(GITLAB_PROJECT);
      gitlab.registerMergeRequest(GITLAB_PROJECT, IID);
      dataDir = await mkdtemp(path.join(os.tmpdir(), "dockbot-grapps-"));
      env = {
        DOCKBOT_DATA_DIR: dataDir,
        DOCKBOT_PORT: "0",
        DOCKBOT_HOST: "127.0.0.1",
        DOCKBOT_ADMIN_TOKEN: ADMIN_TOKEN,
        DOCKBOT_PUBLIC_URL: "http://127.0.0.1:3999",
        DOCKBOT_PREVIEW_PORT: String(await freePort()),
        DOCKBOT_PORT_RANGE: portBlock(),
        DOCKBOT_GITLAB_URL: gitlab.url,
        DOCKBOT_GITLAB_TOKEN: gitlab.token,
      };
      await start();
      repo = await createTestRepo("grapps", webApp("review v0"));
      const created = await api<{ webhookSecret: string }>("POST", "/api/projects", {
        name: PROJECT,
        repoUrl: repo.sshUrl,
        gitlab: { projectId: GITLAB_PROJECT },
      });
      expect(created.status).toBe(201);
      secret = created.body.webhookSecret;
    });

    afterAll(async () => {
      await dockbot?.close(2000);
      if (composeProject) {
        // Whatever a failed test left of the version (a passing run deletes it through the MR).
        const ids = (
          await execa("docker", [
            "ps",
            "-aq",
            "--filter",
            `label=com.docker.compose.project=${composeProject}`,
          ])
        ).stdout
          .split("\n")
          .filter(Boolean);
        if (ids.length > 0) await execa("docker", ["rm", "-f", "-v", ...ids], { reject: false });
        await execa(
          "docker",
          [
            "network",
            "prune",
            "-f",
            "--filter",
            `label=com.docker.compose.project=${composeProject}`,
          ],
          { reject: false },
        );
        await execa(
          "docker",
          [
            "volume",
            "prune",
            "-f",
            "--filter",
            `label=com.docker.compose.project=${composeProject}`,
          ],
          { reject: false },
        );
        const images = (
          await execa("docker", ["image", "ls", "--format", "{{.Repository}}"])
        ).stdout
          .split("\n")
          .filter((r) => r.startsWith(`${composeProject}-`) || r.startsWith(`${composeProject}_`));
        if (images.length > 0) await execa("docker", ["rmi", "-f", ...images], { reject: false });
      }
      await gitlab?.close();
      await repo?.remove();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    it("makes one environment, a running then successful deployment on the head SHA and one note when a merge request opens", async () => {
      const sha = await repo.commit(webApp("review v1"), "review v1", BRANCH);
      shas.push(sha);
      await repo.setMergeRequestHead(IID, sha);
      gitlab.registerCommit(GITLAB_PROJECT, sha, BRANCH);
      const [upId] = await deliver(mrPayload("open", sha));
      const up = await op(upId ?? "");
      expect(up.status).toBe("succeeded");
      const v = await version();
      composeProject = v.composeProject;
      expect(v.ref).toEqual({ type: "mergeRequest", name: String(IID), sourceBranch: BRANCH });
      const reports = await settled(up.id, "success");
      expect(reports.filter((r) => r.kind === "deployment").map((r) => r.state)).toEqual([
        "running",
        "success",
      ]);

      const envs = gitlab.environments(GITLAB_PROJECT);
      expect(envs).toHaveLength(1);
      expect(envs[0]).toMatchObject({ name: `dockbot/mr-${IID}`, state: "available" });
      expect(envs[0]?.external_url).toBe(v.previewUrl ?? v.urls[0]);
      expect(envs[0]?.external_url).toMatch(/^http:\/\//);
      const [d] = deployments();
      expect(deployments()).toHaveLength(1);
      expect(d).toMatchObject({ sha, ref: BRANCH, tag: false, environment: `dockbot/mr-${IID}` });
      expect(d?.history).toEqual(["running", "success"]);
      const [note] = notes();
      expect(notes()).toHaveLength(1);
      const projectId = (await api<{ id: string }>("GET", `/api/projects/${PROJECT}`)).body.id;
      expect(note?.body).toContain(`<!-- dockbot:version:${projectId}/mr-${IID} -->`);
      expect(note?.body).toContain(sha.slice(0, 8));
      expect(note?.body).toContain("**running**");
      expect(note?.body).toContain(`http://127.0.0.1:3999/operations/${up.id}`);
      expect(note?.body).toContain(envs[0]?.external_url ?? "no url");
    });

    it("adds a second deployment and edits the same note when new commits arrive, even through GitLab's 502s and lost answers", async () => {
      const before = notes()[0];
      const sha = await repo.commit({ "index.html": "review v2\n" }, "review v2", BRANCH);
      shas.push(sha);
      await repo.setMergeRequestHead(IID, sha);
      gitlab.registerCommit(GITLAB_PROJECT, sha, BRANCH);
      // More 502s than gitbeaker retries by itself (10), then answers lost after GitLab acted.
      gitlab.failWhen({ method: "POST", path: /\/deployments$/, times: 11, status: 502 });
      gitlab.failWhen({ method: "PUT", path: /\/notes\/\d+$/, times: 11, status: 502 });
      gitlab.loseAnswer({ method: "POST", path: /\/deployments$/, times: 1 });
      gitlab.loseAnswer({ method: "PUT", path: /\/deployments\/\d+$/, times: 1 });
      const [upId] = await deliver(mrPayload("update-new-commits", sha, shas[0]));
      const up = await op(upId ?? "");
      expect(up.status).toBe("succeeded");
      await settled(up.id, "success");
      expect(deployments()).toHaveLength(2);
      expect(deployments()[1]).toMatchObject({ sha, ref: BRANCH, status: "success" });
      expect(deployments()[1]?.history).toEqual(["running", "success"]);
      expect(deployments()[0]?.status).toBe("success");
      expect(gitlab.environments(GITLAB_PROJECT)).toHaveLength(1);
      const after = notes();
      expect(after).toHaveLength(1);
      expect(after[0]?.id).toBe(before?.id);
      expect(after[0]?.edits).toBeGreaterThan(before?.edits ?? 0);
      expect(after[0]?.body).toContain(sha.slice(0, 8));
    });

    it("keeps writing the one note after a restart of dockbot, also when the note's id was lost", async () => {
      await dockbot?.close(5000);
      dockbot = undefined;
      await start();
      // As if dockbot had crashed after GitLab made the note but before its id was stored.
      const v = await version();
      await dockbot!.store.updateVersion(v.id, {
        gitlab: { environmentId: gitlab.environments(GITLAB_PROJECT)[0]!.id },
      });
      const sha = await repo.commit({ "index.html": "review v3\n" }, "review v3", BRANCH);
      shas.push(sha);
      await repo.setMergeRequestHead(IID, sha);
      gitlab.registerCommit(GITLAB_PROJECT, sha, BRANCH);
      const [upId] = await deliver(mrPayload("update-new-commits", sha, shas[1]));
      const up = await op(upId ?? "");
      expect(up.status).toBe("succeeded");
      await settled(up.id, "success");
      expect(notes()).toHaveLength(1);
      expect(notes()[0]?.body).toContain(sha.slice(0, 8));
      expect(deployments()).toHaveLength(3);
      expect(gitlab.environments(GITLAB_PROJECT)).toHaveLength(1);
      expect((await dockbot!.store.getVersion(v.id))?.gitlab?.noteId).toBe(notes()[0]?.id);
    });

    it("sets the deployment failed and says so in the note when the build breaks", async () => {
      const sha = await repo.commit(
        webApp("broken", { dockerfileRun: "echo 'fatal: broken build' >&2 && exit 3" }),
        "broken",
        BRANCH,
      );
      shas.push(sha);
      await repo.setMergeRequestHead(IID, sha);
      gitlab.registerCommit(GITLAB_PROJECT, sha, BRANCH);
      const [upId] = await deliver(mrPayload("update-new-commits", sha, shas[2]));
      const up = await op(upId ?? "");
      expect(up.status).toBe("failed");
      await settled(up.id, "failed");
      const last = deployments().at(-1);
      expect(last).toMatchObject({ sha, status: "failed" });
      expect(last?.history).toEqual(["running", "failed"]);
      expect(notes()).toHaveLength(1);
      expect(notes()[0]?.body).toContain("**failed**");
    });

    it("stops the environment and tells the merge request its preview is gone when it is merged", async () => {
      const [delId] = await deliver(mrPayload("merge", shas.at(-1) ?? ""));
      const del = await op(delId ?? "");
      expect(del).toMatchObject({ kind: "delete", status: "succeeded" });
      await waitFor("the environment to stop", () =>
        gitlab.environments(GITLAB_PROJECT)[0]?.state === "stopped" ? true : undefined,
      );
      await waitFor("the note to say the preview is gone", () =>
        notes()[0]?.body.includes("preview of this merge request is gone") ? true : undefined,
      );
      expect(notes()).toHaveLength(1);
      expect(gitlab.environments(GITLAB_PROJECT)).toHaveLength(1);
      // Every deployment ended exactly once; none moved after it finished.
      for (const d of deployments()) expect(d.history).toHaveLength(2);
      const stopReport = (
        await api<{ gitlab?: Array<Record<string, unknown>> }>("GET", `/api/operations/${del.id}`)
      ).body.gitlab?.find((r) => r.kind === "stop");
      expect(stopReport).toMatchObject({ ok: true });
    });

    it("brings the same environment and the same note back when the merge request is reopened", async () => {
      const sha = shas[1] ?? "";
      await repo.setMergeRequestHead(IID, sha);
      const [upId] = await deliver(mrPayload("reopen", sha));
      const up = await op(upId ?? "");
      expect(up.status).toBe("succeeded");
      await settled(up.id, "success");
      expect(gitlab.environments(GITLAB_PROJECT)).toHaveLength(1);
      expect(gitlab.environments(GITLAB_PROJECT)[0]?.state).toBe("available");
      expect(notes()).toHaveLength(1);
      expect(notes()[0]?.body).toContain("**running**");
      expect(notes()[0]?.body).not.toContain("is gone");
      const [delId] = await deliver(mrPayload("close", sha));
      expect((await op(delId ?? "")).status).toBe("succeeded");
      await waitFor("the environment to stop again", () =>
        gitlab.environments(GITLAB_PROJECT)[0]?.state === "stopped" ? true : undefined,
      );
    });

    it("never puts the GitLab token or the webhook secret in a log line or a GitLab call", () => {
      const all = logLines.join("\n");
      expect(all).not.toContain(gitlab.token);
      expect(all).not.toContain(secret);
      const posted = JSON.stringify(
        gitlab.received.filter((r) => !r.path.endsWith("/hooks")).map((r) => [r.query, r.body]),
      );
      expect(posted).not.toContain(gitlab.token);
      expect(posted).not.toContain(secret);
    });
  },
);
