// A real dockbot (real store, git over the test sshd, real Docker) started in-process on a free
// port, with helpers to drive it through its HTTP API as a user would.
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { pino } from "pino";
import { parseConfig } from "../../src/config.js";
import { buildDockbot, type BuildOptions, type Dockbot } from "../../src/main.js";
import { apiClient, waitForOperation, type ApiCall } from "./api-client.js";
import { authorizeKey } from "./git-server.js";
import { cleanUpAll, removeComposeProjectsUnder } from "./compose-cleanup.js";
import { portBlock } from "./port-block.js";

export const ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef";

export interface OperationJson {
  id: string;
  kind: string;
  status: string;
  sha?: string;
  error?: string;
  exitCode?: number;
  log?: string;
}

export interface VersionJson {
  id: string;
  name: string;
  state: string;
  sha?: string;
  deployedSha?: string;
  composeProject: string;
  urls: string[];
}

export interface DockbotHarness {
  dockbot: Dockbot;
  baseUrl: string;
  dataDir: string;
  api: ApiCall;
  waitForOperation(id: string, timeoutMs?: number): Promise<OperationJson>;
  close(): Promise<void>;
}

export { portBlock };

export async function startDockbot(
  env: Record<string, string> = {},
  options: BuildOptions = {},
): Promise<DockbotHarness> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "dockbot-e2e-"));
  const parsed = parseConfig({
    DOCKBOT_DATA_DIR: dataDir,
    DOCKBOT_PORT: "0",
    DOCKBOT_HOST: "127.0.0.1",
    DOCKBOT_ADMIN_TOKEN: ADMIN_TOKEN,
    DOCKBOT_LOG_LEVEL: "silent",
    // Off unless a test asks for it: the default port 3001 would be shared by parallel files.
    DOCKBOT_PREVIEW_PORT: "0",
    // A block of host ports of its own: dockbots of parallel test files do not share a store,
    // so only this keeps them from handing out the same port at the same moment.
    DOCKBOT_PORT_RANGE: portBlock(),
    ...env,
  });
  if (!parsed.ok) throw new Error(parsed.errors.join("; "));
  const dockbot = await buildDockbot(
    parsed.config,
    pino({ level: parsed.config.logLevel }),
    options,
  );
  const port = await dockbot.listen();
  const baseUrl = `http://127.0.0.1:${port}`;
  const key = (await (await fetch(`${baseUrl}/api/ssh-key`)).json()) as { publicKey: string };
  await authorizeKey(key.publicKey);

  const api = apiClient(baseUrl, ADMIN_TOKEN);

  return {
    dockbot,
    baseUrl,
    dataDir,
    api,
    waitForOperation: (id, timeoutMs = 180_000) =>
      waitForOperation<OperationJson>(api, id, timeoutMs),
    async close() {
      // What this dockbot ran goes with it, also when a test stopped half-way: every compose
      // project it ran has its working dir in a checkout under dataDir.
      await cleanUpAll([
        () => dockbot.close(2000),
        () => removeComposeProjectsUnder(dataDir),
        () => rm(dataDir, { recursive: true, force: true }),
      ]);
    },
  };
}

/** Containers, images, volumes and networks Docker holds for a compose project. */
export async function dockerObjects(composeProject: string) {
  const label = `label=com.docker.compose.project=${composeProject}`;
  const list = async (args: string[]) =>
    (await execa("docker", args)).stdout.split("\n").filter((l) => l.trim() !== "");
  return {
    containers: await list(["ps", "-a", "-q", "--filter", label]),
    running: await list(["ps", "-q", "--filter", label]),
    volumes: await list(["volume", "ls", "-q", "--filter", label]),
    networks: await list(["network", "ls", "-q", "--filter", label]),
    // v1 and the classic builder name built images <project>_<service> / <project>-<service>.
    // One entry per repository: a kept deploy adds a `good-<sha>` tag to the same one.
    images: [
      ...new Set(
        (await list(["image", "ls", "--format", "{{.Repository}}"])).filter(
          (r) => r.startsWith(`${composeProject}_`) || r.startsWith(`${composeProject}-`),
        ),
      ),
    ],
  };
}

/** GETs a URL until it answers 200 (a fresh container needs a moment), returns the body. */
export async function fetchText(url: string, timeoutMs = 15_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return await res.text();
    } catch {
      // not listening yet: try again below
    }
    if (Date.now() > until) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The files of a small web app: busybox httpd serving index.html, with a named volume. */
export function webApp(
  content: string,
  extra: { dockerfileRun?: string } = {},
): Record<string, string> {
  return {
    "index.html": `${content}\n`,
    Dockerfile: [
      "FROM dockbot-test-base",
      "ARG SECRET_TOKEN=none",
      // The nonce makes every repository's build run for real: Docker's cache would otherwise
      // skip this step (and its output) on a machine that built the same app before.
      `RUN echo "build ${randomUUID().slice(0, 8)} sees token $SECRET_TOKEN"`,
      ...(extra.dockerfileRun ? [`RUN ${extra.dockerfileRun}`] : []),
      "COPY index.html /www/index.html",
      'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]',
      "",
    ].join("\n"),
    "compose.yaml": [
      "services:",
      "  web:",
      "    build:",
      "      context: .",
      "      args:",
      "        SECRET_TOKEN: ${SECRET_TOKEN:-unset}",
      '    ports: ["8080"]',
      // busybox httpd as PID 1 ignores SIGTERM: an init forwards it, so a stop takes no 10 s.
      "    init: true",
      "    volumes: [data:/data]",
      "volumes:",
      "  data: {}",
      "",
    ].join("\n"),
  };
}
