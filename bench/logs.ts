// Log throughput benchmark (issue 5): an operation whose build prints 1,000,000 lines, followed
// live by 10 Socket.io clients, against the same build run by hand with its output sent to
// /dev/null, in the same run.
//  - The build: one RUN step printing 100 bursts of `seq 1 10000` with a short sleep between them
//    (a paced build, like a real one), bracketed by two marker lines, behind a nonce so Docker's
//    cache never skips it. Compose v1 with the classic builder (DOCKER_BUILDKIT=0), which streams
//    every line of a RUN step: BuildKit (Compose v2) clips a step's log ("[output clipped, log
//    limit 200KiB/s reached]", 2 MiB in all), so v2 cannot carry 1M lines.
//  - DOCKBOT_LOG_MAX_BYTES is far above the log's size, so no line is cut: "stored" is all of them.
//  - By hand: git clone over SSH, checkout, `docker-compose build --force-rm` and `up -d` (what
//    dockbot runs for v1), output to /dev/null. dockbot: POST .../on to operation.finished.
//    Runs interleaved, median of RUNS each, after one warm-up of each.
//  - dockbot runs in this process (its RSS sampled every 50 ms); the clients run in a child
//    process (bench/log-clients.ts) so their work is not counted as dockbot's. They subscribe
//    before the operation is queued, in batch mode (`operation.logs`), and must each end with
//    exactly seq 1..N, N the stored line count.
//  - Rates are over the build's output, from the start marker being stored to the end marker
//    being stored (stored) or reaching the client (delivered, per client, the slowest counted).
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { execa, type ResultPromise } from "execa";
import { END_MARKER, START_MARKER, type ClientsReport } from "./log-clients.js";
import { median, ms, print } from "./stats.js";
import {
  ADMIN_TOKEN,
  startDockbot,
  webApp,
  type DockbotHarness,
  type OperationJson,
  type VersionJson,
} from "../test/support/dockbot-harness.js";
import { createTestRepo, type RepoFiles } from "../test/support/git-server.js";
import type { LogLine, OperationRecord } from "../src/store/types.js";

const RUNS = 3;
const CLIENTS = 10;
const BURSTS = 100;
const BURST_LINES = 10_000;
const PAUSE_S = "0.06";
/** Build lines between the markers, both included. */
const BUILD_LINES = BURSTS * BURST_LINES + 2;
const root = path.resolve(import.meta.dirname, "..");
const MB = 1024 * 1024;

const now = () => performance.timeOrigin + performance.now();

function appFiles(): RepoFiles {
  const nonce = randomUUID().slice(0, 8);
  return webApp(`bench logs ${nonce}`, {
    dockerfileRun:
      `echo "${START_MARKER} ${nonce}" && i=0 && while [ $i -lt ${BURSTS} ]; do ` +
      `seq 1 ${BURST_LINES}; sleep ${PAUSE_S}; i=$((i+1)); done && echo "${END_MARKER} ${nonce}"`,
  });
}

interface HandRun {
  total: number;
  build: number;
}

/** Clone, checkout, compose v1 build and up, all output to /dev/null. */
async function byHand(h: DockbotHarness, sshUrl: string, project: string): Promise<HandRun> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-bench-logs-"));
  const key = path.join(h.dataDir, "ssh", "id_ed25519");
  const known = path.join(h.dataDir, "known_hosts");
  const gitEnv = {
    GIT_SSH_COMMAND: `ssh -i '${key}' -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile='${known}' -o StrictHostKeyChecking=accept-new`,
  };
  const composeEnv = { COMPOSE_DOCKER_CLI_BUILD: "1", DOCKER_BUILDKIT: "0" };
  const compose = (args: string[]) =>
    execa("docker-compose", ["--ansi", "never", "-p", project, "-f", "compose.yaml", ...args], {
      cwd: dir,
      env: composeEnv,
      stdout: "ignore",
      stderr: "ignore",
    });
  try {
    const start = now();
    await execa("git", ["clone", "--quiet", "--", sshUrl, dir], { env: gitEnv });
    const sha = (await execa("git", ["-C", dir, "rev-parse", "HEAD"])).stdout.trim();
    await execa("git", ["-C", dir, "checkout", "--quiet", "--detach", sha]);
    const buildStart = now();
    await compose(["build", "--force-rm"]);
    const build = now() - buildStart;
    await compose(["up", "-d", "--remove-orphans"]);
    return { total: now() - start, build };
  } finally {
    await execa(
      "docker-compose",
      ["-p", project, "-f", "compose.yaml", "down", "--rmi", "local", "--volumes"],
      { cwd: dir, reject: false },
    );
    await rm(dir, { recursive: true, force: true });
  }
}

const clientOptions = {
  cwd: root,
  stdin: "pipe",
  stdout: "pipe",
  stderr: "inherit",
  reject: false,
} as const;

interface Clients {
  child: ResultPromise<typeof clientOptions>;
  ready: Promise<void>;
  report: Promise<ClientsReport>;
}

function startClients(
  h: DockbotHarness,
  versionId: string,
  count: number,
  mode: "batch" | "line",
): Clients {
  const child = execa(
    "node",
    [
      "--import",
      "tsx",
      "bench/log-clients.ts",
      h.baseUrl,
      ADMIN_TOKEN,
      versionId,
      String(count),
      mode,
    ],
    clientOptions,
  );
  const lines = createInterface({ input: child.stdout });
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const report = new Promise<ClientsReport>((resolve, reject) => {
    lines.on("line", (line) => {
      if (line === "ready") onReady();
      else resolve(JSON.parse(line) as ClientsReport);
    });
    lines.on("close", () => reject(new Error("the log clients exited without a report")));
  });
  report.catch(() => undefined); // awaited later; no unhandled rejection before that
  return { child, ready, report };
}

interface BotRun {
  wall: number;
  stored: number;
  storedExact: boolean;
  storedRate: number;
  deliveredRates: number[];
  /** Last line reaching the slowest client after it was stored. */
  lagMs: number;
  exact: boolean;
  resubscribes: number;
  rssBefore: number;
  rssPeak: number;
  report: ClientsReport;
}

/** Lines stored for the operation, checking they are exactly 1..N. */
async function countStored(
  h: DockbotHarness,
  operationId: string,
): Promise<{ n: number; exact: boolean }> {
  let n = 0;
  let exact = true;
  for (;;) {
    const page = await h.dockbot.store.getLogLines(operationId, n, 50_000);
    for (const line of page) {
      n += 1;
      if (line.seq !== n) exact = false;
    }
    if (page.length < 50_000) return { n, exact };
  }
}

async function dockbotRun(
  h: DockbotHarness,
  sshUrl: string,
  name: string,
  clientCount: number,
  mode: "batch" | "line",
): Promise<BotRun> {
  await h.api("POST", "/api/projects", { name, repoUrl: sshUrl });
  const version = await h.api<VersionJson>("POST", `/api/projects/${name}/versions`, {
    ref: "main",
  });
  const clients = startClients(h, version.body.id, clientCount, mode);
  await clients.ready;

  // Marker times as lines are announced (announced = stored, OperationLog's invariant 3).
  let opId: string | undefined;
  let storedStartAt = 0;
  let storedEndAt = 0;
  let lastStoredAt = 0;
  let announced = 0;
  const onLog = (lines: LogLine[]) => {
    const at = now();
    lastStoredAt = at;
    announced += lines.length;
    for (const line of lines) {
      if (line.text.charCodeAt(0) !== 66) continue; // "B"
      if (line.text.startsWith(START_MARKER)) storedStartAt = at;
      else if (line.text.startsWith(END_MARKER)) storedEndAt = at;
    }
  };
  const early: OperationRecord[] = [];
  let onFinished: (op: OperationRecord) => void = () => undefined;
  const finished = new Promise<OperationRecord>((resolve) => {
    onFinished = (op) => {
      if (opId === undefined) early.push(op);
      else if (op.id === opId) resolve(op);
    };
  });
  h.dockbot.bus.on("operation.log", onLog);
  h.dockbot.bus.on("operation.finished", onFinished);

  const rssBefore = process.memoryUsage.rss();
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  }, 50);
  try {
    const start = now();
    const res = await h.api<OperationJson>("POST", `/api/projects/${name}/versions/main/on`);
    opId = res.body.id;
    const op = early.find((o) => o.id === opId) ?? (await finished);
    const wall = now() - start;
    if (op.status !== "succeeded") throw new Error(`deploy ${op.status}: ${op.error ?? ""}`);
    h.dockbot.bus.off("operation.log", onLog);
    // The clients are told N as announced (only one operation runs); the store is read only once
    // they are done: reading a million rows blocks this process, dockbot's, for a second or two.
    clients.child.stdin.write(`${JSON.stringify({ total: announced })}\n`);
    const report = await clients.report;
    clearInterval(sampler);
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    const counted = await countStored(h, op.id);
    const stored = { n: counted.n, exact: counted.exact && counted.n === announced };

    const exact =
      !report.timedOut &&
      report.clients.every(
        (c) => c.lines === stored.n && c.lastSeq === stored.n && c.repeats === 0 && c.gaps === 0,
      );
    // A marker missing means Docker lost part of the build's output (it happens when the reader
    // of `docker build` falls behind): no rate then.
    const span = (end: number) =>
      storedStartAt > 0 && end > 0 ? (end - storedStartAt) / 1000 : NaN;
    return {
      wall,
      stored: stored.n,
      storedExact: stored.exact,
      storedRate: BUILD_LINES / span(storedEndAt),
      deliveredRates: report.clients.map((c) => BUILD_LINES / span(c.endMarkerAt)),
      lagMs: Math.max(...report.clients.map((c) => c.lastAt - lastStoredAt)),
      exact,
      resubscribes: report.clients.reduce((n, c) => n + c.resubscribes, 0),
      rssBefore,
      rssPeak,
      report,
    };
  } finally {
    clearInterval(sampler);
    h.dockbot.bus.off("operation.log", onLog);
    h.dockbot.bus.off("operation.finished", onFinished);
    clients.child.kill();
    await clients.child;
    const del = await h.api<{ operations: OperationJson[] }>("DELETE", `/api/projects/${name}`);
    for (const o of del.body.operations) await h.waitForOperation(o.id);
  }
}

const k = (rate: number) =>
  Number.isFinite(rate) ? `${(rate / 1000).toFixed(0)}k lines/s` : "n/a (a marker line was lost)";
const mb = (bytes: number) => `${(bytes / MB).toFixed(0)} MB`;

function showBot(label: string, r: BotRun): void {
  const minRate = Math.min(...r.deliveredRates);
  print(
    `  ${label}: ${ms(r.wall)}, stored ${r.stored} (${k(r.storedRate)}), delivered min ${k(minRate)} ` +
      `over ${r.report.clients.length} ${r.report.mode} client(s), last line +${r.lagMs.toFixed(0)} ms after stored, ` +
      `RSS ${mb(r.rssBefore)} -> ${mb(r.rssPeak)}, resubscribes ${r.resubscribes}, exact 1..N: ${r.exact && r.storedExact ? "yes" : "NO"}`,
  );
}

export async function benchLogs(): Promise<void> {
  const h = await startDockbot({ DOCKBOT_COMPOSE: "v1", DOCKBOT_LOG_MAX_BYTES: "200000000" });
  const repo = await createTestRepo("bench-logs", appFiles());
  try {
    const docker = (await execa("docker", ["version", "--format", "{{.Server.Version}}"])).stdout;
    const composeV1 = (await execa("docker-compose", ["version", "--short"])).stdout;
    print(
      `build: ${BURSTS} bursts of seq 1 ${BURST_LINES}, sleep ${PAUSE_S} s between (${BUILD_LINES} build lines); ` +
        `docker-compose ${composeV1} (v1, classic builder), Docker ${docker}, ${os.cpus().length} CPUs`,
    );
    print(
      "note: Compose v2 (BuildKit) clips a RUN step's log at 200 KiB/s and 2 MiB, so it cannot carry 1M lines",
    );
    print(
      `dockbot in-process (SQLite store); ${CLIENTS} socket.io clients in a child process, batch mode (subscribe {operationId, since, batch: true} -> operation.logs)`,
    );

    // Warm-up (page cache, compose's Python, the image layers), not counted.
    await byHand(h, repo.sshUrl, "bench-logs-hand-warmup");
    await repo.commit(appFiles(), "warm-up");
    const warmup = await dockbotRun(h, repo.sshUrl, "bench-logs-warmup", CLIENTS, "batch");

    const hand: HandRun[] = [];
    const bot: BotRun[] = [];
    for (let i = 0; i < RUNS; i++) {
      await repo.commit(appFiles(), `hand ${i}`);
      hand.push(await byHand(h, repo.sshUrl, `bench-logs-hand-${i}`));
      await repo.commit(appFiles(), `dockbot ${i}`);
      bot.push(await dockbotRun(h, repo.sshUrl, `bench-logs-${i}`, CLIENTS, "batch"));
    }

    print(`runs: ${RUNS} each, interleaved (median)`);
    print(
      `by hand, output to /dev/null (clone, checkout, build, up -d): ${ms(median(hand.map((r) => r.total)))}   [${hand.map((r) => r.total.toFixed(0)).join(", ")}]`,
    );
    print(
      `  of which docker-compose build:                            ${ms(median(hand.map((r) => r.build)))}   [${hand.map((r) => r.build.toFixed(0)).join(", ")}]`,
    );
    print(
      `dockbot (POST .../on -> operation.finished):                 ${ms(median(bot.map((r) => r.wall)))}   [${bot.map((r) => r.wall.toFixed(0)).join(", ")}]`,
    );
    bot.forEach((r, i) => showBot(`run ${i + 1}`, r));
    // The first operation of a fresh process grows its heap from cold: shown, not counted.
    showBot("warm-up (first operation of the process, not counted)", warmup);
    const overhead = (median(bot.map((r) => r.wall)) / median(hand.map((r) => r.total)) - 1) * 100;
    const storedRate = median(bot.map((r) => r.storedRate));
    const deliveredRate = median(bot.map((r) => Math.min(...r.deliveredRates)));
    const growth = Math.max(...bot.map((r) => r.rssPeak - r.rssBefore));
    const allExact = bot.every((r) => r.exact && r.storedExact);
    print(`lines stored per run: ${bot.map((r) => r.stored).join(", ")}`);
    print(`overhead on wall time: ${overhead.toFixed(1)}% (goal < 10%)`);
    print(`stored: ${k(storedRate)} (median; goal >= 100k)`);
    print(`delivered, slowest of ${CLIENTS} clients: ${k(deliveredRate)} (median; goal >= 100k)`);
    print(`RSS growth: ${mb(growth)} (worst run; goal < 100 MB)`);
    print(`every client got exactly 1..N in every run: ${allExact ? "yes" : "NO"}`);

    // One figure for the per-line mode of docs/api.md (one operation.log event per line), 1 client.
    await repo.commit(appFiles(), "per-line");
    const perLine = await dockbotRun(h, repo.sshUrl, "bench-logs-line", 1, "line");
    print("per-line mode (operation.log per line), 1 client:");
    showBot("run", perLine);
  } finally {
    await h.close();
    await repo.remove();
  }
}
