import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventBus } from "../../src/deploy/events.js";
import { buildMasker, OperationLog } from "../../src/deploy/operation-log.js";
import type { Store } from "../../src/store/store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { LogLine } from "../../src/store/types.js";

let dir: string;
let store: Store;
let bus: EventBus;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-log-"));
  store = await openSqliteStore(path.join(dir, "db.sqlite"));
  bus = new EventBus();
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

function newLog(opts: { secrets?: string[]; maxBytes?: number } = {}) {
  const errors: unknown[] = [];
  const log = new OperationLog({
    operationId: "op-1",
    store,
    bus,
    secrets: opts.secrets ?? [],
    maxBytes: opts.maxBytes ?? 5 * 1024 * 1024,
    onStoreError: (e) => errors.push(e),
  });
  return { log, errors };
}

describe("operation log", () => {
  it("stores every line with seq 1..N in order and announces each once, after storing", async () => {
    const announced: LogLine[] = [];
    const storedWhenAnnounced: number[] = [];
    bus.on("operation.log", (lines) => {
      announced.push(...lines);
      void store.getLogLines("op-1").then((l) => storedWhenAnnounced.push(l.length));
    });
    const { log, errors } = newLog();
    for (let i = 1; i <= 2500; i++) log.write(i % 2 ? "stdout" : "stderr", `line ${i}`);
    await log.close();
    const stored = await store.getLogLines("op-1", 0, 10_000);
    expect(stored.map((l) => l.seq)).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
    expect(stored[1]).toMatchObject({ stream: "stderr", text: "line 2" });
    expect(announced.map((l) => l.seq)).toEqual(stored.map((l) => l.seq));
    expect(errors).toEqual([]);
    await new Promise((r) => setTimeout(r, 20));
    expect(Math.min(...storedWhenAnnounced)).toBeGreaterThan(0);
  });

  it("masks secrets before a line is stored or announced", async () => {
    const announced: string[] = [];
    bus.on("operation.log", (lines) => announced.push(...lines.map((l) => l.text)));
    const { log } = newLog({ secrets: ["hunter2-secret", "ab"] });
    log.write("stdout", "password is hunter2-secret, twice: hunter2-secret");
    log.write("stdout", "ab stays: too short to mask");
    await log.close();
    const stored = (await store.getLogLines("op-1")).map((l) => l.text);
    expect(stored[0]).toBe("password is ***, twice: ***");
    expect(stored[1]).toBe("ab stays: too short to mask");
    expect(announced).toEqual(stored);
  });

  it("keeps the head and the tail of a log over the cap and says what was cut", async () => {
    const { log } = newLog({ maxBytes: 20_000 });
    const line = "x".repeat(99); // 100 bytes with the newline
    for (let i = 1; i <= 1000; i++)
      log.write("stdout", `${String(i).padStart(4, "0")}${line.slice(4)}`);
    await log.close();
    const stored = await store.getLogLines("op-1", 0, 10_000);
    const bytes = stored.reduce((n, l) => n + l.text.length + 1, 0);
    expect(bytes).toBeLessThanOrEqual(20_000 + 300);
    expect(stored[0]?.text.startsWith("0001")).toBe(true);
    expect(stored.at(-1)?.text.startsWith("1000")).toBe(true);
    const marker = stored.find((l) => l.stream === "system");
    expect(marker?.text).toMatch(/log larger than 20000 bytes: lines \d+ to \d+ were cut/);
    const seqs = stored.map((l) => l.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });
});

describe("masker", () => {
  it("masks the longest secret first so overlapping secrets leave nothing behind", () => {
    const mask = buildMasker(["abcd", "abcdefgh"]);
    expect(mask("x abcdefgh y")).toBe("x *** y");
  });

  it("treats regex characters in secrets literally", () => {
    expect(buildMasker(["a.b*c"])("a.b*c and axbbc")).toBe("*** and axbbc");
  });
});
