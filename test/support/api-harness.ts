// An in-process dockbot API over a real SQLite store in a temp dir, without a runner, so
// operations stay queued: enough for routes, validation and queueing rules via app.request().
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { DeployService } from "../../src/deploy/deploy-service.js";
import { EventBus } from "../../src/deploy/events.js";
import { adminToken } from "../../src/http/admin-token.js";
import { createDiskProbe, createDockerDisk } from "../../src/deploy/disk.js";
import { createApp } from "../../src/http/app.js";
import type { Store } from "../../src/store/store.js";
import { openMongoStore } from "../../src/store/mongo-store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import { testDatabase } from "./mongo.js";
import { gitlabReceiver } from "../../src/webhooks/gitlab-receiver.js";

export const TEST_TOKEN = "test-admin-token-0123456789";

export interface ApiHarness {
  app: ReturnType<typeof createApp>;
  store: Store;
  bus: EventBus;
  service: DeployService;
  /** app.request with the bearer token and JSON body. */
  call(
    method: string,
    url: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Response>;
  close(): Promise<void>;
}

export type StoreKind = "sqlite" | "mongodb";

export async function startApiHarness(kind: StoreKind = "sqlite"): Promise<ApiHarness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-api-"));
  const database = testDatabase();
  const store =
    kind === "sqlite"
      ? await openSqliteStore(path.join(dir, "dockbot.sqlite"))
      : await openMongoStore(database.url);
  const bus = new EventBus();
  const logger = pino({ level: "silent" });
  const service = new DeployService({ store, bus, logger });
  const token = await adminToken(store, TEST_TOKEN);
  const app = createApp({
    publicUrl: "http://dockbot.test",
    store,
    service,
    bus,
    token,
    sshKey: { publicKey: "ssh-ed25519 AAAAtest dockbot", fingerprint: "SHA256:test" },
    compose: { detect: () => Promise.resolve("v2"), dockerReachable: () => Promise.resolve(true) },
    disk: createDiskProbe({ docker: createDockerDisk(), dataDir: dir, engineLocal: true }),
    logger,
  });
  app.route("/webhooks", gitlabReceiver({ service, store, logger }));
  return {
    app,
    store,
    bus,
    service,
    call(method, url, body, headers = {}) {
      const init: RequestInit = {
        method,
        headers: {
          authorization: `Bearer ${TEST_TOKEN}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...headers,
        },
      };
      if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body);
      return Promise.resolve(app.request(url, init));
    },
    async close() {
      await store.close();
      if (kind === "mongodb") await database.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
