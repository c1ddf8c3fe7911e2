// Socket.io end to end: a real http server on port 0 with attachSocketServer, the real
// socket.io-client, a real SQLite store, a real EventBus and OperationLog writing the lines.
// The Redis suite runs two servers (two "replicas") against the redis-server of
// scripts/services/redis.sh.
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { io as connectClient, type Socket as ClientSocket } from "socket.io-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventBus } from "../../src/deploy/events.js";
import { OperationLog } from "../../src/deploy/operation-log.js";
import {
  type ClientToServerEvents,
  type LogLineEvent,
  type ResubscribeEvent,
  type ServerToClientEvents,
  type SubscribeAck,
  type SubscribeRequest,
} from "../../src/realtime/socket-server.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import type { OperationRecord, ProjectRecord, VersionRecord } from "../../src/store/types.js";
import {
  PUBLIC_URL,
  connected,
  defaultText,
  expectExactly,
  settle,
  sleep,
  startReplica,
  waitFor,
  withSlowLogReads,
  type Replica,
} from "../support/realtime-helpers.js";
import { describeWithServices, tcpOpen } from "../support/services.js";

type Client = ClientSocket<ServerToClientEvents, ClientToServerEvents>;

const TOKEN = "realtime-test-token-5f1c2a";
const REDIS_PORT = Number(process.env.DOCKBOT_TEST_REDIS_PORT ?? 6380);

const clients: Client[] = [];

function connect(
  url: string,
  options: {
    token?: string;
    origin?: string;
    transport?: "websocket" | "polling";
    reconnection?: boolean;
  } = {},
): Client {
  const client: Client = connectClient(url, {
    path: "/socket.io",
    auth: { token: options.token ?? TOKEN },
    transports: [options.transport ?? "websocket"],
    forceNew: true,
    reconnection: options.reconnection ?? false,
    reconnectionDelay: 50,
    reconnectionDelayMax: 200,
    ...(options.origin !== undefined ? { extraHeaders: { Origin: options.origin } } : {}),
  });
  clients.push(client);
  return client;
}

function subscribe(client: Client, request: SubscribeRequest): Promise<SubscribeAck> {
  return new Promise((resolve) => client.emit("subscribe", request, resolve));
}

/**
 * A client that does what docs/api.md asks of a log viewer: subscribe with `since` = last seq seen
 * on every (re)connect and on every `resubscribe`. It keeps every line it gets, repeats included,
 * so the test sees exactly what arrived.
 */
function followLog(client: Client, operationId: string, since = 0) {
  const state = {
    lines: [] as LogLineEvent[],
    /** Each `resubscribe` received, with the last seq this client had seen when it came. */
    resubscribes: [] as Array<ResubscribeEvent & { lastSeen: number }>,
    connects: 0,
  };
  const lastSeq = () => state.lines.at(-1)?.seq ?? since;
  client.on("operation.log", (line) => {
    if (line.operationId === operationId) state.lines.push(line);
  });
  client.on("resubscribe", (request) => {
    state.resubscribes.push({ ...request, lastSeen: lastSeq() });
    client.emit("subscribe", { operationId, since: lastSeq() });
  });
  const onConnect = () => {
    state.connects += 1;
    client.emit("subscribe", { operationId, since: lastSeq() });
  };
  client.on("connect", onConnect);
  if (client.connected) onConnect();
  return { state, lastSeq };
}

/**
 * The real store, with log reads that can be held: a held read takes its snapshot at once and
 * answers only when released, so a test can announce lines while a replay waits on it.
 */
function withHeldLogReads(inner: Store) {
  let held: Promise<void> | undefined;
  let release = () => {};
  let onRead = () => {};
  const reading = new Promise<void>((resolve) => (onRead = resolve));
  const getLogLines: Store["getLogLines"] = async (operationId, afterSeq, limit) => {
    const lines = await inner.getLogLines(operationId, afterSeq, limit);
    const wait = held;
    held = undefined;
    if (wait) {
      onRead();
      await wait;
    }
    return lines;
  };
  const store = new Proxy(inner, {
    get(target, property) {
      if (property === "getLogLines") return getLogLines;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function"
        ? (value as (...args: unknown[]) => unknown).bind(target)
        : value;
    },
  });
  return {
    store,
    /** Holds the next read; resolves `reading` when it happens. */
    holdNextRead() {
      held = new Promise<void>((resolve) => (release = resolve));
    },
    reading,
    release: () => release(),
  };
}

let dir: string;
let store: Store;
let replicas: Replica[];

async function seedOperation(): Promise<{
  project: ProjectRecord;
  version: VersionRecord;
  op: OperationRecord;
}> {
  const now = new Date().toISOString();
  const id = randomUUID();
  const project: ProjectRecord = {
    id: randomUUID(),
    name: `app-${id.slice(0, 8)}`,
    repoUrl: "git@gitlab.example.com:group/app.git",
    autoDeploy: { branches: ["*"], tags: true, mergeRequests: true },
    env: {},
    webhookSecret: `secret-${id}`,
    createdAt: now,
    updatedAt: now,
  };
  const version: VersionRecord = {
    id: randomUUID(),
    projectId: project.id,
    name: "main",
    ref: { type: "branch", name: "main" },
    state: "off",
    composeProject: `dockbot-${project.name}-main`,
    urls: [],
    ports: [],
    createdAt: now,
    updatedAt: now,
  };
  const op: OperationRecord = {
    id: randomUUID(),
    projectId: project.id,
    versionId: version.id,
    kind: "up",
    trigger: { source: "api" },
    status: "queued",
    queuedAt: now,
  };
  await store.createProject(project);
  await store.createVersion(version);
  await store.enqueueOperation(op);
  return { project, version, op };
}

function operationLog(
  bus: EventBus,
  operationId: string,
  options: { maxBatch?: number; flushIntervalMs?: number } = {},
): OperationLog {
  return new OperationLog({
    operationId,
    store,
    bus,
    secrets: [],
    maxBytes: 1_000_000_000,
    onStoreError: (error) => {
      throw error;
    },
    ...(options.maxBatch !== undefined ? { maxBatch: options.maxBatch } : {}),
    ...(options.flushIntervalMs !== undefined ? { flushIntervalMs: options.flushIntervalMs } : {}),
  });
}

/** Pause (ms) after writing line `seq`; 0: go on at once. */
type Pace = (seq: number) => number;

function every(lines: number, pauseMs: number): Pace {
  return (seq) => (seq % lines === 0 ? pauseMs : 0);
}

/** Writes lines 1..count, pausing now and then like a real command does. */
async function produce(
  log: OperationLog,
  count: number,
  text: (seq: number) => string = defaultText,
  pace: Pace = every(250, 1),
): Promise<void> {
  for (let seq = 1; seq <= count; seq++) {
    log.write("stdout", text(seq));
    const pause = pace(seq);
    if (pause > 0) await sleep(pause);
  }
  await log.close();
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-realtime-"));
  store = await openSqliteStore(path.join(dir, "dockbot.sqlite"));
  replicas = [];
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  for (const replica of replicas) await replica.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe("socket.io connections", () => {
  it("refuses a connection with a wrong or missing token with the error unauthorized", async () => {
    const replica = await startReplica(store, TOKEN);
    replicas.push(replica);
    await expect(connected(connect(replica.url, { token: "not-the-token" }))).rejects.toThrow(
      "unauthorized",
    );
    await expect(connected(connect(replica.url, { token: "" }))).rejects.toThrow("unauthorized");
    await expect(connected(connect(replica.url))).resolves.toBeUndefined();
  });

  it("refuses a browser whose Origin is another site, over WebSocket and over polling", async () => {
    const replica = await startReplica(store, TOKEN);
    replicas.push(replica);
    let connections = 0;
    replica.realtime.io.on("connection", () => (connections += 1));
    for (const transport of ["websocket", "polling"] as const) {
      await expect(
        connected(connect(replica.url, { origin: "https://evil.example", transport })),
      ).rejects.toThrow();
    }
    await expect(connected(connect(replica.url, { origin: "null" }))).rejects.toThrow();
    expect(connections).toBe(0);
  });

  it("accepts a browser from the same host or from DOCKBOT_PUBLIC_URL's host", async () => {
    const replica = await startReplica(store, TOKEN);
    replicas.push(replica);
    await expect(connected(connect(replica.url, { origin: replica.url }))).resolves.toBeUndefined();
    await expect(
      connected(connect(replica.url, { origin: PUBLIC_URL, transport: "polling" })),
    ).resolves.toBeUndefined();
  });

  it("answers a malformed or unknown subscription with an error ack", async () => {
    const replica = await startReplica(store, TOKEN);
    replicas.push(replica);
    const { op } = await seedOperation();
    const client = connect(replica.url);
    await connected(client);
    for (const bad of [
      { operationId: "" },
      { operationId: op.id, since: -1 },
      { operationId: op.id, since: 1.5 },
    ]) {
      expect(await subscribe(client, bad)).toMatchObject({
        ok: false,
        error: { code: "invalid_request" },
      });
    }
    expect(await subscribe(client, { operationId: randomUUID() })).toMatchObject({
      ok: false,
      error: { code: "not_found" },
    });
    expect(await subscribe(client, { operationId: op.id, since: 0 })).toEqual({ ok: true });
  });
});

describe("operation and version events", () => {
  it("sends operation.queued, started, finished and version.updated once each to a subscriber of everything", async () => {
    const replica = await startReplica(store, TOKEN);
    replicas.push(replica);
    const { version, op } = await seedOperation();
    const all = connect(replica.url);
    const other = connect(replica.url);
    await Promise.all([connected(all), connected(other)]);
    const seen: string[] = [];
    all.onAny((event: string, payload: { id?: string; status?: string; state?: string }) => {
      seen.push(
        `${event} ${payload.id === op.id || payload.id === version.id ? "ok" : "?"} ${payload.status ?? payload.state ?? ""}`,
      );
    });
    const otherSeen: string[] = [];
    other.onAny((event: string) => otherSeen.push(event));
    expect(await subscribe(all, {})).toEqual({ ok: true });
    // Joining several rooms the events go to must not double them.
    expect(await subscribe(all, { versionId: version.id })).toEqual({ ok: true });
    expect(await subscribe(other, { projectId: randomUUID() })).toMatchObject({ ok: false });

    replica.bus.emit("operation.queued", op);
    const started = await store.updateOperation(op.id, {
      status: "running",
      startedAt: new Date().toISOString(),
    });
    if (!started) throw new Error("operation vanished");
    replica.bus.emit("operation.started", started);
    const deploying = await store.updateVersion(version.id, { state: "running" });
    if (!deploying) throw new Error("version vanished");
    replica.bus.emit("version.updated", deploying);
    const finished = await store.updateOperation(op.id, {
      status: "succeeded",
      finishedAt: new Date().toISOString(),
    });
    if (!finished) throw new Error("operation vanished");
    replica.bus.emit("operation.finished", finished);

    await waitFor("four events", () => seen.length >= 4);
    await sleep(100);
    expect(seen).toEqual([
      "operation.queued ok queued",
      "operation.started ok running",
      "version.updated ok running",
      "operation.finished ok succeeded",
    ]);
    expect(otherSeen).toEqual([]);
  });

  // A version or project subscriber gets the lines too (realtime-scopes.test.ts); one of
  // everything gets events only.
  it("sends operation events to a subscriber of the operation without its log lines to others", async () => {
    const replica = await startReplica(store, TOKEN);
    replicas.push(replica);
    const { op } = await seedOperation();
    const watcher = connect(replica.url);
    const allWatcher = connect(replica.url);
    await Promise.all([connected(watcher), connected(allWatcher)]);
    const follow = followLog(watcher, op.id);
    const versionEvents: string[] = [];
    allWatcher.onAny((event: string) => versionEvents.push(event));
    expect(await subscribe(allWatcher, {})).toEqual({ ok: true });
    await waitFor("the follow", () => replica.realtime.stats().follows === 1);

    const log = operationLog(replica.bus, op.id);
    replica.bus.emit("operation.started", op);
    await produce(log, 50);
    await settle(() => follow.state.lines.length >= 50);
    expectExactly(follow.state.lines, 1, 50, defaultText);
    expect(versionEvents).toEqual(["operation.started"]);
  });
  it("stops sending an operation's events and lines after unsubscribe", async () => {
    const replica = await startReplica(store, TOKEN);
    replicas.push(replica);
    const { op } = await seedOperation();
    const client = connect(replica.url);
    const follow = followLog(client, op.id);
    const events: string[] = [];
    client.on("operation.finished", (o) => events.push(o.status));
    await waitFor("the follow", () => replica.realtime.stats().follows === 1);
    const log = operationLog(replica.bus, op.id);
    for (let seq = 1; seq <= 10; seq++) log.write("stdout", defaultText(seq));
    await log.flush();
    await settle(() => follow.state.lines.length >= 10);

    const ack = await new Promise<SubscribeAck>((resolve) =>
      client.emit("unsubscribe", { operationId: op.id }, resolve),
    );
    expect(ack).toEqual({ ok: true });
    expect(replica.realtime.stats().follows).toBe(0);
    for (let seq = 11; seq <= 20; seq++) log.write("stdout", defaultText(seq));
    await log.close();
    replica.bus.emit("operation.finished", { ...op, status: "succeeded" });
    await sleep(200);
    expectExactly(follow.state.lines, 1, 10, defaultText);
    expect(events).toEqual([]);
  });
});

describe("operation.log streams", () => {
  it("delivers 20,000 lines exactly once and in order to a client that drops its connection mid-way and resubscribes with since", async () => {
    const replica = await startReplica(store, TOKEN);
    replicas.push(replica);
    const { op } = await seedOperation();
    const client = connect(replica.url, { reconnection: true });
    const follow = followLog(client, op.id);
    await waitFor("the follow", () => replica.realtime.stats().follows === 1);

    const total = 20_000;
    const log = operationLog(replica.bus, op.id);
    let producedAtDrop = -1;
    client.on("operation.log", (line) => {
      if (line.seq === 5_000 && producedAtDrop < 0) {
        producedAtDrop = log.lastSeq;
        // A network drop: the manager reconnects on its own, the client resubscribes with since.
        client.io.engine.close();
      }
    });
    await produce(log, total);
    await settle(() => follow.state.lines.length >= total && follow.state.connects >= 2);

    expect(producedAtDrop).toBeGreaterThan(0);
    expect(producedAtDrop).toBeLessThan(total);
    expect(follow.state.connects).toBe(2);
    expectExactly(follow.state.lines, 1, total, defaultText);
  });

  it("replays the whole log of a finished operation to a late subscriber, and only the lines after since", async () => {
    const replica = await startReplica(store, TOKEN);
    replicas.push(replica);
    const { op } = await seedOperation();
    await produce(operationLog(replica.bus, op.id), 3_000);
    await store.updateOperation(op.id, {
      status: "succeeded",
      finishedAt: new Date().toISOString(),
    });

    const late = connect(replica.url);
    const whole = followLog(late, op.id);
    const resumed = connect(replica.url);
    const tail = followLog(resumed, op.id, 1_234);
    await settle(() => whole.state.lines.length >= 3_000 && tail.state.lines.length >= 1_766);
    expectExactly(whole.state.lines, 1, 3_000, defaultText);
    expectExactly(tail.state.lines, 1_235, 3_000, defaultText);
  });

  // An in-process SQLite read is instant and synchronous, so live lines would never reach a
  // follow while it replays; a networked store (MongoDB) is not. These wrappers around the real
  // store delay the replay's reads both ways: reading after a pause (the read then also holds
  // lines announced meanwhile: a repeat unless deduplicated) and answering after a pause (the
  // read misses lines announced meanwhile: a gap unless they were buffered).
  it.each([
    ["reads the store late", "read-late"],
    ["answers from the store late", "answer-late"],
  ] as const)(
    "joins replay and live lines without a gap or a repeat for clients subscribing mid-run when the store %s",
    async (_label, mode) => {
      const replica = await startReplica(withSlowLogReads(store, mode), TOKEN);
      replicas.push(replica);
      const { op } = await seedOperation();
      const log = operationLog(replica.bus, op.id, { maxBatch: 100 });
      const total = 10_000;
      const subscribers: Array<ReturnType<typeof followLog>> = [];
      // Slow enough that each replay catches up while lines are still being written.
      const producing = produce(log, total, defaultText, every(20, 2));
      // Subscribers arrive at different points of the run, each one mid-stream.
      for (const at of [500, 2_000, 4_000, 7_000]) {
        await waitFor(`line ${at}`, () => log.lastSeq >= at);
        subscribers.push(followLog(connect(replica.url), op.id));
      }
      await producing;
      await settle(() => subscribers.every((s) => s.state.lines.length >= total));
      for (const s of subscribers) expectExactly(s.state.lines, 1, total, defaultText);
    },
  );

  it("reads the store again when live lines overflowed the buffer while a replay read was pending", async () => {
    const limit = 100;
    const held = withHeldLogReads(store);
    const replica = await startReplica(held.store, TOKEN, { maxBufferedLines: limit });
    replicas.push(replica);
    const { op } = await seedOperation();
    const log = operationLog(replica.bus, op.id);
    const write = async (from: number, to: number) => {
      for (let seq = from; seq <= to; seq++) log.write("stdout", defaultText(seq));
      await log.flush();
    };
    await write(1, 10);
    held.holdNextRead();
    const follow = followLog(connect(replica.url), op.id);
    await held.reading;
    // The replay's read holds lines 1..10; 150 more are stored and announced before it answers:
    // more than the buffer takes, so they are dropped and must be read from the store.
    await write(11, 160);
    held.release();
    await waitFor("the replay to catch up", () => follow.state.lines.length >= 160, 5_000).catch(
      () => undefined,
    );
    await write(161, 165);
    await log.close();
    await settle(() => follow.state.lines.length >= 165);
    expectExactly(follow.state.lines, 1, 165, defaultText);
    expect(follow.state.resubscribes).toEqual([]);
  });

  it("drops live lines that pile up during a replay, reads them from the store instead, and still loses none", async () => {
    // Bursts of 400 lines (over the limit: one arriving during a replay overflows the buffer)
    // alternate with bursts of 50 (under it: a live follow takes them), each its own batch.
    const limit = 300;
    const replica = await startReplica(withSlowLogReads(store, "answer-late", 40), TOKEN, {
      maxBufferedLines: limit,
    });
    replicas.push(replica);
    const { op } = await seedOperation();
    const log = operationLog(replica.bus, op.id, { flushIntervalMs: 1 });
    const total = 9_000;
    const producing = produce(log, total, defaultText, (seq) =>
      seq % 450 === 400 || seq % 450 === 0 ? 60 : 0,
    );
    const subscribers: Array<ReturnType<typeof followLog>> = [];
    for (const at of [1_000, 2_000, 3_000, 4_000, 5_000]) {
      await waitFor(`line ${at}`, () => log.lastSeq >= at);
      subscribers.push(followLog(connect(replica.url), op.id));
    }
    await producing;
    await settle(() => subscribers.every((s) => s.state.lines.length >= total));
    for (const s of subscribers) expectExactly(s.state.lines, 1, total, defaultText);
    expect(replica.realtime.stats().maxWaitingLines).toBeLessThanOrEqual(limit);
  });

  it("tells a client that stopped reading to resubscribe, keeps the lines waiting for it under the limit, and loses no line", async () => {
    const limit = 1_000;
    const replica = await startReplica(store, TOKEN, { maxBufferedLines: limit });
    replicas.push(replica);
    const { op } = await seedOperation();
    const client = connect(replica.url);
    const follow = followLog(client, op.id);
    await connected(client);
    await waitFor("the follow", () => replica.realtime.stats().follows === 1);

    // Big lines, so the loopback TCP buffers fill and the server has to hold lines itself.
    const pad = "x".repeat(8_000);
    const text = (seq: number) => `line ${seq} ${pad}`;
    const total = 12_000;
    const log = operationLog(replica.bus, op.id, { maxBatch: 100 });
    const ws = (client.io.engine.transport as unknown as { ws: { pause(): void; resume(): void } })
      .ws;
    let paused = false;
    client.on("operation.log", (line) => {
      if (line.seq === 200 && !paused) {
        paused = true;
        ws.pause();
      }
    });

    // The producer (the runner) finishes while the client reads nothing at all.
    await produce(log, total, text);
    expect(paused).toBe(true);
    await waitFor("the resubscribe", () => replica.realtime.stats().resubscribesSent >= 1);
    const serverSocket = [...replica.realtime.io.sockets.sockets.values()][0];
    const engineBuffer = (serverSocket?.conn as unknown as { writeBuffer: unknown[] }).writeBuffer;
    expect(engineBuffer.length).toBeLessThanOrEqual(limit);
    expect(replica.realtime.stats().maxWaitingLines).toBeLessThanOrEqual(limit);
    expect(follow.state.lines.length).toBeLessThan(total);

    ws.resume();
    await settle(() => follow.state.lines.length >= total, 60_000);
    expect(follow.state.resubscribes.length).toBeGreaterThanOrEqual(1);
    // The server's `since` is exactly where the client stands: every line before it arrived.
    for (const r of follow.state.resubscribes) expect(r.since).toBe(r.lastSeen);
    expectExactly(follow.state.lines, 1, total, text);
    expect(replica.realtime.stats().maxWaitingLines).toBeLessThanOrEqual(limit);
  });
});

const redisCheck = (await tcpOpen(REDIS_PORT))
  ? { ok: true, reason: "" }
  : {
      ok: false,
      reason: `no redis-server on 127.0.0.1:${REDIS_PORT} (run scripts/services/redis.sh)`,
    };

describeWithServices([redisCheck], "several replicas sharing Redis", () => {
  it("delivers lines written on replica B to clients on A and B exactly once, and room events to both", async () => {
    const redisUrl = `redis://127.0.0.1:${REDIS_PORT}`;
    const a = await startReplica(store, TOKEN, { redisUrl });
    replicas.push(a);
    const b = await startReplica(store, TOKEN, { redisUrl });
    replicas.push(b);
    const { op } = await seedOperation();

    const onA = connect(a.url);
    const onB = connect(b.url);
    const followA = followLog(onA, op.id);
    const followB = followLog(onB, op.id);
    await waitFor(
      "both follows",
      () => a.realtime.stats().follows === 1 && b.realtime.stats().follows === 1,
    );
    const startedOnA: string[] = [];
    const startedOnB: string[] = [];
    onA.on("operation.started", (o) => startedOnA.push(o.id));
    onB.on("operation.started", (o) => startedOnB.push(o.id));
    expect(await subscribe(onA, {})).toEqual({ ok: true });
    expect(await subscribe(onB, {})).toEqual({ ok: true });

    b.bus.emit("operation.started", op);
    const total = 5_000;
    await produce(operationLog(b.bus, op.id), total);
    await settle(() => followA.state.lines.length >= total && followB.state.lines.length >= total);
    expectExactly(followA.state.lines, 1, total, defaultText);
    expectExactly(followB.state.lines, 1, total, defaultText);
    expect(startedOnA).toEqual([op.id]);
    expect(startedOnB).toEqual([op.id]);
  });

  it("replays and then streams across replicas when a client on A subscribes mid-run to an operation running on B", async () => {
    const redisUrl = `redis://127.0.0.1:${REDIS_PORT}`;
    const a = await startReplica(store, TOKEN, { redisUrl });
    replicas.push(a);
    const b = await startReplica(store, TOKEN, { redisUrl });
    replicas.push(b);
    const { op } = await seedOperation();
    const log = operationLog(b.bus, op.id, { maxBatch: 100 });
    const total = 8_000;
    const producing = produce(log, total);
    await waitFor("line 3000", () => log.lastSeq >= 3_000);
    const follow = followLog(connect(a.url), op.id);
    await producing;
    await settle(() => follow.state.lines.length >= total);
    expectExactly(follow.state.lines, 1, total, defaultText);
  });
});
