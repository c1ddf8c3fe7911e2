import { randomUUID } from "node:crypto";
import { MongoClient } from "mongodb";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openMongoStore } from "../../src/store/mongo-store.js";
import { StoreUnavailableError, type Store } from "../../src/store/store.js";
import type { OperationRecord } from "../../src/store/types.js";
import {
  checkMongo,
  mongoTestUrl,
  withDatabase,
  testDatabase,
  type TestDatabase,
} from "../support/mongo.js";
import { describeWithServices } from "../support/services.js";
import { describeStoreContract } from "../support/store-contract.js";
import { startTcpRelay } from "../support/tcp-relay.js";
import { freePort } from "../support/dockbot-process.js";

const mongo = await checkMongo();

describeWithServices([mongo], "mongodb store", () => {
  describeStoreContract("mongodb", async () => {
    const database = testDatabase();
    const url = database.url;
    const opened: Store[] = [];
    const open = async () => {
      const store = await openMongoStore(url, { connectTimeoutMs: 5000 });
      opened.push(store);
      return store;
    };
    return {
      store: await open(),
      reopen: open,
      cleanup: async () => {
        for (const store of opened) await store.close();
        await database.drop();
      },
    };
  });

  describe("replicas sharing one database", describeReplicas);
  describe("unreachable server", describeUnreachableServer);
});

function at(second: number): string {
  return new Date(Date.UTC(2024, 0, 1, 0, 0, 0) + second * 1000).toISOString();
}

function describeReplicas(): void {
  let database: TestDatabase;
  let a: Store;
  let b: Store;

  beforeEach(async () => {
    database = testDatabase();
    const url = database.url;
    // Two stores, two clients, two connection pools: as two dockbot replicas would be.
    a = await openMongoStore(url, { connectTimeoutMs: 5000 });
    b = await openMongoStore(url, { connectTimeoutMs: 5000 });
  });

  afterEach(async () => {
    await a.close();
    await b.close();
    await database.drop();
  });

  it("keeps its collections in the database named in the URL", async () => {
    await a.setSetting("instanceId", "replica-a");
    const client = new MongoClient(mongoTestUrl, { serverSelectionTimeoutMS: 5000 });
    try {
      const names = (await client.db(database.name).listCollections().toArray()).map((c) => c.name);
      expect(names).toEqual(expect.arrayContaining(["settings", "projects", "operations"]));
      expect(await client.db(database.name).collection("settings").countDocuments()).toBe(1);
    } finally {
      await client.close();
    }
  });

  it("never gives one operation, or two operations of one version, to two replicas claiming at once", async () => {
    const projectId = randomUUID();
    const versions = Array.from({ length: 5 }, () => randomUUID());
    const queued = new Map<string, string[]>();
    // Three queued operations per version, oldest first. Enqueueing supersedes the older
    // ones, so they are put back in the queue the way crash recovery does it.
    let second = 0;
    for (const versionId of versions) {
      const opIds: string[] = [];
      for (let i = 0; i < 3; i++) {
        const op: OperationRecord = {
          id: randomUUID(),
          projectId,
          versionId,
          kind: "up",
          trigger: { source: "api" },
          status: "queued",
          queuedAt: at(second++),
        };
        await (i % 2 === 0 ? a : b).enqueueOperation(op);
        opIds.push(op.id);
      }
      for (const id of opIds) await a.updateOperation(id, { status: "queued" });
      queued.set(versionId, opIds);
    }

    const everClaimed: string[] = [];
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          (i % 2 === 0 ? a : b).claimOperation({
            owner: `replica-${i % 2 === 0 ? "a" : "b"}-${i}`,
            leaseUntil: at(1000),
            now: at(100 + round),
          }),
        ),
      );
      const claimed = results.filter((r): r is OperationRecord => r !== undefined);

      // One per version, and each the version's oldest still queued: serial order holds.
      expect(claimed.map((op) => op.versionId).sort()).toStrictEqual([...versions].sort());
      for (const op of claimed) expect(op.id).toBe(queued.get(op.versionId)?.[round]);
      const running = await b.listOperations({ status: ["running"] });
      expect(running.map((op) => op.id).sort()).toStrictEqual(claimed.map((op) => op.id).sort());
      for (const op of claimed) {
        expect((await a.getOperation(op.id))?.owner).toBe(op.owner);
      }
      everClaimed.push(...claimed.map((op) => op.id));

      // Finish them through the other replica's store: its versions' next ones become free.
      for (const [i, op] of claimed.entries()) {
        const finished = await (i % 2 === 0 ? b : a).updateOperation(
          op.id,
          { status: "succeeded", finishedAt: at(200 + round) },
          { ifStatus: ["running"], ifOwner: op.owner ?? "" },
        );
        expect(finished?.status).toBe("succeeded");
      }
    }

    expect(new Set(everClaimed).size).toBe(15);
    expect(
      await a.claimOperation({ owner: "replica-a", leaseUntil: at(1000), now: at(300) }),
    ).toBeUndefined();
  });
}

function describeUnreachableServer(): void {
  it("rejects opening with StoreUnavailableError when nothing listens at the URL", async () => {
    const port = await freePort();
    const started = Date.now();
    await expect(
      openMongoStore(`mongodb://127.0.0.1:${port}/dockbot?serverSelectionTimeoutMS=500`, {
        connectTimeoutMs: 500,
      }),
    ).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("rejects ping with StoreUnavailableError once the server becomes unreachable", async () => {
    const database = testDatabase();
    // The first host of the test URL, reached through the relay; credentials and options kept.
    const hosts = /^mongodb:\/\/(?:[^@/]*@)?([^/?,]*)/.exec(mongoTestUrl)?.[1] ?? "";
    const target = new URL(`mongodb://${hosts}/`);
    const proxy = await startTcpRelay(target.hostname, Number(target.port || 27017));
    const viaProxy = mongoTestUrl.replace(
      /^(mongodb:\/\/(?:[^@/]*@)?)[^/?]*/,
      (_all, prefix: string) => `${prefix}127.0.0.1:${proxy.port}`,
    );
    const store = await openMongoStore(
      withDatabase(
        `${viaProxy}${viaProxy.includes("?") ? "&" : "?"}directConnection=true`,
        database.name,
      ),
      { connectTimeoutMs: 1000 },
    );
    try {
      await expect(store.ping()).resolves.toBeUndefined();
      await store.setSetting("k", "v");

      proxy.pause();

      await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.getSetting("k")).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await store.close();
      await proxy.close();
      await database.drop();
    }
  });
}

/** A port nothing listens on (taken from the OS, then released). */
