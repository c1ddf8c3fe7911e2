// Several replicas behind one address share Socket.io through Redis (DOCKBOT_REDIS_URL).
// - Room broadcasts (operation and version events) go to every replica through the Redis
//   adapter; each replica broadcasts only what its own bus announced, so nothing is sent twice.
// - Log lines and the starts and ends of operations are not room broadcasts: a replica's bus only
//   sees what its own runner does, so each is also sent to the other replicas with the adapter's
//   `serverSideEmit` (Redis pub/sub, in order per publisher), where it enters the same follows as
//   local ones (log-hub.ts, scope-follows.ts). A remote batch arrives only after its lines were
//   stored, so the replay seam (log-follow.ts) holds across processes with a shared store
//   (MongoDB). Per-socket dedupe by seq applies on the receiving replica.
import { randomUUID } from "node:crypto";
import { createAdapter } from "@socket.io/redis-adapter";
import type { Logger } from "pino";
import { createClient } from "redis";
import type { LogLine } from "../store/types.js";
import type { OperationScope, RealtimeServer } from "./protocol.js";

/** Remote batches are split so one Redis message stays well under its pub/sub buffer limits. */
const REMOTE_CHUNK_CHARS = 512 * 1024;
const REDIS_CONNECT_TIMEOUT_MS = 10_000;

export interface ReplicaLink {
  /** Resolves when the server may take connections (at once without Redis; once Redis answers). */
  ready: Promise<void>;
  /** Tells the other replicas (nothing without Redis). */
  sendLines(lines: LogLine[]): void;
  sendStarted(op: OperationScope): void;
  sendFinished(op: OperationScope): void;
  /** Leaves Redis. Call after this replica's sockets are disconnected. */
  close(): Promise<void>;
}

function chunkForRemote(lines: LogLine[]): LogLine[][] {
  const chunks: LogLine[][] = [];
  let current: LogLine[] = [];
  let chars = 0;
  for (const line of lines) {
    const size = line.text.length + 100;
    if (current.length > 0 && chars + size > REMOTE_CHUNK_CHARS) {
      chunks.push(current);
      current = [];
      chars = 0;
    }
    current.push(line);
    chars += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Swaps in the Redis adapter when `redisUrl` is set; the events from others go to `io.on`. */
export function linkReplicas(
  io: RealtimeServer,
  redisUrl: string | undefined,
  logger: Logger,
): ReplicaLink {
  if (redisUrl === undefined) {
    return {
      ready: Promise.resolve(),
      sendLines: () => undefined,
      sendStarted: () => undefined,
      sendFinished: () => undefined,
      async close() {
        await io.of("/").adapter.close();
      },
    };
  }
  // Connect both clients, then swap in the adapter before any socket can join a room.
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  // Without an "error" listener a lost Redis connection would crash the process; node-redis
  // reconnects on its own and queues commands meanwhile.
  pub.on("error", (error: unknown) => logger.error({ err: error }, "redis client error"));
  sub.on("error", (error: unknown) => logger.error({ err: error }, "redis subscriber error"));
  const ready = (async () => {
    await withTimeout(
      Promise.all([pub.connect(), sub.connect()]),
      REDIS_CONNECT_TIMEOUT_MS,
      "redis",
    );
    io.adapter(createAdapter(pub, sub));
    // Commands on one connection run in order: once this subscribe is answered, the adapter's
    // own subscriptions (sent before it) are active, so no broadcast published after `ready` is
    // missed.
    const barrier = `dockbot:ready:${randomUUID()}`;
    await sub.subscribe(barrier, () => undefined);
    await sub.unsubscribe(barrier);
    logger.info("socket.io uses the redis adapter");
  })();
  ready.catch((error: unknown) =>
    logger.error({ err: error }, "socket.io redis adapter unavailable"),
  );
  return {
    ready,
    sendLines(lines) {
      for (const chunk of chunkForRemote(lines)) io.serverSideEmit("operation.log", chunk);
    },
    sendStarted(op) {
      io.serverSideEmit("operation.started", op);
    },
    sendFinished(op) {
      io.serverSideEmit("operation.finished", op);
    },
    async close() {
      const redisReady = await ready.then(
        () => true,
        () => false,
      );
      await io.of("/").adapter.close();
      await Promise.all(
        [pub, sub].map(async (client) => {
          // A client that never connected may still be retrying: stop it outright.
          if (redisReady && client.isOpen) await client.close();
          else if (client.isOpen) client.destroy();
        }),
      );
    },
  };
}
