// GitLab webhooks end to end: a real `git push` to the test sshd repository plus the webhook it
// would trigger leads to real containers, and the commit statuses reach a fake GitLab API that
// @gitbeaker/rest talks to exactly as it talks to gitlab.com.
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  dockerObjects,
  fetchText,
  startDockbot,
  webApp,
  type DockbotHarness,
  type OperationJson,
  type VersionJson,
} from "../support/dockbot-harness.js";
import { startFakeGitlab, type FakeGitlab } from "../support/fake-gitlab.js";
import { cleanUpAll, removeComposeProjects } from "../support/compose-cleanup.js";
import { fakeGitlabOauth } from "../support/fake-gitlab-oauth.js";
import { createTestRepo, type TestRepo } from "../support/git-server.js";
import { checkDeployServices, describeWithServices } from "../support/services.js";

/** The fake GitLab's token (dockbot's DOCKBOT_GITLAB_TOKEN in these tests). */
const FAKE_GITLAB_TOKEN = "glpat-fake-token-0123456789abcdef";

const GITLAB_PROJECT = 15;
const ZERO = "0000000000000000000000000000000000000000";
const fixture = (name: string) =>
  JSON.parse(
    readFileSync(new URL(`../fixtures/gitlab/${name}.json`, import.meta.url), "utf8"),
  ) as Record<string, unknown>;

function pushPayload(branch: string, after: string, before = ZERO) {
  const p = fixture("push");
  return {
    ...p,
    ref: `refs/heads/${branch}`,
    before,
    after,
    checkout_sha: after === ZERO ? null : after,
    project_id: GITLAB_PROJECT,
    project: { ...(p.project as object), id: GITLAB_PROJECT },
  };
}

function mrPayload(action: "open" | "merge" | "close", iid: number, sha: string) {
  const p = fixture(action === "open" ? "merge-request-open" : `merge-request-${action}`);
  const attrs = p.object_attributes as Record<string, unknown>;
  return {
    ...p,
    project: { ...(p.project as object), id: GITLAB_PROJECT },
    object_attributes: {
      ...attrs,
      iid,
      source_project_id: GITLAB_PROJECT,
      target_project_id: GITLAB_PROJECT,
      last_commit: { ...(attrs.last_commit as object), id: sha },
    },
  };
}

describeWithServices(
  await checkDeployServices(),
  "GitLab webhooks deploy by themselves and report to GitLab",
  () => {
    let h: DockbotHarness;
    let gitlab: FakeGitlab;
    let repo: TestRepo;
    let secret: string;

    beforeAll(async () => {
      // The merge requests' author (author_id 51 in GitLab's sample payloads) is a Developer:
      // below that, dockbot deploys no merge request by itself (docs/api.md, "Who may do what").
      const members = fakeGitlabOauth({ privateToken: FAKE_GITLAB_TOKEN });
      members.setAccessLevel(GITLAB_PROJECT, 51, 30);
      gitlab = await startFakeGitlab({ token: FAKE_GITLAB_TOKEN, plugins: [members.plugin] });
      gitlab.registerProject(GITLAB_PROJECT);
      h = await startDockbot({
        DOCKBOT_GITLAB_URL: gitlab.url,
        DOCKBOT_GITLAB_TOKEN: gitlab.token,
      });
      repo = await createTestRepo("hooks", webApp("hook v1"));
      const created = await h.api<{ webhookSecret: string }>("POST", "/api/projects", {
        name: "hooks",
        repoUrl: repo.sshUrl,
        gitlab: { projectId: GITLAB_PROJECT },
      });
      expect(created.status).toBe(201);
      secret = created.body.webhookSecret;
    });

    afterAll(async () => {
      await cleanUpAll([
        h && (() => h.close()),
        gitlab && (() => gitlab.close()),
        repo && (() => repo.remove()),
        // Versions turned on by pushes (main, rapid, ...) that no delivery deleted.
        () => removeComposeProjects("dockbot-hooks-"),
      ]);
    });

    async function deliver(
      event: string,
      payload: unknown,
      headers: Record<string, string> = {},
    ): Promise<{ status: number; body: Record<string, unknown> }> {
      const res = await fetch(`${h.baseUrl}/webhooks/gitlab`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-gitlab-event": event,
          "x-gitlab-token": secret,
          "idempotency-key": randomUUID(),
          ...headers,
        },
        body: typeof payload === "string" ? payload : JSON.stringify(payload),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    }

    const postedStates = (sha: string) =>
      gitlab.received
        .filter((r) => r.method === "POST" && r.path.endsWith(`/statuses/${sha}`))
        .map((r) => (r.body as { state: string }).state);

    async function waitFor<T>(
      what: string,
      probe: () => Promise<T | undefined> | T | undefined,
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

    it("deploys a pushed branch and posts pending, running, success on its commit", async () => {
      const sha = await repo.commit({ "index.html": "pushed\n" }, "push", "feature/Login_2");
      gitlab.registerCommit(GITLAB_PROJECT, sha, "feature/Login_2");
      const res = await deliver("Push Hook", pushPayload("feature/Login_2", sha));
      expect(res.status).toBe(202);
      const [opId] = res.body.operations as string[];
      const op = await h.waitForOperation(opId ?? "");
      expect(op.status).toBe("succeeded");
      expect(op.sha).toBe(sha);
      const version = (
        await h.api<VersionJson>("GET", "/api/projects/hooks/versions/feature-login-2")
      ).body;
      expect(version.state).toBe("running");
      expect(await fetchText(version.urls[0] ?? "")).toBe("pushed\n");
      await waitFor("the final status", () => (postedStates(sha).length >= 3 ? true : undefined));
      expect(postedStates(sha)).toEqual(["pending", "running", "success"]);
      const posted = gitlab.statuses(GITLAB_PROJECT, sha).at(-1);
      expect(posted?.name).toBe("dockbot/feature-login-2");
      expect(posted?.target_url).toContain(op.id);
      const deliveries = (
        await h.api<Array<{ outcome: string; operationIds: string[] }>>(
          "GET",
          "/api/projects/hooks/deliveries",
        )
      ).body;
      expect(deliveries[0]).toMatchObject({ outcome: "accepted", operationIds: [op.id] });
    });

    it("posts failed with the error when the build fails", async () => {
      const sha = await repo.commit(
        webApp("x", { dockerfileRun: "echo 'fatal: nope' >&2 && exit 4" }),
        "broken",
        "broken",
      );
      gitlab.registerCommit(GITLAB_PROJECT, sha, "broken");
      const res = await deliver("Push Hook", pushPayload("broken", sha));
      const op = await h.waitForOperation((res.body.operations as string[])[0] ?? "");
      expect(op.status).toBe("failed");
      await waitFor("the failed status", () =>
        postedStates(sha).includes("failed") ? true : undefined,
      );
      const last = gitlab.statuses(GITLAB_PROJECT, sha).at(-1);
      expect(last?.status).toBe("failed");
      expect(last?.description).toContain("exit code");
    });

    it("removes the version when its branch is deleted", async () => {
      const version = (
        await h.api<VersionJson>("GET", "/api/projects/hooks/versions/feature-login-2")
      ).body;
      await repo.deleteBranch("feature/Login_2");
      const res = await deliver(
        "Push Hook",
        pushPayload("feature/Login_2", ZERO, version.deployedSha ?? ZERO),
      );
      expect(res.status).toBe(202);
      const op = await h.waitForOperation((res.body.operations as string[])[0] ?? "");
      expect(op).toMatchObject({ kind: "delete", status: "succeeded" });
      expect((await h.api("GET", "/api/projects/hooks/versions/feature-login-2")).status).toBe(404);
      expect((await dockerObjects(version.composeProject)).containers).toEqual([]);
    });

    it("creates mr-<iid> when a merge request opens and removes it when it is merged", async () => {
      const sha = await repo.commit({ "index.html": "mr\n" }, "mr work", "topic");
      await repo.setMergeRequestHead(7, sha);
      gitlab.registerCommit(GITLAB_PROJECT, sha, "topic");
      const opened = await deliver("Merge Request Hook", mrPayload("open", 7, sha));
      expect(opened.status).toBe(202);
      const up = await h.waitForOperation((opened.body.operations as string[])[0] ?? "");
      expect(up.status).toBe("succeeded");
      const version = (await h.api<VersionJson>("GET", "/api/projects/hooks/versions/mr-7")).body;
      expect(version.state).toBe("running");
      const merged = await deliver("Merge Request Hook", mrPayload("merge", 7, sha));
      const del = await h.waitForOperation((merged.body.operations as string[])[0] ?? "");
      expect(del).toMatchObject({ kind: "delete", status: "succeeded" });
      expect((await h.api("GET", "/api/projects/hooks/versions/mr-7")).status).toBe(404);
      expect((await dockerObjects(version.composeProject)).containers).toEqual([]);
    });

    it("removes a merge request's version closed while its deploy is still running, leaving nothing running", async () => {
      const sha = await repo.commit(
        webApp("slow mr", { dockerfileRun: "sleep 8" }),
        "slow",
        "slow-topic",
      );
      await repo.setMergeRequestHead(8, sha);
      gitlab.registerCommit(GITLAB_PROJECT, sha, "slow-topic");
      const opened = await deliver("Merge Request Hook", mrPayload("open", 8, sha));
      const upId = (opened.body.operations as string[])[0] ?? "";
      await waitFor("the deploy to start", async () =>
        (await h.api<OperationJson>("GET", `/api/operations/${upId}`)).body.status === "running"
          ? true
          : undefined,
      );
      const composeProject = (await h.api<VersionJson>("GET", "/api/projects/hooks/versions/mr-8"))
        .body.composeProject;
      const closed = await deliver("Merge Request Hook", mrPayload("close", 8, sha));
      expect(closed.status).toBe(202);
      const del = await h.waitForOperation((closed.body.operations as string[])[0] ?? "");
      expect(del.status).toBe("succeeded");
      expect((await h.waitForOperation(upId)).status).toBe("canceled");
      expect((await h.api("GET", "/api/projects/hooks/versions/mr-8")).status).toBe(404);
      expect(await dockerObjects(composeProject)).toMatchObject({ containers: [], running: [] });
    });

    it("makes one operation when the same delivery comes twice", async () => {
      const sha = await repo.head("main");
      const key = randomUUID();
      const first = await deliver("Push Hook", pushPayload("main", sha), {
        "idempotency-key": key,
      });
      const second = await deliver("Push Hook", pushPayload("main", sha), {
        "idempotency-key": key,
      });
      expect(first.status).toBe(202);
      expect(second).toEqual({ status: 200, body: { duplicate: true } });
      await h.waitForOperation((first.body.operations as string[])[0] ?? "");
      const ops = await h.dockbot.store.listOperations({
        projectId: (await h.dockbot.service.getProject("hooks")).id,
      });
      const forDelivery = ops.filter((o) => o.trigger.deliveryId !== undefined && o.sha === sha);
      expect(forDelivery).toHaveLength(1);
    });

    it("deploys only the newest of twenty rapid pushes, reporting the superseded ones canceled", async () => {
      const shas: string[] = [];
      for (let i = 0; i < 20; i++) {
        const sha = await repo.commit({ "index.html": `rapid ${i}\n` }, `rapid ${i}`, "rapid");
        gitlab.registerCommit(GITLAB_PROJECT, sha, "rapid");
        shas.push(sha);
      }
      const ids: string[] = [];
      for (const sha of shas) {
        const res = await deliver("Push Hook", pushPayload("rapid", sha));
        ids.push(...(res.body.operations as string[]));
      }
      const ops = await Promise.all(ids.map((id) => h.waitForOperation(id)));
      const ran = ops.filter(
        (o) => o.status === "succeeded" || o.status === "failed" || o.status === "canceled",
      );
      expect(ops.filter((o) => o.status === "succeeded").length).toBeLessThanOrEqual(2);
      expect(ran.length).toBeLessThanOrEqual(2);
      expect(ops.at(-1)?.status).toBe("succeeded");
      const version = (await h.api<VersionJson>("GET", "/api/projects/hooks/versions/rapid")).body;
      expect(version.deployedSha).toBe(shas.at(-1));
      expect(await fetchText(version.urls[0] ?? "")).toBe("rapid 19\n");
      const superseded = ops.filter((o) => o.status === "superseded");
      expect(superseded.length).toBeGreaterThanOrEqual(18);
      const someSuperseded = superseded[0]?.sha ?? "";
      await waitFor("canceled on a superseded commit", () =>
        postedStates(someSuperseded).includes("canceled") ? true : undefined,
      );
    });

    describe("refusals store nothing", () => {
      async function counts() {
        const id = (await h.dockbot.service.getProject("hooks")).id;
        return {
          deliveries: (await h.dockbot.store.listDeliveries(id, 10_000)).length,
          operations: (await h.dockbot.store.listOperations({ projectId: id })).length,
        };
      }

      it("answers 401 to a wrong or missing token", async () => {
        const before = await counts();
        const wrong = await deliver("Push Hook", pushPayload("main", await repo.head("main")), {
          "x-gitlab-token": "nope",
        });
        expect(wrong.status).toBe(401);
        const res = await fetch(`${h.baseUrl}/webhooks/gitlab`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-gitlab-event": "Push Hook" },
          body: "{}",
        });
        expect(res.status).toBe(401);
        expect(await counts()).toEqual(before);
      });

      it("answers 400 to a body that is not JSON", async () => {
        const before = await counts();
        const res = await deliver("Push Hook", "{nope");
        expect(res.status).toBe(400);
        expect(await counts()).toEqual(before);
      });

      it("answers 413 to an oversized body", async () => {
        const before = await counts();
        const res = await deliver(
          "Push Hook",
          JSON.stringify({ padding: "x".repeat(6 * 1024 * 1024) }),
        );
        expect(res.status).toBe(413);
        expect(await counts()).toEqual(before);
      });

      it("answers 200 with the reason to an event it does not act on", async () => {
        const res = await deliver("Note Hook", {
          ...fixture("note-merge-request"),
          project: { id: GITLAB_PROJECT },
        });
        expect(res.status).toBe(200);
        expect(typeof res.body.ignored).toBe("string");
      });
    });
  },
);
