// Turn on, turn off, view and delete for real: dockbot fetches over the test sshd with its own
// key, checks out the exact commit and runs Docker Compose (v2 and v1) on the real engine.
import { existsSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  dockerObjects,
  fetchText,
  startDockbot,
  webApp,
  type DockbotHarness,
  type OperationJson,
  type VersionJson,
} from "../support/dockbot-harness.js";
import { createTestRepo, type TestRepo } from "../support/git-server.js";
import { checkMongo, testDatabase } from "../support/mongo.js";
import {
  checkComposeV1,
  checkComposeV2,
  checkDocker,
  checkGitServer,
  checkTestBaseImage,
  describeWithServices,
} from "../support/services.js";
import { cleanUpAll, removeComposeProjects } from "../support/compose-cleanup.js";

const common = [await checkDocker(), await checkTestBaseImage(), await checkGitServer()];
const mongo = await checkMongo();
const database = testDatabase();
const modes = [
  { mode: "v2", checks: [await checkComposeV2()], env: {}, label: "Compose v2" },
  { mode: "v1", checks: [await checkComposeV1()], env: {}, label: "Compose v1" },
  {
    mode: "v2",
    checks: [await checkComposeV2(), mongo],
    env: { DOCKBOT_MONGODB_URL: database.url },
    label: "Compose v2 and the MongoDB store",
  },
] as const;

const SECRET = "tok-9f8e7d6c5b4a";

for (const { mode, checks, env, label } of modes) {
  describeWithServices([...common, ...checks], `deploys with ${label}`, () => {
    let h: DockbotHarness;
    let repo: TestRepo;
    const project = `app-${mode}-${"DOCKBOT_MONGODB_URL" in env ? "mongo" : "sqlite"}`;

    beforeAll(async () => {
      h = await startDockbot({ DOCKBOT_COMPOSE: mode, ...env });
      repo = await createTestRepo(`deploy-${mode}`, webApp("hello v1"));
      const created = await h.api("POST", "/api/projects", {
        name: project,
        repoUrl: repo.sshUrl,
        env: { SECRET_TOKEN: SECRET },
      });
      expect(created.status).toBe(201);
    });

    afterAll(async () => {
      await cleanUpAll([
        h && (() => h.close()),
        repo && (() => repo.remove()),
        "DOCKBOT_MONGODB_URL" in env && (() => database.drop()),
        // A test that failed before its delete leaves its version's objects.
        () => removeComposeProjects(`dockbot-${project}-`),
      ]);
    });

    async function turnOn(version: string): Promise<OperationJson> {
      const res = await h.api<OperationJson>(
        "POST",
        `/api/projects/${project}/versions/${version}/on`,
      );
      expect(res.status).toBe(202);
      return h.waitForOperation(res.body.id);
    }

    async function getVersion(version: string) {
      return (await h.api<VersionJson>("GET", `/api/projects/${project}/versions/${version}`)).body;
    }

    it("turns a branch on and the service answers HTTP with the committed content", async () => {
      const created = await h.api<VersionJson>("POST", `/api/projects/${project}/versions`, {
        ref: "main",
      });
      expect(created.status).toBe(201);
      const op = await turnOn("main");
      expect(op.error).toBeUndefined();
      expect(op.status).toBe("succeeded");
      expect(op.sha).toBe(await repo.head("main"));
      const version = await getVersion("main");
      expect(version.state).toBe("running");
      expect(version.deployedSha).toBe(op.sha);
      expect(version.urls).toHaveLength(1);
      expect(await fetchText(version.urls[0] ?? "")).toBe("hello v1\n");
      expect(op.log).toContain("cloned the repository");
    });

    it("never shows the project's secret env value in the log, though the build echoes it", async () => {
      const view = await h.api<OperationJson>("GET", `/api/projects/${project}/versions/main/view`);
      expect(view.body.log).toMatch(/build \w+ sees token \*\*\*/);
      expect(view.body.log).not.toContain(SECRET);
      const text = await fetch(`${h.baseUrl}/api/operations/${view.body.id}/log`, {
        headers: { authorization: `Bearer e2e-admin-token-0123456789abcdef` },
      }).then((r) => r.text());
      expect(text).not.toContain(SECRET);
      const stored = await h.dockbot.store.getLogLines(view.body.id, 0, 100_000);
      expect(stored.some((l) => l.text.includes(SECRET))).toBe(false);
    });

    it("serves a new commit after turning on again, fetching the mirror instead of cloning", async () => {
      const sha = await repo.commit({ "index.html": "hello v2\n" }, "v2");
      const op = await turnOn("main");
      expect(op.status).toBe("succeeded");
      expect(op.sha).toBe(sha);
      expect(op.log).toContain("fetched the repository");
      expect(op.log).not.toContain("cloned the repository");
      const version = await getVersion("main");
      expect(await fetchText(version.urls[0] ?? "")).toBe("hello v2\n");
    });

    it("turns off: no container is left, images and volumes stay", async () => {
      const res = await h.api<OperationJson>("POST", `/api/projects/${project}/versions/main/off`);
      expect(res.status).toBe(202);
      const op = await h.waitForOperation(res.body.id);
      expect(op.status).toBe("succeeded");
      const version = await getVersion("main");
      expect(version.state).toBe("off");
      expect(version.urls).toEqual([]);
      const objects = await dockerObjects(version.composeProject);
      expect(objects.containers).toEqual([]);
      expect(objects.volumes).toHaveLength(1);
      expect(objects.images.length).toBeGreaterThan(0);
    });

    it("deletes: no container, built image, volume, network or checkout is left, and the version is gone", async () => {
      await turnOn("main");
      const version = await getVersion("main");
      const checkout = path.join(h.dataDir, "checkouts", project, "main");
      expect(existsSync(checkout)).toBe(true);
      const res = await h.api<OperationJson>("DELETE", `/api/projects/${project}/versions/main`);
      expect(res.status).toBe(202);
      const op = await h.waitForOperation(res.body.id);
      expect(op.status).toBe("succeeded");
      expect(await dockerObjects(version.composeProject)).toEqual({
        containers: [],
        running: [],
        volumes: [],
        networks: [],
        images: [],
      });
      expect(existsSync(checkout)).toBe(false);
      expect((await h.api("GET", `/api/projects/${project}/versions/main`)).status).toBe(404);
      // The delete operation itself stays readable.
      expect((await h.api<OperationJson>("GET", `/api/operations/${op.id}`)).body.kind).toBe(
        "delete",
      );
    });

    it("keeps the volumes when deleting with keepVolumes=true", async () => {
      await h.api("POST", `/api/projects/${project}/versions`, { ref: "main", name: "keep" });
      expect((await turnOn("keep")).status).toBe("succeeded");
      const version = await getVersion("keep");
      const res = await h.api<OperationJson>(
        "DELETE",
        `/api/projects/${project}/versions/keep?keepVolumes=true`,
      );
      expect((await h.waitForOperation(res.body.id)).status).toBe("succeeded");
      const objects = await dockerObjects(version.composeProject);
      expect(objects.containers).toEqual([]);
      expect(objects.images).toEqual([]);
      expect(objects.volumes).toHaveLength(1);
      await import("execa").then(({ execa }) =>
        execa("docker", ["volume", "rm", ...objects.volumes]),
      );
    });
  });
}

describeWithServices([...common, ...modes[0].checks], "deploy failures, cancel and timeout", () => {
  let h: DockbotHarness;
  let repo: TestRepo;

  beforeAll(async () => {
    h = await startDockbot({ DOCKBOT_OPERATION_TIMEOUT: "20" });
    repo = await createTestRepo("failures", webApp("ok"));
    await repo.commit(webApp("slow", { dockerfileRun: "sleep 60" }), "slow build", "slow");
    await repo.commit(
      webApp("broken", { dockerfileRun: "echo 'boom: missing thing' >&2 && exit 3" }),
      "broken",
      "broken",
    );
    await repo.commit({ "compose.yaml": null }, "no compose file", "nocompose");
    await h.api("POST", "/api/projects", { name: "fail", repoUrl: repo.sshUrl });
  });

  afterAll(async () => {
    await cleanUpAll([
      h && (() => h.close()),
      repo && (() => repo.remove()),
      // Failed and canceled builds leave no container, but may leave networks and images.
      () => removeComposeProjects("dockbot-fail-"),
    ]);
  });

  async function runOn(ref: string, name?: string): Promise<OperationJson> {
    const created = await h.api<VersionJson>("POST", "/api/projects/fail/versions", {
      ref,
      ...(name ? { name } : {}),
    });
    expect(created.status).toBe(201);
    const res = await h.api<OperationJson>(
      "POST",
      `/api/projects/fail/versions/${created.body.id}/on`,
    );
    return h.waitForOperation(res.body.id);
  }

  it("fails with a readable line when the ref is missing from the repository", async () => {
    const op = await runOn("no-such-branch");
    expect(op.status).toBe("failed");
    expect(op.error).toMatch(/no-such-branch/);
    expect(op.error).not.toContain("\n");
  });

  it("fails naming the files looked for when there is no compose file", async () => {
    const op = await runOn("nocompose");
    expect(op.status).toBe("failed");
    expect(op.error).toContain("compose.yaml");
    expect(op.error).toContain("docker-compose.yml");
  });

  it("fails with the exit code and the last lines of a failing build", async () => {
    const op = await runOn("broken");
    expect(op.status).toBe("failed");
    expect(op.exitCode).toBeGreaterThan(0);
    expect(op.error).toMatch(/exit code/);
    expect(op.log).toContain("boom: missing thing");
    const version = (await h.api<VersionJson>("GET", "/api/projects/fail/versions/broken")).body;
    expect(version.state).toBe("failed");
  });

  it("tells to add the deploy key when the server refuses dockbot's key", async () => {
    const url = repo.sshUrl.replace("ssh://git@", "ssh://nobody@");
    await h.api("POST", "/api/projects", { name: "refused", repoUrl: url });
    await h.api("POST", "/api/projects/refused/versions", { ref: "main" });
    const res = await h.api<OperationJson>("POST", "/api/projects/refused/versions/main/on");
    const op = await h.waitForOperation(res.body.id);
    expect(op.status).toBe("failed");
    expect(op.error).toContain("/api/ssh-key");
  });

  it("fails with a readable line when the repository is unreachable", async () => {
    await h.api("POST", "/api/projects", {
      name: "unreachable",
      repoUrl: "ssh://git@127.0.0.1:1/nothing.git",
    });
    await h.api("POST", "/api/projects/unreachable/versions", { ref: "main" });
    const res = await h.api<OperationJson>("POST", "/api/projects/unreachable/versions/main/on");
    const op = await h.waitForOperation(res.body.id);
    expect(op.status).toBe("failed");
    expect(op.error?.toLowerCase()).toMatch(/unreachable|connect|refused/);
  });

  it("cancels during a slow build: the operation is canceled fast and no container is left", async () => {
    const created = await h.api<VersionJson>("POST", "/api/projects/fail/versions", {
      ref: "slow",
    });
    const res = await h.api<OperationJson>(
      "POST",
      `/api/projects/fail/versions/${created.body.id}/on`,
    );
    // Wait until the build is under way.
    const until = Date.now() + 60_000;
    for (;;) {
      const op = (await h.api<OperationJson>("GET", `/api/operations/${res.body.id}`)).body;
      if (op.log?.includes("sleep 60")) break;
      if (Date.now() > until) throw new Error("the slow build never started");
      await new Promise((r) => setTimeout(r, 200));
    }
    const started = Date.now();
    expect((await h.api("POST", `/api/operations/${res.body.id}/cancel`)).status).toBe(202);
    const op = await h.waitForOperation(res.body.id, 30_000);
    expect(op.status).toBe("canceled");
    expect(Date.now() - started).toBeLessThan(15_000);
    const objects = await dockerObjects(created.body.composeProject);
    expect(objects.running).toEqual([]);
  });

  it("kills and fails an operation that runs past DOCKBOT_OPERATION_TIMEOUT", async () => {
    const op = await runOn("slow", "slow-timeout");
    expect(op.status).toBe("failed");
    expect(op.error).toMatch(/timed out after 20 s/);
  });
});
