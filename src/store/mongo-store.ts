// The shared store: MongoDB through the official driver, for several dockbot replicas on one
// database. It uses only what a plain MongoDB-compatible server offers (FerretDB 1.24 on SQLite
// passes the contract suite): single-document atomic writes, unique indexes, find with sort and
// limit. No multi-document transactions and no change streams, so every invariant below rests
// on one conditional single-document write.
//
// Invariants this module keeps (the queue relies on them):
// - A record's own `id` is the document's `_id`, so lookups by id use the primary index and a
//   taken id is a duplicate-key error like a taken name. `_id` never leaves this module.
// - Optional record fields are absent from the document when unset (never `null`), and a
//   `null` read back is dropped too, so records read back equal what was written
//   (exactOptionalPropertyTypes).
// - Every document carries `ins`, an ObjectId taken at insert: ties in time order (same
//   queuedAt, createdAt, receivedAt) are broken by it, as the SQLite store breaks them by rowid.
// - An operation becomes `running` only in claimOperation, and only while its claimer holds the
//   version's lock document in `versionLocks` (`_id` = versionId, so the primary key makes the
//   insert exclusive). The lock is removed when the operation leaves `running`
//   (updateOperation), or by the next claimer once it is provably stale (see claimOperation).
//   Why a lock document and not just "find no running operation, then flip one to running":
//   two replicas can both see no running operation of a version and each flip a *different*
//   queued operation of it; only a write that conflicts on the version itself stops that, and
//   without transactions that write has to be one document keyed by the version.
//   A second reason: on FerretDB 1.24 (SQLite backend) a conditional update is NOT atomic. It
//   reads the matching documents, applies the update in FerretDB, and writes each whole document
//   back by `_id`, so eight concurrent `findOneAndUpdate({_id, status: "queued"}, ...)` calls
//   can all "succeed" (measured: 28 races of 30). A unique-key insert is atomic there (SQLite
//   enforces the index), so the lock insert is the only primitive the claim's exclusivity rests
//   on: only the lock holder ever flips an operation of that version to running, so two claims
//   never get one operation either. On real MongoDB the conditional flip is atomic as well.
//   What FerretDB 1.24 still cannot guarantee is two *different* writers on one document at the
//   same moment (a claim's flip racing enqueue's supersede, a lease renewal racing a cancel):
//   the last whole-document write wins. Those self-heal (the runner's conditional updates fail,
//   it aborts on lease loss, a lock left on a finished operation is removed as stale), but a
//   production deployment with several replicas wants real MongoDB, not FerretDB 1.x.
// - enqueueOperation supersedes only the queued operations of the version queued *before* the
//   new one (queuedAt, then ins). Two replicas enqueueing for one version at once therefore
//   cannot supersede each other's operation: the newest one always stays queued.
// - Project env is kept as a list of {name, value}: env names are free-form strings and may
//   hold "." or start with "$", which MongoDB field names must not.
import { randomUUID } from "node:crypto";
import {
  MongoClient,
  MongoClientClosedError,
  MongoError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoServerClosedError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  ObjectId,
  type Collection,
  type Db,
  type Document,
  type Filter,
  type IndexDescription,
  type UpdateFilter,
} from "mongodb";
import type { Logger } from "pino";
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

export interface MongoStoreOptions {
  /** How long to wait for the server at open and for each call before answering "unavailable". */
  connectTimeoutMs?: number;
  logger?: Logger;
}

/** Used when the URL names no database (`mongodb://host:27017/`). */
const DEFAULT_DATABASE = "dockbot";

/**
 * A lock whose operation is still `queued` after this long belongs to a claimer that died
 * between taking the lock and marking the operation running (a live claimer does both within
 * one round-trip). Assumes replica clocks agree within this margin, as leases already do.
 */
const STALE_CLAIM_LOCK_MS = 60_000;

/** Queued operations looked at per claim round, and rounds before a claim gives up. */
const CLAIM_BATCH = 20;
const CLAIM_ROUNDS = 10;

// Server error codes that mean "the server cannot serve now" (shutting down, stepping down,
// unreachable host) rather than "this request is wrong": the API answers 503 for these.
const UNAVAILABLE_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

const DUPLICATE_KEY = 11000;
const INTERNAL_ERROR = 1;
const FERRETDB_SQLITE_UNIQUE = /UNIQUE constraint failed/;

/** Every collection here keys its documents by a string: the record's own id (or the key). */
interface Doc extends Document {
  _id: string;
}

interface Collections {
  settings: Collection<Doc>;
  projects: Collection<Doc>;
  versions: Collection<Doc>;
  operations: Collection<Doc>;
  /** Keyed by the driver's ObjectId; (operationId, seq) is the unique key. */
  logLines: Collection<Document>;
  deliveries: Collection<Doc>;
  versionLocks: Collection<Doc>;
  /** Dashboard sessions and sign-ins under way (src/auth), `_id` = the cookie's hash. */
  sessions: Collection<Doc>;
  apiTokens: Collection<Doc>;
  audit: Collection<Doc>;
  /** `_id` is the host port (as text): one holder per port, across every replica. */
  portAllocations: Collection<Doc>;
}

/**
 * Connects to MongoDB, checks the server answers, and creates the collections' indexes (a
 * no-op when they exist). The database is the one named in the URL, else "dockbot". Throws
 * StoreUnavailableError when the server cannot be reached within the timeout.
 */
export async function openMongoStore(url: string, opts: MongoStoreOptions = {}): Promise<Store> {
  const timeouts =
    opts.connectTimeoutMs === undefined
      ? {}
      : {
          connectTimeoutMS: opts.connectTimeoutMs,
          serverSelectionTimeoutMS: opts.connectTimeoutMs,
        };
  let client: MongoClient;
  try {
    client = new MongoClient(url, { ...timeouts, ignoreUndefined: true, appName: "dockbot" });
  } catch (err) {
    // A malformed URL is a configuration error, not an outage: keep the driver's message.
    throw new Error("invalid MongoDB URL (DOCKBOT_MONGODB_URL)", { cause: err });
  }
  const dbName = databaseName(url);
  try {
    await client.connect();
    const db = client.db(dbName);
    await db.command({ ping: 1 });
    await createIndexes(db);
    await moveDeletionMarks(db);
    opts.logger?.info({ database: dbName }, "MongoDB store opened");
    return new MongoStore(client, db, opts.logger);
  } catch (err) {
    await client.close().catch(() => undefined);
    if (isUnavailable(err)) {
      // The URL may hold a password: name the database, never the URL.
      throw new StoreUnavailableError(`cannot reach MongoDB (database ${dbName})`, { cause: err });
    }
    throw err;
  }
}

/** The path of `mongodb://[user@]host[,host]/<db>?opts`, percent-decoded; default "dockbot". */
function databaseName(url: string): string {
  const match = /^mongodb(?:\+srv)?:\/\/[^/?]*\/?([^?]*)/.exec(url);
  const raw = match?.[1] ?? "";
  return raw === "" ? DEFAULT_DATABASE : decodeURIComponent(raw);
}

/** The indexes the queries need, per collection (`_id` is indexed by every server). */
const INDEXES: Record<string, IndexDescription[]> = {
  sessions: [{ key: { expiresAt: 1 }, name: "expiresAt" }],
  apiTokens: [
    { key: { hash: 1 }, name: "hash_unique", unique: true },
    { key: { createdAt: 1 }, name: "createdAt" },
  ],
  audit: [
    { key: { at: -1 }, name: "at" },
    { key: { projectId: 1, at: -1 }, name: "projectId_at" },
  ],
  projects: [{ key: { name: 1 }, name: "name_unique", unique: true }],
  versions: [
    { key: { projectId: 1, name: 1 }, name: "projectId_name_unique", unique: true },
    { key: { createdAt: 1 }, name: "createdAt" },
  ],
  operations: [
    // claimOperation and the runner's "what is queued / running" scans.
    { key: { status: 1, queuedAt: 1 }, name: "status_queuedAt" },
    // Per-version lookups and enqueue's "queued of this version".
    { key: { versionId: 1, status: 1 }, name: "versionId_status" },
    { key: { projectId: 1, queuedAt: 1 }, name: "projectId_queuedAt" },
    // Retention (docs/api.md, "Retention"): operations by when they finished, oldest first.
    { key: { finishedAt: 1, _id: 1 }, name: "finishedAt_id" },
    // A version's newest operation (the version list, the project page) without a sort of all
    // of the version's operations (docs/architecture.md, "Indexes").
    { key: { versionId: 1, queuedAt: 1, ins: 1 }, name: "versionId_queuedAt_ins" },
  ],
  logLines: [{ key: { operationId: 1, seq: 1 }, name: "operationId_seq_unique", unique: true }],
  portAllocations: [
    { key: { hostPort: 1 }, name: "hostPort_unique", unique: true },
    {
      key: { versionId: 1, service: 1, target: 1, protocol: 1 },
      name: "versionId_service_target_protocol_unique",
      unique: true,
    },
  ],
  deliveries: [
    { key: { projectId: 1, deliveryKey: 1 }, name: "projectId_deliveryKey_unique", unique: true },
    { key: { projectId: 1, receivedAt: -1 }, name: "projectId_receivedAt" },
  ],
};

async function createIndexes(db: Db): Promise<void> {
  for (const [collection, indexes] of Object.entries(INDEXES)) {
    // One index per command: FerretDB 1.24 drops the connection (a panic in its handler) when
    // one createIndexes command names several indexes that all exist already.
    for (const index of indexes) await db.collection(collection).createIndexes([index]);
  }
}

/**
 * A pending project deletion was a setting `project-delete:<projectId>` (its value: when it was
 * asked for); it now lives on the project (`deletion`). Moves marks left by an older dockbot.
 */
async function moveDeletionMarks(db: Db): Promise<void> {
  const settings = db.collection<Doc>("settings");
  const prefix = "project-delete:";
  for (const mark of await settings.find({ _id: { $regex: `^${prefix}` } }).toArray()) {
    if (typeof mark.value === "string" && mark.value !== "") {
      await db
        .collection<Doc>("projects")
        .updateOne(
          { _id: mark._id.slice(prefix.length), deletion: { $exists: false } },
          { $set: { deletion: { requestedAt: mark.value, state: "deleting" } } },
        );
    }
    await settings.deleteOne({ _id: mark._id });
  }
}

class MongoStore implements Store {
  readonly kind = "mongodb" as const;
  private closed = false;
  private readonly c: Collections;

  constructor(
    private readonly client: MongoClient,
    db: Db,
    private readonly logger: Logger | undefined,
  ) {
    this.c = {
      settings: db.collection("settings"),
      projects: db.collection("projects"),
      versions: db.collection("versions"),
      operations: db.collection("operations"),
      logLines: db.collection("logLines"),
      deliveries: db.collection("deliveries"),
      versionLocks: db.collection("versionLocks"),
      sessions: db.collection("sessions"),
      apiTokens: db.collection("apiTokens"),
      audit: db.collection("audit"),
      portAllocations: db.collection("portAllocations"),
    };
    // The pool is cleared when the driver loses the server: worth one line, not one per call.
    client.on("connectionPoolCleared", (event) => {
      this.logger?.warn(
        { address: event.address },
        "lost the MongoDB server; calls answer unavailable until it is back",
      );
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.close();
  }

  ping(): Promise<void> {
    return this.run(async () => {
      await this.client.db("admin").command({ ping: 1 });
    });
  }

  // Settings

  getSetting(key: string): Promise<string | undefined> {
    return this.run(async () => {
      const doc = await this.c.settings.findOne({ _id: key });
      return typeof doc?.value === "string" ? doc.value : undefined;
    });
  }

  setSetting(key: string, value: string): Promise<void> {
    return this.run(async () => {
      // Two concurrent upserts of a new key can both try to insert; the loser's retry updates.
      await retryOnDuplicate(() =>
        this.c.settings.updateOne({ _id: key }, { $set: { value } }, { upsert: true }),
      );
    });
  }

  // Projects

  createProject(project: ProjectRecord): Promise<void> {
    return this.run(
      async () => {
        await this.c.projects.insertOne(toDoc(projectFields(project), project.id));
      },
      () => `project name '${project.name}' (or id) is taken`,
    );
  }

  getProject(id: string): Promise<ProjectRecord | undefined> {
    return this.run(async () => optional(await this.c.projects.findOne({ _id: id }), toProject));
  }

  getProjectByName(name: string): Promise<ProjectRecord | undefined> {
    return this.run(async () => optional(await this.c.projects.findOne({ name }), toProject));
  }

  listProjects(): Promise<ProjectRecord[]> {
    return this.run(async () =>
      (await this.c.projects.find({}).sort({ createdAt: 1, ins: 1 }).toArray()).map(toProject),
    );
  }

  updateProject(id: string, patch: ProjectPatch): Promise<ProjectRecord | undefined> {
    const {
      id: _ignoredId,
      createdAt: _ignoredCreatedAt,
      ...rest
    } = patch as ProjectPatch & {
      id?: string;
      createdAt?: string;
    };
    const fields: Record<string, unknown> = { ...rest };
    if ("env" in rest) fields.env = rest.env === undefined ? undefined : envToList(rest.env);
    return this.run(
      async () => optional(await this.patchOne(this.c.projects, { _id: id }, fields), toProject),
      () => `project name '${patch.name ?? ""}' is taken`,
    );
  }

  deleteProject(id: string): Promise<void> {
    return this.run(async () => {
      // Deliveries first: a crash in between leaves a project without deliveries, never
      // deliveries of a project that is gone.
      await this.c.deliveries.deleteMany({ projectId: id });
      await this.c.projects.deleteOne({ _id: id });
    });
  }

  // Versions

  createVersion(version: VersionRecord): Promise<void> {
    const { id, ...fields } = version;
    return this.run(
      async () => {
        await this.c.versions.insertOne(toDoc(fields, id));
      },
      () => `version name '${version.name}' (or id) is taken in this project`,
    );
  }

  getVersion(id: string): Promise<VersionRecord | undefined> {
    return this.run(async () => optional(await this.c.versions.findOne({ _id: id }), toVersion));
  }

  getVersionByName(projectId: string, name: string): Promise<VersionRecord | undefined> {
    return this.run(async () =>
      optional(await this.c.versions.findOne({ projectId, name }), toVersion),
    );
  }

  listVersions(projectId?: string): Promise<VersionRecord[]> {
    return this.run(async () =>
      (
        await this.c.versions
          .find(projectId === undefined ? {} : { projectId })
          .sort({ createdAt: 1, ins: 1 })
          .toArray()
      ).map(toVersion),
    );
  }

  updateVersion(id: string, patch: VersionPatch): Promise<VersionRecord | undefined> {
    const {
      id: _ignoredId,
      projectId: _ignoredProjectId,
      createdAt: _ignoredCreatedAt,
      ...fields
    } = patch as VersionPatch & { id?: string; projectId?: string; createdAt?: string };
    return this.run(
      async () => optional(await this.patchOne(this.c.versions, { _id: id }, fields), toVersion),
      () => `version name '${patch.name ?? ""}' is taken in this project`,
    );
  }

  deleteVersion(id: string): Promise<void> {
    return this.run(async () => {
      // Ports first: a crash in between leaves a version that allocates again at its next up,
      // never ports held for a version that is gone.
      await this.c.portAllocations.deleteMany({ versionId: id });
      await this.c.versions.deleteOne({ _id: id });
    });
  }

  // Host ports

  listPortAllocations(versionId?: string): Promise<PortAllocation[]> {
    return this.run(async () =>
      (
        await this.c.portAllocations
          .find(versionId === undefined ? {} : { versionId })
          .sort({ hostPort: 1 })
          .toArray()
      ).map(toPortAllocation),
    );
  }

  reservePort(a: PortAllocation): Promise<boolean> {
    return this.run(async () =>
      insertUnlessDuplicate(this.c.portAllocations, {
        _id: String(a.hostPort),
        hostPort: a.hostPort,
        versionId: a.versionId,
        service: a.service,
        target: a.target,
        protocol: a.protocol,
      }),
    );
  }

  releasePorts(versionId: string, hostPorts?: number[]): Promise<void> {
    return this.run(async () => {
      await this.c.portAllocations.deleteMany(
        hostPorts === undefined ? { versionId } : { versionId, hostPort: { $in: hostPorts } },
      );
    });
  }

  // Operations

  enqueueOperation(op: OperationRecord, opts: EnqueueOptions = {}): Promise<OperationRecord[]> {
    const { id, ...fields } = op;
    return this.run(
      async () => {
        const doc = toDoc(fields, id);
        // Insert first: a taken id fails here, before anything is superseded.
        await this.c.operations.insertOne(doc);
        const ins = doc.ins as ObjectId;
        const older = await this.c.operations
          .find({
            versionId: op.versionId,
            status: "queued",
            _id: { $ne: id },
            $or: [{ queuedAt: { $lt: op.queuedAt } }, { queuedAt: op.queuedAt, ins: { $lt: ins } }],
          })
          .sort({ queuedAt: 1, ins: 1 })
          .toArray();
        const superseded: OperationRecord[] = [];
        // One conditional write each: an operation a claim took meanwhile is running, not
        // superseded, and is not reported.
        for (const candidate of older) {
          const done = await this.c.operations.findOneAndUpdate(
            { _id: candidate._id, status: "queued" },
            { $set: { status: "superseded", finishedAt: op.queuedAt } },
            { returnDocument: "after" },
          );
          if (done) superseded.push(toOperation(done));
        }
        if (opts.cancelRunning === undefined) return superseded;
        // Only operations queued before the new one: a runner may have claimed the new one
        // already, and it must never be asked to stop itself.
        const running = await this.c.operations
          .find({
            versionId: op.versionId,
            status: "running",
            _id: { $ne: id },
            $or: [{ queuedAt: { $lt: op.queuedAt } }, { queuedAt: op.queuedAt, ins: { $lt: ins } }],
          })
          .sort({ queuedAt: 1, ins: 1 })
          .toArray();
        const stopping: OperationRecord[] = [];
        for (const candidate of running) {
          const asked = await this.c.operations.findOneAndUpdate(
            { _id: candidate._id, status: "running" },
            { $set: { cancelRequested: true, error: opts.cancelRunning } },
            { returnDocument: "after" },
          );
          if (asked) stopping.push(toOperation(asked));
        }
        return [...superseded, ...stopping];
      },
      () => `operation id '${op.id}' is taken`,
    );
  }

  getOperation(id: string): Promise<OperationRecord | undefined> {
    return this.run(async () =>
      optional(await this.c.operations.findOne({ _id: id }), toOperation),
    );
  }

  listOperations(filter: OperationFilter = {}): Promise<OperationRecord[]> {
    return this.run(async () => {
      const query: Filter<Doc> = {};
      if (filter.projectId !== undefined) query.projectId = filter.projectId;
      if (filter.versionId !== undefined) query.versionId = filter.versionId;
      if (filter.status !== undefined) {
        if (filter.status.length === 0) return [];
        query.status = { $in: filter.status };
      }
      // As in SQLite: LIMIT 0 is nothing, a negative limit is no limit.
      if (filter.limit === 0) return [];
      const dir = filter.newestFirst === true ? -1 : 1;
      let cursor = this.c.operations.find(query).sort({ queuedAt: dir, ins: dir });
      if (filter.limit !== undefined && filter.limit > 0) cursor = cursor.limit(filter.limit);
      return (await cursor.toArray()).map(toOperation);
    });
  }

  /**
   * Rounds of: find the oldest queued operations of versions that are neither running nor
   * locked; for each (oldest first, one per version) take the version's lock by inserting its
   * lock document, then flip the operation queued -> running with one conditional write. A lock
   * insert that hits a duplicate key means another replica holds the version: try the next
   * version. A flip that matches nothing means the operation was taken, superseded or canceled
   * meanwhile: give the lock back and look again.
   */
  claimOperation(req: ClaimRequest): Promise<OperationRecord | undefined> {
    return this.run(async () => {
      for (let round = 0; round < CLAIM_ROUNDS; round++) {
        const busy = await this.busyVersions();
        const candidates = await this.c.operations
          .find({ status: "queued", versionId: { $nin: [...busy] } })
          .sort({ queuedAt: 1, ins: 1 })
          .limit(CLAIM_BATCH)
          .toArray();
        if (candidates.length === 0) return undefined;
        let lostRace = false;
        for (const candidate of candidates) {
          const versionId = candidate.versionId as string;
          const opId = candidate._id;
          // Later candidates of a version are not its oldest: never start them first.
          if (busy.has(versionId)) continue;
          busy.add(versionId);
          const token = randomUUID();
          const locked = await insertUnlessDuplicate(this.c.versionLocks, {
            _id: versionId,
            operationId: opId,
            owner: req.owner,
            token,
            lockedAt: Date.now(),
          });
          if (!locked) continue;
          const claimed = await this.c.operations.findOneAndUpdate(
            { _id: opId, status: "queued" },
            {
              $set: {
                status: "running",
                owner: req.owner,
                leaseUntil: req.leaseUntil,
                startedAt: req.now,
              },
            },
            { returnDocument: "after" },
          );
          if (claimed) return toOperation(claimed);
          await this.c.versionLocks.deleteOne({ _id: versionId, token });
          lostRace = true;
          break;
        }
        // Every candidate's version was locked by someone else: nothing to take this time.
        if (!lostRace && candidates.length < CLAIM_BATCH) return undefined;
      }
      return undefined;
    });
  }

  /**
   * The operation goes in as running first, so a claim looking now skips its version (it has a
   * running operation); then the version's lock is taken for it, as a claim would, so a claim
   * that looked a moment before cannot lock the version either. A lock held by someone else, or
   * another queued or running operation of the version, backs the insert out: false.
   */
  startOperation(op: OperationRecord): Promise<boolean> {
    const { id, ...fields } = op;
    return this.run(
      async () => {
        await this.c.operations.insertOne(toDoc(fields, id));
        const token = randomUUID();
        const locked = await insertUnlessDuplicate(this.c.versionLocks, {
          _id: op.versionId,
          operationId: id,
          owner: op.owner ?? "",
          token,
          lockedAt: Date.now(),
        });
        const other =
          locked &&
          (await this.c.operations.findOne({
            versionId: op.versionId,
            status: { $in: ["queued", "running"] },
            _id: { $ne: id },
          }));
        if (locked && !other) return true;
        if (locked) await this.c.versionLocks.deleteOne({ _id: op.versionId, token });
        await this.c.operations.deleteOne({ _id: id });
        return false;
      },
      () => `operation id '${op.id}' is taken`,
    );
  }

  /**
   * The version lock first, held only for the check and the insert: of two callers at once one
   * gets it and the other answers false, and a version whose operation runs (its claim or start
   * holds the lock) answers false at once. Unlike startOperation, both never back out together.
   */
  enqueueOperationIfIdle(op: OperationRecord): Promise<boolean> {
    const { id, ...fields } = op;
    return this.run(
      async () => {
        const token = randomUUID();
        const locked = await insertUnlessDuplicate(this.c.versionLocks, {
          _id: op.versionId,
          operationId: id,
          owner: op.owner ?? "",
          token,
          lockedAt: Date.now(),
        });
        if (!locked) return false;
        try {
          const other = await this.c.operations.findOne({
            versionId: op.versionId,
            status: { $in: ["queued", "running"] },
          });
          if (other) return false;
          await this.c.operations.insertOne(toDoc(fields, id));
          return true;
        } finally {
          await this.c.versionLocks.deleteOne({ _id: op.versionId, token });
        }
      },
      () => `operation id '${op.id}' is taken`,
    );
  }

  /**
   * Versions a claim must skip: those with a running operation, and those whose lock is held.
   * Stale locks are removed on the way (conditionally on their token, so a fresh lock taken
   * meanwhile is not removed; on FerretDB 1.x that condition is not atomic either, see the top
   * of the file): a lock whose operation is finished, gone, or still queued long after the lock
   * was taken was left by a process that died mid-claim or mid-update.
   */
  private async busyVersions(): Promise<Set<string>> {
    const busy = new Set<string>();
    const running = await this.c.operations
      .find({ status: "running" }, { projection: { _id: 0, versionId: 1 } })
      .toArray();
    for (const r of running) busy.add(r.versionId as string);

    const locks = await this.c.versionLocks.find({}).toArray();
    if (locks.length === 0) return busy;
    const ops = await this.c.operations
      .find(
        { _id: { $in: locks.map((l) => l.operationId as string) } },
        { projection: { status: 1 } },
      )
      .toArray();
    const statusOf = new Map(ops.map((o) => [o._id, o.status as OperationStatus]));
    const now = Date.now();
    for (const lock of locks) {
      const status = statusOf.get(lock.operationId as string);
      const stale =
        status === undefined ||
        (status !== "running" && status !== "queued") ||
        (status === "queued" && now - Number(lock.lockedAt) > STALE_CLAIM_LOCK_MS);
      if (!stale) {
        busy.add(lock._id);
        continue;
      }
      const removed = await this.c.versionLocks.deleteOne({
        _id: lock._id,
        token: lock.token as string,
      });
      if (removed.deletedCount === 1) {
        this.logger?.warn(
          { versionId: lock._id, operationId: lock.operationId, owner: lock.owner },
          "removed a stale version lock left by a replica that stopped mid-claim",
        );
      }
    }
    return busy;
  }

  updateOperation(
    id: string,
    patch: OperationPatch,
    cond: { ifStatus?: OperationStatus[]; ifOwner?: string } = {},
  ): Promise<OperationRecord | undefined> {
    const {
      id: _ignoredId,
      projectId: _ignoredProjectId,
      versionId: _ignoredVersionId,
      ...fields
    } = patch as OperationPatch & { id?: string; projectId?: string; versionId?: string };
    return this.run(async () => {
      const filter: Filter<Doc> = { _id: id };
      if (cond.ifStatus !== undefined) filter.status = { $in: cond.ifStatus };
      if (cond.ifOwner !== undefined) filter.owner = cond.ifOwner;
      const doc = await this.patchOne(this.c.operations, filter, fields);
      if (!doc) return undefined;
      const updated = toOperation(doc);
      // Leaving `running` frees the version for the next claim. Removing by operation id
      // only ever removes this operation's own lock: while it holds it nobody else can lock.
      if (fields.status !== undefined && updated.status !== "running") {
        await this.c.versionLocks.deleteOne({ _id: updated.versionId, operationId: id });
      }
      return updated;
    });
  }

  // Log lines

  appendLogLines(lines: LogLine[]): Promise<void> {
    if (lines.length === 0) return Promise.resolve();
    return this.run(
      async () => {
        // Unordered: the server may write the batch in parallel and does not stop at the
        // first duplicate; no _id of ours, so the driver's client-side ObjectIds are used.
        await this.c.logLines.insertMany(
          lines.map((l) => ({
            operationId: l.operationId,
            seq: l.seq,
            stream: l.stream,
            text: l.text,
            time: l.time,
          })),
          { ordered: false },
        );
      },
      () => `a log line of operation '${lines[0]?.operationId ?? ""}' has a seq stored before`,
    );
  }

  getLogLines(operationId: string, afterSeq = 0, limit?: number): Promise<LogLine[]> {
    return this.run(async () => {
      if (limit === 0) return [];
      let cursor = this.c.logLines
        .find({ operationId, seq: { $gt: afterSeq } }, { projection: { _id: 0 } })
        .sort({ seq: 1 });
      if (limit !== undefined && limit > 0) cursor = cursor.limit(limit);
      return (await cursor.toArray()).map((d) => ({
        operationId: d.operationId as string,
        seq: d.seq as number,
        stream: d.stream as LogLine["stream"],
        text: d.text as string,
        time: d.time as string,
      }));
    });
  }

  deleteLogLines(operationId: string, fromSeq: number, toSeq: number): Promise<void> {
    return this.run(async () => {
      await this.c.logLines.deleteMany({ operationId, seq: { $gte: fromSeq, $lte: toSeq } });
    });
  }

  /**
   * Without transactions each step is one write: a crash between the lines and the operation
   * leaves an operation with part of its log, which the next run deletes. An operation's
   * lines go before the operation, so no line is ever left without one.
   */
  deleteOldOperations(batch: RetentionBatch): Promise<RetentionResult> {
    return this.run(async () => {
      const after = batch.after ?? { finishedAt: "", id: "" };
      const docs = await this.c.operations
        .find({
          finishedAt: { $lt: batch.finishedBefore },
          $or: [
            { finishedAt: { $gt: after.finishedAt } },
            { finishedAt: after.finishedAt, _id: { $gt: after.id } },
          ],
        })
        .sort({ finishedAt: 1, _id: 1 })
        .limit(batch.limit)
        .toArray();
      const ops = docs.map(toOperation);
      const versionIds = [...new Set(ops.map((o) => o.versionId))];
      const versions = new Map(
        (await this.c.versions.find({ _id: { $in: versionIds } }).toArray()).map((d) => [
          d._id,
          toVersion(d),
        ]),
      );
      const newest = new Map(
        await Promise.all(
          [...versions.keys()].map(
            async (versionId) =>
              [
                versionId,
                (
                  await this.c.operations
                    .find({ versionId }, { projection: { _id: 1 } })
                    .sort({ queuedAt: -1, ins: -1 })
                    .limit(1)
                    .toArray()
                )[0]?._id,
              ] as const,
          ),
        ),
      );
      const result: RetentionResult = { deletedOperations: 0, deletedLogLines: 0 };
      let budget = Math.max(1, batch.maxLogLines);
      let cursor: RetentionCursor | undefined = batch.after;
      for (const op of ops) {
        const version = versions.get(op.versionId);
        const kept =
          version !== undefined &&
          (newest.get(op.versionId) === op.id || keptByVersion(op, version));
        if (!kept) {
          const [last] = await this.c.logLines
            .find({ operationId: op.id }, { projection: { _id: 0, seq: 1 } })
            .sort({ seq: 1 })
            .skip(budget - 1)
            .limit(1)
            .toArray();
          if (last === undefined) {
            const gone = (await this.c.logLines.deleteMany({ operationId: op.id })).deletedCount;
            result.deletedLogLines += gone;
            budget -= gone;
          } else {
            result.deletedLogLines += (
              await this.c.logLines.deleteMany({
                operationId: op.id,
                seq: { $lte: last.seq as number },
              })
            ).deletedCount;
            budget = 0;
            if ((await this.c.logLines.findOne({ operationId: op.id })) !== null) {
              result.next = cursor ?? { finishedAt: "", id: "" };
              return result;
            }
          }
          await this.c.operations.deleteOne({ _id: op.id });
          result.deletedOperations += 1;
        }
        cursor = { finishedAt: op.finishedAt ?? "", id: op.id };
        if (budget <= 0) break;
      }
      if ((ops.length === batch.limit || budget <= 0) && cursor !== undefined) result.next = cursor;
      return result;
    });
  }

  // Deliveries

  insertDelivery(delivery: DeliveryRecord): Promise<boolean> {
    const { id, ...fields } = delivery;
    return this.run(
      async () => {
        if (await insertUnlessDuplicate(this.c.deliveries, toDoc(fields, id))) return true;
        // The duplicate is either the (project, key) pair (a repeat delivery: false) or the id
        // (a bug: conflict). The error does not say which on every server, so look.
        const repeat = await this.c.deliveries.findOne(
          { projectId: delivery.projectId, deliveryKey: delivery.deliveryKey },
          { projection: { _id: 1 } },
        );
        if (repeat) return false;
        throw new StoreConflictError(`delivery id '${delivery.id}' is taken`);
      },
      () => `delivery id '${delivery.id}' is taken`,
    );
  }

  updateDelivery(
    id: string,
    patch: Partial<Pick<DeliveryRecord, "deliveryKey" | "outcome" | "reason" | "operationIds">>,
  ): Promise<void> {
    return this.run(async () => {
      await this.patchOne(this.c.deliveries, { _id: id }, { ...patch });
    });
  }

  listDeliveries(projectId: string, limit?: number): Promise<DeliveryRecord[]> {
    return this.run(async () => {
      if (limit === 0) return [];
      let cursor = this.c.deliveries.find({ projectId }).sort({ receivedAt: -1, ins: -1 });
      if (limit !== undefined && limit > 0) cursor = cursor.limit(limit);
      return (await cursor.toArray()).map(toDelivery);
    });
  }

  // Sessions, API tokens, audit

  createSession(session: SessionRecord): Promise<void> {
    const { id, ...fields } = session;
    return this.run(
      async () => {
        await this.c.sessions.insertOne(toDoc(fields, id));
      },
      () => "session id is taken",
    );
  }

  getSession(id: string): Promise<SessionRecord | undefined> {
    return this.run(async () =>
      optional(
        await this.c.sessions.findOne({ _id: id }),
        (d) => fromDoc(d) as unknown as SessionRecord,
      ),
    );
  }

  deleteSession(id: string): Promise<void> {
    return this.run(async () => {
      await this.c.sessions.deleteOne({ _id: id });
    });
  }

  deleteExpiredSessions(now: string): Promise<number> {
    return this.run(
      async () => (await this.c.sessions.deleteMany({ expiresAt: { $lt: now } })).deletedCount,
    );
  }

  createApiToken(token: ApiTokenRecord): Promise<void> {
    const { id, ...fields } = token;
    return this.run(
      async () => {
        await this.c.apiTokens.insertOne(toDoc(fields, id));
      },
      () => `API token id '${token.id}' (or its hash) is taken`,
    );
  }

  getApiTokenByHash(hash: string): Promise<ApiTokenRecord | undefined> {
    return this.run(async () => optional(await this.c.apiTokens.findOne({ hash }), toApiToken));
  }

  getApiToken(id: string): Promise<ApiTokenRecord | undefined> {
    return this.run(async () => optional(await this.c.apiTokens.findOne({ _id: id }), toApiToken));
  }

  listApiTokens(): Promise<ApiTokenRecord[]> {
    return this.run(async () =>
      (await this.c.apiTokens.find({}).sort({ createdAt: 1, ins: 1 }).toArray()).map(toApiToken),
    );
  }

  revokeApiToken(id: string, at: string): Promise<ApiTokenRecord | undefined> {
    return this.run(async () => {
      // Only the first revocation's time is kept.
      await this.c.apiTokens.updateOne(
        { _id: id, revokedAt: { $exists: false } },
        { $set: { revokedAt: at } },
      );
      return optional(await this.c.apiTokens.findOne({ _id: id }), toApiToken);
    });
  }

  appendAudit(entry: AuditRecord): Promise<void> {
    const { id, ...fields } = entry;
    return this.run(
      async () => {
        await this.c.audit.insertOne(toDoc(fields, id));
      },
      () => `audit entry id '${entry.id}' is taken`,
    );
  }

  listAudit(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    return this.run(async () => {
      if (filter.limit === 0) return [];
      const query: Filter<Doc> = {};
      if (filter.projectId !== undefined) query.projectId = filter.projectId;
      if (filter.since !== undefined) query.at = { $gte: filter.since };
      let cursor = this.c.audit.find(query).sort({ at: -1, ins: -1 });
      if (filter.limit !== undefined && filter.limit > 0) cursor = cursor.limit(filter.limit);
      return (await cursor.toArray()).map((d) => fromDoc(d) as unknown as AuditRecord);
    });
  }

  // Helpers

  /**
   * Applies a patch to the one document matching `filter` and returns it as it is now, or
   * null when nothing matched. A key present with `undefined` clears the field (as the SQLite
   * store writes NULL for it).
   */
  private async patchOne(
    collection: Collection<Doc>,
    filter: Filter<Doc>,
    fields: Record<string, unknown>,
  ): Promise<Doc | null> {
    const set: Document = {};
    const unset: Document = {};
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined || value === null) unset[key] = "";
      else set[key] = stripEmpty(value);
    }
    const update: UpdateFilter<Doc> = {};
    if (Object.keys(set).length > 0) update.$set = set;
    if (Object.keys(unset).length > 0) update.$unset = unset;
    if (Object.keys(update).length === 0) return collection.findOne(filter);
    return collection.findOneAndUpdate(filter, update, { returnDocument: "after" });
  }

  /**
   * Runs a driver call, turning its failures into the store's errors: duplicate keys into
   * StoreConflictError (with `conflict()` as the message), a closed store and network or
   * server-selection failures into StoreUnavailableError. Anything else is rethrown as is.
   */
  private async run<T>(fn: () => Promise<T>, conflict?: () => string): Promise<T> {
    if (this.closed) throw new StoreUnavailableError("MongoDB store is closed");
    try {
      return await fn();
    } catch (err) {
      if (err instanceof StoreConflictError || err instanceof StoreUnavailableError) throw err;
      if (isDuplicateKey(err)) {
        throw new StoreConflictError(conflict?.() ?? "a unique key is taken", { cause: err });
      }
      if (this.closed) throw new StoreUnavailableError("MongoDB store is closed", { cause: err });
      if (isUnavailable(err)) {
        throw new StoreUnavailableError(`MongoDB unavailable: ${describeError(err)}`, {
          cause: err,
        });
      }
      throw err;
    }
  }
}

// Errors

function isDuplicateKey(err: unknown): boolean {
  if (!(err instanceof MongoError)) return false;
  if (err.code === DUPLICATE_KEY) return true;
  // FerretDB 1.24 on SQLite answers a unique-index violation by an *update* (update,
  // findAndModify) with InternalError (1) carrying SQLite's message, not 11000.
  if (err.code === INTERNAL_ERROR && FERRETDB_SQLITE_UNIQUE.test(err.message)) return true;
  // Bulk writes (insertMany) report per-document errors.
  const writeErrors = (err as { writeErrors?: unknown }).writeErrors;
  const list = Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [];
  return list.some((e) => (e as { code?: unknown }).code === DUPLICATE_KEY);
}

function isUnavailable(err: unknown): boolean {
  if (
    err instanceof MongoNetworkError ||
    err instanceof MongoServerSelectionError ||
    err instanceof MongoTopologyClosedError ||
    err instanceof MongoNotConnectedError ||
    err instanceof MongoClientClosedError ||
    err instanceof MongoServerClosedError
  ) {
    return true;
  }
  if (!(err instanceof MongoError)) return false;
  // The pool's "closed" error is not exported as a class.
  if (err.name === "MongoPoolClosedError") return true;
  return typeof err.code === "number" && UNAVAILABLE_CODES.has(err.code);
}

function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : "unknown error";
}

async function retryOnDuplicate<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    return fn();
  }
}

/** Inserts; false instead of an error when a unique key (or `_id`) is taken. */
async function insertUnlessDuplicate(collection: Collection<Doc>, doc: Doc): Promise<boolean> {
  try {
    await collection.insertOne(doc);
    return true;
  } catch (err) {
    if (isDuplicateKey(err)) return false;
    throw err;
  }
}

// Record <-> document mapping.

function optional<T>(doc: Doc | null, map: (doc: Doc) => T): T | undefined {
  return doc === null ? undefined : map(doc);
}

/**
 * The document for a new record: `_id` = its id, `ins` = insertion order, no empty fields.
 * Exported (with projectFields) for bench/scale.ts, which seeds documents as the store writes them.
 */
export function toDoc(fields: object, id: string): Doc {
  return { ...(stripEmpty(fields) as Document), _id: id, ins: new ObjectId() };
}

/** Drops `undefined` and `null` properties, recursively through plain objects and arrays. */
function stripEmpty(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripEmpty);
  if (value === null || typeof value !== "object" || !isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (v !== undefined && v !== null) out[key] = stripEmpty(v);
  }
  return out;
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** The record stored in a document: `id` from `_id`, no `ins`, no null fields. */
function fromDoc(doc: Doc): Record<string, unknown> {
  const { _id, ins: _ins, ...rest } = doc;
  return { id: _id, ...(stripEmpty(rest) as Record<string, unknown>) };
}

export function projectFields(p: ProjectRecord): Record<string, unknown> {
  const { id: _id, env, ...rest } = p;
  return { ...rest, env: envToList(env) };
}

function envToList(env: Record<string, string>): Array<{ name: string; value: string }> {
  return Object.entries(env).map(([name, value]) => ({ name, value }));
}

function envFromList(list: unknown): Record<string, string> {
  if (!Array.isArray(list)) return {};
  return Object.fromEntries(
    list.map((e) => {
      const entry = e as { name: string; value: string };
      return [entry.name, entry.value];
    }),
  );
}

function toProject(doc: Doc): ProjectRecord {
  const record = fromDoc(doc);
  return { ...record, env: envFromList(record.env) } as unknown as ProjectRecord;
}

function toVersion(doc: Doc): VersionRecord {
  // Versions stored before ports existed have none.
  return { ports: [], ...fromDoc(doc) } as unknown as VersionRecord;
}

function toPortAllocation(doc: Doc): PortAllocation {
  return {
    versionId: doc.versionId as string,
    service: doc.service as string,
    target: doc.target as number,
    protocol: doc.protocol as PortAllocation["protocol"],
    hostPort: doc.hostPort as number,
  };
}

function toOperation(doc: Doc): OperationRecord {
  return fromDoc(doc) as unknown as OperationRecord;
}

function toDelivery(doc: Doc): DeliveryRecord {
  return fromDoc(doc) as unknown as DeliveryRecord;
}

function toApiToken(doc: Doc): ApiTokenRecord {
  return fromDoc(doc) as unknown as ApiTokenRecord;
}
