// Scale benchmark (issue 13): a store holding many projects, versions and operations.
//
// Per store (SQLite; MongoDB on the test server, FerretDB as scripts/test-services.sh starts it)
// and per size (1k, 10k, 100k versions: 100, 1,000, 10,000 projects x 10 versions; 100
// operations per version up to 1,000,000 operations in all):
//  - p50/p99 of GET /api/projects/:p/versions, GET /api/projects/:p/versions/:v and the
//    dashboard's project page, through the real app (app.request, no socket), on random projects;
//  - p50/p99 of the runner's claim (store.claimOperation with queued operations waiting);
//  - start-up (store open, recovery of operations left running, reconcile of every version with
//    Docker) and its RSS, in a process of its own (bench/scale-startup.ts), twice.
// The baseline measured in the same run is the smallest size: each figure is printed with its
// ratio to it. A project page shows 10 versions at every size, so no figure should grow with the
// number of versions. The data is seeded in bulk (bench/scale-seed.ts says how).
//
// Options: --sizes=1000,10000,100000  --stores=sqlite,mongodb  --mongo-sizes=1000
//          --ops=N (operations per version in SQLite; default 100, at most 1M in all)
//          --mongo-ops=10 (operations per version in MongoDB)  --samples=300
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { argv, stderr } from "node:process";
import { execa } from "execa";
import { parseConfig } from "../src/config.js";
import { buildDockbot, createLogger, type Dockbot } from "../src/main.js";
import { openMongoStore } from "../src/store/mongo-store.js";
import { openSqliteStore } from "../src/store/sqlite-store.js";
import { MongoClient } from "mongodb";
import { mongoTestUrl, testDatabase } from "../test/support/mongo.js";
import { checkMongo } from "../test/support/mongo.js";
import {
  checkSeed,
  makeVersion,
  projectName,
  seedMongo,
  seedSqlite,
  totalOperations,
  totalVersions,
  versionName,
  type ScaleShape,
} from "./scale-seed.js";
import { scaleEnv, STARTUP_ADMIN_TOKEN, type StartupFigures } from "./scale-startup.js";
import { percentile, print } from "./stats.js";

type StoreKind = "sqlite" | "mongodb";

const GOALS = { apiP99Ms: 20, pageP99Ms: 100, startupMs: 5000, goalSize: 10_000 };
const VERSIONS_PER_PROJECT = 10;
/** Time one figure may take; at least 5 samples are taken whatever it costs. */
const BUDGET_MS = 60_000;
const MAX_OPERATIONS = 1_000_000;
/** Label on the containers this benchmark starts, so cleanup finds every one. */
const CONTAINER_LABEL = "dockbot.bench=scale";

interface Options {
  sizes: number[];
  stores: StoreKind[];
  mongoSizes: number[];
  mongoOpsPerVersion: number;
  /** Operations per version in SQLite; unset: 100, at most 1M in all. */
  opsPerVersion: number | undefined;
  samples: number;
}

function option(name: string): string | undefined {
  const prefix = `--${name}=`;
  return argv.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

function numbers(text: string): number[] {
  return text
    .split(",")
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

function parseOptions(): Options {
  return {
    sizes: numbers(option("sizes") ?? "1000,10000,100000"),
    stores: (option("stores") ?? "sqlite,mongodb")
      .split(",")
      .filter((s): s is StoreKind => s === "sqlite" || s === "mongodb"),
    mongoSizes: numbers(option("mongo-sizes") ?? "1000"),
    mongoOpsPerVersion: Number(option("mongo-ops") ?? 10),
    opsPerVersion: option("ops") === undefined ? undefined : Number(option("ops")),
    samples: Number(option("samples") ?? 300),
  };
}

interface Figures {
  store: StoreKind;
  versions: number;
  operations: number;
  seedMs: number;
  list: number[];
  one: number[];
  page: number[];
  claim: number[];
  startups: StartupFigures[];
  load: string;
}

function shapeFor(versions: number, opsPerVersion: number): ScaleShape {
  const projects = Math.max(1, Math.round(versions / VERSIONS_PER_PROJECT));
  return {
    projects,
    versionsPerProject: VERSIONS_PER_PROJECT,
    opsPerVersion,
    queued: Math.min(200, projects * VERSIONS_PER_PROJECT),
    running: 20,
    live: 3,
  };
}

/** Where a long run is, on stderr (the figures go to stdout). */
function progress(line: string): void {
  stderr.write(`  [${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/** A small deterministic PRNG (mulberry32): the same projects are asked for in every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Times `fn` `count` times after `warmup` untimed calls; stops early after `budgetMs`. A `fn`
 * that returns a number has timed itself (the part that counts).
 */
async function sample(
  count: number,
  fn: (i: number) => Promise<number | void>,
  budgetMs = BUDGET_MS,
  warmup = 10,
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn(-1 - i);
  const out: number[] = [];
  const until = performance.now() + budgetMs;
  for (let i = 0; i < count && (out.length < 5 || performance.now() < until); i++) {
    const t = performance.now();
    const own = await fn(i);
    out.push(typeof own === "number" ? own : performance.now() - t);
  }
  return out;
}

async function expectOk(res: Response, what: string): Promise<string> {
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${what}: HTTP ${res.status} ${body.slice(0, 200)}`);
  return body;
}

async function startContainers(shape: ScaleShape): Promise<void> {
  for (let g = shape.queued + shape.running; g < shape.queued + shape.running + shape.live; g++) {
    const p = Math.floor(g / shape.versionsPerProject);
    const version = makeVersion(p, g % shape.versionsPerProject, shape);
    await execa("docker", [
      "run",
      "-d",
      "--label",
      CONTAINER_LABEL,
      "--label",
      `com.docker.compose.project=${version.composeProject}`,
      "dockbot-test-base",
      "sleep",
      "3600",
    ]);
  }
}

async function removeContainers(): Promise<void> {
  const ids = (await execa("docker", ["ps", "-aq", "--filter", `label=${CONTAINER_LABEL}`])).stdout
    .split("\n")
    .filter(Boolean);
  if (ids.length > 0) await execa("docker", ["rm", "-f", ...ids]);
}

async function startup(dataDir: string, mongodbUrl?: string): Promise<StartupFigures> {
  const script = path.join(import.meta.dirname, "scale-startup.ts");
  const tsx = path.join(import.meta.dirname, "..", "node_modules", ".bin", "tsx");
  const { stdout } = await execa(tsx, [script, dataDir, ...(mongodbUrl ? [mongodbUrl] : [])]);
  const last = stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(last) as StartupFigures;
}

async function measure(store: StoreKind, shape: ScaleShape, samples: number): Promise<Figures> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-bench-scale-"));
  const database = store === "mongodb" ? testDatabase() : undefined;
  let dockbot: Dockbot | undefined;
  try {
    // The store makes its schema (SQLite migrations, MongoDB indexes) before the bulk load.
    const t0 = performance.now();
    if (database) {
      await (await openMongoStore(database.url)).close();
      await seedMongo(database.url, shape);
    } else {
      const file = path.join(dir, "dockbot.sqlite");
      await (await openSqliteStore(file)).close();
      seedSqlite(file, shape);
    }
    const seedMs = performance.now() - t0;
    progress(`seeded in ${(seedMs / 1000).toFixed(1)} s; starting up twice`);
    await startContainers(shape);

    const load = os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ");
    // Twice: the first recovers the operations left running, the second finds none.
    const startups = [await startup(dir, database?.url), await startup(dir, database?.url)];

    const parsed = parseConfig(scaleEnv(dir, database?.url));
    if (!parsed.ok) throw new Error(parsed.errors.join("; "));
    dockbot = await buildDockbot(parsed.config, createLogger(parsed.config));
    await checkSeed(dockbot.store, shape);
    progress("seed read back through the store; measuring reads and claims");
    const app = dockbot.app;
    const signIn = await app.request("/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: STARTUP_ADMIN_TOKEN, next: "/" }),
    });
    const cookie = (signIn.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    if (!cookie.startsWith("dockbot_session="))
      throw new Error("signing in to the dashboard failed");
    const bearer = { authorization: `Bearer ${STARTUP_ADMIN_TOKEN}` };
    const next = random(13);
    const someProject = () => projectName(Math.floor(next() * shape.projects));
    // FerretDB takes seconds a request (see mongoScanRate): one warm-up there, not ten.
    const warmup = store === "mongodb" ? 1 : 10;

    const list = await sample(
      samples,
      async () => {
        const body = await expectOk(
          await app.request(`/api/projects/${someProject()}/versions`, { headers: bearer }),
          "version list",
        );
        const versions = JSON.parse(body) as unknown[];
        if (versions.length !== shape.versionsPerProject)
          throw new Error("version list incomplete");
      },
      BUDGET_MS,
      warmup,
    );
    const one = await sample(
      samples,
      async () => {
        const v = versionName(Math.floor(next() * shape.versionsPerProject));
        await expectOk(
          await app.request(`/api/projects/${someProject()}/versions/${v}`, { headers: bearer }),
          "one version",
        );
      },
      BUDGET_MS,
      warmup,
    );
    const page = await sample(
      samples,
      async () => {
        await expectOk(
          await app.request(`/projects/${someProject()}`, { headers: { cookie } }),
          "project page",
        );
      },
      BUDGET_MS,
      warmup,
    );
    // The runner's claim: each claimed operation is finished (untimed) as the runner would.
    const s = dockbot.store;
    // As many as were queued (SQLite's recovery fails the ones left running; MongoDB's puts
    // them back in the queue).
    const claim = await sample(
      shape.queued,
      async () => {
        const now = new Date();
        const t = performance.now();
        const op = await s.claimOperation({
          owner: "scale-bench",
          leaseUntil: new Date(now.getTime() + 30_000).toISOString(),
          now: now.toISOString(),
        });
        const took = performance.now() - t;
        if (!op) throw new Error("nothing to claim");
        await s.updateOperation(op.id, {
          status: "succeeded",
          finishedAt: new Date().toISOString(),
        });
        return took;
      },
      BUDGET_MS,
      0,
    );
    return {
      store,
      versions: totalVersions(shape),
      operations: totalOperations(shape),
      seedMs,
      list,
      one,
      page,
      claim,
      startups,
      load,
    };
  } finally {
    await dockbot?.close(0);
    await removeContainers();
    await database?.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 1) : "-");

function row(f: Figures): string {
  const p = (v: number[]) => `${f1(percentile(v, 50))}/${f1(percentile(v, 99))}`;
  const first = f.startups[0];
  const second = f.startups[1];
  return [
    f.store.padEnd(8),
    String(f.versions).padStart(7),
    String(f.operations).padStart(8),
    p(f.list).padStart(13),
    p(f.one).padStart(13),
    p(f.page).padStart(13),
    p(f.claim).padStart(13),
    `${first ? first.totalMs.toFixed(0) : "-"}/${second ? second.totalMs.toFixed(0) : "-"}`.padStart(
      11,
    ),
    `${first ? (first.rssBytes / 2 ** 20).toFixed(0) : "-"}`.padStart(7),
    `${(f.seedMs / 1000).toFixed(1)}`.padStart(7),
    String(Math.min(f.list.length, f.one.length, f.page.length, f.claim.length)).padStart(4),
    f.load,
  ].join(" ");
}

function ratios(base: Figures, f: Figures): string {
  const r = (a: number[], b: number[]) => `${(percentile(b, 99) / percentile(a, 99)).toFixed(2)}x`;
  const start = (x: Figures) => x.startups[0]?.totalMs ?? Number.NaN;
  const rss = (x: Figures) => x.startups[0]?.rssBytes ?? Number.NaN;
  return (
    `${f.store} ${f.versions} vs ${base.versions} versions (${(f.versions / base.versions).toFixed(0)}x the versions): ` +
    `p99 list ${r(base.list, f.list)}, one ${r(base.one, f.one)}, page ${r(base.page, f.page)}, ` +
    `claim ${r(base.claim, f.claim)}; start-up ${(start(f) / start(base)).toFixed(2)}x, ` +
    `RSS ${(rss(f) / rss(base)).toFixed(2)}x`
  );
}

function goals(f: Figures): string {
  const ok = (pass: boolean) => (pass ? "met" : "NOT met");
  const api = Math.max(percentile(f.list, 99), percentile(f.one, 99));
  const page = percentile(f.page, 99);
  const start = Math.max(...f.startups.map((s) => s.totalMs));
  return (
    `${f.store} at ${f.versions} versions: API reads p99 ${f1(api)} ms (goal < ${GOALS.apiP99Ms}: ${ok(api < GOALS.apiP99Ms)}), ` +
    `page p99 ${f1(page)} ms (goal < ${GOALS.pageP99Ms}: ${ok(page < GOALS.pageP99Ms)}), ` +
    `start-up ${start.toFixed(0)} ms (goal < ${GOALS.startupMs}: ${ok(start < GOALS.startupMs)})`
  );
}

/** What the MongoDB test server says it is (FerretDB adds `ferretdbVersion` to buildInfo). */
async function serverName(): Promise<string> {
  const client = new MongoClient(mongoTestUrl, { serverSelectionTimeoutMS: 5000 });
  try {
    const info = await client.db("admin").command({ buildInfo: 1 });
    return typeof info.ferretdbVersion === "string"
      ? `FerretDB ${info.ferretdbVersion}`
      : `MongoDB ${String(info.version)}`;
  } finally {
    await client.close();
  }
}

/** FerretDB 1.x answers a find on any field but `_id` by reading every document: how fast. */
async function mongoScanRate(): Promise<string> {
  const database = testDatabase();
  const store = await openMongoStore(database.url);
  try {
    const shape = shapeFor(1000, 10);
    await seedMongo(database.url, shape);
    const t = performance.now();
    await store.listOperations({ status: ["running"] });
    const scan = performance.now() - t;
    const t2 = performance.now();
    await store.getOperation("scaleo000000-0000");
    const byId = performance.now() - t2;
    return `a find on status over ${totalOperations(shape)} operations: ${scan.toFixed(0)} ms; by _id: ${byId.toFixed(1)} ms`;
  } finally {
    await store.close();
    await database.drop();
  }
}

export async function benchScale(): Promise<void> {
  const opts = parseOptions();
  print(
    `machine: ${os.cpus().length} cores, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")} (shared with other work: figures vary between runs)`,
  );
  const all: Figures[] = [];
  for (const store of opts.stores) {
    if (store === "mongodb") {
      const check = await checkMongo();
      if (!check.ok) {
        print(`mongodb: skipped: ${check.reason}`);
        continue;
      }
      print(
        `mongodb: ${new URL(mongoTestUrl).host} (${await serverName()}); ${await mongoScanRate()}`,
      );
    }
    const sizes = store === "mongodb" ? opts.mongoSizes : opts.sizes;
    for (const versions of sizes) {
      const opsPerVersion =
        store === "mongodb"
          ? opts.mongoOpsPerVersion
          : (opts.opsPerVersion ?? Math.min(100, Math.floor(MAX_OPERATIONS / versions)));
      const shape = shapeFor(versions, opsPerVersion);
      print(
        `${store}: seeding ${shape.projects} projects x ${shape.versionsPerProject} versions, ` +
          `${totalOperations(shape)} operations (${opsPerVersion} per version, ${shape.queued} queued, ` +
          `${shape.running} left running, ${shape.live} versions running in Docker) ...`,
      );
      all.push(await measure(store, shape, opts.samples));
    }
  }
  print("");
  print(
    "store    versions      ops  list p50/p99   one p50/p99  page p50/p99 claim p50/p99 start-up ms  RSS MB seed s    n load (1 5 15)",
  );
  for (const f of all) print(row(f));
  print(
    "(times in ms; start-up: first start (recovers the operations left running) / second start;",
  );
  print(" n: fewest samples of a figure, fewer than asked when a figure ran out of its 60 s)");
  for (const f of all) {
    const parts = f.startups.map(
      (x) => `build ${x.buildMs.toFixed(0)} + recover ${x.recoverMs.toFixed(0)} ms`,
    );
    print(`start-up of ${f.store} at ${f.versions} versions: ${parts.join("; ")}`);
  }
  print("");
  for (const store of opts.stores) {
    const mine = all.filter((f) => f.store === store);
    const base = mine[0];
    if (!base) continue;
    for (const f of mine.slice(1)) print(ratios(base, f));
    const atGoal = mine.find((f) => f.versions === GOALS.goalSize) ?? mine[mine.length - 1];
    if (atGoal) print(goals(atGoal));
  }
  print(
    `growth goal: each ratio near 1x (a page shows ${VERSIONS_PER_PROJECT} versions at every size)`,
  );
}
