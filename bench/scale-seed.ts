// Seed data for the scale benchmark (bench/scale.ts): projects x versions x operations, made by
// one deterministic generator and written in bulk straight into the store's database.
//
// How the rows get there, and why the store reads them normally:
// - SQLite: the store opens the file first (its migrations make the schema), then one
//   better-sqlite3 connection inserts the rows that the store's own mapping functions make
//   (projectToRow, versionToRow, operationToRow in src/store/sqlite-store.ts) in transactions of
//   50,000 rows, with the operations' indexes dropped during the load and created again from
//   their own `CREATE INDEX` text afterwards (one sort instead of a b-tree insert per row).
// - MongoDB: the store opens the database first (it creates the indexes), then insertMany of the
//   documents the store's own mapping makes (toDoc, projectFields in src/store/mongo-store.ts),
//   1,000 a batch.
// checkSeed() then reads a record of each kind back through the store and compares it with the
// generated one, so a seed the store would read differently fails the benchmark.
import { deepStrictEqual } from "node:assert/strict";
import Database from "better-sqlite3";
import { MongoClient, type Document } from "mongodb";
import { composeProjectName } from "../src/deploy/names.js";
import { projectFields, toDoc } from "../src/store/mongo-store.js";
import { operationToRow, projectToRow, versionToRow } from "../src/store/sqlite-store.js";
import type { Store } from "../src/store/store.js";
import type {
  OperationRecord,
  OperationStatus,
  ProjectRecord,
  VersionRecord,
  VersionState,
} from "../src/store/types.js";

export interface ScaleShape {
  projects: number;
  versionsPerProject: number;
  /** Finished operations of each version (up and down, mostly succeeded). */
  opsPerVersion: number;
  /** Versions with one queued operation each (what the claim figure takes). */
  queued: number;
  /** Versions with an operation left `running` by a dead process (what recovery handles). */
  running: number;
  /** Versions in state running; the benchmark starts one real container for each. */
  live: number;
}

/** Newest operation time: the data ends an hour before the benchmark runs. */
const END = Date.now() - 3_600_000;
/** One operation every 7 s over the whole data set, oldest first. */
const STEP_MS = 7_000;

const pad = (n: number) => String(n).padStart(6, "0");
const sha = (n: number) => (n * 2654435761).toString(16).padStart(8, "0").repeat(5).slice(0, 40);
const iso = (ms: number) => new Date(ms).toISOString();

export function projectName(p: number): string {
  return `scale-${pad(p)}`;
}

export function versionName(v: number): string {
  return v === 0 ? "main" : `feature-${v}`;
}

export function totalVersions(shape: ScaleShape): number {
  return shape.projects * shape.versionsPerProject;
}

export function totalOperations(shape: ScaleShape): number {
  return totalVersions(shape) * shape.opsPerVersion + shape.queued + shape.running;
}

/** Ids of generated records (the store takes any unique string). */
const ids = {
  project: (p: number) => `scalep${pad(p)}`,
  version: (g: number) => `scalev${pad(g)}`,
  operation: (g: number, j: number) => `scaleo${pad(g)}-${String(j).padStart(4, "0")}`,
};

export function makeProject(p: number, shape: ScaleShape): ProjectRecord {
  const created = iso(END - totalOperations(shape) * STEP_MS - 86_400_000 + p * 1000);
  return {
    id: ids.project(p),
    name: projectName(p),
    repoUrl: `git@gitlab.example.com:team/${projectName(p)}.git`,
    gitlab: { projectId: 1000 + p, url: `https://gitlab.example.com/team/${projectName(p)}` },
    autoDeploy: { branches: ["main", "feature-*"], tags: true, mergeRequests: true },
    env: { DATABASE_URL: `postgres://app:secret-${p}@db/app`, LOG_LEVEL: "info" },
    webhookSecret: `whsec-${pad(p)}-0123456789abcdef`,
    healthPath: "/healthz",
    createdAt: created,
    updatedAt: created,
  };
}

/** Global version number g = p * versionsPerProject + v; what state it is in. */
function stateOf(g: number, shape: ScaleShape): VersionState {
  if (g < shape.queued) return "queued";
  if (g < shape.queued + shape.running) return "deploying";
  if (g < shape.queued + shape.running + shape.live) return "running";
  return g % 13 === 0 ? "failed" : "off";
}

export function makeVersion(p: number, v: number, shape: ScaleShape): VersionRecord {
  const g = p * shape.versionsPerProject + v;
  const name = versionName(v);
  const created = iso(END - totalOperations(shape) * STEP_MS + g);
  const lastOpAt = END - (totalVersions(shape) - g) * STEP_MS;
  const version: VersionRecord = {
    id: ids.version(g),
    projectId: ids.project(p),
    name,
    ref: { type: "branch", name },
    sha: sha(g),
    deployedSha: sha(g),
    lastGood: { sha: sha(g), deployedAt: iso(lastOpAt) },
    goodDeploys: [
      { sha: sha(g), deployedAt: iso(lastOpAt), images: { web: `dockbot-${pad(g)}:good-1` } },
      { sha: sha(g + 1), deployedAt: iso(lastOpAt - 86_400_000) },
    ],
    lastRequestAt: iso(lastOpAt + 60_000),
    state: stateOf(g, shape),
    composeProject: composeProjectName(projectName(p), name),
    urls: [],
    ports: [],
    primaryService: "web",
    createdAt: created,
    updatedAt: created,
  };
  return version;
}

/** Operation j (0 = oldest) of global version g; finished ones first, then a queued or running one. */
export function makeOperation(p: number, v: number, j: number, shape: ScaleShape): OperationRecord {
  const g = p * shape.versionsPerProject + v;
  const versions = totalVersions(shape);
  const extra = j === shape.opsPerVersion;
  // Interleaved in time: operation j of every version, then j + 1 of every version.
  const queuedAtMs = extra
    ? END + g
    : END - (shape.opsPerVersion - j) * versions * STEP_MS + g * STEP_MS;
  let status: OperationStatus = (g + j) % 10 === 0 ? "failed" : "succeeded";
  if (extra) status = g < shape.queued ? "queued" : "running";
  const op: OperationRecord = {
    id: ids.operation(g, j),
    projectId: ids.project(p),
    versionId: ids.version(g),
    kind: j % 5 === 4 ? "down" : "up",
    sha: sha(g + j),
    trigger: { source: "webhook", event: "Push Hook", deliveryId: `d-${pad(g)}-${j}` },
    status,
    queuedAt: iso(queuedAtMs),
  };
  if (status === "queued") return op;
  op.startedAt = iso(queuedAtMs + 200);
  op.owner = "scale-old-replica";
  op.leaseUntil = iso(queuedAtMs + 30_000);
  if (status === "running") return op;
  op.finishedAt = iso(queuedAtMs + 45_000);
  op.exitCode = status === "failed" ? 1 : 0;
  if (status === "failed") op.error = "service web exited with code 1";
  op.gitlabReports = [
    { state: status === "failed" ? "failed" : "success", ok: true, attempts: 1, at: op.finishedAt },
  ];
  return op;
}

/** Every record in store order, in chunks, so no size holds 1M records in memory at once. */
function* records(
  shape: ScaleShape,
): Generator<
  | { kind: "project"; record: ProjectRecord }
  | { kind: "version"; record: VersionRecord }
  | { kind: "operation"; record: OperationRecord }
> {
  for (let p = 0; p < shape.projects; p++) yield { kind: "project", record: makeProject(p, shape) };
  for (let p = 0; p < shape.projects; p++)
    for (let v = 0; v < shape.versionsPerProject; v++)
      yield { kind: "version", record: makeVersion(p, v, shape) };
  // Oldest first, as they would have been inserted.
  for (let j = 0; j < shape.opsPerVersion; j++)
    for (let p = 0; p < shape.projects; p++)
      for (let v = 0; v < shape.versionsPerProject; v++)
        yield { kind: "operation", record: makeOperation(p, v, j, shape) };
  const extra = shape.queued + shape.running;
  for (let g = 0; g < Math.min(extra, totalVersions(shape)); g++) {
    const p = Math.floor(g / shape.versionsPerProject);
    const v = g % shape.versionsPerProject;
    yield { kind: "operation", record: makeOperation(p, v, shape.opsPerVersion, shape) };
  }
}

const SQLITE_BATCH = 50_000;

/** Bulk-loads a SQLite file the store has created (and closed). */
export function seedSqlite(file: string, shape: ScaleShape): void {
  const db = new Database(file);
  try {
    db.pragma("journal_mode = WAL");
    // A lost seed is made again: no fsync while loading.
    db.pragma("synchronous = OFF");
    const indexes = db
      .prepare<[], { name: string; sql: string }>(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'operations' AND sql IS NOT NULL",
      )
      .all();
    for (const index of indexes) db.exec(`DROP INDEX "${index.name}"`);
    const inserts = new Map<string, Database.Statement>();
    const insert = (table: string, row: object) => {
      let stmt = inserts.get(table);
      if (!stmt) {
        const cols = Object.keys(row);
        stmt = db.prepare(
          `INSERT INTO ${table} (${cols.join(", ")}) VALUES (${cols.map((c) => `@${c}`).join(", ")})`,
        );
        inserts.set(table, stmt);
      }
      stmt.run(row);
    };
    const load = db.transaction((batch: Array<() => void>) => {
      for (const fn of batch) fn();
    });
    let batch: Array<() => void> = [];
    for (const item of records(shape)) {
      if (item.kind === "project") batch.push(() => insert("projects", projectToRow(item.record)));
      else if (item.kind === "version")
        batch.push(() => insert("versions", versionToRow(item.record)));
      else batch.push(() => insert("operations", operationToRow(item.record)));
      if (batch.length >= SQLITE_BATCH) {
        load(batch);
        batch = [];
      }
    }
    load(batch);
    for (const index of indexes) db.exec(index.sql);
    db.exec("ANALYZE");
    db.pragma("wal_checkpoint(TRUNCATE)");
  } finally {
    db.close();
  }
}

const MONGO_BATCH = 1_000;

/** Bulk-loads a MongoDB database the store has opened once (so its indexes exist). */
export async function seedMongo(url: string, shape: ScaleShape): Promise<void> {
  const client = new MongoClient(url);
  try {
    const db = client.db();
    const pending = new Map<string, Document[]>();
    const flush = async (collection: string) => {
      const docs = pending.get(collection) ?? [];
      if (docs.length === 0) return;
      pending.set(collection, []);
      await db.collection(collection).insertMany(docs, { ordered: false });
    };
    const add = async (collection: string, doc: Document) => {
      const list = pending.get(collection) ?? [];
      list.push(doc);
      pending.set(collection, list);
      if (list.length >= MONGO_BATCH) await flush(collection);
    };
    for (const item of records(shape)) {
      const { id, ...fields } = item.record;
      if (item.kind === "project") await add("projects", toDoc(projectFields(item.record), id));
      else if (item.kind === "version") await add("versions", toDoc(fields, id));
      else await add("operations", toDoc(fields, id));
    }
    for (const collection of pending.keys()) await flush(collection);
  } finally {
    await client.close();
  }
}

/** Reads one record of each kind back through the store: it must equal the generated one. */
export async function checkSeed(store: Store, shape: ScaleShape): Promise<void> {
  const p = shape.projects - 1;
  const v = shape.versionsPerProject - 1;
  deepStrictEqual({ ...(await store.getProject(makeProject(p, shape).id)) }, makeProject(p, shape));
  deepStrictEqual(await store.getVersion(makeVersion(p, v, shape).id), makeVersion(p, v, shape));
  const op = makeOperation(p, v, shape.opsPerVersion - 1, shape);
  deepStrictEqual(await store.getOperation(op.id), op);
  const [last] = await store.listOperations({
    versionId: op.versionId,
    newestFirst: true,
    limit: 1,
  });
  deepStrictEqual(last, op);
}
