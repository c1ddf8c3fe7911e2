// Kept deploys and rollback for real (docs/api.md, "Rollback"): the real Docker engine with
// Compose v2 and v1, the sshd git server, and a fake GitLab (test/support/fake-gitlab.ts) for
// the commit statuses. One project with one version (`main`) per Compose mode goes through the
// story in order, each case building on the one before: a good deploy, a broken one rolled back
// automatically, kept images after a third verified deploy, manual rollbacks, and kept images
// removed by someone else. Compose projects start with `dockbot-rbk`, images of the test's own
// base tag with `dockbot-rbk-base-`; all removed in afterAll whatever failed.
import { randomBytes } from "node:crypto";
import { access } from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  fetchText,
  startDockbot,
  type DockbotHarness,
  type OperationJson,
  type VersionJson,
} from "../support/dockbot-harness.js";
import { cleanUpAll, removeComposeProjects } from "../support/compose-cleanup.js";
import { startFakeGitlab, type FakeGitlab } from "../support/fake-gitlab.js";
import { startRelay, type TcpRelay } from "../support/tcp-relay.js";
import { createTestRepo, type RepoFiles, type TestRepo } from "../support/git-server.js";
import {
  checkComposeV1,
  checkComposeV2,
  checkDocker,
  checkGitServer,
  checkTestBaseImage,
  describeWithServices,
  TEST_BASE_IMAGE,
} from "../support/services.js";

const common = [await checkDocker(), await checkTestBaseImage(), await checkGitServer()];
const modes = [
  { mode: "v2", checks: [await checkComposeV2()] },
  { mode: "v1", checks: [await checkComposeV1()] },
] as const;

const GITLAB_TOKEN = "glpat-rollback-0123456789abcdef";
const GITLAB_PROJECT = 7414;
/** Seconds an up waits for health here: a broken commit fails at once anyway. */
const HEALTH_TIMEOUT = 15;

interface Version extends VersionJson {
  lastGood?: { sha: string; deployedAt: string };
  goodDeploys?: Array<{
    sha: string;
    deployedAt: string;
    operationId?: string;
    images?: Record<string, string>;
  }>;
}
type Operation = OperationJson & { rolledBackTo?: string };

/** A built web app that serves `label`, or one whose container exits 4 (`broken`). */
function app(label: string, o: { broken?: boolean; from?: string } = {}): RepoFiles {
  const cmd = o.broken
    ? '["sh", "-c", "echo broken-app-5d2; exit 4"]'
    : '["httpd", "-f", "-p", "8080", "-h", "/www"]';
  return {
    "index.html": `${label}\n`,
    Dockerfile: [
      `FROM ${o.from ?? TEST_BASE_IMAGE}`,
      "COPY index.html /www/index.html",
      `CMD ${cmd}`,
      "",
    ].join("\n"),
    "compose.yaml": [
      "services:",
      "  web:",
      "    build: .",
      '    ports: ["8080"]',
      "    init: true",
      "",
    ].join("\n"),
  };
}

async function docker(args: string[]): Promise<string[]> {
  const { stdout } = await execa("docker", args);
  return stdout.split("\n").filter((l) => l.trim() !== "");
}

for (const { mode, checks } of modes) {
  describeWithServices(
    [...common, ...checks],
    `kept deploys and rollback with Compose ${mode}`,
    () => {
      let h: DockbotHarness;
      let repo: TestRepo;
      let gitlab: FakeGitlab;
      const project = `rbk${mode}-${randomBytes(3).toString("hex")}`;
      const composeProject = `dockbot-${project}-main`;
      const webRepo = `${composeProject}-web`;
      /** A base image tag of this test's own, removed by a case to make a rebuild fail. */
      const ownBase = `dockbot-rbk-base-${randomBytes(4).toString("hex")}`;
      const sha: Record<string, string> = {};

      beforeAll(async () => {
        gitlab = await startFakeGitlab({ token: GITLAB_TOKEN });
        h = await startDockbot({
          DOCKBOT_COMPOSE: mode,
          DOCKBOT_HEALTH_TIMEOUT: String(HEALTH_TIMEOUT),
          DOCKBOT_GITLAB_URL: gitlab.url,
          DOCKBOT_GITLAB_TOKEN: GITLAB_TOKEN,
        });
        repo = await createTestRepo(`rbk-${mode}`, app("commit A"));
        sha.A = await repo.head();
        gitlab.registerCommit(GITLAB_PROJECT, sha.A, "main");
        const created = await h.api("POST", "/api/projects", {
          name: project,
          repoUrl: repo.sshUrl,
          gitlab: { projectId: GITLAB_PROJECT },
        });
        expect(created.status, JSON.stringify(created.body)).toBe(201);
        const version = await h.api("POST", `/api/projects/${project}/versions`, { ref: "main" });
        expect(version.status).toBe(201);
      }, 300_000);

      afterAll(async () => {
        await cleanUpAll([
          h && (() => h.close()),
          repo && (() => repo.remove()),
          gitlab && (() => gitlab.close()),
          () => removeComposeProjects(`dockbot-${project}-`),
          async () => {
            const left = await docker(["image", "ls", "-q", ownBase]);
            if (left.length > 0) await docker(["rmi", ownBase]);
          },
        ]);
      });

      /** Commits `files` on main as commit `name`, known to GitLab. */
      async function commit(name: string, files: RepoFiles): Promise<string> {
        sha[name] = await repo.commit(files, `commit ${name}`);
        gitlab.registerCommit(GITLAB_PROJECT, sha[name], "main");
        return sha[name];
      }

      async function turnOn(): Promise<Operation> {
        const res = await h.api<Operation>("POST", `/api/projects/${project}/versions/main/on`);
        expect(res.status).toBe(202);
        return h.waitForOperation(res.body.id);
      }

      /** The version once the runner has settled it after its last operation. */
      async function version(): Promise<Version> {
        const until = Date.now() + 15_000;
        for (;;) {
          const v = (await h.api<Version>("GET", `/api/projects/${project}/versions/main`)).body;
          if (!["queued", "deploying"].includes(v.state) || Date.now() > until) return v;
          await new Promise((r) => setTimeout(r, 100));
        }
      }

      /** What the version's published port serves now. */
      async function served(): Promise<string> {
        const url = ((await version()).urls[0] ?? "").replace("//localhost:", "//127.0.0.1:");
        return (await fetchText(`${url}/`)).trim();
      }

      /** The version's kept image tags Docker holds, sorted. */
      async function keptTags(): Promise<string[]> {
        const rows = await docker(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}", webRepo]);
        return rows.filter((r) => r.includes(":good-")).sort();
      }

      const tagOf = (name: string) => `${webRepo}:good-${(sha[name] ?? "").slice(0, 12)}`;
      const keptModel = (name: string) =>
        path.join(
          h.dataDir,
          "checkouts",
          project,
          `main.good-${(sha[name] ?? "").slice(0, 12)}.json`,
        );
      const exists = (file: string) =>
        access(file).then(
          () => true,
          () => false,
        );

      /** The newest commit status job of `name` on GitLab once it reached `state`. */
      async function gitlabStatus(name: string, state: string) {
        const until = Date.now() + 30_000;
        for (;;) {
          const jobs = gitlab.statuses(GITLAB_PROJECT, sha[name] ?? "");
          const last = jobs.at(-1);
          if (last?.status === state) return { last, jobs };
          if (Date.now() > until) {
            throw new Error(`no ${state} status on commit ${name}: ${JSON.stringify(jobs)}`);
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      }

      /** The statuses of the deployments of commit `name` on the version's environment, once `ok`. */
      async function deploymentsOf(name: string, ok: (s: string[]) => boolean): Promise<string[]> {
        const until = Date.now() + 30_000;
        for (;;) {
          const found = gitlab
            .deployments(GITLAB_PROJECT)
            .filter((d) => d.sha === sha[name] && d.environment === "dockbot/main")
            .map((d) => d.status);
          if (ok(found)) return found;
          if (Date.now() > until) throw new Error(`deployments of ${name}: ${found.join(", ")}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }

      async function rollback() {
        return h.api<Operation & { error?: { code: string; message: string } }>(
          "POST",
          `/api/projects/${project}/versions/main/rollback`,
        );
      }

      it("keeps a verified deploy: its image under the version's own good-<sha> tag and its model", async () => {
        const up = await turnOn();
        expect(up.status, up.log).toBe("succeeded");
        expect(up.log).toContain(`kept this deploy (${tagOf("A")})`);
        const v = await version();
        expect(v.lastGood?.sha).toBe(sha.A);
        expect(v.goodDeploys?.map((d) => d.sha)).toEqual([sha.A]);
        expect(v.goodDeploys?.[0]).toMatchObject({
          operationId: up.id,
          images: { web: tagOf("A") },
        });
        expect(await keptTags()).toEqual([tagOf("A")]);
        expect(await exists(keptModel("A"))).toBe(true);
        expect(await served()).toBe("commit A");
      });

      it("rolls a broken up back to the kept deploy without building it, and GitLab has both commits right", async () => {
        await commit("B", app("commit B", { broken: true }));
        const failed = await turnOn();
        expect(failed.status).toBe("failed");
        expect(failed.sha).toBe(sha.B);
        expect(failed.rolledBackTo).toBe(sha.A);
        expect(failed.error).toBe(
          `health check failed: web (exited with code 4); rolled back to ${sha.A?.slice(0, 8)}`,
        );
        expect(failed.log).toContain(`web runs the kept image ${tagOf("A")} as ${webRepo}`);
        expect(failed.log).toContain("docker compose up without building");
        const v = await version();
        expect(v.state).toBe("running");
        expect(v.deployedSha).toBe(sha.A);
        expect(v.goodDeploys?.map((d) => d.sha)).toEqual([sha.A]);
        expect(await served()).toBe("commit A");
        // The broken commit was never verified: nothing of it is kept.
        expect(await keptTags()).toEqual([tagOf("A")]);

        const bad = await gitlabStatus("B", "failed");
        expect(bad.last.name).toBe("dockbot/main");
        expect(bad.last.description).toContain("rolled back to");
        const good = await gitlabStatus("A", "success");
        expect(good.jobs.every((j) => j.status === "success")).toBe(true);
        expect(await deploymentsOf("B", (d) => d.includes("failed"))).toEqual(["failed"]);
        expect(await deploymentsOf("A", (d) => d.length > 0)).toEqual(["success"]);
      });

      it("keeps the current and the deploy before it, and removes older images after a third verified deploy", async () => {
        await commit("C", app("commit C"));
        expect((await turnOn()).status).toBe("succeeded");
        expect(await keptTags()).toEqual([tagOf("A"), tagOf("C")].sort());
        await commit("D", app("commit D"));
        const third = await turnOn();
        expect(third.status, third.log).toBe("succeeded");
        expect(third.log).toContain(`removing the images of older deploys: ${tagOf("A")}`);
        expect(await keptTags()).toEqual([tagOf("C"), tagOf("D")].sort());
        expect(await exists(keptModel("A"))).toBe(false);
        expect(await exists(keptModel("C"))).toBe(true);
        expect((await version()).goodDeploys?.map((d) => d.sha)).toEqual([sha.D, sha.C]);
        expect(await served()).toBe("commit D");
      });

      it("rolls back by hand to the deploy before, and answers 409 when no verified deploy is left before it", async () => {
        const verifiedC = (await version()).goodDeploys?.[1]?.deployedAt ?? "";
        const res = await rollback();
        expect(res.status).toBe(202);
        expect(res.body).toMatchObject({ kind: "rollback", status: "queued", sha: sha.C });
        const op = await h.waitForOperation(res.body.id);
        expect(op.status, op.log).toBe("succeeded");
        expect(op.log).toContain(`web runs the kept image ${tagOf("C")}`);
        const v = await version();
        expect(v.state).toBe("running");
        expect(v.deployedSha).toBe(sha.C);
        expect(v.lastGood?.sha).toBe(sha.C);
        // Verified again by the rollback: deployed now, as far as idle stop is concerned.
        expect(v.lastGood?.deployedAt.localeCompare(verifiedC)).toBe(1);
        expect(v.goodDeploys?.map((d) => d.sha)).toEqual([sha.C]);
        expect(await served()).toBe("commit C");
        // The deploy rolled back from is dropped, with its image.
        expect(await keptTags()).toEqual([tagOf("C")]);
        const status = await gitlabStatus("C", "success");
        expect(status.last.description).toBe("main is running (rolled back)");
        // The up of C and the rollback to it: one deployment each on the environment.
        expect(
          await deploymentsOf("C", (d) => d.length === 2 && d.every((x) => x === "success")),
        ).toEqual(["success", "success"]);

        const again = await rollback();
        expect(again.status).toBe(409);
        expect(again.body.error?.code).toBe("conflict");
        expect(again.body.error?.message).toMatch(/no verified deploy before the current one/);
      });

      it("builds a rollback again when its kept images were removed by someone else", async () => {
        await commit("E", app("commit E"));
        expect((await turnOn()).status).toBe("succeeded");
        await docker(["rmi", tagOf("C")]);
        const res = await rollback();
        expect(res.status).toBe(202);
        const op = await h.waitForOperation(res.body.id);
        expect(op.status, op.log).toBe("succeeded");
        expect(op.log).toContain(
          `the kept images of ${sha.C?.slice(0, 8)} are gone (${tagOf("C")}): building them again`,
        );
        expect(op.log).toContain(`kept the rebuilt image of web as ${tagOf("C")}`);
        expect(await served()).toBe("commit C");
        expect((await version()).deployedSha).toBe(sha.C);
        expect(await keptTags()).toEqual([tagOf("C")]);
      });

      it("fails a rollback clearly when its images are gone and cannot be built, and the version stays as Docker runs it", async () => {
        await docker(["tag", TEST_BASE_IMAGE, ownBase]);
        await commit("F", app("commit F", { from: ownBase }));
        expect((await turnOn()).status).toBe("succeeded");
        await commit("G", app("commit G"));
        expect((await turnOn()).status).toBe("succeeded");
        await docker(["rmi", tagOf("F"), ownBase]);

        const res = await rollback();
        expect(res.status).toBe(202);
        const op = await h.waitForOperation(res.body.id);
        expect(op.status).toBe("failed");
        expect(op.error).toMatch(
          new RegExp(
            `^the rollback to ${sha.F?.slice(0, 8)} cannot start: its kept images are gone \\(${tagOf("F")}\\) and building them again failed: `,
          ),
        );
        // Nothing of F started: G still runs, and still is the current verified deploy.
        const v = await version();
        expect(v.state).toBe("running");
        expect(v.deployedSha).toBe(sha.G);
        expect(v.goodDeploys?.map((d) => d.sha)).toEqual([sha.G, sha.F]);
        expect(await served()).toBe("commit G");
        const status = await gitlabStatus("F", "failed");
        expect(status.last.description).toContain("cannot start");
      });
    },
  );
}

/**
 * The Docker engine's socket behind a relay on a loopback port (this test file's processes reach
 * Docker through DOCKER_HOST=tcp://...), so a case can make Docker go away for dockbot and bring
 * it back without touching the engine the other tests use.
 */
function startDockerRelay(): Promise<TcpRelay> {
  return startRelay({ path: "/var/run/docker.sock" });
}

describeWithServices(
  [...common, await checkComposeV2()],
  "a rollback when Docker goes away during its health wait",
  () => {
    let h: DockbotHarness;
    let repo: TestRepo;
    let relay: TcpRelay;
    const project = `rbkgone-${randomBytes(3).toString("hex")}`;
    const before = process.env.DOCKER_HOST;

    beforeAll(async () => {
      relay = await startDockerRelay();
      process.env.DOCKER_HOST = `tcp://127.0.0.1:${relay.port}`;
      h = await startDockbot({ DOCKBOT_COMPOSE: "v2", DOCKBOT_HEALTH_TIMEOUT: "60" });
      // X becomes healthy only after 6 s: the window in which Docker goes away.
      const slow = app("commit X");
      slow["compose.yaml"] = [
        "services:",
        "  web:",
        "    build: .",
        '    ports: ["8080"]',
        "    init: true",
        '    command: ["sh", "-c", "sleep 6 && touch /tmp/ready && exec httpd -f -p 8080 -h /www"]',
        "    healthcheck:",
        '      test: ["CMD-SHELL", "cat /tmp/ready"]',
        "      interval: 1s",
        "      timeout: 1s",
        "      retries: 60",
        "",
      ].join("\n");
      repo = await createTestRepo("rbk-gone", slow);
      expect(
        (await h.api("POST", "/api/projects", { name: project, repoUrl: repo.sshUrl })).status,
      ).toBe(201);
      expect(
        (await h.api("POST", `/api/projects/${project}/versions`, { ref: "main" })).status,
      ).toBe(201);
    }, 300_000);

    afterAll(async () => {
      relay?.resume();
      if (before === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = before;
      await cleanUpAll([
        h && (() => h.close()),
        repo && (() => repo.remove()),
        relay && (() => relay.close()),
        () => removeComposeProjects(`dockbot-${project}-`),
      ]);
    });

    async function turnOn(): Promise<Operation> {
      const res = await h.api<Operation>("POST", `/api/projects/${project}/versions/main/on`);
      expect(res.status).toBe(202);
      return h.waitForOperation(res.body.id);
    }

    it("fails the rollback clearly, leaves the version failed and the kept deploys as they were, and turns on again once Docker is back", async () => {
      const x = await turnOn();
      expect(x.status, x.log).toBe("succeeded");
      const y = await repo.commit(app("commit Y"), "commit Y");
      expect((await turnOn()).status).toBe("succeeded");

      const res = await h.api<Operation>("POST", `/api/projects/${project}/versions/main/rollback`);
      expect(res.status).toBe(202);
      const until = Date.now() + 120_000;
      for (;;) {
        const op = await h.api<Operation>("GET", `/api/operations/${res.body.id}`);
        if ((op.body.log ?? "").includes("[dockbot] waiting for web")) break;
        expect(op.body.status).toMatch(/queued|running/);
        if (Date.now() > until) throw new Error("the rollback never reached its health wait");
        await new Promise((r) => setTimeout(r, 100));
      }
      relay.pause();
      const failed = await h.waitForOperation(res.body.id);
      expect(failed.status).toBe("failed");
      expect(failed.error).toMatch(/^the health check could not inspect the containers: /);
      // The version is settled just after the operation is stored finished.
      let v = await h.api<Version>("GET", `/api/projects/${project}/versions/main`);
      for (let i = 0; i < 100 && v.body.state === "deploying"; i++) {
        await new Promise((r) => setTimeout(r, 100));
        v = await h.api<Version>("GET", `/api/projects/${project}/versions/main`);
      }
      expect(v.body.state).toBe("failed");
      expect(v.body.goodDeploys?.map((d) => d.sha)).toEqual([y, x.sha]);

      relay.resume();
      const again = await turnOn();
      expect(again.status, again.log).toBe("succeeded");
      const url = (
        (await h.api<Version>("GET", `/api/projects/${project}/versions/main`)).body.urls[0] ?? ""
      ).replace("//localhost:", "//127.0.0.1:");
      expect((await fetchText(`${url}/`)).trim()).toBe("commit Y");
    });
  },
);
