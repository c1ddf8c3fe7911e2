// dockbot as a real child process (node + tsx on src/main.ts), for tests that kill it with
// SIGKILL or run several replicas side by side.
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { apiClient, type ApiCall } from "./api-client.js";
import { authorizeKey } from "./git-server.js";
import { portBlock } from "./port-block.js";
import { cleanUpAll, removeComposeProjectsUnder } from "./compose-cleanup.js";

const root = path.resolve(import.meta.dirname, "../..");

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
    server.once("error", reject);
  });
}

export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 60_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await Promise.resolve()
      .then(probe)
      .catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function spawnMain(env: Record<string, string>) {
  return execa("node", ["--import", "tsx", "src/main.ts"], { cwd: root, reject: false, env });
}

export interface DockbotProcess {
  port: number;
  dataDir: string;
  base: string;
  api: ApiCall;
  /** Starts (or starts again) the process and waits until it answers. */
  start(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  close(): Promise<void>;
}

export async function dockbotProcess(
  token: string,
  env: Record<string, string> = {},
): Promise<DockbotProcess> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "dockbot-proc-"));
  const port = await freePort();
  const portRange = portBlock();
  const base = `http://127.0.0.1:${port}`;
  let proc: ReturnType<typeof spawnMain> | undefined;
  const self: DockbotProcess = {
    port,
    dataDir,
    base,
    api: apiClient(base, token),
    async start() {
      proc = spawnMain({
        DOCKBOT_DATA_DIR: dataDir,
        DOCKBOT_PORT: String(port),
        DOCKBOT_HOST: "127.0.0.1",
        DOCKBOT_ADMIN_TOKEN: token,
        DOCKBOT_LOG_LEVEL: "warn",
        // Off unless a test asks for it: the default port 3001 would be shared by parallel files.
        DOCKBOT_PREVIEW_PORT: "0",
        // Host ports no dockbot of a file running at the same time hands out; the same ones
        // after a restart.
        DOCKBOT_PORT_RANGE: portRange,
        ...env,
      });
      await waitUntil("dockbot to answer", async () =>
        (await fetch(`${base}/api/health`)).ok ? true : undefined,
      );
      const key = (await (await fetch(`${base}/api/ssh-key`)).json()) as { publicKey: string };
      await authorizeKey(key.publicKey);
    },
    async kill(signal = "SIGKILL") {
      proc?.kill(signal);
      await proc;
      proc = undefined;
    },
    async close() {
      // Killed, it stops nothing itself: what it ran (compose projects working in checkouts
      // under dataDir) is removed here, also when a test stopped half-way.
      await cleanUpAll([
        () => self.kill("SIGKILL"),
        () => removeComposeProjectsUnder(dataDir),
        () => rm(dataDir, { recursive: true, force: true }),
      ]);
    },
  };
  return self;
}
