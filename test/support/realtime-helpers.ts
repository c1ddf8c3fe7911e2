// Helpers shared by the Socket.io tests: a server to connect to, waiting, connecting, and
// checking a received log.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import type { Socket } from "socket.io-client";
import { expect } from "vitest";
import { EventBus } from "../../src/deploy/events.js";
import { adminToken } from "../../src/http/admin-token.js";
import { attachSocketServer, type AttachedSocketServer } from "../../src/realtime/socket-server.js";
import type { Store } from "../../src/store/store.js";

export const PUBLIC_URL = "https://dockbot.example.com";

/** A real http server on 127.0.0.1, port 0, with dockbot's Socket.io attached. */
export interface Replica {
  url: string;
  port: number;
  bus: EventBus;
  realtime: AttachedSocketServer;
  close(): Promise<void>;
}

export async function startReplica(
  store: Store,
  token: string,
  options: { maxBufferedLines?: number; redisUrl?: string; bus?: EventBus } = {},
): Promise<Replica> {
  const bus = options.bus ?? new EventBus();
  const server = http.createServer((_req, res) => {
    res.writeHead(404).end();
  });
  const realtime = attachSocketServer(server, {
    bus,
    store,
    token: await adminToken(store, token),
    logger: pino({ level: "silent" }),
    publicUrl: PUBLIC_URL,
    ...(options.redisUrl !== undefined ? { redisUrl: options.redisUrl } : {}),
    ...(options.maxBufferedLines !== undefined
      ? { maxBufferedLines: options.maxBufferedLines }
      : {}),
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  await realtime.ready;
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    bus,
    realtime,
    async close() {
      await realtime.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for a condition; throws when it does not come in time. */
export async function waitFor(
  what: string,
  condition: () => boolean,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * Waits up to `timeoutMs` for lines to arrive, then returns either way: a gap or a repeat then
 * fails in expectExactly, which says where.
 */
export async function settle(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  await waitFor("lines", condition, timeoutMs).catch(() => undefined);
  await sleep(200);
}

/** Resolves on connect, rejects with the connect_error. */
export function connected(client: Pick<Socket, "once">): Promise<void> {
  return new Promise((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("connect_error", (error: Error) => reject(error));
  });
}

export function defaultText(seq: number): string {
  return `line ${seq}`;
}

/** The lines are exactly seq `from`..`to`, in order, each with its expected text. */
export function expectExactly(
  lines: Array<{ seq: number; text: string }>,
  from: number,
  to: number,
  text: (seq: number) => string = defaultText,
): void {
  const seqs = lines.map((l) => l.seq);
  const firstWrong = seqs.findIndex((seq, i) => seq !== from + i);
  expect({
    count: lines.length,
    firstWrong,
    firstWrongSeq: firstWrong >= 0 ? seqs[firstWrong] : undefined,
  }).toEqual({ count: to - from + 1, firstWrong: -1, firstWrongSeq: undefined });
  expect(lines.find((l) => l.text !== text(l.seq))).toBeUndefined();
}

/**
 * The real store, with the log reads replay makes delayed. An in-process SQLite read is instant
 * and synchronous, so live lines would never reach a follow while it replays; a networked store
 * (MongoDB) is not. "read-late" reads after a pause (the read then also holds lines announced
 * meanwhile: a repeat unless deduplicated); "answer-late" answers after a pause (the read misses
 * lines announced meanwhile: a gap unless they were buffered).
 */
export function withSlowLogReads(
  inner: Store,
  mode: "read-late" | "answer-late",
  delayMs = 15,
): Store {
  const getLogLines: Store["getLogLines"] = async (operationId, afterSeq, limit) => {
    if (mode === "read-late") {
      await sleep(delayMs);
      return inner.getLogLines(operationId, afterSeq, limit);
    }
    const lines = await inner.getLogLines(operationId, afterSeq, limit);
    await sleep(delayMs);
    return lines;
  };
  return new Proxy(inner, {
    get(target, property) {
      if (property === "getLogLines") return getLogLines;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function"
        ? (value as (...args: unknown[]) => unknown).bind(target)
        : value;
    },
  });
}
