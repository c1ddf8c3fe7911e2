// dockbot's preview router on its own, in a child process of bench/router.ts, so autocannon and
// the router do not share an event loop (nginx runs in its own process too). The real router,
// lookup cache and Docker locator over a real SQLite store holding one running version whose
// `web` service is the container the benchmark started.
//
//   tsx bench/router-server.ts <port> <composeProject> <hostPort>
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { argv, stdout } from "node:process";
import { pino } from "pino";
import { EventBus } from "../src/deploy/events.js";
import { newId } from "../src/ids.js";
import { createPreviewRouter } from "../src/preview/preview-router.js";
import { PreviewTargets } from "../src/preview/preview-targets.js";
import { createServiceLocator } from "../src/preview/preview-upstream.js";
import { openSqliteStore } from "../src/store/sqlite-store.js";

const [port = "0", composeProject = "", hostPort = "0"] = argv.slice(2);
const logger = pino({ level: "warn" });
const dataDir = await mkdtemp(path.join(os.tmpdir(), "dockbot-bench-router-"));
const store = await openSqliteStore(path.join(dataDir, "dockbot.sqlite"));
const at = new Date().toISOString();
const projectId = newId();
await store.createProject({
  id: projectId,
  name: "bench",
  repoUrl: "git@gitlab.example.com:team/bench.git",
  autoDeploy: { branches: ["*"], tags: true, mergeRequests: true },
  env: {},
  webhookSecret: "bench-secret",
  createdAt: at,
  updatedAt: at,
});
await store.createVersion({
  id: newId(),
  projectId,
  name: "main",
  ref: { type: "branch", name: "main" },
  state: "running",
  composeProject,
  urls: [`http://127.0.0.1:${hostPort}`],
  ports: [{ service: "web", target: 8080, protocol: "tcp", hostPort: Number(hostPort) }],
  createdAt: at,
  updatedAt: at,
});
const bus = new EventBus();
const targets = new PreviewTargets({
  store,
  bus,
  logger,
  locator: createServiceLocator({ upstream: { mode: "published" }, logger }),
});
const router = createPreviewRouter({
  settings: { port: Number(port), url: `http://*.localhost:${port}` },
  host: "127.0.0.1",
  publicUrl: "http://localhost:3000",
  targets,
  logger,
});
await targets.warm();
const bound = await router.listen();
stdout.write(`listening ${bound}\n`);

const stop = () => {
  void (async () => {
    await router.close();
    targets.close();
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
    process.exit(0);
  })();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
