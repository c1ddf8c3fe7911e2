// The behaviour every `Store` implementation promises, written once. Each implementation's test
// file calls `describeStoreContract(name, makeStore)`; nothing here knows which database is
// behind the store, so SQLite and MongoDB run it unchanged.
//
// `makeStore` is called before every test and must return an empty store. `reopen` (optional)
// opens a new store on the same data after the test closed the first one; `cleanup` closes
// whatever is still open (it must tolerate a store the test already closed) and removes the data.
import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StoreConflictError, StoreUnavailableError, type Store } from "../../src/store/store.js";
import type {
  ApiTokenRecord,
  AuditRecord,
  DeliveryRecord,
  LogLine,
  OperationRecord,
  ProjectRecord,
  SessionRecord,
  VersionRecord,
} from "../../src/store/types.js";

export interface StoreFixture {
  store: Store;
  reopen?: () => Promise<Store>;
  cleanup: () => Promise<void>;
}

/** ISO timestamps one second apart from a fixed origin, so order is explicit in every test. */
function at(second: number): string {
  return new Date(Date.UTC(2024, 0, 1, 0, 0, 0) + second * 1000).toISOString();
}

export function makeProject(overrides: Partial<ProjectRecord> = {}): ProjectRecord {
  const id = randomUUID();
  return {
    id,
    name: `app-${id.slice(0, 8)}`,
    repoUrl: "git@gitlab.example.com:group/app.git",
    autoDeploy: { branches: ["*"], tags: true, mergeRequests: true },
    env: {},
    webhookSecret: `secret-${randomUUID()}`,
    createdAt: at(0),
    updatedAt: at(0),
    ...overrides,
  };
}

function makeVersion(projectId: string, overrides: Partial<VersionRecord> = {}): VersionRecord {
  const id = randomUUID();
  const name = overrides.name ?? `v-${id.slice(0, 8)}`;
  return {
    id,
    projectId,
    name,
    ref: { type: "branch", name },
    state: "off",
    composeProject: `dockbot-app-${name}`,
    urls: [],
    ports: [],
    createdAt: at(0),
    updatedAt: at(0),
    ...overrides,
  };
}

function makeOperation(
  version: Pick<VersionRecord, "id" | "projectId">,
  queuedSecond: number,
  overrides: Partial<OperationRecord> = {},
): OperationRecord {
  return {
    id: randomUUID(),
    projectId: version.projectId,
    versionId: version.id,
    kind: "up",
    trigger: { source: "api" },
    status: "queued",
    queuedAt: at(queuedSecond),
    ...overrides,
  };
}

function makeLines(operationId: string, fromSeq: number, count: number): LogLine[] {
  return Array.from({ length: count }, (_, i) => ({
    operationId,
    seq: fromSeq + i,
    stream: i % 3 === 0 ? "stderr" : "stdout",
    text: `line ${fromSeq + i}`,
    time: at(fromSeq + i),
  }));
}

function makeDelivery(
  projectId: string,
  receivedSecond: number,
  overrides: Partial<DeliveryRecord> = {},
): DeliveryRecord {
  return {
    id: randomUUID(),
    projectId,
    deliveryKey: randomUUID(),
    event: "Push Hook",
    receivedAt: at(receivedSecond),
    outcome: "accepted",
    operationIds: [],
    ...overrides,
  };
}

function ids(records: Array<{ id: string }>): string[] {
  return records.map((r) => r.id);
}

export function describeStoreContract(name: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`${name} store contract`, () => {
    let fixture: StoreFixture;
    let store: Store;

    beforeEach(async () => {
      fixture = await makeStore();
      store = fixture.store;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    /** A project with one version, both stored. */
    async function seedVersion(
      versionOverrides: Partial<VersionRecord> = {},
    ): Promise<{ project: ProjectRecord; version: VersionRecord }> {
      const project = makeProject();
      await store.createProject(project);
      const version = makeVersion(project.id, versionOverrides);
      await store.createVersion(version);
      return { project, version };
    }

    describe("health", () => {
      it("answers ping while open", async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it("rejects ping with StoreUnavailableError once closed", async () => {
        await store.close();
        await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
      });
    });

    describe("settings", () => {
      it("returns undefined for a setting never set", async () => {
        expect(await store.getSetting("adminTokenHash")).toBeUndefined();
      });

      it("returns the value last set for a key and leaves other keys alone", async () => {
        await store.setSetting("adminTokenHash", "first");
        await store.setSetting("instanceId", "replica-1");
        await store.setSetting("adminTokenHash", "second");
        expect(await store.getSetting("adminTokenHash")).toBe("second");
        expect(await store.getSetting("instanceId")).toBe("replica-1");
      });
    });

    describe("projects", () => {
      it("returns a created project by id and by name exactly as stored", async () => {
        const project = makeProject({ env: { TOKEN: "s3cret", MODE: "prod" } });
        await store.createProject(project);
        expect(await store.getProject(project.id)).toStrictEqual(project);
        expect(await store.getProjectByName(project.name)).toStrictEqual(project);
      });

      it("returns undefined for an unknown id or name", async () => {
        await store.createProject(makeProject());
        expect(await store.getProject(randomUUID())).toBeUndefined();
        expect(await store.getProjectByName("no-such-project")).toBeUndefined();
      });

      it("round-trips optional fields when present", async () => {
        const project = makeProject({
          composeFile: "deploy/compose.prod.yaml",
          gitlab: { projectId: 42, url: "https://gitlab.example.com/group/app" },
          autoDeploy: { branches: ["main", "release/*"], tags: false, mergeRequests: false },
        });
        await store.createProject(project);
        expect(await store.getProject(project.id)).toStrictEqual(project);
      });

      it("leaves optional fields absent, not null, when they were not set", async () => {
        const project = makeProject({ gitlab: { projectId: 7 } });
        await store.createProject(project);
        const got = await store.getProject(project.id);
        expect(got).toStrictEqual(project);
        expect(got).not.toHaveProperty("composeFile");
        expect(got?.gitlab).not.toHaveProperty("url");
      });

      it("lists every project", async () => {
        const a = makeProject({ createdAt: at(1) });
        const b = makeProject({ createdAt: at(2) });
        await store.createProject(a);
        await store.createProject(b);
        const listed = await store.listProjects();
        expect(ids(listed).sort()).toStrictEqual([a.id, b.id].sort());
        expect(listed.find((p) => p.id === b.id)).toStrictEqual(b);
      });

      it("rejects a second project with a taken name and keeps the first unchanged", async () => {
        const first = makeProject({ name: "shop" });
        await store.createProject(first);
        await expect(store.createProject(makeProject({ name: "shop" }))).rejects.toBeInstanceOf(
          StoreConflictError,
        );
        expect(await store.listProjects()).toStrictEqual([first]);
      });

      it("updates the given fields, keeps the others and returns the updated project", async () => {
        const project = makeProject({ composeFile: "compose.yaml" });
        await store.createProject(project);
        const updated = await store.updateProject(project.id, {
          repoUrl: "ssh://git@gitlab.example.com:2222/group/app.git",
          env: { A: "1" },
          gitlab: { projectId: 9 },
          updatedAt: at(60),
        });
        const expected: ProjectRecord = {
          ...project,
          repoUrl: "ssh://git@gitlab.example.com:2222/group/app.git",
          env: { A: "1" },
          gitlab: { projectId: 9 },
          updatedAt: at(60),
        };
        expect(updated).toStrictEqual(expected);
        expect(await store.getProject(project.id)).toStrictEqual(expected);
      });

      it("keeps a project's deletion, from under way to failed with its reason", async () => {
        const project = makeProject();
        await store.createProject(project);
        const deleting = { requestedAt: at(5), state: "deleting" as const };
        expect(await store.updateProject(project.id, { deletion: deleting })).toStrictEqual({
          ...project,
          deletion: deleting,
        });
        const failed = { ...deleting, state: "failed" as const, error: "the delete failed" };
        await store.updateProject(project.id, { deletion: failed });
        expect(await store.getProject(project.id)).toStrictEqual({ ...project, deletion: failed });
        expect(await store.listProjects()).toStrictEqual([{ ...project, deletion: failed }]);
      });

      it("returns undefined when updating an unknown project", async () => {
        expect(await store.updateProject(randomUUID(), { repoUrl: "x" })).toBeUndefined();
        expect(await store.listProjects()).toStrictEqual([]);
      });

      it("rejects renaming a project to a taken name and leaves it unchanged", async () => {
        const a = makeProject({ name: "alpha" });
        const b = makeProject({ name: "beta" });
        await store.createProject(a);
        await store.createProject(b);
        await expect(store.updateProject(b.id, { name: "alpha" })).rejects.toBeInstanceOf(
          StoreConflictError,
        );
        expect(await store.getProject(b.id)).toStrictEqual(b);
        expect((await store.getProjectByName("alpha"))?.id).toBe(a.id);
      });

      it("frees the old name when a project is renamed", async () => {
        const a = makeProject({ name: "alpha" });
        await store.createProject(a);
        await store.updateProject(a.id, { name: "gamma" });
        expect(await store.getProjectByName("alpha")).toBeUndefined();
        expect((await store.getProjectByName("gamma"))?.id).toBe(a.id);
        const again = makeProject({ name: "alpha" });
        await store.createProject(again);
        expect((await store.getProjectByName("alpha"))?.id).toBe(again.id);
      });

      it("deletes a project and its deliveries but not another project's", async () => {
        const gone = makeProject();
        const kept = makeProject();
        await store.createProject(gone);
        await store.createProject(kept);
        const goneDelivery = makeDelivery(gone.id, 1, { deliveryKey: "key-1" });
        const keptDelivery = makeDelivery(kept.id, 1, { deliveryKey: "key-1" });
        expect(await store.insertDelivery(goneDelivery)).toBe(true);
        expect(await store.insertDelivery(keptDelivery)).toBe(true);

        await store.deleteProject(gone.id);

        expect(await store.getProject(gone.id)).toBeUndefined();
        expect(await store.getProjectByName(gone.name)).toBeUndefined();
        expect(await store.listDeliveries(gone.id)).toStrictEqual([]);
        expect(await store.listDeliveries(kept.id)).toStrictEqual([keptDelivery]);
        expect(ids(await store.listProjects())).toStrictEqual([kept.id]);
        // The delivery key is free again: nothing of the deleted project's deliveries is left.
        expect(await store.insertDelivery(makeDelivery(gone.id, 2, { deliveryKey: "key-1" }))).toBe(
          true,
        );
      });
    });

    describe("versions", () => {
      it("returns a created version by id and by (project, name) exactly as stored", async () => {
        const { project, version } = await seedVersion({
          ref: { type: "mergeRequest", name: "12" },
          name: "mr-12",
          urls: ["http://localhost:8080"],
        });
        expect(await store.getVersion(version.id)).toStrictEqual(version);
        expect(await store.getVersionByName(project.id, "mr-12")).toStrictEqual(version);
      });

      it("does not find a version by name under another project", async () => {
        const { version } = await seedVersion();
        const other = makeProject();
        await store.createProject(other);
        expect(await store.getVersionByName(other.id, version.name)).toBeUndefined();
        expect(await store.getVersion(randomUUID())).toBeUndefined();
      });

      it("round-trips sha and deployedSha when present and leaves them absent otherwise", async () => {
        const project = makeProject();
        await store.createProject(project);
        const pinned = makeVersion(project.id, {
          sha: "a".repeat(40),
          deployedSha: "b".repeat(40),
          ref: { type: "commit", name: "a".repeat(40) },
        });
        const bare = makeVersion(project.id);
        await store.createVersion(pinned);
        await store.createVersion(bare);
        expect(await store.getVersion(pinned.id)).toStrictEqual(pinned);
        const gotBare = await store.getVersion(bare.id);
        expect(gotBare).toStrictEqual(bare);
        expect(gotBare).not.toHaveProperty("sha");
        expect(gotBare).not.toHaveProperty("deployedSha");
      });

      it("keeps a project's healthPath and rollback, a version's lastGood and an operation's rolledBackTo, and removes a healthPath patched to undefined", async () => {
        const project = makeProject({ healthPath: "/healthz?deep=1", rollback: "off" });
        await store.createProject(project);
        expect(await store.getProject(project.id)).toStrictEqual(project);
        const cleared = await store.updateProject(project.id, { healthPath: undefined });
        expect(cleared).not.toHaveProperty("healthPath");
        expect(cleared?.rollback).toBe("off");
        const lastGood = { sha: "c".repeat(40), deployedAt: at(5) };
        const version = makeVersion(project.id);
        await store.createVersion(version);
        expect((await store.updateVersion(version.id, { lastGood }))?.lastGood).toStrictEqual(
          lastGood,
        );
        expect((await store.getVersion(version.id))?.lastGood).toStrictEqual(lastGood);
        const op = makeOperation(version, 1);
        await store.enqueueOperation(op);
        await store.updateOperation(op.id, { status: "failed", rolledBackTo: lastGood.sha });
        expect((await store.getOperation(op.id))?.rolledBackTo).toBe(lastGood.sha);
        expect(await store.getOperation(op.id)).not.toHaveProperty("error");
      });

      it("keeps what dockbot made on GitLab for a version and a project, and patches it alone", async () => {
        const project = makeProject();
        await store.createProject(project);
        const version = makeVersion(project.id, {
          ref: { type: "mergeRequest", name: "7", sourceBranch: "feature/x" },
        });
        await store.createVersion(version);
        expect(await store.getVersion(version.id)).toStrictEqual(version);
        const gitlab = { environmentId: 12, externalUrl: "http://x.localhost:3001", noteId: 99 };
        const patched = await store.updateVersion(version.id, { gitlab });
        expect(patched).toStrictEqual({ ...version, gitlab });
        await store.updateVersion(version.id, { state: "running" });
        expect((await store.getVersion(version.id))?.gitlab).toStrictEqual(gitlab);
        const gitlabStatus = {
          hook: { id: 5, status: "disabled" as const, alertStatus: "temporarily_disabled" },
          deployKey: { status: "failed" as const, error: "HTTP 403: Forbidden" },
          checkedAt: at(9),
        };
        await store.updateProject(project.id, { gitlabStatus });
        expect((await store.getProject(project.id))?.gitlabStatus).toStrictEqual(gitlabStatus);
        expect((await store.listProjects()).find((p) => p.id === project.id)).toStrictEqual({
          ...project,
          gitlabStatus,
        });
      });

      it("writes a version's lastRequestAt alone, keeping every other field and updatedAt", async () => {
        const project = makeProject();
        await store.createProject(project);
        const version = makeVersion(project.id);
        await store.createVersion(version);
        expect(await store.getVersion(version.id)).not.toHaveProperty("lastRequestAt");
        const patched = await store.updateVersion(version.id, { lastRequestAt: at(7) });
        expect(patched).toStrictEqual({ ...version, lastRequestAt: at(7) });
        expect((await store.listVersions(project.id))[0]).toStrictEqual(patched);
      });

      it("rejects a duplicate version name within a project", async () => {
        const { project, version } = await seedVersion({ name: "main" });
        await expect(
          store.createVersion(makeVersion(project.id, { name: "main" })),
        ).rejects.toBeInstanceOf(StoreConflictError);
        expect(await store.listVersions(project.id)).toStrictEqual([version]);
      });

      it("accepts the same version name in another project", async () => {
        await seedVersion({ name: "main" });
        const other = makeProject();
        await store.createProject(other);
        const twin = makeVersion(other.id, { name: "main" });
        await store.createVersion(twin);
        expect(await store.getVersionByName(other.id, "main")).toStrictEqual(twin);
      });

      it("lists a project's versions oldest first, and all versions without a project", async () => {
        const project = makeProject();
        const other = makeProject();
        await store.createProject(project);
        await store.createProject(other);
        const newer = makeVersion(project.id, { createdAt: at(20) });
        const older = makeVersion(project.id, { createdAt: at(10) });
        const elsewhere = makeVersion(other.id, { createdAt: at(15) });
        await store.createVersion(newer);
        await store.createVersion(older);
        await store.createVersion(elsewhere);
        expect(await store.listVersions(project.id)).toStrictEqual([older, newer]);
        expect(ids(await store.listVersions())).toStrictEqual([older.id, elsewhere.id, newer.id]);
      });

      it("updates the given fields and returns the updated version", async () => {
        const { version } = await seedVersion();
        const patch = {
          state: "running" as const,
          deployedSha: "c".repeat(40),
          urls: ["http://localhost:8081", "http://localhost:8082"],
          updatedAt: at(99),
        };
        const updated = await store.updateVersion(version.id, patch);
        expect(updated).toStrictEqual({ ...version, ...patch });
        expect(await store.getVersion(version.id)).toStrictEqual({ ...version, ...patch });
        expect(await store.updateVersion(randomUUID(), { state: "off" })).toBeUndefined();
      });

      it("rejects renaming a version to a name taken in its project", async () => {
        const { project, version } = await seedVersion({ name: "main" });
        const dev = makeVersion(project.id, { name: "dev" });
        await store.createVersion(dev);
        await expect(store.updateVersion(dev.id, { name: "main" })).rejects.toBeInstanceOf(
          StoreConflictError,
        );
        expect(await store.getVersion(dev.id)).toStrictEqual(dev);
        expect(await store.getVersion(version.id)).toStrictEqual(version);
      });

      it("deletes a version and frees its name", async () => {
        const { project, version } = await seedVersion({ name: "main" });
        await store.deleteVersion(version.id);
        expect(await store.getVersion(version.id)).toBeUndefined();
        expect(await store.getVersionByName(project.id, "main")).toBeUndefined();
        expect(await store.listVersions(project.id)).toStrictEqual([]);
        await store.createVersion(makeVersion(project.id, { name: "main" }));
        expect(await store.listVersions(project.id)).toHaveLength(1);
      });
    });

    describe("operations", () => {
      it("stores an enqueued operation exactly as given", async () => {
        const { version } = await seedVersion();
        const op = makeOperation(version, 1);
        expect(await store.enqueueOperation(op)).toStrictEqual([]);
        expect(await store.getOperation(op.id)).toStrictEqual(op);
        expect(await store.getOperation(randomUUID())).toBeUndefined();
      });

      it("round-trips every optional operation field", async () => {
        const { version } = await seedVersion();
        const op = makeOperation(version, 1, {
          kind: "delete",
          sha: "d".repeat(40),
          trigger: { source: "webhook", event: "Push Hook", deliveryId: randomUUID() },
          status: "failed",
          error: "compose up failed",
          exitCode: 0,
          options: { keepVolumes: true },
          startedAt: at(2),
          finishedAt: at(3),
          owner: "replica-a",
          leaseUntil: at(30),
          cancelRequested: false,
          gitlabReports: [
            { state: "pending", ok: true, attempts: 1, at: at(1) },
            { state: "failed", ok: false, attempts: 3, at: at(4), error: "HTTP 500" },
          ],
        });
        await store.enqueueOperation(op);
        expect(await store.getOperation(op.id)).toStrictEqual(op);
      });

      it("leaves unset optional operation fields absent", async () => {
        const { version } = await seedVersion();
        const op = makeOperation(version, 1);
        await store.enqueueOperation(op);
        const got = await store.getOperation(op.id);
        for (const key of [
          "sha",
          "error",
          "exitCode",
          "options",
          "startedAt",
          "finishedAt",
          "owner",
          "leaseUntil",
          "cancelRequested",
          "gitlabReports",
        ]) {
          expect(got).not.toHaveProperty(key);
        }
        expect(got?.trigger).toStrictEqual({ source: "api" });
      });

      it("supersedes the older queued operations of the same version only, and returns them", async () => {
        const { project, version } = await seedVersion();
        const otherVersion = makeVersion(project.id);
        await store.createVersion(otherVersion);

        const running = makeOperation(version, 1);
        await store.enqueueOperation(running);
        const claimed = await store.claimOperation({
          owner: "replica-a",
          leaseUntil: at(100),
          now: at(2),
        });
        expect(claimed?.id).toBe(running.id);

        const firstQueued = makeOperation(version, 3);
        const otherQueued = makeOperation(otherVersion, 4);
        await store.enqueueOperation(firstQueued);
        await store.enqueueOperation(otherQueued);

        const newest = makeOperation(version, 5);
        const superseded = await store.enqueueOperation(newest);

        const expected: OperationRecord = {
          ...firstQueued,
          status: "superseded",
          finishedAt: newest.queuedAt,
        };
        expect(superseded).toStrictEqual([expected]);
        expect(await store.getOperation(firstQueued.id)).toStrictEqual(expected);
        expect((await store.getOperation(running.id))?.status).toBe("running");
        expect(await store.getOperation(otherQueued.id)).toStrictEqual(otherQueued);
        expect(await store.getOperation(newest.id)).toStrictEqual(newest);
      });

      it("rejects an operation whose id is taken and supersedes nothing", async () => {
        const { version } = await seedVersion();
        const first = makeOperation(version, 1);
        await store.enqueueOperation(first);
        await expect(store.enqueueOperation({ ...first, queuedAt: at(2) })).rejects.toBeInstanceOf(
          StoreConflictError,
        );
        expect(await store.getOperation(first.id)).toStrictEqual(first);
      });

      it("with cancelRunning, asks the version's running operation to stop in the same step, never the new one", async () => {
        const { project, version } = await seedVersion();
        const otherVersion = makeVersion(project.id);
        await store.createVersion(otherVersion);
        const running = makeOperation(version, 1);
        const otherRunning = makeOperation(otherVersion, 2);
        await store.enqueueOperation(running);
        await store.enqueueOperation(otherRunning);
        for (const second of [3, 4]) {
          await store.claimOperation({ owner: "replica-a", leaseUntil: at(100), now: at(second) });
        }
        const queued = makeOperation(version, 5);
        await store.enqueueOperation(queued);

        const del = makeOperation(version, 6, { kind: "delete" });
        const stopped = await store.enqueueOperation(del, {
          cancelRunning: "superseded by a delete",
        });

        const asked: OperationRecord = {
          ...running,
          status: "running",
          owner: "replica-a",
          leaseUntil: at(100),
          startedAt: at(3),
          cancelRequested: true,
          error: "superseded by a delete",
        };
        const superseded: OperationRecord = {
          ...queued,
          status: "superseded",
          finishedAt: del.queuedAt,
        };
        expect(stopped).toStrictEqual([superseded, asked]);
        expect(await store.getOperation(running.id)).toStrictEqual(asked);
        expect(await store.getOperation(del.id)).toStrictEqual(del);
        expect(await store.getOperation(otherRunning.id)).not.toHaveProperty("cancelRequested");
      });

      it("with cancelRunning, leaves alone an operation a claim took right after it was stored", async () => {
        const { version } = await seedVersion();
        const first = makeOperation(version, 1, { kind: "delete" });
        expect(
          await store.enqueueOperation(first, { cancelRunning: "superseded by a delete" }),
        ).toStrictEqual([]);
        const claimed = await store.claimOperation({
          owner: "replica-a",
          leaseUntil: at(100),
          now: at(2),
        });
        expect(claimed?.id).toBe(first.id);
        // A second delete of the same version stops the first (queued before it), and the first
        // was never asked to stop by its own enqueue.
        expect((await store.getOperation(first.id))?.cancelRequested).toBeUndefined();
        const second = makeOperation(version, 3, { kind: "delete" });
        const stopped = await store.enqueueOperation(second, {
          cancelRunning: "superseded by a delete",
        });
        expect(ids(stopped)).toStrictEqual([first.id]);
        expect(await store.getOperation(second.id)).toStrictEqual(second);
      });

      describe("claimOperation", () => {
        it("returns undefined when nothing is queued", async () => {
          expect(
            await store.claimOperation({ owner: "r", leaseUntil: at(100), now: at(1) }),
          ).toBeUndefined();
        });

        it("takes the oldest queued operation and marks it running with owner, lease and start", async () => {
          const project = makeProject();
          await store.createProject(project);
          const v1 = makeVersion(project.id);
          const v2 = makeVersion(project.id);
          await store.createVersion(v1);
          await store.createVersion(v2);
          const later = makeOperation(v1, 20);
          const earlier = makeOperation(v2, 10);
          await store.enqueueOperation(later);
          await store.enqueueOperation(earlier);

          const claimed = await store.claimOperation({
            owner: "replica-a",
            leaseUntil: at(200),
            now: at(30),
          });
          const expected: OperationRecord = {
            ...earlier,
            status: "running",
            owner: "replica-a",
            leaseUntil: at(200),
            startedAt: at(30),
          };
          expect(claimed).toStrictEqual(expected);
          expect(await store.getOperation(earlier.id)).toStrictEqual(expected);

          const second = await store.claimOperation({
            owner: "replica-b",
            leaseUntil: at(201),
            now: at(31),
          });
          expect(second?.id).toBe(later.id);
          expect(second?.owner).toBe("replica-b");
          expect(
            await store.claimOperation({ owner: "replica-c", leaseUntil: at(202), now: at(32) }),
          ).toBeUndefined();
        });

        it("skips a version that has a running operation and takes the next version's", async () => {
          const project = makeProject();
          await store.createProject(project);
          const busy = makeVersion(project.id);
          const idle = makeVersion(project.id);
          await store.createVersion(busy);
          await store.createVersion(idle);
          await store.enqueueOperation(makeOperation(busy, 1));
          await store.claimOperation({ owner: "r", leaseUntil: at(100), now: at(2) });

          const waiting = makeOperation(busy, 3);
          const idleOp = makeOperation(idle, 4);
          await store.enqueueOperation(waiting);
          await store.enqueueOperation(idleOp);

          const claimed = await store.claimOperation({
            owner: "r",
            leaseUntil: at(100),
            now: at(5),
          });
          expect(claimed?.id).toBe(idleOp.id);
          expect(
            await store.claimOperation({ owner: "r", leaseUntil: at(100), now: at(6) }),
          ).toBeUndefined();
          expect((await store.getOperation(waiting.id))?.status).toBe("queued");
        });

        it("makes a version's next operation claimable once its running one finishes", async () => {
          const { version } = await seedVersion();
          const first = makeOperation(version, 1);
          await store.enqueueOperation(first);
          await store.claimOperation({ owner: "r", leaseUntil: at(100), now: at(2) });
          const next = makeOperation(version, 3);
          await store.enqueueOperation(next);
          expect(
            await store.claimOperation({ owner: "r", leaseUntil: at(100), now: at(4) }),
          ).toBeUndefined();

          await store.updateOperation(first.id, { status: "succeeded", finishedAt: at(5) });

          const claimed = await store.claimOperation({
            owner: "r",
            leaseUntil: at(100),
            now: at(6),
          });
          expect(claimed?.id).toBe(next.id);
        });

        it("never runs two operations of one version at once, even with several queued", async () => {
          const { version } = await seedVersion();
          const first = makeOperation(version, 1);
          await store.enqueueOperation(first);
          await store.claimOperation({ owner: "r", leaseUntil: at(100), now: at(2) });
          const second = makeOperation(version, 3);
          await store.enqueueOperation(second);
          // A recovered operation is put back in the queue next to a newer one.
          await store.updateOperation(first.id, { status: "queued" });

          const results = await Promise.all(
            Array.from({ length: 4 }, (_, i) =>
              store.claimOperation({ owner: `replica-${i}`, leaseUntil: at(100), now: at(4) }),
            ),
          );
          const claimed = results.filter((r): r is OperationRecord => r !== undefined);
          expect(ids(claimed)).toStrictEqual([first.id]);
          const running = await store.listOperations({
            versionId: version.id,
            status: ["running"],
          });
          expect(ids(running)).toStrictEqual([first.id]);
        });

        it("never hands the same operation to two concurrent claims", async () => {
          const project = makeProject();
          await store.createProject(project);
          const queued: OperationRecord[] = [];
          for (let i = 0; i < 6; i++) {
            const v = makeVersion(project.id);
            await store.createVersion(v);
            const op = makeOperation(v, i);
            await store.enqueueOperation(op);
            queued.push(op);
          }

          const results = await Promise.all(
            Array.from({ length: 9 }, (_, i) =>
              store.claimOperation({ owner: `replica-${i}`, leaseUntil: at(100), now: at(50) }),
            ),
          );
          const claimed = results.filter((r): r is OperationRecord => r !== undefined);
          expect(claimed).toHaveLength(6);
          expect(new Set(ids(claimed)).size).toBe(6);
          expect(ids(claimed).sort()).toStrictEqual(ids(queued).sort());
          for (const op of claimed) {
            const stored = await store.getOperation(op.id);
            expect(stored?.status).toBe("running");
            expect(stored?.owner).toBe(op.owner);
          }
        });
      });

      // The two ways an operation is stored only for a version with nothing queued or running.
      const running = (version: VersionRecord, second: number): OperationRecord =>
        makeOperation(version, second, {
          kind: "down",
          trigger: { source: "policy", reason: "limit" },
          status: "running",
          owner: "replica-a",
          leaseUntil: at(second + 100),
          startedAt: at(second),
        });
      const idleDown = (version: VersionRecord, second: number): OperationRecord =>
        makeOperation(version, second, {
          kind: "down",
          trigger: { source: "policy", reason: "idle" },
        });
      const ifIdle = [
        ["startOperation", (op: OperationRecord) => store.startOperation(op), running],
        [
          "enqueueOperationIfIdle",
          (op: OperationRecord) => store.enqueueOperationIfIdle(op),
          idleDown,
        ],
      ] as const;

      describe.each(ifIdle)("%s on a busy version", (_name, storeIfIdle, make) => {
        it.each(["queued", "running"] as const)(
          "stores nothing and answers false when the version has an operation %s",
          async (status) => {
            const { version } = await seedVersion();
            const existing = makeOperation(version, 1);
            await store.enqueueOperation(existing);
            if (status === "running")
              await store.claimOperation({ owner: "r", leaseUntil: at(100), now: at(2) });
            const op = make(version, 3);
            expect(await storeIfIdle(op)).toBe(false);
            expect(await store.getOperation(op.id)).toBeUndefined();
            expect((await store.getOperation(existing.id))?.status).toBe(status);
          },
        );
      });

      describe("startOperation", () => {
        it("stores a running operation for a version with nothing queued or running, and holds the version", async () => {
          const { version } = await seedVersion();
          const op = running(version, 1);
          expect(await store.startOperation(op)).toBe(true);
          expect(await store.getOperation(op.id)).toStrictEqual(op);
          const next = makeOperation(version, 2);
          await store.enqueueOperation(next);
          expect(
            await store.claimOperation({ owner: "r", leaseUntil: at(100), now: at(3) }),
          ).toBeUndefined();
          await store.updateOperation(op.id, { status: "succeeded", finishedAt: at(4) });
          const claimed = await store.claimOperation({
            owner: "r",
            leaseUntil: at(100),
            now: at(5),
          });
          expect(claimed?.id).toBe(next.id);
        });

        // At the same moment both may back out (MongoDB: each sees the other's insert), never
        // both go through.
        it("never lets two starts for one version at once both through", async () => {
          for (let round = 0; round < 5; round++) {
            const { version } = await seedVersion();
            const results = await Promise.all([
              store.startOperation(running(version, 1)),
              store.startOperation(running(version, 2)),
            ]);
            const through = results.filter(Boolean).length;
            expect(through).toBeLessThanOrEqual(1);
            const active = await store.listOperations({
              versionId: version.id,
              status: ["queued", "running"],
            });
            expect(active).toHaveLength(through);
          }
        });
      });

      describe("enqueueOperationIfIdle", () => {
        it("queues the operation for a version with nothing queued or running, and a runner claims it", async () => {
          const { version } = await seedVersion();
          const op = idleDown(version, 1);
          expect(await store.enqueueOperationIfIdle(op)).toBe(true);
          expect(await store.getOperation(op.id)).toStrictEqual(op);
          const claimed = await store.claimOperation({
            owner: "r",
            leaseUntil: at(100),
            now: at(2),
          });
          expect(claimed?.id).toBe(op.id);
        });

        // Unlike startOperation, one of two at the same moment always goes through.
        it("stores exactly one of two for one version at the same moment", async () => {
          for (let round = 0; round < 5; round++) {
            const { version } = await seedVersion();
            const results = await Promise.all([
              store.enqueueOperationIfIdle(idleDown(version, 1)),
              store.enqueueOperationIfIdle(idleDown(version, 2)),
            ]);
            expect(results.filter(Boolean)).toHaveLength(1);
            const active = await store.listOperations({
              versionId: version.id,
              status: ["queued", "running"],
            });
            expect(active).toHaveLength(1);
          }
        });
      });

      describe("updateOperation", () => {
        it("applies the patch and returns the updated operation", async () => {
          const { version } = await seedVersion();
          const op = makeOperation(version, 1);
          await store.enqueueOperation(op);
          const patch = {
            status: "failed" as const,
            error: "exit 1",
            exitCode: 1,
            finishedAt: at(9),
            cancelRequested: true,
          };
          const updated = await store.updateOperation(op.id, patch);
          expect(updated).toStrictEqual({ ...op, ...patch });
          expect(await store.getOperation(op.id)).toStrictEqual({ ...op, ...patch });
        });

        it("returns undefined for an unknown operation", async () => {
          expect(await store.updateOperation(randomUUID(), { status: "failed" })).toBeUndefined();
        });

        it("updates only when the status is one of ifStatus", async () => {
          const { version } = await seedVersion();
          const op = makeOperation(version, 1);
          await store.enqueueOperation(op);

          expect(
            await store.updateOperation(op.id, { status: "succeeded" }, { ifStatus: ["running"] }),
          ).toBeUndefined();
          expect(await store.getOperation(op.id)).toStrictEqual(op);

          const canceled = await store.updateOperation(
            op.id,
            { status: "canceled", finishedAt: at(2) },
            { ifStatus: ["queued", "running"] },
          );
          expect(canceled?.status).toBe("canceled");
          expect((await store.getOperation(op.id))?.status).toBe("canceled");
        });

        it("updates only when the operation is held by ifOwner", async () => {
          const { version } = await seedVersion();
          const op = makeOperation(version, 1);
          await store.enqueueOperation(op);

          // Not held by anyone yet: no owner matches.
          expect(
            await store.updateOperation(op.id, { leaseUntil: at(500) }, { ifOwner: "replica-a" }),
          ).toBeUndefined();

          await store.claimOperation({ owner: "replica-a", leaseUntil: at(100), now: at(2) });
          expect(
            await store.updateOperation(op.id, { leaseUntil: at(500) }, { ifOwner: "replica-b" }),
          ).toBeUndefined();
          expect((await store.getOperation(op.id))?.leaseUntil).toBe(at(100));

          const renewed = await store.updateOperation(
            op.id,
            { leaseUntil: at(500) },
            { ifOwner: "replica-a" },
          );
          expect(renewed?.leaseUntil).toBe(at(500));
          expect((await store.getOperation(op.id))?.leaseUntil).toBe(at(500));
        });

        it("requires both conditions when ifStatus and ifOwner are given", async () => {
          const { version } = await seedVersion();
          const op = makeOperation(version, 1);
          await store.enqueueOperation(op);
          await store.claimOperation({ owner: "replica-a", leaseUntil: at(100), now: at(2) });

          expect(
            await store.updateOperation(
              op.id,
              { status: "succeeded" },
              { ifStatus: ["queued"], ifOwner: "replica-a" },
            ),
          ).toBeUndefined();
          expect(
            await store.updateOperation(
              op.id,
              { status: "succeeded" },
              { ifStatus: ["running"], ifOwner: "replica-b" },
            ),
          ).toBeUndefined();
          expect((await store.getOperation(op.id))?.status).toBe("running");

          const done = await store.updateOperation(
            op.id,
            { status: "succeeded", finishedAt: at(3) },
            { ifStatus: ["running"], ifOwner: "replica-a" },
          );
          expect(done?.status).toBe("succeeded");
          expect(done?.finishedAt).toBe(at(3));
        });
      });

      describe("listOperations", () => {
        async function seedOperations() {
          const p1 = makeProject();
          const p2 = makeProject();
          await store.createProject(p1);
          await store.createProject(p2);
          const v1 = makeVersion(p1.id);
          const v2 = makeVersion(p1.id);
          const v3 = makeVersion(p2.id);
          for (const v of [v1, v2, v3]) await store.createVersion(v);
          const a = makeOperation(v1, 1, { status: "succeeded", finishedAt: at(2) });
          const b = makeOperation(v2, 3, { status: "failed", finishedAt: at(4) });
          const c = makeOperation(v3, 5);
          const d = makeOperation(v1, 6, { kind: "down" });
          // Stored out of time order (listing orders by queuedAt, not by insertion), with d
          // after a so that enqueueing a does not supersede d.
          for (const op of [c, b, a, d]) await store.enqueueOperation(op);
          return { p1, p2, v1, v2, v3, a, b, c, d };
        }

        it("lists every operation oldest first without a filter", async () => {
          const { a, b, c, d } = await seedOperations();
          expect(await store.listOperations()).toStrictEqual([a, b, c, d]);
        });

        it("filters by project, by version and by a list of statuses", async () => {
          const { p1, p2, v1, a, b, c, d } = await seedOperations();
          expect(ids(await store.listOperations({ projectId: p1.id }))).toStrictEqual([
            a.id,
            b.id,
            d.id,
          ]);
          expect(ids(await store.listOperations({ projectId: p2.id }))).toStrictEqual([c.id]);
          expect(ids(await store.listOperations({ versionId: v1.id }))).toStrictEqual([a.id, d.id]);
          expect(
            ids(await store.listOperations({ status: ["succeeded", "failed"] })),
          ).toStrictEqual([a.id, b.id]);
          expect(
            ids(await store.listOperations({ projectId: p1.id, status: ["queued"] })),
          ).toStrictEqual([d.id]);
          expect(await store.listOperations({ status: [] })).toStrictEqual([]);
        });

        it("lists newest first and honours the limit", async () => {
          const { p1, a, b, c, d } = await seedOperations();
          expect(ids(await store.listOperations({ newestFirst: true }))).toStrictEqual([
            d.id,
            c.id,
            b.id,
            a.id,
          ]);
          expect(ids(await store.listOperations({ newestFirst: true, limit: 2 }))).toStrictEqual([
            d.id,
            c.id,
          ]);
          expect(ids(await store.listOperations({ limit: 1 }))).toStrictEqual([a.id]);
          expect(
            ids(await store.listOperations({ projectId: p1.id, newestFirst: true, limit: 1 })),
          ).toStrictEqual([d.id]);
        });
      });
    });

    describe("host ports", () => {
      const port = (versionId: string, service: string, target: number, hostPort: number) => ({
        versionId,
        service,
        target,
        protocol: "tcp" as const,
        hostPort,
      });

      it("keeps a version's ports and primary service and a project's policy", async () => {
        const project = makeProject({ policy: { allow: ["privileged", "host-paths"] } });
        await store.createProject(project);
        expect(await store.getProject(project.id)).toStrictEqual(project);
        const ports = [
          { service: "web", target: 8080, protocol: "tcp" as const, hostPort: 20001 },
          { service: "dns", target: 53, protocol: "udp" as const, hostPort: 20002 },
        ];
        const version = makeVersion(project.id, { ports, primaryService: "web" });
        await store.createVersion(version);
        expect(await store.getVersion(version.id)).toStrictEqual(version);
        const bare = makeVersion(project.id);
        await store.createVersion(bare);
        const gotBare = await store.getVersion(bare.id);
        expect(gotBare?.ports).toStrictEqual([]);
        expect(gotBare).not.toHaveProperty("primaryService");
        const moved = [{ ...ports[0]!, hostPort: 20003 }];
        expect(await store.updateVersion(bare.id, { ports: moved })).toStrictEqual({
          ...bare,
          ports: moved,
        });
        const patched = await store.updateProject(project.id, { policy: { allow: [] } });
        expect(patched?.policy).toStrictEqual({ allow: [] });
      });

      it("holds a host port for one (version, service, target, protocol) only", async () => {
        const { version: a } = await seedVersion();
        const { version: b } = await seedVersion();
        expect(await store.reservePort(port(a.id, "web", 80, 20010))).toBe(true);
        // The same host port for anyone else, or a second port for the same key: refused.
        expect(await store.reservePort(port(b.id, "web", 80, 20010))).toBe(false);
        expect(await store.reservePort(port(a.id, "api", 81, 20010))).toBe(false);
        expect(await store.reservePort(port(a.id, "web", 80, 20011))).toBe(false);
        expect(await store.reservePort({ ...port(a.id, "web", 80, 20012), protocol: "udp" })).toBe(
          true,
        );
        expect(await store.reservePort(port(b.id, "web", 80, 20005))).toBe(true);
        expect(await store.listPortAllocations(a.id)).toStrictEqual([
          port(a.id, "web", 80, 20010),
          { ...port(a.id, "web", 80, 20012), protocol: "udp" },
        ]);
        expect((await store.listPortAllocations()).map((p) => p.hostPort)).toStrictEqual([
          20005, 20010, 20012,
        ]);
      });

      it("hands one host port to exactly one of many asking at once", async () => {
        const versions = await Promise.all(Array.from({ length: 8 }, () => seedVersion()));
        const won = await Promise.all(
          versions.map(({ version }) => store.reservePort(port(version.id, "web", 80, 20020))),
        );
        expect(won.filter(Boolean)).toHaveLength(1);
        expect(await store.listPortAllocations()).toHaveLength(1);
      });

      it("lets go of the ports given, of all of a version's, and of a deleted version's", async () => {
        const { version: a } = await seedVersion();
        const { version: b } = await seedVersion();
        for (const [i, v] of [a, a, a, b].entries())
          await store.reservePort(port(v.id, `s${i}`, 80, 20030 + i));
        await store.releasePorts(a.id, [20030, 20033]);
        expect((await store.listPortAllocations()).map((p) => p.hostPort)).toStrictEqual([
          20031, 20032, 20033,
        ]);
        await store.deleteVersion(a.id);
        expect((await store.listPortAllocations()).map((p) => p.hostPort)).toStrictEqual([20033]);
        await store.releasePorts(b.id);
        expect(await store.listPortAllocations()).toStrictEqual([]);
        // A released port can be held again.
        expect(await store.reservePort(port(b.id, "web", 80, 20031))).toBe(true);
      });
    });

    describe("log lines", () => {
      it("returns appended batches in seq order", async () => {
        const op = randomUUID();
        const first = makeLines(op, 1, 3);
        const second = makeLines(op, 4, 3);
        await store.appendLogLines(first);
        await store.appendLogLines([...second].reverse());
        await store.appendLogLines([]);
        expect(await store.getLogLines(op)).toStrictEqual([...first, ...second]);
      });

      it("returns only lines after a seq, at most limit of them", async () => {
        const op = randomUUID();
        const lines = makeLines(op, 1, 10);
        await store.appendLogLines(lines);
        expect(await store.getLogLines(op, 4)).toStrictEqual(lines.slice(4));
        expect(await store.getLogLines(op, 4, 3)).toStrictEqual(lines.slice(4, 7));
        expect(await store.getLogLines(op, 0, 2)).toStrictEqual(lines.slice(0, 2));
        expect(await store.getLogLines(op, 10)).toStrictEqual([]);
      });

      it("keeps the lines of different operations apart", async () => {
        const a = randomUUID();
        const b = randomUUID();
        const linesA = makeLines(a, 1, 3);
        const linesB = makeLines(b, 1, 2);
        await store.appendLogLines([...linesA, ...linesB]);
        expect(await store.getLogLines(a)).toStrictEqual(linesA);
        expect(await store.getLogLines(b)).toStrictEqual(linesB);
        expect(await store.getLogLines(randomUUID())).toStrictEqual([]);
      });

      it("stores a large batch whole", async () => {
        const op = randomUUID();
        const lines = makeLines(op, 1, 5000);
        await store.appendLogLines(lines);
        const got = await store.getLogLines(op);
        expect(got).toHaveLength(5000);
        expect(got[4999]).toStrictEqual(lines[4999]);
        expect(got.map((l) => l.seq)).toStrictEqual(lines.map((l) => l.seq));
      });

      it("deletes an inclusive seq range of one operation only", async () => {
        const op = randomUUID();
        const other = randomUUID();
        const lines = makeLines(op, 1, 10);
        const otherLines = makeLines(other, 1, 10);
        await store.appendLogLines(lines);
        await store.appendLogLines(otherLines);

        await store.deleteLogLines(op, 3, 8);

        const left = await store.getLogLines(op);
        expect(left.map((l) => l.seq)).toStrictEqual([1, 2, 9, 10]);
        expect(await store.getLogLines(op, 2, 1)).toStrictEqual([lines[8]]);
        expect(await store.getLogLines(other)).toStrictEqual(otherLines);
      });
    });

    describe("retention", () => {
      /** A finished operation of `version` with `lines` log lines, stored. */
      async function finished(
        version: VersionRecord,
        second: number,
        lines: number,
        overrides: Partial<OperationRecord> = {},
      ): Promise<OperationRecord> {
        const op = makeOperation(version, second, {
          status: "succeeded",
          startedAt: at(second),
          finishedAt: at(second + 1),
          ...overrides,
        });
        await store.enqueueOperation({ ...op, status: "queued" });
        await store.updateOperation(op.id, {
          status: op.status,
          ...(op.startedAt === undefined ? {} : { startedAt: op.startedAt }),
          ...(op.finishedAt === undefined ? {} : { finishedAt: op.finishedAt }),
        });
        if (lines > 0) await store.appendLogLines(makeLines(op.id, 1, lines));
        return op;
      }

      /** Batches until the store says nothing older is left; the results, in order. */
      async function runRetention(finishedBefore: string, limit: number, maxLogLines: number) {
        const results = [];
        let after;
        for (let i = 0; i < 1000; i++) {
          const r = await store.deleteOldOperations({
            finishedBefore,
            limit,
            maxLogLines,
            ...(after === undefined ? {} : { after }),
          });
          results.push(r);
          after = r.next;
          if (after === undefined) return results;
        }
        throw new Error("retention did not finish in 1000 batches");
      }

      it("deletes old operations and their log lines, keeping each version's last operation and its kept deploys' operations", async () => {
        const sha = (c: string) => c.repeat(40);
        const { project, version } = await seedVersion();
        const oldFailed = await finished(version, 10, 5, { status: "failed", sha: sha("a") });
        const good = await finished(version, 20, 4, { sha: sha("b") });
        const olderGood = await finished(version, 15, 3, { sha: sha("c") });
        const oldDown = await finished(version, 30, 2, { kind: "down" });
        const last = await finished(version, 40, 3, { status: "failed", sha: sha("d") });
        await store.updateVersion(version.id, {
          lastGood: { sha: sha("b"), deployedAt: at(21) },
          goodDeploys: [
            { sha: sha("b"), deployedAt: at(21), operationId: good.id },
            { sha: sha("c"), deployedAt: at(16), operationId: olderGood.id },
          ],
        });
        // A version from before goodDeploys: its lastGood keeps the succeeded up of its commit.
        const legacy = makeVersion(project.id, { lastGood: { sha: sha("e"), deployedAt: at(51) } });
        await store.createVersion(legacy);
        const legacyGood = await finished(legacy, 50, 2, { sha: sha("e") });
        const legacyOld = await finished(legacy, 45, 2, { sha: sha("f") });
        const legacyLast = await finished(legacy, 60, 1, { kind: "down" });
        // A deleted version keeps nothing, not even its last operation.
        const gone = makeVersion(project.id);
        await store.createVersion(gone);
        const goneUp = await finished(gone, 70, 3);
        const goneDelete = await finished(gone, 80, 2, { kind: "delete" });
        await store.deleteVersion(gone.id);
        // Finished after the cut, or not finished: never looked at.
        const busy = makeVersion(project.id);
        await store.createVersion(busy);
        const recent = await finished(busy, 500, 2);
        const queued = makeOperation(busy, 600);
        await store.enqueueOperation(queued);

        const results = await runRetention(at(100), 2, 3);
        const deleted = results.reduce((n, r) => n + r.deletedOperations, 0);
        const lines = results.reduce((n, r) => n + r.deletedLogLines, 0);

        const removed = [oldFailed, oldDown, legacyOld, goneUp, goneDelete];
        const kept = [good, olderGood, last, recent, legacyGood, legacyLast];
        expect(deleted).toBe(removed.length);
        expect(lines).toBe(5 + 2 + 2 + 3 + 2);
        for (const op of removed) {
          expect(await store.getOperation(op.id)).toBeUndefined();
          expect(await store.getLogLines(op.id)).toStrictEqual([]);
        }
        for (const op of kept) {
          expect((await store.getOperation(op.id))?.id).toBe(op.id);
          expect((await store.getLogLines(op.id)).length).toBeGreaterThan(0);
        }
        expect((await store.getOperation(queued.id))?.status).toBe("queued");
        // A second run finds nothing more to delete.
        const again = await runRetention(at(100), 2, 3);
        expect(again.reduce((n, r) => n + r.deletedOperations + r.deletedLogLines, 0)).toBe(0);
      });

      it("cuts a long log over several batches, each deleting at most maxLogLines, and deletes the operation with its last line", async () => {
        const { version } = await seedVersion();
        const long = await finished(version, 10, 10);
        const keptLast = await finished(version, 20, 1);

        const first = await store.deleteOldOperations({
          finishedBefore: at(100),
          limit: 10,
          maxLogLines: 4,
        });
        expect(first).toMatchObject({ deletedOperations: 0, deletedLogLines: 4 });
        expect(first.next).toBeDefined();
        expect((await store.getLogLines(long.id)).map((l) => l.seq)).toStrictEqual([
          5, 6, 7, 8, 9, 10,
        ]);
        expect((await store.getOperation(long.id))?.id).toBe(long.id);

        const rest = await runRetention(at(100), 10, 4);
        expect(rest.every((r) => r.deletedLogLines <= 4)).toBe(true);
        expect(rest.reduce((n, r) => n + r.deletedLogLines, 0)).toBe(6);
        expect(await store.getOperation(long.id)).toBeUndefined();
        expect(await store.getLogLines(long.id)).toStrictEqual([]);
        expect((await store.getOperation(keptLast.id))?.id).toBe(keptLast.id);
      });

      it("leaves operations that finished at or after the cut alone", async () => {
        const { version } = await seedVersion();
        const before = await finished(version, 10, 1);
        const atCut = await finished(version, 49, 1);
        const newest = await finished(version, 60, 1);
        const results = await runRetention(at(50), 100, 100);
        expect(results.reduce((n, r) => n + r.deletedOperations, 0)).toBe(1);
        expect(await store.getOperation(before.id)).toBeUndefined();
        expect((await store.getOperation(atCut.id))?.finishedAt).toBe(at(50));
        expect((await store.getOperation(newest.id))?.id).toBe(newest.id);
      });
    });

    describe("deliveries", () => {
      it("records a delivery once per (project, key) and stores nothing for a repeat", async () => {
        const project = makeProject();
        await store.createProject(project);
        const first = makeDelivery(project.id, 1, { deliveryKey: "idem-1", reason: "first" });
        expect(await store.insertDelivery(first)).toBe(true);
        const repeat = makeDelivery(project.id, 2, {
          deliveryKey: "idem-1",
          event: "Tag Push Hook",
        });
        expect(await store.insertDelivery(repeat)).toBe(false);
        expect(await store.listDeliveries(project.id)).toStrictEqual([first]);
      });

      it("accepts the same key for another project", async () => {
        const a = makeProject();
        const b = makeProject();
        await store.createProject(a);
        await store.createProject(b);
        const forA = makeDelivery(a.id, 1, { deliveryKey: "shared" });
        const forB = makeDelivery(b.id, 1, { deliveryKey: "shared" });
        expect(await store.insertDelivery(forA)).toBe(true);
        expect(await store.insertDelivery(forB)).toBe(true);
        expect(await store.listDeliveries(a.id)).toStrictEqual([forA]);
        expect(await store.listDeliveries(b.id)).toStrictEqual([forB]);
      });

      it("lists a project's deliveries newest first, at most limit", async () => {
        const project = makeProject();
        await store.createProject(project);
        const d1 = makeDelivery(project.id, 1);
        const d3 = makeDelivery(project.id, 3, {
          outcome: "ignored",
          reason: "branch not deployed",
        });
        const d2 = makeDelivery(project.id, 2, { operationIds: [randomUUID(), randomUUID()] });
        for (const d of [d1, d3, d2]) await store.insertDelivery(d);

        expect(await store.listDeliveries(project.id)).toStrictEqual([d3, d2, d1]);
        expect(await store.listDeliveries(project.id, 2)).toStrictEqual([d3, d2]);
        expect(await store.listDeliveries(randomUUID())).toStrictEqual([]);
      });

      it("leaves reason absent when it was not set", async () => {
        const project = makeProject();
        await store.createProject(project);
        await store.insertDelivery(makeDelivery(project.id, 1));
        const [got] = await store.listDeliveries(project.id);
        expect(got).toBeDefined();
        expect(got).not.toHaveProperty("reason");
      });

      it("updates outcome, reason and operation ids and keeps the rest", async () => {
        const project = makeProject();
        await store.createProject(project);
        const delivery = makeDelivery(project.id, 1);
        await store.insertDelivery(delivery);
        const opIds = [randomUUID()];
        await store.updateDelivery(delivery.id, {
          outcome: "ignored",
          reason: "no matching branch",
          operationIds: opIds,
        });
        expect(await store.listDeliveries(project.id)).toStrictEqual([
          { ...delivery, outcome: "ignored", reason: "no matching branch", operationIds: opIds },
        ]);
        await store.updateDelivery(delivery.id, { outcome: "accepted" });
        expect((await store.listDeliveries(project.id))[0]).toStrictEqual({
          ...delivery,
          outcome: "accepted",
          reason: "no matching branch",
          operationIds: opIds,
        });
      });
      it("gives a delivery key back when a delivery's key is changed", async () => {
        const project = makeProject();
        await store.createProject(project);
        const failed = makeDelivery(project.id, 1, { deliveryKey: "uuid-1" });
        expect(await store.insertDelivery(failed)).toBe(true);
        await store.updateDelivery(failed.id, {
          deliveryKey: `uuid-1#failed-${failed.id}`,
          reason: "failed: store unavailable",
        });
        const retry = makeDelivery(project.id, 2, { deliveryKey: "uuid-1" });
        expect(await store.insertDelivery(retry)).toBe(true);
        expect(await store.listDeliveries(project.id)).toStrictEqual([
          retry,
          {
            ...failed,
            deliveryKey: `uuid-1#failed-${failed.id}`,
            reason: "failed: store unavailable",
          },
        ]);
      });
    });

    describe("sessions, API tokens and audit", () => {
      const session = (overrides: Partial<SessionRecord> = {}): SessionRecord => ({
        id: randomUUID(),
        kind: "user",
        user: { id: 7, username: "dev", name: "Dev Eloper" },
        gitlabToken: "oauth-access-token",
        csrf: "csrf-value",
        createdAt: at(0),
        expiresAt: at(3600),
        ...overrides,
      });

      it("gives a session back as stored, forgets it when deleted, and refuses a taken id", async () => {
        const s = session();
        await store.createSession(s);
        expect(await store.getSession(s.id)).toEqual(s);
        await expect(store.createSession(s)).rejects.toBeInstanceOf(StoreConflictError);
        await store.deleteSession(s.id);
        expect(await store.getSession(s.id)).toBeUndefined();
      });

      it("removes only the sessions that expired before the given time", async () => {
        const old = session({ expiresAt: at(10) });
        const pending = session({
          kind: "sign-in",
          expiresAt: at(20),
          oauth: { state: "st", verifier: "ve", next: "/" },
        });
        const fresh = session({ expiresAt: at(100) });
        for (const s of [old, pending, fresh]) await store.createSession(s);
        expect(await store.deleteExpiredSessions(at(50))).toBe(2);
        expect(await store.getSession(old.id)).toBeUndefined();
        expect(await store.getSession(pending.id)).toBeUndefined();
        expect(await store.getSession(fresh.id)).toEqual(fresh);
      });

      const apiToken = (overrides: Partial<ApiTokenRecord> = {}): ApiTokenRecord => ({
        id: randomUUID(),
        name: "ci",
        hash: randomUUID().replace(/-/g, ""),
        scopes: ["deploy"],
        createdAt: at(0),
        maker: { via: "session", user: { id: 7, username: "dev", name: "Dev Eloper" } },
        ...overrides,
      });

      it("finds a token by id and by hash, lists oldest first, and refuses a taken hash", async () => {
        const a = apiToken({ projects: ["p1"], expiresAt: at(99) });
        const b = apiToken({ createdAt: at(5), maker: { via: "admin-token" } });
        await store.createApiToken(b);
        await store.createApiToken(a);
        expect(await store.getApiTokenByHash(a.hash)).toEqual(a);
        expect(await store.getApiToken(b.id)).toEqual(b);
        expect(ids(await store.listApiTokens())).toEqual([a.id, b.id]);
        await expect(store.createApiToken(apiToken({ hash: a.hash }))).rejects.toBeInstanceOf(
          StoreConflictError,
        );
        expect(await store.getApiTokenByHash("no-such-hash")).toBeUndefined();
      });

      it("revokes a token once, keeping the first revocation time", async () => {
        const t = apiToken();
        await store.createApiToken(t);
        expect(await store.revokeApiToken(t.id, at(10))).toEqual({ ...t, revokedAt: at(10) });
        expect((await store.revokeApiToken(t.id, at(20)))?.revokedAt).toBe(at(10));
        expect((await store.getApiTokenByHash(t.hash))?.revokedAt).toBe(at(10));
        expect(await store.revokeApiToken("missing", at(30))).toBeUndefined();
      });

      it("lists audit entries newest first, by project and since a time", async () => {
        const entry = (second: number, projectId?: string): AuditRecord => ({
          id: randomUUID(),
          at: at(second),
          actor: { via: "token", user: { id: 7, username: "dev", name: "Dev" }, tokenId: "t1" },
          action: "version.on",
          source: "api",
          request: "POST /api/projects/p/versions/main/on",
          status: 202,
          address: "127.0.0.1",
          ...(projectId === undefined ? {} : { projectId }),
        });
        const e1 = entry(1, "p1");
        const e2 = entry(2, "p2");
        const e3 = entry(3, "p1");
        const e4 = entry(4);
        for (const e of [e1, e2, e3, e4]) await store.appendAudit(e);
        expect(ids(await store.listAudit())).toEqual([e4.id, e3.id, e2.id, e1.id]);
        expect(await store.listAudit({ projectId: "p1" })).toEqual([e3, e1]);
        expect(ids(await store.listAudit({ since: at(2) }))).toEqual([e4.id, e3.id, e2.id]);
        expect(ids(await store.listAudit({ projectId: "p1", since: at(2) }))).toEqual([e3.id]);
        expect(ids(await store.listAudit({ limit: 1 }))).toEqual([e4.id]);
      });
    });

    describe("durability", () => {
      it("keeps everything across a close and reopen", async (ctx) => {
        const reopen = fixture.reopen;
        if (!reopen) {
          ctx.skip();
          return;
        }
        const { project, version } = await seedVersion();
        const op = makeOperation(version, 1, { gitlabReports: [] });
        await store.enqueueOperation(op);
        const running = await store.claimOperation({ owner: "r", leaseUntil: at(9), now: at(2) });
        const lines = makeLines(op.id, 1, 50);
        await store.appendLogLines(lines);
        const delivery = makeDelivery(project.id, 1, { operationIds: [op.id] });
        await store.insertDelivery(delivery);
        await store.setSetting("instanceId", "replica-a");
        await store.close();

        const again = await reopen();
        store = again;
        expect(await again.getProject(project.id)).toStrictEqual(project);
        expect(await again.getVersionByName(project.id, version.name)).toStrictEqual(version);
        expect(await again.getOperation(op.id)).toStrictEqual(running);
        expect(await again.getLogLines(op.id)).toStrictEqual(lines);
        expect(await again.listDeliveries(project.id)).toStrictEqual([delivery]);
        expect(await again.getSetting("instanceId")).toBe("replica-a");
        // Uniqueness holds across the reopen too.
        expect(await again.insertDelivery({ ...delivery, id: randomUUID() })).toBe(false);
        await expect(
          again.createProject(makeProject({ name: project.name })),
        ).rejects.toBeInstanceOf(StoreConflictError);
      });
    });
  });
}
