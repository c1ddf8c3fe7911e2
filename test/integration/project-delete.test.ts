// Deleting a project ends (docs/api.md, `DELETE /api/projects/:project`), over both stores, with
// real git, real Compose and the real runner: the steps (a version whose last `up` ran
// past DOCKBOT_OPERATION_TIMEOUT, then DELETE the project) and a delete that fails.
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { removeComposeProjects } from "../support/compose-cleanup.js";
import {
  dockerObjects,
  startDockbot,
  webApp,
  type DockbotHarness,
  type OperationJson,
  type VersionJson,
} from "../support/dockbot-harness.js";
import { waitUntil } from "../support/dockbot-process.js";
import { createTestRepo, type TestRepo } from "../support/git-server.js";
import { checkMongo, testDatabase, type TestDatabase } from "../support/mongo.js";
import {
  checkDeployServices,
  describeWithServices,
  TEST_BASE_IMAGE,
  type ServiceCheck,
} from "../support/services.js";

const deploy = await checkDeployServices();
const stores: Array<{ kind: "sqlite" | "mongodb"; checks: ServiceCheck[] }> = [
  { kind: "sqlite", checks: deploy },
  { kind: "mongodb", checks: [...deploy, await checkMongo()] },
];

/** A build that runs far past the operation timeout the tests give dockbot. */
const slowBuild: Record<string, string> = {
  ...webApp("slow", { dockerfileRun: "sleep 300" }),
};

interface ProjectJson {
  name: string;
  deletion?: { requestedAt: string; state: string; error?: string };
}

for (const { kind, checks } of stores) {
  describeWithServices(checks, `deleting a project over ${kind}`, () => {
    const project = `pdel-${kind}`;
    const prefix = `dockbot-${project}-`;
    let h: DockbotHarness;
    let repo: TestRepo;
    let database: TestDatabase | undefined;

    beforeAll(async () => {
      await removeComposeProjects(prefix);
      database = kind === "mongodb" ? testDatabase() : undefined;
      h = await startDockbot({
        DOCKBOT_OPERATION_TIMEOUT: "15",
        // Deletes of several versions claimed as fast as they are queued: the moment the issue's
        // delete canceled itself.
        DOCKBOT_CONCURRENCY: "8",
        ...(database ? { DOCKBOT_MONGODB_URL: database.url } : {}),
      });
      repo = await createTestRepo(`pdel-${kind}`, webApp("fast"));
      await repo.commit(slowBuild, "a build that never ends in time", "slow");
    });

    afterAll(async () => {
      await h?.close();
      await repo?.remove();
      await database?.drop();
      await removeComposeProjects(prefix);
    });

    async function createProject(): Promise<void> {
      const res = await h.api("POST", "/api/projects", { name: project, repoUrl: repo.sshUrl });
      expect(res.status).toBe(201);
    }

    async function createVersion(ref: string): Promise<VersionJson> {
      const res = await h.api<VersionJson>("POST", `/api/projects/${project}/versions`, { ref });
      expect(res.status).toBe(201);
      return res.body;
    }

    async function turnOn(version: string): Promise<OperationJson> {
      const res = await h.api<OperationJson>(
        "POST",
        `/api/projects/${project}/versions/${version}/on`,
      );
      expect(res.status).toBe(202);
      return h.waitForOperation(res.body.id, 120_000);
    }

    function projectGone(): Promise<true> {
      return waitUntil(
        `project ${project} to be gone`,
        async () =>
          (await h.api("GET", `/api/projects/${project}`)).status === 404 ? true : undefined,
        90_000,
      );
    }

    it("removes the project and every version's containers after an up that timed out", async () => {
      await createProject();
      const slow = await createVersion("slow");
      const main = await createVersion("main");
      // Never turned on: deleted from nothing, next to the others.
      const idle: VersionJson[] = [];
      for (const name of ["a", "b", "c", "d", "e", "f"])
        idle.push(await createVersion(`idle-${name}`));
      for (const v of idle) expect(v.state).toBe("off");
      expect(await turnOn(main.name)).toMatchObject({ status: "succeeded" });
      const timedOut = await turnOn(slow.name);
      expect(timedOut).toMatchObject({
        status: "failed",
        error: "timed out after 15 s (DOCKBOT_OPERATION_TIMEOUT)",
      });
      expect(
        (await h.api<VersionJson>("GET", `/api/projects/${project}/versions/${slow.name}`)).body
          .state,
      ).toBe("failed");

      const res = await h.api<{ project: ProjectJson; operations: OperationJson[] }>(
        "DELETE",
        `/api/projects/${project}`,
      );
      expect(res.status).toBe(202);
      expect(res.body.project.deletion).toMatchObject({ state: "deleting" });
      expect(res.body.operations).toHaveLength(8);
      await projectGone();

      for (const op of res.body.operations) {
        const done = await h.waitForOperation(op.id);
        expect([done.kind, done.status, done.error]).toEqual(["delete", "succeeded", undefined]);
      }
      for (const v of [slow, main, ...idle]) {
        expect(await dockerObjects(v.composeProject)).toEqual({
          containers: [],
          running: [],
          volumes: [],
          networks: [],
          images: [],
        });
      }
    });

    it("reports a delete that fails on the project, and a second DELETE finishes the job", async () => {
      await createProject();
      const main = await createVersion("main");
      expect(await turnOn(main.name)).toMatchObject({ status: "succeeded" });
      // A container outside the version holds its volume: Docker refuses to remove the volume,
      // so the delete fails. (Labelled with a compose project of this file's prefix, so the
      // cleanup below removes it whatever happens.)
      const [volume] = (await dockerObjects(main.composeProject)).volumes;
      expect(volume).toBeDefined();
      const holder = `${prefix}holder`;
      await execa("docker", [
        "run",
        "-d",
        "--name",
        holder,
        "--label",
        `com.docker.compose.project=${holder}`,
        "-v",
        `${volume ?? ""}:/held`,
        TEST_BASE_IMAGE,
        "sleep",
        "600",
      ]);

      const first = await h.api<{ operations: OperationJson[] }>(
        "DELETE",
        `/api/projects/${project}`,
      );
      expect(first.status).toBe(202);
      const [del] = first.body.operations;
      expect((await h.waitForOperation(del?.id ?? "")).status).toBe("failed");
      const failed = await waitUntil(
        "the project's deletion to be marked failed",
        async () => {
          const p = (await h.api<ProjectJson>("GET", `/api/projects/${project}`)).body;
          return p.deletion?.state === "failed" ? p : undefined;
        },
        30_000,
      );
      expect(failed.deletion?.error).toMatch(
        new RegExp(`^the delete of version 'main' failed: .+ \\(operation ${del?.id ?? ""}\\)$`),
      );
      expect(
        (await h.api<VersionJson[]>("GET", `/api/projects/${project}/versions`)).body.map(
          (v) => v.name,
        ),
      ).toEqual(["main"]);

      await execa("docker", ["rm", "-f", holder]);
      const retry = await h.api<{ project: ProjectJson; operations: OperationJson[] }>(
        "DELETE",
        `/api/projects/${project}`,
      );
      expect(retry.status).toBe(202);
      expect(retry.body.project.deletion).toEqual({
        requestedAt: expect.any(String) as unknown,
        state: "deleting",
      });
      await projectGone();
      expect(await dockerObjects(main.composeProject)).toEqual({
        containers: [],
        running: [],
        volumes: [],
        networks: [],
        images: [],
      });
    });
  });
}
