// A project deletion always ends (docs/api.md, `DELETE /api/projects/:project`): the project is
// gone, or its `deletion` says why it stopped and another DELETE retries. Driven through the
// real Runner and DeployService over both real stores (SQLite, and MongoDB through FerretDB);
// only git and compose are in-memory ports (what they do to Docker is covered by
// project-delete.test.ts), so the moments of the race can be chosen.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, expect, it } from "vitest";
import { DeployService } from "../../src/deploy/deploy-service.js";
import { EventBus } from "../../src/deploy/events.js";
import type { ComposePort, ComposeTarget, GitPort, RunIo } from "../../src/deploy/ports.js";
import { Runner } from "../../src/deploy/runner.js";
import { openMongoStore } from "../../src/store/mongo-store.js";
import type { Store } from "../../src/store/store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { OperationRecord, ProjectRecord, VersionRecord } from "../../src/store/types.js";
import { waitUntil } from "../support/dockbot-process.js";
import { checkMongo, testDatabase, type TestDatabase } from "../support/mongo.js";
import { describeWithServices, type ServiceCheck } from "../support/services.js";

const stores: Array<["sqlite" | "mongodb", ServiceCheck[]]> = [
  ["sqlite", []],
  ["mongodb", [await checkMongo()]],
];

/** Resolves when the signal aborts, rejecting as an interrupted command does. */
function untilAborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_resolve, reject) => {
    const fail = () => reject(new Error("command aborted"));
    if (signal?.aborted) fail();
    else signal?.addEventListener("abort", fail, { once: true });
  });
}

/** Compose as the runner sees it, with knobs: an `up` that hangs, a removal that fails once. */
class ComposeDouble implements ComposePort {
  hangUp = false;
  /** Removals (remove, removeByLabel) that fail before one succeeds. */
  failRemovals = 0;
  /** While set, a removal waits for it (a slow `docker compose down`). */
  removalGate: Promise<void> | undefined;
  readonly running = new Set<string>();

  detect() {
    return Promise.resolve("v2" as const);
  }
  dockerReachable() {
    return Promise.resolve(true);
  }
  findComposeFile() {
    return Promise.resolve("compose.yaml");
  }
  // An `up` renders the model first (runner.ts): a hanging `up` hangs there.
  async render(t: ComposeTarget) {
    if (this.hangUp) await untilAborted(t.signal);
    return { flavor: "v2" as const, model: { services: {} } };
  }
  async up(t: ComposeTarget) {
    if (this.hangUp) await untilAborted(t.signal);
    this.running.add(t.projectName);
  }
  down(t: ComposeTarget) {
    this.running.delete(t.projectName);
    return Promise.resolve();
  }
  async remove(t: ComposeTarget & { keepVolumes: boolean }) {
    await this.removal(t.projectName, t);
  }
  async removeByLabel(projectName: string, io: { keepVolumes: boolean; images: boolean } & RunIo) {
    await this.removal(projectName, io);
  }
  runningProjects() {
    return Promise.resolve(new Map([...this.running].map((p) => [p, { running: 1, total: 1 }])));
  }
  publishedPorts() {
    return Promise.resolve([]);
  }
  // The health wait after an up (health-wait.ts): one container, running for an hour.
  inspectContainers(projectName: string) {
    return Promise.resolve(
      this.running.has(projectName)
        ? [
            {
              id: "0123456789ab",
              name: `${projectName}-app-1`,
              service: "app",
              status: "running",
              exitCode: 0,
              restartCount: 0,
              startedAt: Date.now() - 3_600_000,
            },
          ]
        : [],
    );
  }
  containerLogs() {
    return Promise.resolve([]);
  }
  // Kept images of verified deploys (runner.ts): this engine keeps none.
  tagImage() {
    return Promise.resolve();
  }
  imageTags() {
    return Promise.resolve([]);
  }
  removeImageTags() {
    return Promise.resolve();
  }
  private async removal(projectName: string, io: RunIo) {
    if (this.removalGate) await Promise.race([this.removalGate, untilAborted(io.signal)]);
    if (this.failRemovals > 0) {
      this.failRemovals--;
      throw new Error("docker compose down failed: no space left on device");
    }
    this.running.delete(projectName);
  }
}

const git: GitPort = {
  syncMirror: () => Promise.resolve({ cloned: false }),
  resolveRef: () => Promise.resolve("a".repeat(40)),
  checkout: (project, version) => Promise.resolve(`/nonexistent/${project}/${version}`),
  removeCheckout: () => Promise.resolve(),
  removeMirror: () => Promise.resolve(),
  checkoutDir: (project, version) => `/nonexistent/${project}/${version}`,
};

/**
 * The store as the service sees it when a runner claims each new operation the moment it is
 * stored (another replica, the poll timer): enqueueOperation answers only once the runner took
 * the operation (or after 2 s, when it cannot be taken yet).
 */
function claimedAtOnce(store: Store, wake: () => void): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "enqueueOperation") {
        return async (...args: Parameters<Store["enqueueOperation"]>) => {
          const stopped = await target.enqueueOperation(...args);
          wake();
          const until = Date.now() + 2000;
          while (Date.now() < until) {
            if ((await target.getOperation(args[0].id))?.status !== "queued") break;
            await new Promise((r) => setTimeout(r, 5));
          }
          return stopped;
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? (value as () => unknown).bind(target) : value;
    },
  });
}

for (const [kind, checks] of stores) {
  describeWithServices(checks, `deleting a project over ${kind}`, () => {
    let dir: string;
    let database: TestDatabase | undefined;
    let store: Store;
    let compose: ComposeDouble;
    let service: DeployService;
    let runner: Runner | undefined;

    beforeEach(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-project-delete-"));
      database = kind === "mongodb" ? testDatabase() : undefined;
      store = database
        ? await openMongoStore(database.url)
        : await openSqliteStore(path.join(dir, "dockbot.sqlite"));
      compose = new ComposeDouble();
    });

    afterEach(async () => {
      await runner?.stop(1000);
      runner = undefined;
      await store.close();
      await database?.drop();
      await rm(dir, { recursive: true, force: true });
    });

    /** The service and a running Runner (2 at once unless told) over the test's store. */
    async function start(operationTimeoutSeconds = 30, concurrency = 2): Promise<void> {
      const bus = new EventBus();
      const logger = pino({ level: "silent" });
      service = new DeployService({
        store: claimedAtOnce(store, () => runner?.wake()),
        bus,
        logger,
      });
      runner = new Runner({
        store,
        bus,
        logger,
        git,
        compose,
        service,
        options: {
          concurrency,
          operationTimeoutSeconds,
          logMaxBytes: 1_000_000,
          publicUrl: "http://localhost",
          pollMs: 50,
        },
      });
      service.attachRunner(runner);
      await runner.start();
    }

    async function projectWithVersions(
      name: string,
      versions: string[],
    ): Promise<{ project: ProjectRecord; versions: VersionRecord[] }> {
      const project = await service.createProject({
        name,
        repoUrl: `ssh://git@127.0.0.1:2222/srv/git/${name}.git`,
      });
      const created: VersionRecord[] = [];
      for (const ref of versions) {
        created.push(await service.createVersion(name, { ref: `refs/heads/${ref}` }));
      }
      return { project, versions: created };
    }

    function finished(id: string): Promise<OperationRecord> {
      return waitUntil(
        `operation ${id} to finish`,
        async () => {
          const op = await store.getOperation(id);
          return op && !["queued", "running"].includes(op.status) ? op : undefined;
        },
        10_000,
      );
    }

    function gone(projectId: string): Promise<true> {
      return waitUntil(
        `project ${projectId} to be gone`,
        async () => ((await store.getProject(projectId)) === undefined ? true : undefined),
        10_000,
      );
    }

    async function deletesOf(projectId: string): Promise<OperationRecord[]> {
      return (await store.listOperations({ projectId })).filter((o) => o.kind === "delete");
    }

    it("removes the project when the runner claims its delete at once, after an up that timed out", async () => {
      await start(1);
      const { project, versions } = await projectWithVersions("race", ["main"]);
      const [main] = versions;
      if (!main) throw new Error("no version");
      compose.hangUp = true;
      const up = await service.requestOperation(main, "up", { source: "api" });
      expect(await finished(up.id)).toMatchObject({
        status: "failed",
        error: expect.stringContaining("timed out") as unknown,
      });
      // The operation's outcome is stored before the version is set from it (runner.ts run).
      await waitUntil(
        "the version to be failed",
        async () => ((await store.getVersion(main.id))?.state === "failed" ? true : undefined),
        10_000,
      );

      // The delete is still removing containers when deleteProject goes on.
      let release = () => {};
      compose.removalGate = new Promise<void>((resolve) => (release = resolve));
      await service.deleteProject("race", { source: "api" });
      release();
      await gone(project.id);
      const deletes = await deletesOf(project.id);
      expect(deletes.map((o) => [o.status, o.error])).toEqual([["succeeded", undefined]]);
      expect(await store.listVersions(project.id)).toEqual([]);
    });

    it("stops the up that runs when a delete is queued, and never the delete itself", async () => {
      await start();
      const { project, versions } = await projectWithVersions("stops", ["main", "next"]);
      compose.hangUp = true;
      const ups = [];
      for (const v of versions)
        ups.push(await service.requestOperation(v, "up", { source: "api" }));
      await waitUntil("both ups running", async () => {
        const running = await store.listOperations({ projectId: project.id, status: ["running"] });
        return running.length === 2 ? true : undefined;
      });

      await service.deleteProject("stops", { source: "api" });
      await gone(project.id);
      for (const up of ups) {
        expect(await store.getOperation(up.id)).toMatchObject({
          status: "canceled",
          error: "superseded by a delete",
        });
      }
      const deletes = await deletesOf(project.id);
      expect(deletes.map((o) => o.status)).toEqual(["succeeded", "succeeded"]);
    });

    it("leaves a running delete alone when the project is deleted again meanwhile", async () => {
      await start();
      const { project } = await projectWithVersions("twice", ["main"]);
      let release = () => {};
      compose.removalGate = new Promise<void>((resolve) => (release = resolve));
      await service.deleteProject("twice", { source: "api" });
      const [first] = await waitUntil("the delete running", async () => {
        const running = await store.listOperations({ projectId: project.id, status: ["running"] });
        return running.length === 1 ? running : undefined;
      });

      const again = await service.deleteProject("twice", { source: "api" });
      expect(again.operations.map((o) => o.id)).toEqual([first?.id]);
      expect(again.project.deletion?.state).toBe("deleting");
      release();
      await gone(project.id);
      const deletes = await deletesOf(project.id);
      expect(deletes.map((o) => [o.id, o.status])).toEqual([[first?.id, "succeeded"]]);
    });

    it("marks the deletion failed on the project with the delete's error, and a second DELETE retries it", async () => {
      await start();
      const { project } = await projectWithVersions("fails", ["main", "next"]);
      compose.failRemovals = 1;
      await service.deleteProject("fails", { source: "api" });
      const failed = await waitUntil(
        "the deletion to be marked failed",
        async () => {
          const p = await store.getProject(project.id);
          return p?.deletion?.state === "failed" &&
            (await store.listVersions(project.id)).length < 2
            ? p
            : undefined;
        },
        10_000,
      );
      expect(failed.deletion?.error).toMatch(
        /^the delete of version '(main|next)' failed: docker compose down failed: no space left on device \(operation [0-9a-f-]+\)$/,
      );
      // The other version's delete went through; the one that failed is still there.
      expect(await store.listVersions(project.id)).toHaveLength(1);
      await expect(
        service.createVersion("fails", { ref: "refs/heads/other" }),
      ).resolves.toMatchObject({ name: "other" });

      const retry = await service.deleteProject("fails", { source: "api" });
      expect(retry.project.deletion).toEqual({
        requestedAt: expect.any(String) as unknown,
        state: "deleting",
      });
      expect(retry.operations).toHaveLength(2);
      await gone(project.id);
    });

    it("keeps the deletion going when a newer delete of a version replaces the project's", async () => {
      // No runner takes work: the project's delete stays queued until the version's own
      // DELETE supersedes it.
      await start(30, 0);
      const { project, versions } = await projectWithVersions("replaced", ["main"]);
      const [main] = versions;
      if (!main) throw new Error("no version");
      const { operations } = await service.deleteProject("replaced", { source: "api" });
      const newer = await service.requestOperation(main, "delete", { source: "api" });
      expect((await store.getOperation(operations[0]?.id ?? ""))?.status).toBe("superseded");
      // Give the service's reaction to the superseded delete time to run.
      await new Promise((r) => setTimeout(r, 300));
      expect((await store.getProject(project.id))?.deletion?.state).toBe("deleting");
      expect((await store.getOperation(newer.id))?.status).toBe("queued");
    });

    it("marks the deletion failed when its delete is canceled", async () => {
      await start();
      const { project, versions } = await projectWithVersions("canceled", ["main"]);
      const [main] = versions;
      if (!main) throw new Error("no version");
      compose.hangUp = true;
      // The up is stopped by the delete; the delete is canceled by hand while it removes.
      let release = () => {};
      compose.removalGate = new Promise<void>((resolve) => (release = resolve));
      await service.requestOperation(main, "up", { source: "api" });
      await waitUntil("the up running", async () =>
        (await store.listOperations({ versionId: main.id, status: ["running"] })).length === 1
          ? true
          : undefined,
      );
      const { operations } = await service.deleteProject("canceled", { source: "api" });
      const [del] = operations;
      if (!del) throw new Error("no delete");
      await service.cancelOperation(del.id);
      release();
      const failed = await waitUntil(
        "the deletion to be marked failed",
        async () => {
          const p = await store.getProject(project.id);
          return p?.deletion?.state === "failed" ? p : undefined;
        },
        10_000,
      );
      expect(failed.deletion?.error).toBe(
        `the delete of version 'main' was canceled: canceled by request (operation ${del.id})`,
      );
    });
  });
}
