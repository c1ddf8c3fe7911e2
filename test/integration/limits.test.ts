// Running limits and resource limits for real (docs/api.md, "Idle stop and limits",
// "Resources"): a real dockbot with DOCKBOT_MAX_RUNNING=2 deploying branches of one repository
// over the test sshd on the real engine, with Compose v2 (one operation at a time,
// DOCKBOT_CONCURRENCY=1, where an up waiting for a queued down would never go on) and v1. Every
// compose project here starts with `dockbot-lim`, removed in afterAll whatever failed.
import { randomBytes } from "node:crypto";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  dockerObjects,
  startDockbot,
  type DockbotHarness,
  type OperationJson,
  type VersionJson,
} from "../support/dockbot-harness.js";
import { cleanUpAll, removeComposeProjects } from "../support/compose-cleanup.js";
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
  { mode: "v2", concurrency: "1", checks: [await checkComposeV2()] },
  { mode: "v1", concurrency: "2", checks: [await checkComposeV1()] },
] as const;

/** A web service with no limits of its own and a worker that sets its own memory limit. */
const files: RepoFiles = {
  "compose.yaml": [
    "services:",
    "  web:",
    `    image: ${TEST_BASE_IMAGE}`,
    "    init: true",
    '    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]',
    '    ports: ["8080"]',
    "  worker:",
    `    image: ${TEST_BASE_IMAGE}`,
    "    init: true",
    '    command: ["sleep", "100000"]',
    "    mem_limit: 48m",
    "",
  ].join("\n"),
};

interface VersionWithOp extends VersionJson {
  lastOperation?: OperationJson & { trigger: { source: string; reason?: string } };
}

for (const { mode, concurrency, checks } of modes) {
  describeWithServices(
    [...common, ...checks],
    `running and resource limits with Compose ${mode} (DOCKBOT_CONCURRENCY=${concurrency})`,
    () => {
      let h: DockbotHarness;
      let repo: TestRepo;
      const project = `lim${mode}-${randomBytes(3).toString("hex")}`;

      beforeAll(async () => {
        h = await startDockbot({
          DOCKBOT_COMPOSE: mode,
          DOCKBOT_MAX_RUNNING: "2",
          DOCKBOT_CONCURRENCY: concurrency,
          DOCKBOT_HEALTH_TIMEOUT: "20",
        });
        repo = await createTestRepo(`lim-${mode}`, files);
        for (const branch of ["b1", "b2", "b3"]) await repo.createBranch(branch);
        await repo.tag("t1");
        const created = await h.api("POST", "/api/projects", {
          name: project,
          repoUrl: repo.sshUrl,
          limits: { cpus: 0.5, memory: "64m" },
        });
        expect(created.status).toBe(201);
      });

      afterAll(async () => {
        await cleanUpAll([
          h && (() => h.close()),
          repo && (() => repo.remove()),
          () => removeComposeProjects(`dockbot-${project}-`),
        ]);
      });

      async function version(name: string): Promise<VersionWithOp> {
        const res = await h.api<VersionWithOp>("GET", `/api/projects/${project}/versions/${name}`);
        expect(res.status).toBe(200);
        return res.body;
      }

      /** Turns a version on (made from `ref` the first time) and waits for the up to end. */
      async function turnOn(name: string, ref = name): Promise<OperationJson> {
        const got = await h.api("GET", `/api/projects/${project}/versions/${name}`);
        if (got.status === 404) {
          const made = await h.api("POST", `/api/projects/${project}/versions`, { ref, name });
          expect(made.status).toBe(201);
        }
        const res = await h.api<OperationJson>(
          "POST",
          `/api/projects/${project}/versions/${name}/on`,
        );
        expect(res.status).toBe(202);
        return h.waitForOperation(res.body.id);
      }

      async function runningContainers(name: string): Promise<number> {
        return (await dockerObjects(`dockbot-${project}-${name}`)).running.length;
      }

      it("turns off the least recently used version, by a policy down, to turn on a third", async () => {
        for (const name of ["b1", "b2", "b1"]) {
          const op = await turnOn(name);
          expect(op.error).toBeUndefined();
          expect(op.status).toBe("succeeded");
        }
        // b1 was deployed again after b2: b2 is the least recently used, not the first one on.
        const third = await turnOn("b3");
        expect(third.error).toBeUndefined();
        expect(third.status).toBe("succeeded");
        expect(third.log).toContain(
          `limit: 2 versions running (DOCKBOT_MAX_RUNNING=2): turning off ${project}/b2 first, the least recently used`,
        );
        const b2 = await version("b2");
        expect(b2.state).toBe("off");
        expect(b2.lastOperation).toMatchObject({
          kind: "down",
          status: "succeeded",
          trigger: { source: "policy", reason: "limit" },
        });
        expect(await runningContainers("b2")).toBe(0);
        expect((await version("b1")).state).toBe("running");
        expect((await version("b3")).state).toBe("running");
        expect(await runningContainers("b1")).toBe(2);
        expect(await runningContainers("b3")).toBe(2);
      });

      it("applies the project's limits where a service sets none, and a service's own limit wins", async () => {
        const b3 = await version("b3");
        const inspect = async (service: string) => {
          const ids = (
            await execa("docker", [
              "ps",
              "-q",
              "--filter",
              `label=com.docker.compose.project=${b3.composeProject}`,
              "--filter",
              `label=com.docker.compose.service=${service}`,
            ])
          ).stdout.trim();
          const out = await execa("docker", [
            "inspect",
            "--format",
            "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}",
            ids,
          ]);
          return out.stdout.trim();
        };
        expect(await inspect("web")).toBe(`500000000 ${64 * 1024 * 1024}`);
        expect(await inspect("worker")).toBe(`500000000 ${48 * 1024 * 1024}`);
        const view = await h.api<OperationJson>("GET", `/api/projects/${project}/versions/b3/view`);
        expect(view.body.log).toContain("web runs with the project's limits: cpus 0.5, memory 64m");
        expect(view.body.log).toContain("worker runs with the project's limits: cpus 0.5");
      });

      it("keeps a project to its maxRunning, turning off its least recently used versions", async () => {
        const patched = await h.api("PATCH", `/api/projects/${project}`, { maxRunning: 1 });
        expect(patched.status).toBe(200);
        try {
          const op = await turnOn("b2");
          expect(op.error).toBeUndefined();
          expect(op.status).toBe("succeeded");
          expect(op.log).toContain(
            `limit: 2 versions of project '${project}' running (its maxRunning is 1): turning off ${project}/b1 first`,
          );
          expect(op.log).toContain(`turning off ${project}/b3 first`);
          for (const name of ["b1", "b3"]) {
            const v = await version(name);
            expect(v.state).toBe("off");
            expect(v.lastOperation?.trigger).toStrictEqual({ source: "policy", reason: "limit" });
            expect(await runningContainers(name)).toBe(0);
          }
          expect(await runningContainers("b2")).toBe(2);
        } finally {
          await h.api("PATCH", `/api/projects/${project}`, { maxRunning: null });
        }
      });

      it("fails the up with the limit error, starting nothing, when every running version is exempt", async () => {
        const off = await h.api<OperationJson>("POST", `/api/projects/${project}/versions/b2/off`);
        expect(off.status).toBe(202);
        expect((await h.waitForOperation(off.body.id)).status).toBe("succeeded");
        // The default branch and a tag: dockbot never turns these off by itself.
        expect((await turnOn("main")).status).toBe("succeeded");
        expect((await turnOn("t1")).status).toBe("succeeded");

        const refused = await turnOn("b1");
        expect(refused.status).toBe("failed");
        expect(refused.error).toBe(
          `limit: 2 versions running (DOCKBOT_MAX_RUNNING=2) and none can be turned off: ` +
            `${project}/main (the default branch), ${project}/t1 (a tag)`,
        );
        expect(refused.log).not.toContain("rolling back");
        expect(await runningContainers("b1")).toBe(0);
        expect((await dockerObjects(`dockbot-${project}-b1`)).containers).toHaveLength(0);
        expect((await version("b1")).state).toBe("failed");
        expect(await runningContainers("main")).toBe(2);
        expect(await runningContainers("t1")).toBe(2);
      });

      // Two ups at once (a second runner slot), both past the limit: one turns the victim off,
      // the other sees it on its way out and goes on; neither turns off a second one. Only
      // defined where there is a second slot (not skipped: under CI nothing skips).
      if (concurrency !== "1")
        it("turns one version off, once, for two ups that start at the same time", async () => {
          for (const name of ["main", "t1"]) {
            const off = await h.api<OperationJson>(
              "POST",
              `/api/projects/${project}/versions/${name}/off`,
            );
            expect((await h.waitForOperation(off.body.id)).status).toBe("succeeded");
          }
          expect((await turnOn("b3")).status).toBe("succeeded");
          const [first, second] = await Promise.all([turnOn("b1"), turnOn("b2")]);
          expect(first.error).toBeUndefined();
          expect(second.error).toBeUndefined();
          const downs = [first, second].filter((op) =>
            op.log?.includes(`turning off ${project}/b3 first`),
          );
          expect(downs).toHaveLength(1);
          expect([first.log, second.log].join("\n")).not.toMatch(/turning off \S+\/b[12] first/);
          expect((await version("b3")).lastOperation?.trigger).toStrictEqual({
            source: "policy",
            reason: "limit",
          });
          expect(await runningContainers("b3")).toBe(0);
          expect(await runningContainers("b1")).toBe(2);
          expect(await runningContainers("b2")).toBe(2);
        });
    },
  );
}
