// The router's own server without Docker: a real SQLite store in a temp dir; no request here
// reaches a service, so the Docker locator is never asked.
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, expect, it } from "vitest";
import { EventBus } from "../../src/deploy/events.js";
import { createPreviewRouter, type PreviewRouter } from "../../src/preview/preview-router.js";
import { PreviewTargets } from "../../src/preview/preview-targets.js";
import { createServiceLocator } from "../../src/preview/preview-upstream.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import { requestWithHost } from "../support/preview-upstream.js";

const logger = pino({ level: "silent" });
let dir: string;
let store: Store;
let targets: PreviewTargets;
let router: PreviewRouter;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-preview-router-"));
  store = await openSqliteStore(path.join(dir, "dockbot.sqlite"));
  targets = new PreviewTargets({
    store,
    bus: new EventBus(),
    logger,
    locator: createServiceLocator({ upstream: { mode: "published" }, logger }),
  });
  router = createPreviewRouter({
    settings: { port: 0, url: "http://*.localhost:3001" },
    host: "127.0.0.1",
    publicUrl: "http://dockbot.test",
    targets,
    logger,
  });
});

afterEach(async () => {
  await router.close();
  targets.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

it("refuses a preview port that is in use with one line naming DOCKBOT_PREVIEW_PORT", async () => {
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
  const taken = (holder.address() as net.AddressInfo).port;
  try {
    await expect(router.listen(taken)).rejects.toThrow(
      `DOCKBOT_PREVIEW_PORT ${taken} is already in use on 127.0.0.1`,
    );
  } finally {
    await new Promise<void>((resolve) => holder.close(() => resolve()));
  }
});

it("answers HEAD with the page's headers only", async () => {
  const port = await router.listen();
  const res = await requestWithHost(port, "nope--shop.localhost", "/", {}, "HEAD");
  expect(res.status).toBe(404);
  expect(Number(res.headers["content-length"])).toBeGreaterThan(0);
  expect(res.body).toBe("");
});
