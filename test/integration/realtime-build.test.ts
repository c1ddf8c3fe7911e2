// A real build watched through a version and a project subscription (docs/api.md, "Socket.io"):
// a real dockbot (SQLite, git over the test sshd, real Docker), the real socket.io-client. Every
// line 1..N of the build arrives once and in order, for a client subscribed before the build and
// for one joining in the middle of it; the version is deleted afterwards, with what it built.
// Then the same across two dockbot processes sharing MongoDB and Redis: the client is on the
// replica that serves the API only, the build runs on the other.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { io, type Socket } from "socket.io-client";
import type {
  ClientToServerEvents,
  ServerToClientEvents,
  SubscribeAck,
  SubscribeRequest,
} from "../../src/realtime/socket-server.js";
import {
  ADMIN_TOKEN,
  dockerObjects,
  startDockbot,
  webApp,
  type DockbotHarness,
  type OperationJson,
  type VersionJson,
} from "../support/dockbot-harness.js";
import { waitForOperation } from "../support/api-client.js";
import { dockbotProcess, waitUntil, type DockbotProcess } from "../support/dockbot-process.js";
import { createTestRepo, type TestRepo } from "../support/git-server.js";
import { checkMongo, testDatabase } from "../support/mongo.js";
import { openMongoStore } from "../../src/store/mongo-store.js";
import {
  checkDeployServices,
  describeWithServices,
  tcpOpen,
  type ServiceCheck,
} from "../support/services.js";

type Client = Socket<ServerToClientEvents, ClientToServerEvents>;

const PROJECT = "rscopes";
const LINES = 2000;
const redisPort = Number(process.env.DOCKBOT_TEST_REDIS_PORT ?? 6380);
const checkRedis = async (): Promise<ServiceCheck> =>
  (await tcpOpen(redisPort))
    ? { ok: true, reason: "" }
    : { ok: false, reason: `no redis-server on 127.0.0.1:${redisPort}` };

/** A build that prints a lot; the nonce keeps Docker's build cache from skipping it. */
const noisyApp = () =>
  webApp("scopes", {
    dockerfileRun: `echo "build ${randomUUID()}" && seq 1 ${LINES} && sleep 1 && seq 1 ${LINES}`,
  });

function connect(base: string): Client {
  return io(base, { auth: { token: ADMIN_TOKEN }, transports: ["websocket"], forceNew: true });
}

function subscribe(client: Client, request: SubscribeRequest): Promise<SubscribeAck> {
  return new Promise((resolve) => client.emit("subscribe", request, resolve));
}

/** Every line the client gets, per operation, repeats included. */
function collect(client: Client) {
  const lines = new Map<string, Array<{ seq: number; text: string }>>();
  const events: string[] = [];
  client.on("operation.log", (line) => {
    const list = lines.get(line.operationId) ?? [];
    list.push({ seq: line.seq, text: line.text });
    lines.set(line.operationId, list);
  });
  client.on("operation.started", (op) => events.push(`started ${op.id}`));
  client.on("operation.finished", (op) => events.push(`finished ${op.id}`));
  return { of: (operationId: string) => lines.get(operationId) ?? [], events };
}

describeWithServices(await checkDeployServices(), "a real build over version subscriptions", () => {
  let h: DockbotHarness;
  let repo: TestRepo;
  const clients: Client[] = [];

  beforeAll(async () => {
    h = await startDockbot();
    repo = await createTestRepo("realtime-build", noisyApp());
    expect(
      (await h.api("POST", "/api/projects", { name: PROJECT, repoUrl: repo.sshUrl })).status,
    ).toBe(201);
    expect((await h.api("POST", `/api/projects/${PROJECT}/versions`, { ref: "main" })).status).toBe(
      201,
    );
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    // Whatever the test reached, the version goes, with its containers, images and volumes.
    const version = await h?.api("GET", `/api/projects/${PROJECT}/versions/main`);
    if (version?.status === 200) {
      const del = await h.api<OperationJson>("DELETE", `/api/projects/${PROJECT}/versions/main`);
      if (del.status === 202) await h.waitForOperation(del.body.id);
    }
    await h?.close();
    await repo?.remove();
  });

  it("delivers every line 1..N of a build exactly once to a version subscriber, and to a project subscriber joining mid-build", async () => {
    const version = (await h.api<VersionJson>("GET", `/api/projects/${PROJECT}/versions/main`))
      .body;
    const project = (await h.api<{ id: string }>("GET", `/api/projects/${PROJECT}`)).body;
    const early = connect(h.baseUrl);
    clients.push(early);
    const seenEarly = collect(early);
    expect(await subscribe(early, { versionId: version.id })).toEqual({ ok: true });

    const res = await h.api<OperationJson>("POST", `/api/projects/${PROJECT}/versions/main/on`);
    expect(res.status).toBe(202);
    const opId = res.body.id;
    await waitUntil("the build to print", () =>
      seenEarly.of(opId).length > LINES / 2 ? true : undefined,
    );
    const late = connect(h.baseUrl);
    clients.push(late);
    const seenLate = collect(late);
    expect(await subscribe(late, { projectId: project.id })).toEqual({ ok: true });

    const op = await h.waitForOperation(opId);
    expect(op.status).toBe("succeeded");
    const stored = await h.dockbot.store.getLogLines(opId, 0, 1_000_000);
    expect(stored.length).toBeGreaterThan(2 * LINES);
    const last = stored.at(-1)?.seq;
    await waitUntil("every line on both clients", () =>
      seenEarly.of(opId).at(-1)?.seq === last && seenLate.of(opId).at(-1)?.seq === last
        ? true
        : undefined,
    );
    for (const seen of [seenEarly, seenLate]) {
      expect(seen.of(opId).map((l) => l.seq)).toEqual(stored.map((_, i) => i + 1));
      expect(seen.of(opId).map((l) => l.text)).toEqual(stored.map((l) => l.text));
    }
    expect(seenEarly.events).toEqual([`started ${opId}`, `finished ${opId}`]);

    const del = await h.api<OperationJson>("DELETE", `/api/projects/${PROJECT}/versions/main`);
    expect(del.status).toBe(202);
    expect((await h.waitForOperation(del.body.id)).status).toBe("succeeded");
    // The delete ran while both were subscribed: its lines came too, from line 1.
    const deleteLog = await h.dockbot.store.getLogLines(del.body.id, 0, 1_000_000);
    await waitUntil("the delete's lines", () =>
      seenEarly.of(del.body.id).length >= deleteLog.length ? true : undefined,
    );
    expect(seenEarly.of(del.body.id).map((l) => l.seq)).toEqual(deleteLog.map((_, i) => i + 1));
    expect(await dockerObjects(version.composeProject)).toMatchObject({
      containers: [],
      volumes: [],
      networks: [],
      images: [],
    });
  });
});

describeWithServices(
  [...(await checkDeployServices()), await checkMongo(), await checkRedis()],
  "a real build across replicas over a version subscription (MongoDB + Redis)",
  () => {
    const project = `${PROJECT}-r`;
    const database = testDatabase();
    let front: DockbotProcess;
    let worker: DockbotProcess;
    let repo: TestRepo;
    const clients: Client[] = [];

    beforeAll(async () => {
      const shared = {
        DOCKBOT_MONGODB_URL: database.url,
        DOCKBOT_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        DOCKBOT_ADMIN_TOKEN: ADMIN_TOKEN,
      };
      // One replica serves the API and the client only; the other runs every operation.
      front = await dockbotProcess(ADMIN_TOKEN, { ...shared, DOCKBOT_CONCURRENCY: "0" });
      worker = await dockbotProcess(ADMIN_TOKEN, { ...shared, DOCKBOT_CONCURRENCY: "2" });
      await front.start();
      await worker.start();
      repo = await createTestRepo("realtime-build-replicas", noisyApp());
      expect(
        (await front.api("POST", "/api/projects", { name: project, repoUrl: repo.sshUrl })).status,
      ).toBe(201);
      expect(
        (await front.api("POST", `/api/projects/${project}/versions`, { ref: "main" })).status,
      ).toBe(201);
    });

    afterAll(async () => {
      for (const client of clients) client.close();
      const version = await front?.api("GET", `/api/projects/${project}/versions/main`);
      if (version?.status === 200) {
        const del = await front.api<OperationJson>(
          "DELETE",
          `/api/projects/${project}/versions/main`,
        );
        if (del.status === 202)
          await waitForOperation<OperationJson>(front.api, del.body.id, 120_000);
      }
      await front?.close();
      await worker?.close();
      await database.drop();
      await repo?.remove();
    });

    it("shows a client on one replica every line 1..N of a build the other replica runs, through a version subscription, each once", async () => {
      const version = (
        await front.api<VersionJson>("GET", `/api/projects/${project}/versions/main`)
      ).body;
      const client = connect(front.base);
      clients.push(client);
      const seen = collect(client);
      expect(await subscribe(client, { versionId: version.id })).toEqual({ ok: true });
      const res = await front.api<OperationJson>(
        "POST",
        `/api/projects/${project}/versions/main/on`,
      );
      expect(res.status).toBe(202);
      const done = await waitForOperation<OperationJson>(front.api, res.body.id, 180_000);
      expect(done.status).toBe("succeeded");
      const store = await openMongoStore(database.url);
      const stored = await store
        .getLogLines(res.body.id, 0, 1_000_000)
        .finally(() => store.close());
      expect(stored.length).toBeGreaterThan(2 * LINES);
      await waitUntil("every line", () =>
        seen.of(res.body.id).at(-1)?.seq === stored.at(-1)?.seq ? true : undefined,
      );
      expect(seen.of(res.body.id).map((l) => l.seq)).toEqual(stored.map((_, i) => i + 1));
      expect(seen.of(res.body.id).map((l) => l.text)).toEqual(stored.map((l) => l.text));
      expect(seen.events).toEqual([`started ${res.body.id}`, `finished ${res.body.id}`]);

      const del = await front.api<OperationJson>(
        "DELETE",
        `/api/projects/${project}/versions/main`,
      );
      expect(del.status).toBe(202);
      expect((await waitForOperation<OperationJson>(front.api, del.body.id, 120_000)).status).toBe(
        "succeeded",
      );
      expect(await dockerObjects(version.composeProject)).toMatchObject({
        containers: [],
        volumes: [],
        networks: [],
        images: [],
      });
    });
  },
);
