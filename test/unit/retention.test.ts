import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createRetention } from "../../src/deploy/retention.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import type { OperationRecord } from "../../src/store/types.js";
import { makeProject } from "../support/store-contract.js";

const DAY = 24 * 3_600_000;
const START = Date.UTC(2026, 0, 1);

describe("retention runs with an injected clock", () => {
  let dir: string;
  let store: Store;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-retention-"));
    store = await openSqliteStore(path.join(dir, "dockbot.sqlite"));
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A version with `count` finished ups, one a day from START, 30 log lines each. */
  async function seed(count: number): Promise<OperationRecord[]> {
    const project = makeProject();
    await store.createProject(project);
    const versionId = randomUUID();
    const at = new Date(START).toISOString();
    await store.createVersion({
      id: versionId,
      projectId: project.id,
      name: "main",
      ref: { type: "branch", name: "main" },
      state: "running",
      composeProject: `dockbot-${project.name}-main`,
      urls: [],
      ports: [],
      createdAt: at,
      updatedAt: at,
    });
    const ops: OperationRecord[] = [];
    for (let i = 0; i < count; i++) {
      const time = new Date(START + i * DAY).toISOString();
      const op: OperationRecord = {
        id: randomUUID(),
        projectId: project.id,
        versionId,
        kind: "up",
        trigger: { source: "api" },
        status: "queued",
        queuedAt: time,
      };
      await store.enqueueOperation(op);
      await store.updateOperation(op.id, { status: "failed", startedAt: time, finishedAt: time });
      await store.appendLogLines(
        Array.from({ length: 30 }, (_, s) => ({
          operationId: op.id,
          seq: s + 1,
          stream: "stdout" as const,
          text: `line ${s + 1}`,
          time,
        })),
      );
      ops.push(op);
    }
    return ops;
  }

  it("deletes what finished more than DOCKBOT_RETENTION_DAYS ago, in small batches, and keeps the last operation", async () => {
    const ops = await seed(10);
    let now = START + 12 * DAY;
    const retention = createRetention({
      store,
      logger: pino({ level: "silent" }),
      retentionDays: 5,
      now: () => now,
      batchOperations: 2,
      batchLogLines: 25,
      pauseMs: 0,
    });
    // 12 days after the first: the ones of days 0 to 6 are older than 5 days.
    const run = await retention.runOnce();
    expect(run).toMatchObject({ deletedOperations: 7, deletedLogLines: 7 * 30 });
    expect(run.batches).toBeGreaterThanOrEqual(Math.ceil((7 * 30) / 25));
    for (const [i, op] of ops.entries()) {
      expect(Boolean(await store.getOperation(op.id)), `day ${i}`).toBe(i >= 7);
    }
    // Much later everything is old, but the version's last operation and its log stay.
    now = START + 100 * DAY;
    expect((await retention.runOnce()).deletedOperations).toBe(2);
    const last = ops.at(-1)?.id ?? "";
    expect((await store.getOperation(last))?.id).toBe(last);
    expect(await store.getLogLines(last)).toHaveLength(30);
  });
});
