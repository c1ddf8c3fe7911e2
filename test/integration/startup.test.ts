// Starting dockbot as a user does: a bad variable stops it with one line, the first start without
// DOCKBOT_ADMIN_TOKEN prints a token once, and an unreachable MongoDB ends the start clearly.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { freePort, waitUntil } from "../support/dockbot-process.js";

const root = path.resolve(import.meta.dirname, "../..");
let dataDir: string;

beforeEach(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "dockbot-start-"));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

function start(env: Record<string, string>) {
  return execa("node", ["--import", "tsx", "src/main.ts"], {
    cwd: root,
    reject: false,
    timeout: 60_000,
    env: {
      DOCKBOT_DATA_DIR: dataDir,
      DOCKBOT_HOST: "127.0.0.1",
      DOCKBOT_LOG_LEVEL: "silent",
      DOCKBOT_PREVIEW_PORT: "0",
      ...env,
    },
  });
}

describe("starting dockbot", () => {
  it("stops with exit code 2 and one line per bad variable, naming it", async () => {
    const result = await start({ DOCKBOT_PORT: "http", DOCKBOT_COMPOSE: "v3" });
    expect(result.exitCode).toBe(2);
    const lines = String(result.stderr).trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain("DOCKBOT_PORT");
    expect(lines[1]).toContain("DOCKBOT_COMPOSE must be auto, v2 or v1");
  });

  it("prints a generated admin token on the first start only, and that token works", async () => {
    const port = await freePort();
    const env = { DOCKBOT_PORT: String(port), DOCKBOT_CONCURRENCY: "0" };
    const first = start(env);
    await waitUntil("dockbot to answer", async () =>
      (await fetch(`http://127.0.0.1:${port}/api/health`)).ok ? true : undefined,
    );
    first.kill("SIGTERM");
    const out = String((await first).stdout);
    const token = /admin token \(shown once, keep it\): (\S+)/.exec(out)?.[1] ?? "";
    expect(token.length).toBeGreaterThanOrEqual(40);

    const second = start(env);
    await waitUntil("dockbot to answer again", async () =>
      (await fetch(`http://127.0.0.1:${port}/api/health`)).ok ? true : undefined,
    );
    const ok = await fetch(`http://127.0.0.1:${port}/api/projects`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const wrong = await fetch(`http://127.0.0.1:${port}/api/projects`, {
      headers: { authorization: "Bearer nope" },
    });
    second.kill("SIGTERM");
    const again = await second;
    expect(ok.status).toBe(200);
    expect(wrong.status).toBe(401);
    expect(String(again.stdout)).not.toContain("admin token");
    expect(again.exitCode).toBe(0);
  });

  it("gives up on an unreachable MongoDB after DOCKBOT_MONGODB_START_WAIT with one clear line", async () => {
    const closed = await freePort();
    const started = Date.now();
    const result = await start({
      DOCKBOT_PORT: String(await freePort()),
      DOCKBOT_MONGODB_URL: `mongodb://127.0.0.1:${closed}/dockbot`,
      DOCKBOT_MONGODB_START_WAIT: "3",
    });
    expect(result.exitCode).toBe(1);
    const lines = String(result.stderr).trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/MongoDB at DOCKBOT_MONGODB_URL is unreachable after 3 s/);
    expect(Date.now() - started).toBeGreaterThan(3000);
  });
});
