// The preview router's request times (src/preview/request-tracker.ts) over a real SQLite store:
// written at most once a minute per version whatever the request rate, the newest time always
// known in memory, written on close, and open WebSockets counting as use until they close.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RequestTracker } from "../../src/preview/request-tracker.js";
import type { Store, VersionPatch } from "../../src/store/store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { VersionRecord } from "../../src/store/types.js";

const T0 = Date.parse("2026-12-01T10:00:00.000Z");
const at = new Date(T0).toISOString();

let dir: string;
let store: Store;
let clock = T0;
let writes: VersionPatch[] = [];
let tracker: RequestTracker;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-reqtrack-"));
  const real = await openSqliteStore(path.join(dir, "dockbot.sqlite"));
  // The real store, with its version writes counted.
  store = Object.assign(Object.create(real) as Store, {
    updateVersion: (id: string, patch: VersionPatch) => {
      writes.push(patch);
      return real.updateVersion(id, patch);
    },
    close: () => real.close(),
  });
  await real.createProject({
    id: "p1",
    name: "shop",
    repoUrl: "git@example.com:shop.git",
    autoDeploy: { branches: ["*"], tags: true, mergeRequests: true },
    env: {},
    webhookSecret: "s",
    createdAt: at,
    updatedAt: at,
  });
  const version: VersionRecord = {
    id: "v1",
    projectId: "p1",
    name: "main",
    ref: { type: "branch", name: "main" },
    state: "running",
    composeProject: "dockbot-shop-main",
    urls: [],
    ports: [],
    createdAt: at,
    updatedAt: at,
  };
  await real.createVersion(version);
  clock = T0;
  writes = [];
  tracker = new RequestTracker({ store, logger: pino({ level: "silent" }), now: () => clock });
});

afterEach(async () => {
  await tracker.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const stored = async () => (await store.getVersion("v1"))?.lastRequestAt;
const settle = () => tracker.flush();

describe("the preview request tracker", () => {
  it("writes the first request at once and no more than once a minute after it", async () => {
    tracker.record("v1");
    await new Promise((resolve) => setImmediate(resolve));
    for (let i = 1; i <= 1000; i++) {
      clock = T0 + i * 50; // 1000 requests over 50 s
      tracker.record("v1");
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toHaveLength(1);
    expect(await stored()).toBe(at);
    // The newest is known in memory meanwhile (idle stop asks here).
    expect(tracker.lastRequestAt("v1")).toBe(T0 + 50_000);

    clock = T0 + 60_000;
    tracker.record("v1");
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toHaveLength(2);
    expect(await stored()).toBe(new Date(T0 + 60_000).toISOString());
  });

  it("writes the times not stored yet on close, and never touches updatedAt", async () => {
    tracker.record("v1");
    clock = T0 + 5_000;
    tracker.record("v1");
    await tracker.close();
    expect(await stored()).toBe(new Date(T0 + 5_000).toISOString());
    expect((await store.getVersion("v1"))?.updatedAt).toBe(at);
    expect(writes.every((w) => Object.keys(w).join() === "lastRequestAt")).toBe(true);
  });

  it("counts an open WebSocket as use until it closes", async () => {
    const close = tracker.opened("v1");
    clock = T0 + 3 * 3_600_000;
    expect(tracker.lastRequestAt("v1")).toBe(clock);
    await settle();
    expect(await stored()).toBe(new Date(clock).toISOString());
    clock += 1000;
    close();
    close(); // twice is once
    clock += 3_600_000;
    expect(tracker.lastRequestAt("v1")).toBe(T0 + 3 * 3_600_000 + 1000);
  });

  it("knows nothing of a version it saw no request for, and stores nothing for a deleted one", async () => {
    expect(tracker.lastRequestAt("v1")).toBeUndefined();
    tracker.record("gone");
    await settle();
    expect(await store.getVersion("gone")).toBeUndefined();
    // Forgotten once the store said the version is gone.
    expect(tracker.lastRequestAt("gone")).toBeUndefined();
    expect(await stored()).toBeUndefined();
  });
});
