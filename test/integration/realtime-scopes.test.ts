// Version and project subscriptions carry log lines (docs/api.md, "Socket.io"): every operation of
// the version or project that runs while a client is subscribed, each from its line 1, with the
// guarantees of an operation subscription (no gap, no repeat, resubscribe, batches, replicas).
// End to end: a real http server on port 0 with attachSocketServer, the real socket.io-client, a
// real SQLite store, a real EventBus, and OperationLog writing the lines as the runner does
// (operation stored running, then announced; lines; log closed; stored finished, then announced).
// The Redis suite runs two servers (two "replicas") against the redis-server of
// scripts/services/redis.sh.
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { io as connectClient, type Socket as ClientSocket } from "socket.io-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { EventBus } from "../../src/deploy/events.js";
import { OperationLog } from "../../src/deploy/operation-log.js";
import type {
  ClientToServerEvents,
  ResubscribeEvent,
  ServerToClientEvents,
  SubscribeAck,
  SubscribeRequest,
} from "../../src/realtime/socket-server.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import type { OperationRecord } from "../../src/store/types.js";
import {
  connected,
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
type Scope = { versionId: string } | { projectId: string };

const TOKEN = "realtime-scopes-test-token-3b7d90";
const REDIS_PORT = Number(process.env.DOCKBOT_TEST_REDIS_PORT ?? 6380);

let dir: string;
let store: Store;
const replicas: Replica[] = [];
const clients: Client[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-realtime-scopes-"));
  store = await openSqliteStore(path.join(dir, "dockbot.sqlite"));
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  for (const replica of replicas.splice(0)) await replica.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(
  options: Parameters<typeof startReplica>[2] & { store?: Store } = {},
): Promise<Replica> {
  const replica = await startReplica(options.store ?? store, TOKEN, options);
  replicas.push(replica);
  return replica;
}

function connect(url: string, reconnection = false): Client {
  const client: Client = connectClient(url, {
    path: "/socket.io",
    auth: { token: TOKEN },
    transports: ["websocket"],
    forceNew: true,
    reconnection,
    reconnectionDelay: 50,
    reconnectionDelayMax: 200,
  });
  clients.push(client);
  return client;
}

function subscribe(client: Client, request: SubscribeRequest): Promise<SubscribeAck> {
  return new Promise((resolve) => client.emit("subscribe", request, resolve));
}

/** A project with versions of these names, as the API would store them. */
async function seedProject(versionNames: string[] = ["main"]) {
  const now = new Date().toISOString();
  const name = `scopes-${randomUUID().slice(0, 8)}`;
  const projectId = randomUUID();
  await store.createProject({
    id: projectId,
    name,
    repoUrl: "git@gitlab.example.com:group/app.git",
    autoDeploy: { branches: ["*"], tags: true, mergeRequests: true },
    env: {},
    webhookSecret: `secret-${name}`,
    createdAt: now,
    updatedAt: now,
  });
  const versionIds: string[] = [];
  for (const versionName of versionNames) {
    const version = {
      id: randomUUID(),
      projectId,
      name: versionName,
      ref: { type: "branch" as const, name: versionName },
      state: "off" as const,
      composeProject: `dockbot-${name}-${versionName}`,
      urls: [],
      ports: [],
      createdAt: now,
      updatedAt: now,
    };
    await store.createVersion(version);
    versionIds.push(version.id);
  }
  return { projectId, versionIds };
}

/** Per-operation text, so a line of one operation can never pass for another's. */
const textOf = (tag: string) => (seq: number) => `${tag} line ${seq}`;

interface RunningOperation {
  op: OperationRecord;
  log: OperationLog;
  text: (seq: number) => string;
  /** Writes lines up to `to`, pausing `pauseMs` every `every` lines, as a command's output comes. */
  write(to: number, pace?: { every: number; pauseMs: number }): Promise<void>;
  /** Closes the log, stores the operation succeeded, then announces it (as the runner does). */
  finish(): Promise<void>;
}

/** Stores an operation of the version running and announces it, as the runner does. */
async function startOperation(
  bus: EventBus,
  versionId: string,
  tag: string,
  logOptions: { maxBatch?: number } = {},
): Promise<RunningOperation> {
  const version = await store.getVersion(versionId);
  if (!version) throw new Error("no such version");
  const now = new Date().toISOString();
  const queued: OperationRecord = {
    id: randomUUID(),
    projectId: version.projectId,
    versionId,
    kind: "up",
    trigger: { source: "api" },
    status: "queued",
    queuedAt: now,
  };
  await store.enqueueOperation(queued);
  const op = await store.updateOperation(queued.id, { status: "running", startedAt: now });
  if (!op) throw new Error("operation vanished");
  bus.emit("operation.started", op);
  const log = new OperationLog({
    operationId: op.id,
    store,
    bus,
    secrets: [],
    maxBytes: 1_000_000_000,
    onStoreError: (error) => {
      throw error;
    },
    ...logOptions,
  });
  const text = textOf(tag);
  return {
    op,
    log,
    text,
    async write(to, pace = { every: 250, pauseMs: 1 }) {
      for (let seq = log.lastSeq + 1; seq <= to; seq++) {
        log.write("stdout", text(seq));
        if (seq % pace.every === 0) await sleep(pace.pauseMs);
      }
      await log.flush();
    },
    async finish() {
      await log.close();
      const finished = await store.updateOperation(op.id, {
        status: "succeeded",
        finishedAt: new Date().toISOString(),
      });
      if (!finished) throw new Error("operation vanished");
      bus.emit("operation.finished", finished);
    },
  };
}

/**
 * A viewer of a version or project, as docs/api.md asks of one: keeps every line of every
 * operation as it came (repeats included, so the test sees exactly what arrived), answers
 * `resubscribe` with `{operationId, since}`, and on a reconnect first resubscribes the operations
 * it was reading with `since` (waiting for their acks), then the scope.
 */
function watch(client: Client, scope: Scope, options: { batch?: boolean } = {}) {
  const batch = options.batch === true ? { batch: true } : {};
  const state = {
    lines: new Map<string, Array<{ seq: number; text: string }>>(),
    perLineEvents: 0,
    batchEvents: 0,
    events: [] as string[],
    resubscribes: [] as Array<ResubscribeEvent & { lastSeen: number }>,
    connects: 0,
    acks: [] as SubscribeAck[],
  };
  const linesOf = (operationId: string) => state.lines.get(operationId) ?? [];
  const lastSeq = (operationId: string) => linesOf(operationId).at(-1)?.seq ?? 0;
  const keep = (operationId: string, lines: Array<{ seq: number; text: string }>) => {
    let list = state.lines.get(operationId);
    if (!list) {
      list = [];
      state.lines.set(operationId, list);
    }
    for (const line of lines) list.push({ seq: line.seq, text: line.text });
  };
  client.on("operation.log", (line) => {
    state.perLineEvents += 1;
    keep(line.operationId, [line]);
  });
  client.on("operation.logs", (packet) => {
    state.batchEvents += 1;
    keep(packet.operationId, packet.lines);
  });
  for (const event of ["operation.started", "operation.finished"] as const) {
    client.on(event, (op) => state.events.push(`${event} ${op.id}`));
  }
  client.on("resubscribe", (request) => {
    state.resubscribes.push({ ...request, lastSeen: lastSeq(request.operationId) });
    client.emit("subscribe", {
      operationId: request.operationId,
      since: lastSeq(request.operationId),
      ...batch,
    });
  });
  const onConnect = async () => {
    state.connects += 1;
    for (const operationId of state.lines.keys()) {
      state.acks.push(
        await subscribe(client, { operationId, since: lastSeq(operationId), ...batch }),
      );
    }
    state.acks.push(await subscribe(client, { ...scope, ...batch }));
  };
  // "connect" fires on the first connection and on every reconnection.
  let latest: Promise<void> | undefined;
  const firstConnect = new Promise<void>((resolve) => client.once("connect", () => resolve()));
  client.on("connect", () => {
    latest = onConnect();
  });
  return {
    state,
    linesOf,
    /** The latest connection's subscriptions were acknowledged. */
    async subscribed() {
      await firstConnect;
      await latest;
    },
  };
}

describe("version and project subscriptions carry log lines", () => {
  it("sends a version subscriber lines 1..N of every operation of the version that runs while it is subscribed, once each and in order", async () => {
    const replica = await start();
    const { versionIds } = await seedProject(["main"]);
    const versionId = versionIds[0] ?? "";
    const viewer = watch(connect(replica.url), { versionId });
    await viewer.subscribed();
    expect(viewer.state.acks).toEqual([{ ok: true }]);

    const first = await startOperation(replica.bus, versionId, "first");
    await first.write(5_000);
    await first.finish();
    const second = await startOperation(replica.bus, versionId, "second");
    await second.write(2_000);
    await second.finish();

    await settle(
      () =>
        viewer.linesOf(first.op.id).length >= 5_000 && viewer.linesOf(second.op.id).length >= 2_000,
    );
    expectExactly(viewer.linesOf(first.op.id), 1, 5_000, first.text);
    expectExactly(viewer.linesOf(second.op.id), 1, 2_000, second.text);
    expect(viewer.state.events).toEqual([
      `operation.started ${first.op.id}`,
      `operation.finished ${first.op.id}`,
      `operation.started ${second.op.id}`,
      `operation.finished ${second.op.id}`,
    ]);
    // A version subscriber watching for days holds follows only for what runs now.
    await waitFor(
      "the finished operations' follows to close",
      () => {
        return replica.realtime.stats().follows === 0;
      },
      5_000,
    );
  });

  // An in-process SQLite read is instant, so live lines would never reach a follow while it
  // replays; the wrapper delays the replay's reads both ways (see realtime-helpers.ts).
  it.each([
    ["reads the store late", "read-late"],
    ["answers from the store late", "answer-late"],
  ] as const)(
    "gives version and project subscribers that join in the middle of a build that build's lines from 1, when the store %s",
    async (_label, mode) => {
      const replica = await start({ store: withSlowLogReads(store, mode) });
      const { projectId, versionIds } = await seedProject(["main"]);
      const versionId = versionIds[0] ?? "";
      const build = await startOperation(replica.bus, versionId, "build", { maxBatch: 100 });
      const total = 8_000;
      const viewers: Array<ReturnType<typeof watch>> = [];
      // Slow enough that each replay catches up while lines are still being written.
      const writing = build.write(total, { every: 20, pauseMs: 2 });
      for (const [at, scope] of [
        [500, { versionId }],
        [2_000, { projectId }],
        [4_000, { versionId }],
        [6_000, { projectId }],
      ] as const) {
        await waitFor(`line ${at}`, () => build.log.lastSeq >= at);
        viewers.push(watch(connect(replica.url), scope));
      }
      await writing;
      await build.finish();
      await settle(() => viewers.every((v) => v.linesOf(build.op.id).length >= total));
      for (const viewer of viewers) {
        expect(viewer.state.acks).toEqual([{ ok: true }]);
        expectExactly(viewer.linesOf(build.op.id), 1, total, build.text);
      }
    },
  );

  it("gives a project subscriber the lines of two versions' operations running at once, a version subscriber only its version's, and a subscriber of everything events only", async () => {
    const replica = await start();
    const { projectId, versionIds } = await seedProject(["main", "feature"]);
    const [mainId = "", featureId = ""] = versionIds;
    const other = await seedProject(["main"]);
    const project = watch(connect(replica.url), { projectId });
    const mainOnly = watch(connect(replica.url), { versionId: mainId });
    const otherProject = watch(connect(replica.url), { projectId: other.projectId });
    const everything = connect(replica.url);
    const everythingSeen: string[] = [];
    everything.onAny((event: string) => everythingSeen.push(event));
    await connected(everything);
    expect(await subscribe(everything, {})).toEqual({ ok: true });
    await Promise.all([project, mainOnly, otherProject].map((v) => v.subscribed()));

    const onMain = await startOperation(replica.bus, mainId, "main");
    const onFeature = await startOperation(replica.bus, featureId, "feature");
    // Interleaved, as two builds running side by side.
    for (let to = 500; to <= 4_000; to += 500) {
      await onMain.write(to);
      await onFeature.write(to - 250);
    }
    await onMain.finish();
    await onFeature.finish();

    await settle(
      () =>
        project.linesOf(onMain.op.id).length >= 4_000 &&
        project.linesOf(onFeature.op.id).length >= 3_750 &&
        mainOnly.linesOf(onMain.op.id).length >= 4_000,
    );
    expectExactly(project.linesOf(onMain.op.id), 1, 4_000, onMain.text);
    expectExactly(project.linesOf(onFeature.op.id), 1, 3_750, onFeature.text);
    expectExactly(mainOnly.linesOf(onMain.op.id), 1, 4_000, onMain.text);
    expect([...mainOnly.state.lines.keys()]).toEqual([onMain.op.id]);
    expect(otherProject.state.lines.size).toBe(0);
    expect(otherProject.state.events).toEqual([]);
    expect(everythingSeen.filter((e) => e === "operation.started")).toHaveLength(2);
    expect(everythingSeen.filter((e) => e === "operation.finished")).toHaveLength(2);
    expect(everythingSeen.filter((e) => e.startsWith("operation.log"))).toEqual([]);
  });

  it("sends each line once to a client subscribed to an operation and to its version, as the dashboard's operation page is", async () => {
    const replica = await start();
    const { versionIds } = await seedProject(["main"]);
    const versionId = versionIds[0] ?? "";
    const build = await startOperation(replica.bus, versionId, "build");
    await build.write(1_000);
    // The operation page: the operation from the lines it shows (here 300), then its version.
    const page = connect(replica.url);
    const lines: Array<{ seq: number; text: string }> = [];
    page.on("operation.log", (line) => lines.push(line));
    await connected(page);
    expect(await subscribe(page, { operationId: build.op.id, since: 300 })).toEqual({ ok: true });
    expect(await subscribe(page, { versionId })).toEqual({ ok: true });
    const versionOnly = watch(connect(replica.url), { versionId });
    await versionOnly.subscribed();
    await build.write(3_000);
    await build.finish();
    await settle(() => lines.length >= 2_700 && versionOnly.linesOf(build.op.id).length >= 3_000);
    expectExactly(lines, 301, 3_000, build.text);
    expectExactly(versionOnly.linesOf(build.op.id), 1, 3_000, build.text);
  });

  it("sends each line once to a client that subscribes to a version and then, with since 0, to its running operation", async () => {
    const replica = await start({ store: withSlowLogReads(store, "answer-late") });
    const { versionIds } = await seedProject(["main"]);
    const versionId = versionIds[0] ?? "";
    const build = await startOperation(replica.bus, versionId, "build", { maxBatch: 100 });
    await build.write(2_000);
    const writing = build.write(6_000, { every: 20, pauseMs: 2 });
    const client = connect(replica.url);
    const lines: Array<{ seq: number; text: string }> = [];
    client.on("operation.log", (line) => lines.push(line));
    await connected(client);
    // The version's follow of the build is replaying when the operation subscription comes.
    expect(await subscribe(client, { versionId })).toEqual({ ok: true });
    await waitFor("the first lines", () => lines.length > 0);
    expect(await subscribe(client, { operationId: build.op.id, since: 0 })).toEqual({ ok: true });
    await writing;
    await build.finish();
    await settle(() => lines.length >= 6_000);
    expectExactly(lines, 1, 6_000, build.text);
    // The follow became the operation subscription's: it stays after the operation ended.
    await sleep(100);
    expect(replica.realtime.stats().follows).toBe(1);
  });

  it("sends batches of consecutive lines and no per-line events to a version subscriber that asked for batch", async () => {
    const replica = await start();
    const { versionIds } = await seedProject(["main"]);
    const versionId = versionIds[0] ?? "";
    const build = await startOperation(replica.bus, versionId, "build");
    await build.write(3_000);
    const viewer = watch(connect(replica.url), { versionId }, { batch: true });
    await viewer.subscribed();
    await build.write(20_000);
    await build.finish();
    await settle(() => viewer.linesOf(build.op.id).length >= 20_000);
    expectExactly(viewer.linesOf(build.op.id), 1, 20_000, build.text);
    expect(viewer.state.perLineEvents).toBe(0);
    expect(viewer.state.batchEvents).toBeGreaterThan(0);
    expect(viewer.state.batchEvents).toBeLessThan(20_000 / 10);
  });

  it("loses and repeats no line when a version subscriber's connection drops in the middle of a build and it resubscribes", async () => {
    const replica = await start();
    const { versionIds } = await seedProject(["main"]);
    const versionId = versionIds[0] ?? "";
    const client = connect(replica.url, true);
    const viewer = watch(client, { versionId });
    await viewer.subscribed();
    const build = await startOperation(replica.bus, versionId, "build");
    const total = 20_000;
    let writtenAtDrop = -1;
    client.on("operation.log", (line) => {
      if (line.seq === 5_000 && writtenAtDrop < 0) {
        writtenAtDrop = build.log.lastSeq;
        client.io.engine.close(); // a network drop: the manager reconnects on its own
      }
    });
    await build.write(total);
    await build.finish();
    await settle(() => viewer.linesOf(build.op.id).length >= total && viewer.state.connects >= 2);
    expect(writtenAtDrop).toBeGreaterThan(0);
    expect(writtenAtDrop).toBeLessThan(total);
    expect(viewer.state.connects).toBe(2);
    expect(viewer.state.acks.every((ack) => ack.ok)).toBe(true);
    expectExactly(viewer.linesOf(build.op.id), 1, total, build.text);
  });

  it("tells a version subscriber that stopped reading to resubscribe the operation, keeps the lines waiting for it under the limit, and it catches up with no gap or repeat", async () => {
    const limit = 1_000;
    const replica = await start({ maxBufferedLines: limit });
    const { versionIds } = await seedProject(["main"]);
    const versionId = versionIds[0] ?? "";
    const client = connect(replica.url);
    const viewer = watch(client, { versionId });
    await viewer.subscribed();
    // Big lines, so the loopback TCP buffers fill and the server has to hold lines itself.
    const pad = "x".repeat(8_000);
    const build = await startOperation(replica.bus, versionId, `build ${pad}`, { maxBatch: 100 });
    const ws = (client.io.engine.transport as unknown as { ws: { pause(): void; resume(): void } })
      .ws;
    let paused = false;
    client.on("operation.log", (line) => {
      if (line.seq === 200 && !paused) {
        paused = true;
        ws.pause();
      }
    });
    const total = 12_000;
    await build.write(total);
    await build.finish();
    expect(paused).toBe(true);
    await waitFor("the resubscribe", () => replica.realtime.stats().resubscribesSent >= 1);
    expect(replica.realtime.stats().maxWaitingLines).toBeLessThanOrEqual(limit);
    expect(viewer.linesOf(build.op.id).length).toBeLessThan(total);

    ws.resume();
    await settle(() => viewer.linesOf(build.op.id).length >= total, 60_000);
    expect(viewer.state.resubscribes.length).toBeGreaterThanOrEqual(1);
    // The server's `since` is exactly where the client stands: every line before it arrived.
    for (const r of viewer.state.resubscribes) {
      expect(r.operationId).toBe(build.op.id);
      expect(r.since).toBe(r.lastSeen);
    }
    expectExactly(viewer.linesOf(build.op.id), 1, total, build.text);
    expect(replica.realtime.stats().maxWaitingLines).toBeLessThanOrEqual(limit);
  });

  it("stops a version subscriber's lines after unsubscribe and follows none of the version's next operations", async () => {
    const replica = await start();
    const { versionIds } = await seedProject(["main"]);
    const versionId = versionIds[0] ?? "";
    const client = connect(replica.url);
    const viewer = watch(client, { versionId });
    await viewer.subscribed();
    const build = await startOperation(replica.bus, versionId, "build");
    await build.write(100);
    await settle(() => viewer.linesOf(build.op.id).length >= 100);
    const ack = await new Promise<SubscribeAck>((resolve) =>
      client.emit("unsubscribe", { versionId }, resolve),
    );
    expect(ack).toEqual({ ok: true });
    expect(replica.realtime.stats().follows).toBe(0);
    await build.write(200);
    await build.finish();
    const next = await startOperation(replica.bus, versionId, "next");
    await next.write(100);
    await next.finish();
    await sleep(200);
    expectExactly(viewer.linesOf(build.op.id), 1, 100, build.text);
    expect([...viewer.state.lines.keys()]).toEqual([build.op.id]);
    expect(replica.realtime.stats().follows).toBe(0);
  });

  it("answers a version or project subscription that is malformed or names nothing with an error ack", async () => {
    const replica = await start();
    const { projectId, versionIds } = await seedProject(["main"]);
    const client = connect(replica.url);
    await connected(client);
    const ask = (request: unknown) => subscribe(client, request as SubscribeRequest);
    for (const bad of [
      { versionId: versionIds[0], batch: "yes" },
      { projectId, since: 3 },
      { versionId: versionIds[0], projectId },
    ]) {
      expect(await ask(bad)).toMatchObject({ ok: false, error: { code: "invalid_request" } });
    }
    expect(await ask({ versionId: randomUUID() })).toMatchObject({
      ok: false,
      error: { code: "not_found" },
    });
    expect(await ask({ projectId, batch: true })).toEqual({ ok: true });
  });
});

const redisCheck = (await tcpOpen(REDIS_PORT))
  ? { ok: true, reason: "" }
  : {
      ok: false,
      reason: `no redis-server on 127.0.0.1:${REDIS_PORT} (run scripts/services/redis.sh)`,
    };

describeWithServices([redisCheck], "version and project subscriptions across replicas", () => {
  it("streams an operation run on replica B to version and project subscribers on replica A, each line once, also to one joining mid-run", async () => {
    const redisUrl = `redis://127.0.0.1:${REDIS_PORT}`;
    const a = await start({ redisUrl });
    const b = await start({ redisUrl });
    const { projectId, versionIds } = await seedProject(["main"]);
    const versionId = versionIds[0] ?? "";
    const early = [
      watch(connect(a.url), { versionId }),
      watch(connect(a.url), { projectId }),
      watch(connect(b.url), { versionId }),
    ];
    await Promise.all(early.map((v) => v.subscribed()));

    const build = await startOperation(b.bus, versionId, "build", { maxBatch: 100 });
    const total = 8_000;
    const writing = build.write(total, { every: 20, pauseMs: 2 });
    await waitFor("line 3000", () => build.log.lastSeq >= 3_000);
    const late = watch(connect(a.url), { versionId });
    await writing;
    await build.finish();
    const viewers = [...early, late];
    await settle(() => viewers.every((v) => v.linesOf(build.op.id).length >= total));
    for (const viewer of viewers) expectExactly(viewer.linesOf(build.op.id), 1, total, build.text);
    expect(early[0]?.state.events).toEqual([
      `operation.started ${build.op.id}`,
      `operation.finished ${build.op.id}`,
    ]);
    // The end crossed over too: replica A closed the follows it opened for the operation.
    await waitFor("A's follows to close", () => a.realtime.stats().follows === 0, 5_000);
  });
});
