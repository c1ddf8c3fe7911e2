// Batched log delivery (`subscribe {operationId, since, batch: true}` -> `operation.logs`), end to
// end: a real http server on port 0 with attachSocketServer, the real socket.io-client, a real
// SQLite store, a real EventBus and OperationLog writing the lines. The batch mode must keep every
// guarantee of the per-line mode (no gap, no repeat, resubscribe for slow clients) and must not
// change what per-line subscribers of the same operation get.
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
  type LogBatchEvent,
  type LogLineEvent,
  type ResubscribeEvent,
  type ServerToClientEvents,
  type SubscribeAck,
} from "../../src/realtime/socket-server.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import type { OperationRecord } from "../../src/store/types.js";
import {
  connected,
  defaultText,
  expectExactly,
  settle,
  sleep,
  startReplica,
  waitFor,
  type Replica,
} from "../support/realtime-helpers.js";

type Client = ClientSocket<ServerToClientEvents, ClientToServerEvents>;

const TOKEN = "realtime-batch-test-token-9d2e41";

let dir: string;
let store: Store;
const closers: Array<() => Promise<void>> = [];
const clients: Client[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-realtime-batch-"));
  store = await openSqliteStore(path.join(dir, "dockbot.sqlite"));
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  for (const close of closers.splice(0)) await close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function startServer(options: { maxBufferedLines?: number } = {}): Promise<Replica> {
  const replica = await startReplica(store, TOKEN, options);
  closers.push(() => replica.close());
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

async function seedOperation(): Promise<OperationRecord> {
  const now = new Date().toISOString();
  const name = `app-${randomUUID().slice(0, 8)}`;
  const projectId = randomUUID();
  const versionId = randomUUID();
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
  await store.createVersion({
    id: versionId,
    projectId,
    name: "main",
    ref: { type: "branch", name: "main" },
    state: "off",
    composeProject: `dockbot-${name}-main`,
    urls: [],
    ports: [],
    createdAt: now,
    updatedAt: now,
  });
  const op: OperationRecord = {
    id: randomUUID(),
    projectId,
    versionId,
    kind: "up",
    trigger: { source: "api" },
    status: "queued",
    queuedAt: now,
  };
  await store.enqueueOperation(op);
  return op;
}

function operationLog(bus: EventBus, operationId: string, maxBatch?: number): OperationLog {
  return new OperationLog({
    operationId,
    store,
    bus,
    secrets: [],
    maxBytes: 1_000_000_000,
    onStoreError: (error) => {
      throw error;
    },
    ...(maxBatch !== undefined ? { maxBatch } : {}),
  });
}

/** Writes lines 1..count with a short pause every 250 lines, as a real command does. */
async function produce(
  log: OperationLog,
  count: number,
  text: (seq: number) => string = defaultText,
): Promise<void> {
  for (let seq = 1; seq <= count; seq++) {
    log.write("stdout", text(seq));
    if (seq % 250 === 0) await sleep(1);
  }
  await log.close();
}

/**
 * A log viewer in batch mode: subscribes with `since` = last seq seen and `batch: true` on every
 * (re)connect and every `resubscribe`. Keeps every batch as it came, and counts any per-line
 * `operation.log` event (a batch subscriber must get none).
 */
function followBatches(client: Client, operationId: string) {
  const state = {
    batches: [] as LogBatchEvent[],
    perLineEvents: 0,
    resubscribes: [] as Array<ResubscribeEvent & { lastSeen: number }>,
    connects: 0,
  };
  const lines = () => state.batches.flatMap((b) => b.lines);
  const lastSeq = () => state.batches.at(-1)?.lines.at(-1)?.seq ?? 0;
  let count = 0;
  client.on("operation.logs", (batch) => {
    if (batch.operationId !== operationId) return;
    state.batches.push(batch);
    count += batch.lines.length;
  });
  client.on("operation.log", () => {
    state.perLineEvents += 1;
  });
  client.on("resubscribe", (request) => {
    state.resubscribes.push({ ...request, lastSeen: lastSeq() });
    client.emit("subscribe", { operationId, since: lastSeq(), batch: true });
  });
  const onConnect = () => {
    state.connects += 1;
    client.emit("subscribe", { operationId, since: lastSeq(), batch: true });
  };
  client.on("connect", onConnect);
  if (client.connected) onConnect();
  return { state, lines, lastSeq, count: () => count };
}

/** A per-line viewer, as docs/api.md describes it. */
function followLines(client: Client, operationId: string) {
  const state = { lines: [] as LogLineEvent[], batchEvents: 0 };
  client.on("operation.log", (line) => {
    if (line.operationId === operationId) state.lines.push(line);
  });
  client.on("operation.logs", () => {
    state.batchEvents += 1;
  });
  const lastSeq = () => state.lines.at(-1)?.seq ?? 0;
  client.on("resubscribe", () => client.emit("subscribe", { operationId, since: lastSeq() }));
  client.on("connect", () => client.emit("subscribe", { operationId, since: lastSeq() }));
  return state;
}

/** Every seq from 1 to `to` once, in order, with the text the producer wrote. */
/** Each batch: consecutive seqs, within the line and size bounds. */
function expectWellFormedBatches(batches: LogBatchEvent[], maxLines: number): void {
  for (const batch of batches) {
    expect(batch.lines.length).toBeGreaterThan(0);
    expect(batch.lines.length).toBeLessThanOrEqual(maxLines);
    const first = batch.lines[0]?.seq ?? 0;
    expect(batch.lines.every((l, i) => l.seq === first + i)).toBe(true);
    const chars = batch.lines.reduce((n, l) => n + l.text.length + 32, 0);
    if (batch.lines.length > 1) expect(chars).toBeLessThanOrEqual(256 * 1024);
  }
}

describe("batched operation logs", () => {
  it("answers invalid_request when batch is not a boolean", async () => {
    const { url } = await startServer();
    const op = await seedOperation();
    const client = connect(url);
    await connected(client);
    const ask = (request: unknown) =>
      new Promise<SubscribeAck>((resolve) =>
        client.emit("subscribe", request as { operationId: string }, resolve),
      );
    expect(await ask({ operationId: op.id, batch: "yes" })).toMatchObject({
      ok: false,
      error: { code: "invalid_request" },
    });
    expect(await ask({ operationId: op.id, since: 0, batch: true })).toEqual({ ok: true });
  });

  it("delivers 20,000 lines as batches of consecutive seqs exactly once to a client that drops mid-way and resubscribes with since", async () => {
    const { url, bus, realtime } = await startServer();
    const op = await seedOperation();
    const client = connect(url, true);
    const follow = followBatches(client, op.id);
    await waitFor("the follow", () => realtime.stats().follows === 1);

    const total = 20_000;
    const log = operationLog(bus, op.id);
    let producedAtDrop = -1;
    client.on("operation.logs", (batch) => {
      if (producedAtDrop < 0 && (batch.lines.at(-1)?.seq ?? 0) >= 5_000) {
        producedAtDrop = log.lastSeq;
        client.io.engine.close(); // a network drop: the client reconnects and resubscribes
      }
    });
    await produce(log, total);
    await settle(() => follow.count() >= total && follow.state.connects >= 2);

    expect(producedAtDrop).toBeGreaterThan(0);
    expect(producedAtDrop).toBeLessThan(total);
    expect(follow.state.connects).toBe(2);
    expectExactly(follow.lines(), 1, total);
    expectWellFormedBatches(follow.state.batches, 1000);
    // Batches, not a line per packet: 20,000 lines in far fewer events.
    expect(follow.state.batches.length).toBeLessThan(total / 10);
    expect(follow.state.perLineEvents).toBe(0);
  });

  it("replays a finished operation's log to a late batch subscriber in batches of at most 1000 lines", async () => {
    const { url, bus } = await startServer();
    const op = await seedOperation();
    await produce(operationLog(bus, op.id), 5_000);
    const follow = followBatches(connect(url), op.id);
    await settle(() => follow.count() >= 5_000);
    expectExactly(follow.lines(), 1, 5_000);
    expectWellFormedBatches(follow.state.batches, 1000);
    expect(follow.state.perLineEvents).toBe(0);
  });

  it("tells a batch client that stopped reading to resubscribe, keeps the lines waiting for it under the limit, and it catches up with no gap or repeat", async () => {
    const limit = 1_000;
    const { url, bus, realtime } = await startServer({ maxBufferedLines: limit });
    const op = await seedOperation();
    const client = connect(url);
    const follow = followBatches(client, op.id);
    await connected(client);
    await waitFor("the follow", () => realtime.stats().follows === 1);

    // Big lines, so the loopback TCP buffers fill and the server has to hold lines itself.
    const pad = "x".repeat(8_000);
    const text = (seq: number) => `line ${seq} ${pad}`;
    const total = 12_000;
    const log = operationLog(bus, op.id, 100);
    const ws = (client.io.engine.transport as unknown as { ws: { pause(): void; resume(): void } })
      .ws;
    let paused = false;
    client.on("operation.logs", (batch) => {
      if (!paused && (batch.lines.at(-1)?.seq ?? 0) >= 200) {
        paused = true;
        ws.pause();
      }
    });

    await produce(log, total, text);
    expect(paused).toBe(true);
    await waitFor("the resubscribe", () => realtime.stats().resubscribesSent >= 1);
    // A batch follow judges its client by the lines already waiting when new ones arrive, so it
    // may hold one announcement's lines beyond the limit: here at most 300 (the producer pauses
    // every 250 lines, OperationLog stores them in batches of 100).
    const bound = limit + 300;
    expect(realtime.stats().maxWaitingLines).toBeLessThanOrEqual(bound);
    expect(follow.count()).toBeLessThan(total);

    ws.resume();
    await settle(() => follow.count() >= total, 60_000);
    expect(follow.state.resubscribes.length).toBeGreaterThanOrEqual(1);
    for (const r of follow.state.resubscribes) expect(r.since).toBe(r.lastSeen);
    expectExactly(follow.lines(), 1, total, text);
    expectWellFormedBatches(follow.state.batches, Math.floor(limit / 8));
    expect(realtime.stats().maxWaitingLines).toBeLessThanOrEqual(bound);
  });

  it("sends per-line subscribers of the same operation one operation.log per line and no batches, while batch subscribers in step get batches", async () => {
    const { url, bus, realtime } = await startServer();
    const op = await seedOperation();
    const perLine = [followLines(connect(url), op.id), followLines(connect(url), op.id)];
    const batched = [followBatches(connect(url), op.id), followBatches(connect(url), op.id)];
    await waitFor("four follows", () => realtime.stats().follows === 4);

    const total = 10_000;
    await produce(operationLog(bus, op.id), total);
    await settle(
      () =>
        batched.every((b) => b.count() >= total) && perLine.every((s) => s.lines.length >= total),
    );
    for (const state of perLine) {
      expectExactly(state.lines, 1, total);
      expect(state.lines.every((l) => l.operationId === op.id)).toBe(true);
      expect(state.batchEvents).toBe(0);
    }
    for (const b of batched) {
      expectExactly(b.lines(), 1, total);
      expectWellFormedBatches(b.state.batches, 1000);
      expect(b.state.perLineEvents).toBe(0);
    }
  });
});
