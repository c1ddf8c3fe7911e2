// One dockbot start-up, in a process of its own so its RSS is the start-up's alone (bench/scale.ts
// runs it): `tsx bench/scale-startup.ts <dataDir> [mongodbUrl]`. Builds dockbot as src/main.ts
// does (store open, migrations or indexes, admin token, SSH key, services), then runs the
// runner's start: recovery of operations left running and the reconcile of every version with
// Docker (concurrency 0, so it takes no work afterwards). Prints one JSON line.
import { argv, exit, stdout } from "node:process";
import { parseConfig } from "../src/config.js";
import { buildDockbot, createLogger } from "../src/main.js";

export const STARTUP_ADMIN_TOKEN = "scale-bench-admin-token-0123456789";

/** The configuration the benchmark's dockbot runs with (also used in-process by scale.ts). */
export function scaleEnv(dataDir: string, mongodbUrl?: string): Record<string, string> {
  return {
    DOCKBOT_DATA_DIR: dataDir,
    DOCKBOT_ADMIN_TOKEN: STARTUP_ADMIN_TOKEN,
    DOCKBOT_CONCURRENCY: "0",
    DOCKBOT_PREVIEW_PORT: "0",
    DOCKBOT_COMPOSE: "v2",
    DOCKBOT_LOG_LEVEL: "error",
    ...(mongodbUrl ? { DOCKBOT_MONGODB_URL: mongodbUrl } : {}),
  };
}

export interface StartupFigures {
  /** buildDockbot: store open and every service built. */
  buildMs: number;
  /** runner.start(): recovery and reconcile with Docker. */
  recoverMs: number;
  totalMs: number;
  rssBytes: number;
}

async function startOnce(dataDir: string, mongodbUrl?: string): Promise<StartupFigures> {
  const parsed = parseConfig(scaleEnv(dataDir, mongodbUrl));
  if (!parsed.ok) throw new Error(parsed.errors.join("; "));
  const t0 = performance.now();
  const dockbot = await buildDockbot(parsed.config, createLogger(parsed.config));
  const t1 = performance.now();
  await dockbot.runner.start();
  const t2 = performance.now();
  const rssBytes = process.memoryUsage().rss;
  await dockbot.close(0);
  return { buildMs: t1 - t0, recoverMs: t2 - t1, totalMs: t2 - t0, rssBytes };
}

if (argv[1]?.endsWith("scale-startup.ts")) {
  const [dataDir, mongodbUrl] = argv.slice(2);
  if (!dataDir) {
    stdout.write("usage: tsx bench/scale-startup.ts <dataDir> [mongodbUrl]\n");
    exit(2);
  }
  stdout.write(`${JSON.stringify(await startOnce(dataDir, mongodbUrl))}\n`);
  exit(0);
}
