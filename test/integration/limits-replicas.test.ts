// The running limit and idle stop with two replicas on one MongoDB-compatible server (FerretDB),
// for real (docs/api.md, "Idle stop and limits"; docs/architecture.md, running-limit.ts and
// idle-stop.ts): real Docker, Compose v2, git over the test sshd, one operation at a time per
// replica (DOCKBOT_CONCURRENCY=1, where an up waiting for a queued down would never go on).
// - Running limit: two dockbot processes (as replicas.test.ts starts them) with
//   DOCKBOT_MAX_RUNNING=2 and two versions running; two more ups, one through each replica, at
//   the same moment. Each turns off one version, never the same one, and both run.
// - Idle stop: two dockbots built in-process on one database (the process harness cannot take an
//   injected clock), each looking for idle versions at the same moment with the clock moved.
//   Exactly one down is queued per idle version.
// Every compose project here starts with `dockbot-lrp`, removed in afterAll whatever failed; the
// app runs the test base image (nothing is built), so no image is left either.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Store } from "../../src/store/store.js";
import type { OperationRecord } from "../../src/store/types.js";
import { openMongoStore } from "../../src/store/mongo-store.js";
import type { ApiCall } from "../support/api-client.js";
import { waitForOperation } from "../support/api-client.js";
import {
  dockerObjects,
  portBlock,
  startDockbot,
  type DockbotHarness,
  type OperationJson,
  type VersionJson,
} from "../support/dockbot-harness.js";
import { dockbotProcess, waitUntil, type DockbotProcess } from "../support/dockbot-process.js";
import { cleanUpAll, removeComposeProjects } from "../support/compose-cleanup.js";
import { createTestRepo, type RepoFiles, type TestRepo } from "../support/git-server.js";
import { checkMongo, testDatabase } from "../support/mongo.js";
import {
  checkComposeV2,
  checkDocker,
  checkGitServer,
  checkTestBaseImage,
  describeWithServices,
  TEST_BASE_IMAGE,
} from "../support/services.js";

const TOKEN = "limits-replicas-token-0123456789abcdef";
const HOUR = 3_600_000;
const checks = [
  await checkDocker(),
  await checkComposeV2(),
  await checkTestBaseImage(),
  await checkGitServer(),
  await checkMongo(),
];

/** One web service on the test base image: nothing to build, up in a second. */
const files: RepoFiles = {
  "compose.yaml": [
    "services:",
    "  web:",
    `    image: ${TEST_BASE_IMAGE}`,
    "    init: true",
    '    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]',
    '    ports: ["8080"]',
    "",
  ].join("\n"),
};

const common = {
  DOCKBOT_COMPOSE: "v2",
  DOCKBOT_CONCURRENCY: "1",
  DOCKBOT_HEALTH_TIMEOUT: "20",
  // One block of host ports for both replicas: they share one store of allocations.
  DOCKBOT_PORT_RANGE: portBlock(),
};

const isPolicyDown = (op: OperationRecord, reason: "limit" | "idle") =>
  op.kind === "down" && op.trigger.source === "policy" && op.trigger.reason === reason;

async function runningContainers(project: string, version: string): Promise<number> {
  return (await dockerObjects(`dockbot-${project}-${version}`)).running.length;
}

/** Makes the version (from the branch of its name) and turns it on; resolves with the up. */
async function requestOn(api: ApiCall, project: string, name: string): Promise<OperationJson> {
  const got = await api("GET", `/api/projects/${project}/versions/${name}`);
  if (got.status === 404) {
    const made = await api("POST", `/api/projects/${project}/versions`, { ref: name, name });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
  }
  const res = await api<OperationJson>("POST", `/api/projects/${project}/versions/${name}/on`);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

/** Every operation of the store that is still queued or running. */
async function unfinished(store: Store): Promise<OperationRecord[]> {
  return store.listOperations({ status: ["queued", "running"] });
}

describeWithServices(checks, "the running limit with two replicas on one MongoDB", () => {
  const database = testDatabase();
  const project = `lrp${randomBytes(3).toString("hex")}`;
  let a: DockbotProcess;
  let b: DockbotProcess;
  let store: Store;
  let repo: TestRepo;

  beforeAll(async () => {
    repo = await createTestRepo("lrp-limit", files);
    for (const branch of ["b1", "b2", "b3", "b4"]) await repo.createBranch(branch);
    const env = { ...common, DOCKBOT_MONGODB_URL: database.url, DOCKBOT_MAX_RUNNING: "2" };
    a = await dockbotProcess(TOKEN, env);
    b = await dockbotProcess(TOKEN, env);
    await Promise.all([a.start(), b.start()]);
    store = await openMongoStore(database.url);
    const created = await a.api("POST", "/api/projects", { name: project, repoUrl: repo.sshUrl });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  });

  afterAll(async () => {
    await cleanUpAll([
      a && (() => a.close()),
      b && (() => b.close()),
      store && (() => store.close()),
      () => database.drop(),
      repo && (() => repo.remove()),
      () => removeComposeProjects(`dockbot-${project}-`),
    ]);
  });

  it("ends two ups requested at once through different replicas past the limit with two versions running, each one turned off by exactly one limit down", async () => {
    // b1 first, then b2: b1 is the least recently used.
    for (const name of ["b1", "b2"]) {
      const up = await waitForOperation<OperationJson>(
        a.api,
        (await requestOn(a.api, project, name)).id,
        60_000,
      );
      expect(up.status, up.log ?? up.error).toBe("succeeded");
    }
    const made = await Promise.all(
      (["b3", "b4"] as const).map((name) =>
        a.api("POST", `/api/projects/${project}/versions`, { ref: name, name }),
      ),
    );
    expect(made.map((r) => r.status)).toEqual([201, 201]);

    // The same moment: one through each replica, nothing else in between.
    const requested = await Promise.all(
      [a.api, b.api].map(async (api, i) => {
        const res = await api<OperationJson>(
          "POST",
          `/api/projects/${project}/versions/b${i + 3}/on`,
        );
        expect(res.status, JSON.stringify(res.body)).toBe(202);
        return res.body;
      }),
    );
    // No deadlock: both end, one slot per replica, with neither waiting for a queued down.
    const ups = await Promise.all(
      requested.map((op, i) =>
        waitForOperation<OperationJson>((i === 0 ? a : b).api, op.id, 60_000),
      ),
    );
    for (const up of ups) {
      expect(up.error, up.log).toBeUndefined();
      expect(up.status).toBe("succeeded");
    }
    // Each replica's runner ran one of the ups: they raced for the last places.
    const owners = await Promise.all(
      requested.map(async (op) => (await store.getOperation(op.id))?.owner),
    );
    expect(new Set(owners).size).toBe(2);

    const versions = new Map((await store.listVersions()).map((v) => [v.name, v]));
    const ops = await store.listOperations({});
    const limitDowns = ops.filter((op) => isPolicyDown(op, "limit"));
    const downedNames = limitDowns.map(
      (op) => [...versions.values()].find((v) => v.id === op.versionId)?.name,
    );
    expect(downedNames.sort()).toEqual(["b1", "b2"]);
    expect(limitDowns.map((op) => op.status)).toEqual(["succeeded", "succeeded"]);
    // The two downs were made by different ups, each held by the runner that ran its up.
    expect(new Set(limitDowns.map((op) => op.owner))).toEqual(new Set(owners));
    const joined = ups.map((up) => up.log ?? "").join("\n");
    expect(joined.match(/turning off \S+ first/g)).toHaveLength(2);

    const counts: Record<string, number> = {};
    for (const name of ["b1", "b2", "b3", "b4"])
      counts[name] = await runningContainers(project, name);
    expect(counts).toEqual({ b1: 0, b2: 0, b3: 1, b4: 1 });
    for (const [name, state] of [
      ["b1", "off"],
      ["b2", "off"],
      ["b3", "running"],
      ["b4", "running"],
    ] as const) {
      const v = (await b.api<VersionJson>("GET", `/api/projects/${project}/versions/${name}`)).body;
      expect(v.state, name).toBe(state);
    }
    expect(await unfinished(store)).toEqual([]);
  });
});

describeWithServices(checks, "idle stop with two replicas on one MongoDB", () => {
  const database = testDatabase();
  const project = `lrp${randomBytes(3).toString("hex")}`;
  /** The clock both replicas' idle stop reads: real time plus what the test moved it by. */
  let offset = 0;
  const now = () => Date.now() + offset;
  let a: DockbotHarness;
  let b: DockbotHarness;
  let repo: TestRepo;
  const idle = ["i1", "i2"] as const;

  beforeAll(async () => {
    repo = await createTestRepo("lrp-idle", files);
    for (const branch of idle) await repo.createBranch(branch);
    const env = { ...common, DOCKBOT_MONGODB_URL: database.url };
    [a, b] = await Promise.all([startDockbot(env, { now }), startDockbot(env, { now })]);
    const created = await a.api("POST", "/api/projects", {
      name: project,
      repoUrl: repo.sshUrl,
      autoStop: { idleHours: 1 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    // The default branch too: exempt, it must stay on.
    for (const name of ["main", ...idle]) {
      const up = await a.waitForOperation((await requestOn(a.api, project, name)).id, 60_000);
      expect(up.status, up.log ?? up.error).toBe("succeeded");
    }
  });

  afterAll(async () => {
    await cleanUpAll([
      a && (() => a.close()),
      b && (() => b.close()),
      () => database.drop(),
      repo && (() => repo.remove()),
      () => removeComposeProjects(`dockbot-${project}-`),
    ]);
  });

  it("queues exactly one down per idle version when both replicas look at the same moment", async () => {
    // Real time first: nothing is idle yet. Replica b, which deployed nothing, clones the mirror
    // now to know the default branch (main.ts, git.ts defaultBranchCloning), so below both
    // replicas take the same steps at the same pace.
    for (const outcomes of await Promise.all([
      a.dockbot.idleStop.check(),
      b.dockbot.idleStop.check(),
    ])) {
      const why = outcomes.map((o) => [o.version.name, o.verdict.stop ? "stop" : o.verdict.why]);
      expect(Object.fromEntries(why)).toEqual({
        main: "default-branch",
        i1: "in-use",
        i2: "in-use",
      });
    }
    offset = 2 * HOUR;
    const [fromA, fromB] = await Promise.all([
      a.dockbot.idleStop.check(),
      b.dockbot.idleStop.check(),
    ]);
    // Also on replica b, which deployed nothing and had no mirror of the project at first.
    for (const outcomes of [fromA, fromB]) {
      expect(outcomes.find((o) => o.version.name === "main")?.verdict).toEqual({
        stop: false,
        why: "default-branch",
      });
    }
    const store = a.dockbot.store;
    const ids = new Map((await store.listVersions()).map((v) => [v.name, v.id]));
    const idleDowns = async (name: string) =>
      (await store.listOperations({ versionId: ids.get(name) ?? "" })).filter((op) =>
        isPolicyDown(op, "idle"),
      );
    for (const name of idle) {
      const queued = [...fromA, ...fromB].filter(
        (o) => o.version.name === name && o.operation !== undefined,
      );
      expect(queued, name).toHaveLength(1);
      const downs = await idleDowns(name);
      expect(downs, name).toHaveLength(1);
      const done = await a.waitForOperation(downs[0]?.id ?? "", 60_000);
      expect(done.status, done.log ?? done.error).toBe("succeeded");
    }
    // Looking again, both at once, queues nothing more.
    await Promise.all([a.dockbot.idleStop.check(), b.dockbot.idleStop.check()]);
    for (const name of idle) {
      expect(await idleDowns(name), name).toHaveLength(1);
      const v = (await b.api<VersionJson>("GET", `/api/projects/${project}/versions/${name}`)).body;
      expect(v.state, name).toBe("off");
      expect(await runningContainers(project, name), name).toBe(0);
    }
    expect(await idleDowns("main")).toEqual([]);
    expect(await runningContainers(project, "main")).toBe(1);
    await waitUntil("no operation queued or running", async () =>
      (await unfinished(store)).length === 0 ? true : undefined,
    );
  });
});
