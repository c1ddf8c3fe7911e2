// Live logs of real compose builds: over Socket.io with a reconnect in the middle, over
// `?follow=true`, and across two replicas sharing MongoDB and Redis. No line lost or repeated,
// and a secret the build echoes never leaves dockbot.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { io, type Socket } from "socket.io-client";
import {
  ADMIN_TOKEN,
  startDockbot,
  webApp,
  type DockbotHarness,
  type OperationJson,
} from "../support/dockbot-harness.js";
import { dockbotProcess, waitUntil, type DockbotProcess } from "../support/dockbot-process.js";
import { createTestRepo, type TestRepo } from "../support/git-server.js";
import { checkMongo, testDatabase } from "../support/mongo.js";
import {
  checkDeployServices,
  describeWithServices,
  tcpOpen,
  type ServiceCheck,
} from "../support/services.js";
import { cleanUpAll, removeComposeProjects } from "../support/compose-cleanup.js";

const SECRET = "live-secret-7f3a9c";
const LINES = 3000;
const redisPort = Number(process.env.DOCKBOT_TEST_REDIS_PORT ?? 6380);
const checkRedis = async (): Promise<ServiceCheck> =>
  (await tcpOpen(redisPort))
    ? { ok: true, reason: "" }
    : { ok: false, reason: `no redis-server on 127.0.0.1:${redisPort}` };

interface OperationWithTimes extends OperationJson {
  finishedAt?: string;
}

interface Line {
  operationId: string;
  seq: number;
  stream: string;
  text: string;
}

/** A build that prints a lot; the nonce keeps Docker's build cache from skipping it. */
const noisyApp = (nonce = randomUUID()) =>
  webApp("noisy", {
    dockerfileRun: `echo "build ${nonce}: the secret is $SECRET_TOKEN" && seq 1 ${LINES} && sleep 1 && seq 1 ${LINES}`,
  });

function connect(base: string): Socket {
  return io(base, {
    auth: { token: ADMIN_TOKEN },
    transports: ["websocket"],
    reconnectionDelay: 100,
  });
}

/** Follows an operation's log, resubscribing with `since` after every reconnect or resubscribe. */
function follow(socket: Socket, operationId: string) {
  const lines: Line[] = [];
  let finished = false;
  const subscribe = () => {
    socket.emit("subscribe", { operationId, since: lines.at(-1)?.seq ?? 0 });
  };
  socket.on("operation.log", (line: Line) => {
    if (line.operationId === operationId) lines.push(line);
  });
  socket.on("operation.finished", (op: OperationJson) => {
    if (op.id === operationId) finished = true;
  });
  socket.on("resubscribe", (r: { operationId: string }) => {
    if (r.operationId === operationId) subscribe();
  });
  socket.on("connect", subscribe);
  if (socket.connected) subscribe();
  return { lines, isFinished: () => finished };
}

describeWithServices(await checkDeployServices(), "live logs of a real build", () => {
  let h: DockbotHarness;
  let repo: TestRepo;

  beforeAll(async () => {
    h = await startDockbot();
    repo = await createTestRepo("live", noisyApp());
    await h.api("POST", "/api/projects", {
      name: "live",
      repoUrl: repo.sshUrl,
      env: { SECRET_TOKEN: SECRET },
    });
    await h.api("POST", "/api/projects/live/versions", { ref: "main" });
  });

  afterAll(async () => {
    await cleanUpAll([
      h && (() => h.close()),
      repo && (() => repo.remove()),
      // The version it turned on is never deleted by the test.
      () => removeComposeProjects("dockbot-live-"),
    ]);
  });

  it("delivers lines 1..N exactly once to a client that drops and reconnects mid-build, secrets masked", async () => {
    const socket = connect(h.baseUrl);
    await waitUntil("the socket to connect", () => (socket.connected ? true : undefined));
    const res = await h.api<OperationJson>("POST", "/api/projects/live/versions/main/on");
    const watched = follow(socket, res.body.id);
    await waitUntil("some lines", () => (watched.lines.length > 50 ? true : undefined));
    socket.io.engine.close(); // the network drops; the client reconnects by itself
    const op = await h.waitForOperation(res.body.id);
    expect(op.status).toBe("succeeded");
    const stored = await h.dockbot.store.getLogLines(op.id, 0, 1_000_000);
    await waitUntil("every line to arrive", () =>
      watched.lines.at(-1)?.seq === stored.at(-1)?.seq ? true : undefined,
    );
    socket.close();
    expect(watched.lines.map((l) => l.seq)).toEqual(stored.map((l) => l.seq));
    expect(watched.lines.map((l) => l.seq)).toEqual(stored.map((_, i) => i + 1));
    expect(watched.lines.map((l) => l.text)).toEqual(stored.map((l) => l.text));
    expect(stored.length).toBeGreaterThan(LINES);
    const all = watched.lines.map((l) => l.text).join("\n");
    expect(all).toMatch(/the secret is \*\*\*/);
    expect(all).not.toContain(SECRET);
    expect(stored.some((l) => l.text.includes(SECRET))).toBe(false);
  });

  it("gives a late subscriber the whole log of a finished operation", async () => {
    const view = await h.api<OperationJson>("GET", "/api/projects/live/versions/main/view");
    const socket = connect(h.baseUrl);
    const watched = follow(socket, view.body.id);
    const stored = await h.dockbot.store.getLogLines(view.body.id, 0, 1_000_000);
    await waitUntil("the whole log", () =>
      watched.lines.length >= stored.length ? true : undefined,
    );
    socket.close();
    expect(watched.lines.map((l) => l.seq)).toEqual(stored.map((l) => l.seq));
  });

  it("streams ?follow=true while the build runs and ends when the operation ends", async () => {
    // A new build step, so the build runs (and prints) again instead of coming from cache.
    await repo.commit(
      webApp("noisy again", {
        dockerfileRun: `echo "again ${randomUUID()} $SECRET_TOKEN" && seq 1 ${LINES} && sleep 2 && seq 1 ${LINES}`,
      }),
      "again",
    );
    const res = await h.api<OperationJson>("POST", "/api/projects/live/versions/main/on");
    const stream = await fetch(`${h.baseUrl}/api/operations/${res.body.id}/log?follow=true`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(stream.headers.get("content-type")).toContain("text/plain");
    const reader = stream.body?.getReader();
    const decoder = new TextDecoder();
    let body = "";
    let firstChunkAt = 0;
    for (;;) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) break; // the server ends the stream when the operation ends
      firstChunkAt ||= Date.now();
      body += decoder.decode(chunk.value as Uint8Array, { stream: true });
    }
    const op = (await h.api<OperationWithTimes>("GET", `/api/operations/${res.body.id}`)).body;
    expect(op.status).toBe("succeeded");
    expect(firstChunkAt).toBeLessThan(Date.parse(op.finishedAt ?? ""));
    expect(body).toBe(op.log);
    expect(body).toMatch(new RegExp(`\\b${LINES}\n`));
    expect(body).not.toContain(SECRET);
  });
});

describeWithServices(
  [...(await checkDeployServices()), await checkMongo(), await checkRedis()],
  "live logs across replicas (MongoDB + Redis)",
  () => {
    const database = testDatabase();
    let api: DockbotProcess;
    let worker: DockbotProcess;
    let repo: TestRepo;

    beforeAll(async () => {
      const shared = {
        DOCKBOT_MONGODB_URL: database.url,
        DOCKBOT_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        DOCKBOT_ADMIN_TOKEN: ADMIN_TOKEN,
      };
      // One replica serves the API only; the other runs every operation.
      api = await dockbotProcess(ADMIN_TOKEN, { ...shared, DOCKBOT_CONCURRENCY: "0" });
      worker = await dockbotProcess(ADMIN_TOKEN, { ...shared, DOCKBOT_CONCURRENCY: "2" });
      await api.start();
      await worker.start();
      repo = await createTestRepo("live-replicas", noisyApp());
      await api.api("POST", "/api/projects", {
        name: "rlive",
        repoUrl: repo.sshUrl,
        env: { SECRET_TOKEN: SECRET },
      });
      await api.api("POST", "/api/projects/rlive/versions", { ref: "main" });
    });

    afterAll(async () => {
      await cleanUpAll([
        api && (() => api.close()),
        worker && (() => worker.close()),
        () => database.drop(),
        repo && (() => repo.remove()),
        () => removeComposeProjects("dockbot-rlive-"),
      ]);
    });

    it("shows a client on one replica the live log of an operation run by the other", async () => {
      const socket = connect(api.base);
      await waitUntil("the socket to connect", () => (socket.connected ? true : undefined));
      const res = await api.api<OperationJson>("POST", "/api/projects/rlive/versions/main/on");
      const watched = follow(socket, res.body.id);
      const done = await waitUntil(
        "the operation to finish",
        async () => {
          const op = (await api.api<OperationJson>("GET", `/api/operations/${res.body.id}`)).body;
          return ["succeeded", "failed"].includes(op.status) ? op : undefined;
        },
        120_000,
      );
      expect(done.status).toBe("succeeded");
      const lastSeq = done.log?.split("\n").filter((l) => l !== "").length ?? 0;
      await waitUntil("every line", () =>
        watched.lines.at(-1)?.seq === lastSeq ? true : undefined,
      );
      expect(watched.isFinished()).toBe(true);
      socket.close();
      expect(watched.lines.map((l) => l.seq)).toEqual(
        Array.from({ length: lastSeq }, (_, i) => i + 1),
      );
      expect(watched.lines.some((l) => l.text.includes(SECRET))).toBe(false);
    });
  },
);
