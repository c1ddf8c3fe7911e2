import Database from "better-sqlite3";
import { randomUUID } from "node:crypto";
import { access, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import { describeStoreContract } from "../support/store-contract.js";

describeStoreContract("sqlite", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-store-"));
  const file = path.join(dir, "dockbot.sqlite");
  const opened: Store[] = [];
  const open = async () => {
    const store = await openSqliteStore(file);
    opened.push(store);
    return store;
  };
  return {
    store: await open(),
    reopen: open,
    cleanup: async () => {
      for (const store of opened) await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe("sqlite store file", () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-store-"));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("creates the missing parent directories of the database file", async () => {
    const file = path.join(dir, "nested", "data", "dockbot.sqlite");
    const store = await openSqliteStore(file);
    await store.setSetting("k", "v");
    await store.close();
    await expect(access(file)).resolves.toBeUndefined();
  });

  it("uses WAL journaling and records the schema version", async () => {
    const file = path.join(dir, "dockbot.sqlite");
    const store = await openSqliteStore(file);
    expect(store.kind).toBe("sqlite");
    await store.close();
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(Number(db.pragma("user_version", { simple: true }))).toBeGreaterThanOrEqual(1);
    } finally {
      db.close();
    }
  });

  it("refuses a database written by a newer schema and leaves it untouched", async () => {
    const file = path.join(dir, "dockbot.sqlite");
    const db = new Database(file);
    db.pragma("user_version = 999");
    db.close();
    await expect(openSqliteStore(file)).rejects.toThrow(/schema version 999/);
    const check = new Database(file, { readonly: true });
    try {
      expect(check.pragma("user_version", { simple: true })).toBe(999);
    } finally {
      check.close();
    }
  });

  it("lets two stores on one file share the queue without claiming an operation twice", async () => {
    const file = path.join(dir, "dockbot.sqlite");
    const a = await openSqliteStore(file);
    const b = await openSqliteStore(file);
    try {
      const projectId = randomUUID();
      const opIds: string[] = [];
      for (let i = 0; i < 4; i++) {
        const id = randomUUID();
        opIds.push(id);
        await a.enqueueOperation({
          id,
          projectId,
          versionId: randomUUID(),
          kind: "up",
          trigger: { source: "api" },
          status: "queued",
          queuedAt: new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString(),
        });
      }
      const claims = await Promise.all(
        [a, b, a, b, a, b].map((s, i) =>
          s.claimOperation({
            owner: `s${i}`,
            leaseUntil: "2030-01-01T00:00:00.000Z",
            now: "2024-01-02T00:00:00.000Z",
          }),
        ),
      );
      // Each store commits its claims as one group, so the order across the two stores is the
      // order of their groups; what matters is that every operation is claimed exactly once.
      const got = claims.flatMap((c) => (c ? [c.id] : []));
      expect(got).toHaveLength(4);
      expect([...got].sort()).toStrictEqual([...opIds].sort());
      expect(await b.listOperations({ status: ["running"] })).toHaveLength(4);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
