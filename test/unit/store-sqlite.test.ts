import Database from "better-sqlite3";
import { randomUUID } from "node:crypto";
import { access, mkdtemp, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import { StoreConflictError, type Store } from "../../src/store/store.js";
import { describeStoreContract, makeProject } from "../support/store-contract.js";

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

  it("commits the writes of one turn together, and a failing one rolls back alone", async () => {
    const file = path.join(dir, "dockbot.sqlite");
    const store = await openSqliteStore(file);
    try {
      const first = makeProject({ name: "same" });
      const clash = makeProject({ name: "same" });
      const other = makeProject({ name: "other" });
      // Asked for in one turn, no await between: one group, run in order.
      const results = await Promise.allSettled([
        store.createProject(first),
        store.createProject(clash),
        store.setSetting("k", "v"),
        store.createProject(other),
      ]);
      expect(results.map((r) => r.status)).toStrictEqual([
        "fulfilled",
        "rejected",
        "fulfilled",
        "fulfilled",
      ]);
      expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(StoreConflictError);
      expect((await store.listProjects()).map((p) => p.id)).toStrictEqual([first.id, other.id]);
      expect(await store.getSetting("k")).toBe("v");
    } finally {
      await store.close();
    }
  });

  it("commits writes asked for but not yet run when it is closed", async () => {
    const file = path.join(dir, "dockbot.sqlite");
    const store = await openSqliteStore(file);
    const written = store.setSetting("late", "kept");
    await store.close();
    await written;
    const again = await openSqliteStore(file);
    expect(await again.getSetting("late")).toBe("kept");
    await again.close();
  });

  it("checkpoints the WAL into the database file from its worker thread", async () => {
    const file = path.join(dir, "dockbot.sqlite");
    const store = await openSqliteStore(file);
    try {
      const before = (await stat(file)).size;
      // About 3 MB of log lines: far below the main connection's own checkpoint mark (40 MB),
      // so only the worker can have copied them into the database file.
      for (let batch = 0; batch < 50; batch++) {
        await store.appendLogLines(
          Array.from({ length: 100 }, (_, i) => ({
            operationId: "op",
            seq: batch * 100 + i + 1,
            stream: "stdout" as const,
            text: "x".repeat(200),
            time: new Date().toISOString(),
          })),
        );
      }
      const deadline = Date.now() + 5_000;
      while ((await stat(file)).size < before + 1_000_000 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect((await stat(file)).size).toBeGreaterThan(before + 1_000_000);
      expect(await store.getLogLines("op")).toHaveLength(5_000);
    } finally {
      await store.close();
    }
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
