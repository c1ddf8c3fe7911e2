// The embedded store: one SQLite file in the data dir, through better-sqlite3.
//
// Invariants this module keeps (the queue relies on them):
// - Group commit: every write is queued, and the writes queued in one event-loop turn run
//   together in one IMMEDIATE transaction, each in a savepoint of its own; their promises settle
//   after that COMMIT. A write that fails (a unique key, say) rolls back alone. A write's effects
//   are visible to reads once its promise has resolved, never before. One commit per turn
//   instead of several per webhook delivery is what lets intake keep up with a burst.
// - IMMEDIATE: a write that reads before it writes (claim, enqueue, the updates) holds SQLite's
//   write lock from its first read: in WAL mode a deferred transaction that reads and then
//   writes after another connection committed fails with SQLITE_BUSY_SNAPSHOT, which
//   busy_timeout cannot wait out.
// - better-sqlite3 is synchronous and a group runs in one go, so inside one process no other
//   store call can run in the middle of a write, and nothing is held open across turns: another
//   connection (another process, or a second store on the same file) waits at most for a group.
// - Optional record fields are NULL columns and come back absent, never `null` or `undefined`
//   (exactOptionalPropertyTypes), so records read back equal what was written.
// - Ties in time order (same queuedAt, createdAt, receivedAt) are broken by insertion order
//   (rowid), so "oldest first" is total.
//
// No foreign keys: operations (and their logs) outlive their version, so a user can still read
// the log of the `delete` that removed it, and the MongoDB store has no such constraints either;
// both implementations must behave the same under one contract suite.
import Database from "better-sqlite3";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import {
  FALLBACK_AUTOCHECKPOINT_PAGES,
  startCheckpointer,
  type Checkpointer,
} from "./sqlite-checkpointer.js";
import {
  StoreConflictError,
  StoreUnavailableError,
  type AuditFilter,
  type ClaimRequest,
  type EnqueueOptions,
  type OperationFilter,
  type OperationPatch,
  type ProjectPatch,
  type RetentionBatch,
  type RetentionCursor,
  type RetentionResult,
  type Store,
  type VersionPatch,
} from "./store.js";
import { keptByVersion } from "./retention-keep.js";
import type {
  ApiTokenRecord,
  AuditRecord,
  DeliveryRecord,
  LogLine,
  OperationRecord,
  OperationStatus,
  PortAllocation,
  ProjectRecord,
  SessionRecord,
  VersionRecord,
} from "./types.js";

/**
 * Schema migrations, applied in order. `PRAGMA user_version` holds how many have run. Append
 * new entries; never edit one that has shipped.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    repo_url TEXT NOT NULL,
    compose_file TEXT,
    gitlab TEXT,
    auto_deploy TEXT NOT NULL,
    env TEXT NOT NULL,
    webhook_secret TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );

  CREATE TABLE versions (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    ref TEXT NOT NULL,
    sha TEXT,
    deployed_sha TEXT,
    state TEXT NOT NULL,
    compose_project TEXT NOT NULL,
    urls TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (project_id, name)
  );

  CREATE TABLE operations (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    version_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    sha TEXT,
    trigger_info TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    exit_code INTEGER,
    options TEXT,
    queued_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    owner TEXT,
    lease_until TEXT,
    cancel_requested INTEGER,
    gitlab_reports TEXT
  );
  -- claimOperation and the runner's "what is queued / running" scans.
  CREATE INDEX operations_status_queued_at ON operations (status, queued_at);
  -- Per-version lookups, and the "does this version have a running operation" probe of a claim.
  CREATE INDEX operations_version_status ON operations (version_id, status);
  CREATE INDEX operations_project_queued_at ON operations (project_id, queued_at);

  CREATE TABLE log_lines (
    operation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    stream TEXT NOT NULL,
    text TEXT NOT NULL,
    time TEXT NOT NULL,
    PRIMARY KEY (operation_id, seq)
  ) WITHOUT ROWID;

  CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    delivery_key TEXT NOT NULL,
    event TEXT NOT NULL,
    received_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    operation_ids TEXT NOT NULL,
    UNIQUE (project_id, delivery_key)
  );
  CREATE INDEX deliveries_project_received_at ON deliveries (project_id, received_at);
  `,
  // A version's queued operations in order straight from the index: without queued_at in it the
  // planner walked every queued operation of every version (status, queued_at) to skip a sort,
  // on each enqueue.
  `
  DROP INDEX operations_version_status;
  CREATE INDEX operations_version_status_queued_at ON operations (version_id, status, queued_at);
  `,
  // What dockbot made on GitLab: a version's environment and note ids, a project's hook and key.
  `
  ALTER TABLE versions ADD COLUMN gitlab TEXT;
  ALTER TABLE projects ADD COLUMN gitlab_status TEXT;
  `,
  // A project's pending deletion lives on the project (it was a setting `project-delete:<id>`
  // holding when it was asked for); a failed deletion keeps its reason there too.
  `
  ALTER TABLE projects ADD COLUMN deletion TEXT;
  UPDATE projects SET deletion = (
    SELECT json_object('requestedAt', s.value, 'state', 'deleting')
    FROM settings AS s WHERE s.key = 'project-delete:' || projects.id
  )
  WHERE EXISTS (
    SELECT 1 FROM settings AS s WHERE s.key = 'project-delete:' || projects.id AND s.value <> ''
  );
  DELETE FROM settings WHERE key LIKE 'project-delete:%';
  `,
  // Versions side by side (docs/api.md): a version's published ports and primary service, a
  // project's compose policy, and the host ports held for versions. host_port as the key makes
  // "never handed out twice" the database's job.
  `
  ALTER TABLE versions ADD COLUMN ports TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE versions ADD COLUMN primary_service TEXT;
  ALTER TABLE projects ADD COLUMN policy TEXT;
  CREATE TABLE port_allocations (
    host_port INTEGER PRIMARY KEY,
    version_id TEXT NOT NULL,
    service TEXT NOT NULL,
    target INTEGER NOT NULL,
    protocol TEXT NOT NULL,
    UNIQUE (version_id, service, target, protocol)
  );
  `,
  // Sessions, API tokens and the audit log (src/auth): the record as JSON in `doc`, with the
  // columns that are looked up or ordered by.
  `
  CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL,
    doc TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX sessions_expires_at ON sessions (expires_at);
  CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    doc TEXT NOT NULL
  );
  CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    project_id TEXT,
    at TEXT NOT NULL,
    doc TEXT NOT NULL
  );
  CREATE INDEX audit_at ON audit (at);
  CREATE INDEX audit_project_at ON audit (project_id, at);
  `,
  // Health-verified deploys (docs/api.md, "Health"): the path a project's primary service is
  // asked for before an up counts.
  `
  ALTER TABLE projects ADD COLUMN health_path TEXT;
  `,
  // Last good deploy and rollback (docs/api.md, "Health and rollback").
  `
  ALTER TABLE projects ADD COLUMN rollback TEXT;
  ALTER TABLE versions ADD COLUMN last_good TEXT;
  ALTER TABLE operations ADD COLUMN rolled_back_to TEXT;
  `,
  // Idle stop, running limits, resource limits and kept deploys (docs/api.md, "Idle stop and
  // limits", "Health and rollback").
  `
  ALTER TABLE projects ADD COLUMN auto_stop TEXT;
  ALTER TABLE projects ADD COLUMN max_running INTEGER;
  ALTER TABLE projects ADD COLUMN limits TEXT;
  ALTER TABLE versions ADD COLUMN good_deploys TEXT;
  ALTER TABLE versions ADD COLUMN last_request_at TEXT;
  `,
  // Retention (docs/api.md, "Retention"): operations by when they finished, oldest first.
  `
  CREATE INDEX operations_finished_at_id ON operations (finished_at, id);
  `,
  // Scale (docs/architecture.md, "Indexes"): a version's newest operation straight from the
  // index (the version list and the project page ask for it per version; with status between
  // version_id and queued_at every operation of the version was read and sorted), and every
  // version in creation order at start-up without sorting them all.
  `
  CREATE INDEX operations_version_queued_at ON operations (version_id, queued_at);
  CREATE INDEX versions_created_at ON versions (created_at);
  `,
];

/** How long a write waits for another connection's lock before failing (ms). */
const BUSY_TIMEOUT_MS = 5000;

// SQLite result codes that mean "the database cannot be used right now" rather than "this
// request is wrong": the API answers 503 for these.
const UNAVAILABLE_CODES = [
  "SQLITE_BUSY",
  "SQLITE_LOCKED",
  "SQLITE_IOERR",
  "SQLITE_CANTOPEN",
  "SQLITE_FULL",
  "SQLITE_READONLY",
  "SQLITE_CORRUPT",
  "SQLITE_NOTADB",
];

interface ProjectRow {
  id: string;
  name: string;
  repo_url: string;
  compose_file: string | null;
  gitlab: string | null;
  auto_deploy: string;
  env: string;
  webhook_secret: string;
  policy: string | null;
  health_path: string | null;
  rollback: string | null;
  auto_stop: string | null;
  max_running: number | null;
  limits: string | null;
  gitlab_status: string | null;
  deletion: string | null;
  created_at: string;
  updated_at: string;
}

interface VersionRow {
  id: string;
  project_id: string;
  name: string;
  ref: string;
  sha: string | null;
  deployed_sha: string | null;
  last_good: string | null;
  good_deploys: string | null;
  last_request_at: string | null;
  state: string;
  compose_project: string;
  urls: string;
  ports: string;
  primary_service: string | null;
  gitlab: string | null;
  created_at: string;
  updated_at: string;
}

interface OperationRow {
  id: string;
  project_id: string;
  version_id: string;
  kind: string;
  sha: string | null;
  trigger_info: string;
  status: string;
  error: string | null;
  exit_code: number | null;
  rolled_back_to: string | null;
  options: string | null;
  queued_at: string;
  started_at: string | null;
  finished_at: string | null;
  owner: string | null;
  lease_until: string | null;
  cancel_requested: number | null;
  gitlab_reports: string | null;
}

interface PortAllocationRow {
  host_port: number;
  version_id: string;
  service: string;
  target: number;
  protocol: string;
}

interface LogLineRow {
  operation_id: string;
  seq: number;
  stream: string;
  text: string;
  time: string;
}

interface DeliveryRow {
  id: string;
  project_id: string;
  delivery_key: string;
  event: string;
  received_at: string;
  outcome: string;
  reason: string | null;
  operation_ids: string;
}

/** A job of an optimistic group threw: the group is run again with a savepoint per job. */
class JobFailed extends Error {
  constructor(cause: unknown) {
    super("a write of the group failed", { cause });
  }
}

/** A write waiting for the next group commit. */
interface PendingWrite {
  fn: () => unknown;
  conflict: (() => string) | undefined;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}

interface JobOutcome {
  ok: boolean;
  value: unknown;
}

/** Opens (creating if needed) the SQLite file and brings its schema up to date. */
export async function openSqliteStore(file: string): Promise<Store> {
  const inMemory = file === ":memory:";
  if (!inMemory) await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  let db: Database.Database;
  try {
    db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    throw new StoreUnavailableError(`cannot open SQLite database ${file}`, { cause: err });
  }
  try {
    if (!inMemory) db.pragma("journal_mode = WAL");
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // In WAL mode NORMAL never corrupts and survives a process crash; only an OS crash or
    // power loss can roll back the last commits. FULL would fsync every log batch.
    db.pragma("synchronous = NORMAL");
    migrate(db, file);
    if (inMemory) return new SqliteStore(db);
    db.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
    return new SqliteStore(db, startCheckpointer(file));
  } catch (err) {
    db.close();
    throw err;
  }
}

function migrate(db: Database.Database, file: string): void {
  const current = Number(db.pragma("user_version", { simple: true }));
  if (current > MIGRATIONS.length) {
    throw new Error(
      `SQLite database ${file} has schema version ${current}, newer than this dockbot knows ` +
        `(${MIGRATIONS.length}); run a newer dockbot or restore an older backup`,
    );
  }
  db.transaction(() => {
    for (let v = current; v < MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v] ?? "");
      // PRAGMA does not take bound parameters; v is our own integer.
      db.pragma(`user_version = ${v + 1}`);
    }
  }).immediate();
}

export class SqliteStore implements Store {
  readonly kind = "sqlite" as const;
  private readonly listOperationsCache = new Map<
    string,
    Database.Statement<unknown[], OperationRow>
  >();

  private readonly s: ReturnType<typeof prepareStatements>;
  private readonly updateCache = new Map<string, Database.Statement>();
  private projectsCache: { dataVersion: number; projects: ProjectRecord[] } | undefined;
  private pendingWrites: PendingWrite[] = [];
  private readonly groupCommit: (jobs: PendingWrite[], outcomes: JobOutcome[]) => void;

  constructor(
    private readonly db: Database.Database,
    private readonly checkpointer?: Checkpointer,
  ) {
    this.s = prepareStatements(db);
    // Nested better-sqlite3 transactions are savepoints: a job that throws is rolled back alone.
    const savepoint = db.transaction((job: PendingWrite) => job.fn());
    const isolated = db.transaction((jobs: PendingWrite[], outcomes: JobOutcome[]) => {
      for (const job of jobs) {
        try {
          outcomes.push({ ok: true, value: savepoint(job) });
        } catch (err) {
          outcomes.push({ ok: false, value: err });
        }
      }
    });
    // Jobs almost never fail, and a savepoint per job costs two statements: run the group
    // without them first; if a job throws, that attempt rolls back whole and the group runs
    // again job by job in savepoints (a job only touches the database, so running it twice is
    // running it once).
    const optimistic = db.transaction((jobs: PendingWrite[], outcomes: JobOutcome[]) => {
      for (const job of jobs) {
        let value: unknown;
        try {
          value = job.fn();
        } catch (err) {
          throw new JobFailed(err);
        }
        outcomes.push({ ok: true, value });
      }
    });
    this.groupCommit = (jobs, outcomes) => {
      try {
        optimistic.immediate(jobs, outcomes);
      } catch (err) {
        if (!(err instanceof JobFailed)) throw err;
        outcomes.length = 0;
        isolated.immediate(jobs, outcomes);
      }
    };
  }

  async close(): Promise<void> {
    // Writes already asked for are committed (or fail) before the file is closed.
    this.flushWrites();
    await this.checkpointer?.stop();
    if (this.db.open) this.db.close();
  }

  ping(): Promise<void> {
    return this.run(() => {
      this.s.ping.get();
    });
  }

  // Settings

  getSetting(key: string): Promise<string | undefined> {
    return this.run(() => this.s.getSetting.get(key)?.value);
  }

  setSetting(key: string, value: string): Promise<void> {
    return this.write(() => {
      this.s.setSetting.run(key, value);
    });
  }

  // Projects

  createProject(project: ProjectRecord): Promise<void> {
    return this.write(
      () => {
        this.projectsCache = undefined;
        this.s.insertProject.run(projectToRow(project));
      },
      () => `project name '${project.name}' (or id) is taken`,
    );
  }

  getProject(id: string): Promise<ProjectRecord | undefined> {
    return this.run(() => optional(this.s.getProject.get(id), rowToProject));
  }

  getProjectByName(name: string): Promise<ProjectRecord | undefined> {
    return this.run(() => optional(this.s.getProjectByName.get(name), rowToProject));
  }

  listProjects(): Promise<ProjectRecord[]> {
    // Every webhook delivery reads the project list (its token is matched against each secret),
    // so the list is kept until a project changes through this store or another connection
    // (another process, or another store on this file) commits anything: data_version tells.
    return this.run(() => {
      const dataVersion = this.s.dataVersion.get() as number;
      let cached = this.projectsCache;
      if (cached?.dataVersion !== dataVersion) {
        cached = { dataVersion, projects: this.s.listProjects.all().map(rowToProject).map(freeze) };
        this.projectsCache = cached;
      }
      return [...cached.projects];
    });
  }

  updateProject(id: string, patch: ProjectPatch): Promise<ProjectRecord | undefined> {
    return this.write(
      () => {
        const row = this.s.getProject.get(id);
        if (!row) return undefined;
        const current = rowToProject(row);
        const next: ProjectRecord = { ...current, ...patch, id, createdAt: current.createdAt };
        this.projectsCache = undefined;
        return rowToProject(this.updateChanged("projects", row, projectToRow(next)));
      },
      () => `project name '${patch.name ?? ""}' is taken`,
    );
  }

  deleteProject(id: string): Promise<void> {
    return this.write(() => {
      this.s.deleteDeliveriesOfProject.run(id);
      this.projectsCache = undefined;
      this.s.deleteProject.run(id);
    });
  }

  // Versions

  createVersion(version: VersionRecord): Promise<void> {
    return this.write(
      () => {
        this.s.insertVersion.run(versionToRow(version));
      },
      () => `version name '${version.name}' (or id) is taken in this project`,
    );
  }

  getVersion(id: string): Promise<VersionRecord | undefined> {
    return this.run(() => optional(this.s.getVersion.get(id), rowToVersion));
  }

  getVersionByName(projectId: string, name: string): Promise<VersionRecord | undefined> {
    return this.run(() => optional(this.s.getVersionByName.get(projectId, name), rowToVersion));
  }

  listVersions(projectId?: string): Promise<VersionRecord[]> {
    return this.run(() =>
      (projectId === undefined
        ? this.s.listVersions.all()
        : this.s.listVersionsOfProject.all(projectId)
      ).map(rowToVersion),
    );
  }

  updateVersion(id: string, patch: VersionPatch): Promise<VersionRecord | undefined> {
    return this.write(
      () => {
        const row = this.s.getVersion.get(id);
        if (!row) return undefined;
        const current = rowToVersion(row);
        const next: VersionRecord = {
          ...current,
          ...patch,
          id,
          projectId: current.projectId,
          createdAt: current.createdAt,
        };
        return rowToVersion(this.updateChanged("versions", row, versionToRow(next)));
      },
      () => `version name '${patch.name ?? ""}' is taken in this project`,
    );
  }

  deleteVersion(id: string): Promise<void> {
    return this.write(() => {
      this.s.releasePortsOfVersion.run(id);
      this.s.deleteVersion.run(id);
    });
  }

  // Host ports

  listPortAllocations(versionId?: string): Promise<PortAllocation[]> {
    return this.run(() =>
      (versionId === undefined
        ? this.s.listPortAllocations.all()
        : this.s.listPortAllocationsOfVersion.all(versionId)
      ).map(rowToPortAllocation),
    );
  }

  reservePort(a: PortAllocation): Promise<boolean> {
    return this.write(
      () =>
        this.s.reservePort.run({
          host_port: a.hostPort,
          version_id: a.versionId,
          service: a.service,
          target: a.target,
          protocol: a.protocol,
        }).changes === 1,
    );
  }

  releasePorts(versionId: string, hostPorts?: number[]): Promise<void> {
    return this.write(() => {
      if (hostPorts === undefined) this.s.releasePortsOfVersion.run(versionId);
      else for (const port of hostPorts) this.s.releasePort.run(versionId, port);
    });
  }

  // Operations

  enqueueOperation(op: OperationRecord, opts: EnqueueOptions = {}): Promise<OperationRecord[]> {
    return this.write(
      () => {
        // One statement supersedes and returns them (RETURNING's order is unspecified: sorted
        // here, oldest first).
        const superseded = this.s.supersedeQueuedOfVersion
          .all(op.queuedAt, op.versionId)
          .sort(byQueuedAt)
          .map(({ rid: _rid, ...row }) => rowToOperation(row));
        // Before the insert, in the same transaction: the new operation cannot be among them.
        const stopping =
          opts.cancelRunning === undefined
            ? []
            : this.s.cancelRunningOfVersion
                .all(opts.cancelRunning, op.versionId)
                .sort(byQueuedAt)
                .map(({ rid: _rid, ...row }) => rowToOperation(row));
        this.s.insertOperation.run(operationToRow(op));
        return [...superseded, ...stopping];
      },
      () => `operation id '${op.id}' is taken`,
    );
  }

  getOperation(id: string): Promise<OperationRecord | undefined> {
    return this.run(() => optional(this.s.getOperation.get(id), rowToOperation));
  }

  listOperations(filter: OperationFilter = {}): Promise<OperationRecord[]> {
    return this.run(() => {
      const where: string[] = [];
      const params: unknown[] = [];
      if (filter.projectId !== undefined) {
        where.push("project_id = ?");
        params.push(filter.projectId);
      }
      if (filter.versionId !== undefined) {
        where.push("version_id = ?");
        params.push(filter.versionId);
      }
      if (filter.status !== undefined) {
        if (filter.status.length === 0) return [];
        where.push(`status IN (${filter.status.map(() => "?").join(", ")})`);
        params.push(...filter.status);
      }
      const dir = filter.newestFirst === true ? "DESC" : "ASC";
      // -1 is SQLite's "no limit".
      params.push(filter.limit ?? -1);
      const sql =
        `SELECT * FROM operations${where.length > 0 ? ` WHERE ${where.join(" AND ")}` : ""}` +
        ` ORDER BY queued_at ${dir}, rowid ${dir} LIMIT ?`;
      let stmt = this.listOperationsCache.get(sql);
      if (!stmt) {
        stmt = this.db.prepare<unknown[], OperationRow>(sql);
        this.listOperationsCache.set(sql, stmt);
      }
      return stmt.all(...params).map(rowToOperation);
    });
  }

  claimOperation(req: ClaimRequest): Promise<OperationRecord | undefined> {
    return this.write(() => {
      const row = this.s.nextClaimable.get();
      if (!row) return undefined;
      this.s.claim.run(req.owner, req.leaseUntil, req.now, row.id);
      const record = rowToOperation(row);
      record.status = "running";
      record.owner = req.owner;
      record.leaseUntil = req.leaseUntil;
      record.startedAt = req.now;
      return record;
    });
  }

  startOperation(op: OperationRecord): Promise<boolean> {
    return this.write(
      () => {
        if (this.s.activeOperationOfVersion.get(op.versionId) !== undefined) return false;
        this.s.insertOperation.run(operationToRow(op));
        return true;
      },
      () => `operation id '${op.id}' is taken`,
    );
  }

  // One transaction, as startOperation: the check and the insert cannot be split.
  enqueueOperationIfIdle(op: OperationRecord): Promise<boolean> {
    return this.startOperation(op);
  }

  updateOperation(
    id: string,
    patch: OperationPatch,
    cond: { ifStatus?: OperationStatus[]; ifOwner?: string } = {},
  ): Promise<OperationRecord | undefined> {
    return this.write(() => {
      const row = this.s.getOperation.get(id);
      if (!row) return undefined;
      const current = rowToOperation(row);
      if (cond.ifStatus !== undefined && !cond.ifStatus.includes(current.status)) {
        return undefined;
      }
      if (cond.ifOwner !== undefined && current.owner !== cond.ifOwner) return undefined;
      const next: OperationRecord = {
        ...current,
        ...patch,
        id,
        projectId: current.projectId,
        versionId: current.versionId,
      };
      return rowToOperation(this.updateChanged("operations", row, operationToRow(next)));
    });
  }

  deleteOldOperations(batch: RetentionBatch): Promise<RetentionResult> {
    // One write, bounded by `limit` operations and `maxLogLines` lines: other writes wait for
    // at most one batch (the caller yields between batches).
    return this.write(() => {
      const after = batch.after ?? { finishedAt: "", id: "" };
      const rows = this.s.oldOperations.all(
        batch.finishedBefore,
        after.finishedAt,
        after.finishedAt,
        after.id,
        batch.limit,
      );
      const versions = new Map<string, { version?: VersionRecord; newest?: string | undefined }>();
      const result: RetentionResult = { deletedOperations: 0, deletedLogLines: 0 };
      let budget = Math.max(1, batch.maxLogLines);
      let cursor: RetentionCursor | undefined = batch.after;
      for (const row of rows) {
        const op = rowToOperation(row);
        let facts = versions.get(op.versionId);
        if (facts === undefined) {
          const version = optional(this.s.getVersion.get(op.versionId), rowToVersion);
          facts =
            version === undefined
              ? {}
              : { version, newest: this.s.newestOperationOfVersion.get(op.versionId) };
          versions.set(op.versionId, facts);
        }
        const kept =
          facts.version !== undefined &&
          (facts.newest === op.id || keptByVersion(op, facts.version));
        if (!kept) {
          const last = this.s.logSeqAt.get(op.id, budget - 1);
          if (last === undefined) {
            const gone = this.s.deleteAllLogLines.run(op.id).changes;
            result.deletedLogLines += gone;
            budget -= gone;
          } else {
            result.deletedLogLines += this.s.deleteLogLinesUpTo.run(op.id, last).changes;
            budget = 0;
            // Lines left: this operation is looked at again by the next batch.
            if (this.s.logSeqAt.get(op.id, 0) !== undefined) {
              result.next = cursor ?? { finishedAt: "", id: "" };
              return result;
            }
          }
          this.s.deleteOperation.run(op.id);
          result.deletedOperations += 1;
        }
        cursor = { finishedAt: op.finishedAt ?? "", id: op.id };
        if (budget <= 0) break;
      }
      if (rows.length === batch.limit || budget <= 0) {
        if (cursor !== undefined) result.next = cursor;
      }
      return result;
    });
  }

  // Log lines

  appendLogLines(lines: LogLine[]): Promise<void> {
    if (lines.length === 0) return Promise.resolve();
    // One write per batch, so a batch commits at once (with whatever else this turn wrote):
    // one WAL append per batch instead of one per line is what makes ~100k lines/s possible.
    const insert = this.s.insertLogLine;
    return this.write(
      () => {
        for (const l of lines) insert.run(l.operationId, l.seq, l.stream, l.text, l.time);
      },
      () => `a log line of operation '${lines[0]?.operationId ?? ""}' has a seq stored before`,
    );
  }

  getLogLines(operationId: string, afterSeq = 0, limit?: number): Promise<LogLine[]> {
    return this.run(() =>
      this.s.getLogLines.all(operationId, afterSeq, limit ?? -1).map(rowToLogLine),
    );
  }

  deleteLogLines(operationId: string, fromSeq: number, toSeq: number): Promise<void> {
    return this.write(() => {
      this.s.deleteLogLines.run(operationId, fromSeq, toSeq);
    });
  }

  // Deliveries

  insertDelivery(delivery: DeliveryRecord): Promise<boolean> {
    return this.write(
      () => this.s.insertDelivery.run(deliveryToRow(delivery)).changes === 1,
      () => `delivery id '${delivery.id}' is taken`,
    );
  }

  updateDelivery(
    id: string,
    patch: Partial<Pick<DeliveryRecord, "deliveryKey" | "outcome" | "reason" | "operationIds">>,
  ): Promise<void> {
    return this.write(() => {
      const row = this.s.getDelivery.get(id);
      if (!row) return;
      const current = rowToDelivery(row);
      const next: DeliveryRecord = { ...current, ...patch, id };
      this.updateChanged("deliveries", row, deliveryToRow(next));
    });
  }

  listDeliveries(projectId: string, limit?: number): Promise<DeliveryRecord[]> {
    return this.run(() => this.s.listDeliveries.all(projectId, limit ?? -1).map(rowToDelivery));
  }

  // Sessions, API tokens, audit

  createSession(session: SessionRecord): Promise<void> {
    return this.write(
      () => {
        this.s.insertSession.run(session.id, session.expiresAt, JSON.stringify(session));
      },
      () => "session id is taken",
    );
  }

  getSession(id: string): Promise<SessionRecord | undefined> {
    return this.run(() => fromJson<SessionRecord>(this.s.getSession.get(id)));
  }

  deleteSession(id: string): Promise<void> {
    return this.write(() => {
      this.s.deleteSession.run(id);
    });
  }

  deleteExpiredSessions(now: string): Promise<number> {
    return this.write(() => this.s.deleteExpiredSessions.run(now).changes);
  }

  createApiToken(token: ApiTokenRecord): Promise<void> {
    return this.write(
      () => {
        this.s.insertApiToken.run(token.id, token.hash, token.createdAt, JSON.stringify(token));
      },
      () => `API token id '${token.id}' (or its hash) is taken`,
    );
  }

  getApiTokenByHash(hash: string): Promise<ApiTokenRecord | undefined> {
    return this.run(() => fromJson<ApiTokenRecord>(this.s.getApiTokenByHash.get(hash)));
  }

  getApiToken(id: string): Promise<ApiTokenRecord | undefined> {
    return this.run(() => fromJson<ApiTokenRecord>(this.s.getApiToken.get(id)));
  }

  listApiTokens(): Promise<ApiTokenRecord[]> {
    return this.run(() =>
      this.s.listApiTokens.all().map((row) => JSON.parse(row.doc) as ApiTokenRecord),
    );
  }

  revokeApiToken(id: string, at: string): Promise<ApiTokenRecord | undefined> {
    return this.write(() => {
      const current = fromJson<ApiTokenRecord>(this.s.getApiToken.get(id));
      if (!current) return undefined;
      if (current.revokedAt !== undefined) return current;
      const revoked: ApiTokenRecord = { ...current, revokedAt: at };
      this.s.updateApiTokenDoc.run(JSON.stringify(revoked), id);
      return revoked;
    });
  }

  appendAudit(entry: AuditRecord): Promise<void> {
    return this.write(
      () => {
        this.s.insertAudit.run(entry.id, entry.projectId ?? null, entry.at, JSON.stringify(entry));
      },
      () => `audit entry id '${entry.id}' is taken`,
    );
  }

  listAudit(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    return this.run(() => {
      const where: string[] = [];
      const params: unknown[] = [];
      if (filter.projectId !== undefined) {
        where.push("project_id = ?");
        params.push(filter.projectId);
      }
      if (filter.since !== undefined) {
        where.push("at >= ?");
        params.push(filter.since);
      }
      const sql = `SELECT doc FROM audit ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
        ORDER BY at DESC, rowid DESC LIMIT ?`;
      params.push(filter.limit ?? -1);
      return this.db
        .prepare<unknown[], { doc: string }>(sql)
        .all(...params)
        .map((row) => JSON.parse(row.doc) as AuditRecord);
    });
  }

  /**
   * UPDATEs only the columns whose value changed (nothing when none did): SQLite rewrites the
   * entries of every index on a column named in SET, changed or not, so a full-row UPDATE of a
   * version's state would also rewrite its (project, name) index entry. Returns `after`.
   */
  private updateChanged<R extends { id: string }>(table: string, before: R, after: R): R {
    const cols: string[] = [];
    const values: unknown[] = [];
    for (const [col, value] of Object.entries(after)) {
      if (col !== "id" && value !== (before as Record<string, unknown>)[col]) {
        cols.push(col);
        values.push(value);
      }
    }
    if (cols.length === 0) return after;
    const sql = `UPDATE ${table} SET ${cols.map((c) => `${c} = ?`).join(", ")} WHERE id = ?`;
    let stmt = this.updateCache.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.updateCache.set(sql, stmt);
    }
    stmt.run(...values, after.id);
    return after;
  }

  /**
   * Queues a write for the next group commit (see the top of this file). Its promise settles
   * after the group's COMMIT, like `run`'s, with the same error translation.
   */
  private write<T>(fn: () => T, conflict?: () => string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pendingWrites.push({
        fn,
        conflict,
        resolve: resolve as (value: unknown) => void,
        reject,
      });
      if (this.pendingWrites.length === 1) setImmediate(() => this.flushWrites());
    });
  }

  /** Runs every queued write in one IMMEDIATE transaction, each in a savepoint of its own. */
  private flushWrites(): void {
    const jobs = this.pendingWrites;
    if (jobs.length === 0) return;
    this.pendingWrites = [];
    const outcomes: JobOutcome[] = [];
    try {
      this.groupCommit(jobs, outcomes);
    } catch (err) {
      // BEGIN or COMMIT failed (locked, disk full, closed): none of the group was stored.
      for (const job of jobs) job.reject(this.translateError(err, job.conflict));
      return;
    }
    jobs.forEach((job, i) => {
      const outcome = outcomes[i];
      if (outcome?.ok) job.resolve(outcome.value);
      else job.reject(this.translateError(outcome?.value, job.conflict));
    });
  }

  /**
   * Runs a synchronous database call as a promise, turning SQLite failures into the store's
   * errors: unique violations into StoreConflictError (with `conflict()` as the message), I/O
   * and lock failures (and a closed database) into StoreUnavailableError.
   */
  private run<T>(fn: () => T, conflict?: () => string): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(this.translateError(err, conflict));
    }
  }

  private translateError(err: unknown, conflict?: () => string): Error {
    if (err instanceof Database.SqliteError) {
      if (err.code === "SQLITE_CONSTRAINT_UNIQUE" || err.code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
        return new StoreConflictError(conflict?.() ?? "a unique key is taken", { cause: err });
      }
      if (UNAVAILABLE_CODES.some((code) => err.code.startsWith(code))) {
        return new StoreUnavailableError(`SQLite database unavailable: ${err.code}`, {
          cause: err,
        });
      }
      return err;
    }
    if (!this.db.open) {
      return new StoreUnavailableError("SQLite database is closed", { cause: err });
    }
    return err instanceof Error ? err : new Error("SQLite store call failed", { cause: err });
  }
}

function fromJson<T>(row: { doc: string } | undefined): T | undefined {
  return row === undefined ? undefined : (JSON.parse(row.doc) as T);
}

function prepareStatements(db: Database.Database) {
  return {
    ping: db.prepare<[], { one: number }>("SELECT 1 AS one"),

    insertSession: db.prepare<[string, string, string]>(
      "INSERT INTO sessions (id, expires_at, doc) VALUES (?, ?, ?)",
    ),
    getSession: db.prepare<[string], { doc: string }>("SELECT doc FROM sessions WHERE id = ?"),
    deleteSession: db.prepare<[string]>("DELETE FROM sessions WHERE id = ?"),
    deleteExpiredSessions: db.prepare<[string]>("DELETE FROM sessions WHERE expires_at < ?"),
    insertApiToken: db.prepare<[string, string, string, string]>(
      "INSERT INTO api_tokens (id, hash, created_at, doc) VALUES (?, ?, ?, ?)",
    ),
    getApiToken: db.prepare<[string], { doc: string }>("SELECT doc FROM api_tokens WHERE id = ?"),
    getApiTokenByHash: db.prepare<[string], { doc: string }>(
      "SELECT doc FROM api_tokens WHERE hash = ?",
    ),
    listApiTokens: db.prepare<[], { doc: string }>(
      "SELECT doc FROM api_tokens ORDER BY created_at, rowid",
    ),
    updateApiTokenDoc: db.prepare<[string, string]>("UPDATE api_tokens SET doc = ? WHERE id = ?"),
    insertAudit: db.prepare<[string, string | null, string, string]>(
      "INSERT INTO audit (id, project_id, at, doc) VALUES (?, ?, ?, ?)",
    ),

    getSetting: db.prepare<[string], { value: string }>("SELECT value FROM settings WHERE key = ?"),
    setSetting: db.prepare<[string, string]>(
      "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ),

    insertProject: db.prepare<[ProjectRow]>(
      `INSERT INTO projects (id, name, repo_url, compose_file, gitlab, auto_deploy, env, policy,
         health_path, rollback, auto_stop, max_running, limits, webhook_secret, gitlab_status,
         deletion, created_at, updated_at)
       VALUES (@id, @name, @repo_url, @compose_file, @gitlab, @auto_deploy, @env, @policy,
         @health_path, @rollback, @auto_stop, @max_running, @limits, @webhook_secret, @gitlab_status,
         @deletion, @created_at, @updated_at)`,
    ),
    getProject: db.prepare<[string], ProjectRow>("SELECT * FROM projects WHERE id = ?"),
    getProjectByName: db.prepare<[string], ProjectRow>("SELECT * FROM projects WHERE name = ?"),
    listProjects: db.prepare<[], ProjectRow>("SELECT * FROM projects ORDER BY created_at, rowid"),
    dataVersion: db.prepare<[]>("PRAGMA data_version").pluck(),
    deleteProject: db.prepare<[string]>("DELETE FROM projects WHERE id = ?"),

    insertVersion: db.prepare<[VersionRow]>(
      `INSERT INTO versions (id, project_id, name, ref, sha, deployed_sha, state, compose_project,
         ports, primary_service, last_good, good_deploys, last_request_at,
         urls, gitlab, created_at, updated_at)
       VALUES (@id, @project_id, @name, @ref, @sha, @deployed_sha, @state, @compose_project,
         @ports, @primary_service, @last_good, @good_deploys, @last_request_at,
         @urls, @gitlab, @created_at, @updated_at)`,
    ),
    getVersion: db.prepare<[string], VersionRow>("SELECT * FROM versions WHERE id = ?"),
    getVersionByName: db.prepare<[string, string], VersionRow>(
      "SELECT * FROM versions WHERE project_id = ? AND name = ?",
    ),
    listVersions: db.prepare<[], VersionRow>("SELECT * FROM versions ORDER BY created_at, rowid"),
    listVersionsOfProject: db.prepare<[string], VersionRow>(
      "SELECT * FROM versions WHERE project_id = ? ORDER BY created_at, rowid",
    ),
    deleteVersion: db.prepare<[string]>("DELETE FROM versions WHERE id = ?"),

    listPortAllocations: db.prepare<[], PortAllocationRow>(
      "SELECT * FROM port_allocations ORDER BY host_port",
    ),
    listPortAllocationsOfVersion: db.prepare<[string], PortAllocationRow>(
      "SELECT * FROM port_allocations WHERE version_id = ? ORDER BY host_port",
    ),
    reservePort: db.prepare<[PortAllocationRow]>(
      `INSERT INTO port_allocations (host_port, version_id, service, target, protocol)
       VALUES (@host_port, @version_id, @service, @target, @protocol)
       ON CONFLICT DO NOTHING`,
    ),
    releasePort: db.prepare<[string, number]>(
      "DELETE FROM port_allocations WHERE version_id = ? AND host_port = ?",
    ),
    releasePortsOfVersion: db.prepare<[string]>(
      "DELETE FROM port_allocations WHERE version_id = ?",
    ),

    insertOperation: db.prepare<[OperationRow]>(
      `INSERT INTO operations (id, project_id, version_id, kind, sha, trigger_info, status, error,
         exit_code, rolled_back_to, options, queued_at, started_at, finished_at, owner,
         lease_until, cancel_requested, gitlab_reports)
       VALUES (@id, @project_id, @version_id, @kind, @sha, @trigger_info, @status, @error,
         @exit_code, @rolled_back_to, @options, @queued_at, @started_at, @finished_at, @owner,
         @lease_until, @cancel_requested, @gitlab_reports)`,
    ),
    getOperation: db.prepare<[string], OperationRow>("SELECT * FROM operations WHERE id = ?"),
    supersedeQueuedOfVersion: db.prepare<[string, string], OperationRow & { rid: number }>(
      `UPDATE operations SET status = 'superseded', finished_at = ?
       WHERE version_id = ? AND status = 'queued'
       RETURNING rowid AS rid, *`,
    ),
    cancelRunningOfVersion: db.prepare<[string, string], OperationRow & { rid: number }>(
      `UPDATE operations SET cancel_requested = 1, error = ?
       WHERE version_id = ? AND status = 'running'
       RETURNING rowid AS rid, *`,
    ),
    nextClaimable: db.prepare<[], OperationRow>(
      `SELECT * FROM operations AS o
       WHERE o.status = 'queued'
         AND NOT EXISTS (
           SELECT 1 FROM operations AS r WHERE r.version_id = o.version_id AND r.status = 'running'
         )
       ORDER BY o.queued_at, o.rowid
       LIMIT 1`,
    ),
    activeOperationOfVersion: db.prepare<[string], { one: number }>(
      `SELECT 1 AS one FROM operations
       WHERE version_id = ? AND status IN ('queued', 'running') LIMIT 1`,
    ),
    claim: db.prepare<[string, string, string, string]>(
      `UPDATE operations SET status = 'running', owner = ?, lease_until = ?, started_at = ?
       WHERE id = ? AND status = 'queued'`,
    ),

    oldOperations: db.prepare<[string, string, string, string, number], OperationRow>(
      `SELECT * FROM operations
       WHERE finished_at < ? AND (finished_at > ? OR (finished_at = ? AND id > ?))
       ORDER BY finished_at, id
       LIMIT ?`,
    ),
    newestOperationOfVersion: db
      .prepare<[string], string>(
        "SELECT id FROM operations WHERE version_id = ? ORDER BY queued_at DESC, rowid DESC LIMIT 1",
      )
      .pluck(),
    deleteOperation: db.prepare<[string]>("DELETE FROM operations WHERE id = ?"),
    logSeqAt: db
      .prepare<[string, number], number>(
        "SELECT seq FROM log_lines WHERE operation_id = ? ORDER BY seq LIMIT 1 OFFSET ?",
      )
      .pluck(),
    deleteLogLinesUpTo: db.prepare<[string, number]>(
      "DELETE FROM log_lines WHERE operation_id = ? AND seq <= ?",
    ),
    deleteAllLogLines: db.prepare<[string]>("DELETE FROM log_lines WHERE operation_id = ?"),

    insertLogLine: db.prepare<[string, number, string, string, string]>(
      "INSERT INTO log_lines (operation_id, seq, stream, text, time) VALUES (?, ?, ?, ?, ?)",
    ),
    getLogLines: db.prepare<[string, number, number], LogLineRow>(
      "SELECT * FROM log_lines WHERE operation_id = ? AND seq > ? ORDER BY seq LIMIT ?",
    ),
    deleteLogLines: db.prepare<[string, number, number]>(
      "DELETE FROM log_lines WHERE operation_id = ? AND seq BETWEEN ? AND ?",
    ),

    insertDelivery: db.prepare<[DeliveryRow]>(
      `INSERT INTO deliveries (id, project_id, delivery_key, event, received_at, outcome, reason,
         operation_ids)
       VALUES (@id, @project_id, @delivery_key, @event, @received_at, @outcome, @reason,
         @operation_ids)
       ON CONFLICT (project_id, delivery_key) DO NOTHING`,
    ),
    getDelivery: db.prepare<[string], DeliveryRow>("SELECT * FROM deliveries WHERE id = ?"),
    listDeliveries: db.prepare<[string, number], DeliveryRow>(
      "SELECT * FROM deliveries WHERE project_id = ? ORDER BY received_at DESC, rowid DESC LIMIT ?",
    ),
    deleteDeliveriesOfProject: db.prepare<[string]>("DELETE FROM deliveries WHERE project_id = ?"),
  };
}

// Row <-> record mapping. `undefined` (also a patch's explicit `undefined`) becomes NULL, and
// NULL becomes an absent property.

/** A project record shared from the cache: frozen, so no caller can change it for the others. */
function freeze(project: ProjectRecord): ProjectRecord {
  Object.freeze(project.autoDeploy.branches);
  Object.freeze(project.autoDeploy);
  Object.freeze(project.env);
  if (project.gitlab) Object.freeze(project.gitlab);
  if (project.deletion) Object.freeze(project.deletion);
  return Object.freeze(project);
}

/** RETURNING's order is unspecified: rows are sorted oldest first (queued_at, then rowid). */
function byQueuedAt(
  a: { queued_at: string; rid: number },
  b: { queued_at: string; rid: number },
): number {
  return a.queued_at < b.queued_at ? -1 : a.queued_at > b.queued_at ? 1 : a.rid - b.rid;
}

function optional<R, T>(row: R | undefined, map: (row: R) => T): T | undefined {
  return row === undefined ? undefined : map(row);
}

function json(value: unknown): string {
  return JSON.stringify(value);
}

function jsonOrNull(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

function parse<T>(text: string): T {
  return JSON.parse(text) as T;
}

/** Exported for bench/scale.ts, which seeds rows as the store writes them. */
export function projectToRow(p: ProjectRecord): ProjectRow {
  return {
    id: p.id,
    name: p.name,
    repo_url: p.repoUrl,
    compose_file: p.composeFile ?? null,
    gitlab: jsonOrNull(p.gitlab),
    auto_deploy: json(p.autoDeploy),
    env: json(p.env),
    webhook_secret: p.webhookSecret,
    policy: jsonOrNull(p.policy),
    health_path: p.healthPath ?? null,
    rollback: p.rollback ?? null,
    auto_stop: jsonOrNull(p.autoStop),
    max_running: p.maxRunning ?? null,
    limits: jsonOrNull(p.limits),
    gitlab_status: jsonOrNull(p.gitlabStatus),
    deletion: jsonOrNull(p.deletion),
    created_at: p.createdAt,
    updated_at: p.updatedAt,
  };
}

function rowToProject(r: ProjectRow): ProjectRecord {
  const p: ProjectRecord = {
    id: r.id,
    name: r.name,
    repoUrl: r.repo_url,
    autoDeploy: parse(r.auto_deploy),
    env: parse(r.env),
    webhookSecret: r.webhook_secret,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
  if (r.compose_file !== null) p.composeFile = r.compose_file;
  if (r.gitlab !== null) p.gitlab = parse(r.gitlab);
  if (r.policy !== null) p.policy = parse(r.policy);
  if (r.health_path !== null) p.healthPath = r.health_path;
  if (r.rollback === "auto" || r.rollback === "off") p.rollback = r.rollback;
  if (r.auto_stop !== null) p.autoStop = parse(r.auto_stop);
  if (r.max_running !== null) p.maxRunning = r.max_running;
  if (r.limits !== null) p.limits = parse(r.limits);
  if (r.gitlab_status !== null) p.gitlabStatus = parse(r.gitlab_status);
  if (r.deletion !== null) p.deletion = parse(r.deletion);
  return p;
}

export function versionToRow(v: VersionRecord): VersionRow {
  return {
    id: v.id,
    project_id: v.projectId,
    name: v.name,
    ref: json(v.ref),
    sha: v.sha ?? null,
    deployed_sha: v.deployedSha ?? null,
    last_good: jsonOrNull(v.lastGood),
    good_deploys: jsonOrNull(v.goodDeploys),
    last_request_at: v.lastRequestAt ?? null,
    state: v.state,
    compose_project: v.composeProject,
    urls: json(v.urls),
    ports: json(v.ports),
    primary_service: v.primaryService ?? null,
    gitlab: jsonOrNull(v.gitlab),
    created_at: v.createdAt,
    updated_at: v.updatedAt,
  };
}

function rowToVersion(r: VersionRow): VersionRecord {
  const v: VersionRecord = {
    id: r.id,
    projectId: r.project_id,
    name: r.name,
    ref: parse(r.ref),
    state: r.state as VersionRecord["state"],
    composeProject: r.compose_project,
    urls: parse(r.urls),
    ports: parse(r.ports),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
  if (r.sha !== null) v.sha = r.sha;
  if (r.deployed_sha !== null) v.deployedSha = r.deployed_sha;
  if (r.last_good !== null) v.lastGood = parse(r.last_good);
  if (r.good_deploys !== null) v.goodDeploys = parse(r.good_deploys);
  if (r.last_request_at !== null) v.lastRequestAt = r.last_request_at;
  if (r.primary_service !== null) v.primaryService = r.primary_service;
  if (r.gitlab !== null) v.gitlab = parse(r.gitlab);
  return v;
}

export function operationToRow(o: OperationRecord): OperationRow {
  return {
    id: o.id,
    project_id: o.projectId,
    version_id: o.versionId,
    kind: o.kind,
    sha: o.sha ?? null,
    trigger_info: json(o.trigger),
    status: o.status,
    error: o.error ?? null,
    exit_code: o.exitCode ?? null,
    rolled_back_to: o.rolledBackTo ?? null,
    options: jsonOrNull(o.options),
    queued_at: o.queuedAt,
    started_at: o.startedAt ?? null,
    finished_at: o.finishedAt ?? null,
    owner: o.owner ?? null,
    lease_until: o.leaseUntil ?? null,
    cancel_requested: o.cancelRequested === undefined ? null : o.cancelRequested ? 1 : 0,
    gitlab_reports: jsonOrNull(o.gitlabReports),
  };
}

function rowToOperation(r: OperationRow): OperationRecord {
  const o: OperationRecord = {
    id: r.id,
    projectId: r.project_id,
    versionId: r.version_id,
    kind: r.kind as OperationRecord["kind"],
    trigger: parse(r.trigger_info),
    status: r.status as OperationStatus,
    queuedAt: r.queued_at,
  };
  if (r.sha !== null) o.sha = r.sha;
  if (r.error !== null) o.error = r.error;
  if (r.exit_code !== null) o.exitCode = r.exit_code;
  if (r.rolled_back_to !== null) o.rolledBackTo = r.rolled_back_to;
  if (r.options !== null) o.options = parse(r.options);
  if (r.started_at !== null) o.startedAt = r.started_at;
  if (r.finished_at !== null) o.finishedAt = r.finished_at;
  if (r.owner !== null) o.owner = r.owner;
  if (r.lease_until !== null) o.leaseUntil = r.lease_until;
  if (r.cancel_requested !== null) o.cancelRequested = r.cancel_requested === 1;
  if (r.gitlab_reports !== null) o.gitlabReports = parse(r.gitlab_reports);
  return o;
}

function rowToPortAllocation(r: PortAllocationRow): PortAllocation {
  return {
    versionId: r.version_id,
    service: r.service,
    target: r.target,
    protocol: r.protocol as PortAllocation["protocol"],
    hostPort: r.host_port,
  };
}

function rowToLogLine(r: LogLineRow): LogLine {
  return {
    operationId: r.operation_id,
    seq: r.seq,
    stream: r.stream as LogLine["stream"],
    text: r.text,
    time: r.time,
  };
}

function deliveryToRow(d: DeliveryRecord): DeliveryRow {
  return {
    id: d.id,
    project_id: d.projectId,
    delivery_key: d.deliveryKey,
    event: d.event,
    received_at: d.receivedAt,
    outcome: d.outcome,
    reason: d.reason ?? null,
    operation_ids: json(d.operationIds),
  };
}

function rowToDelivery(r: DeliveryRow): DeliveryRecord {
  const d: DeliveryRecord = {
    id: r.id,
    projectId: r.project_id,
    deliveryKey: r.delivery_key,
    event: r.event,
    receivedAt: r.received_at,
    outcome: r.outcome as DeliveryRecord["outcome"],
    operationIds: parse(r.operation_ids),
  };
  if (r.reason !== null) d.reason = r.reason;
  return d;
}
