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

/** A unique name (project, version in a project) or unique key is already taken. */
export class StoreConflictError extends Error {
  override readonly name = "StoreConflictError";
}

/** The database cannot be reached; the API answers 503 while this is thrown. */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
}

export type ProjectPatch = Partial<Omit<ProjectRecord, "id" | "createdAt">>;
export type VersionPatch = Partial<Omit<VersionRecord, "id" | "projectId" | "createdAt">>;
export type OperationPatch = Partial<Omit<OperationRecord, "id" | "projectId" | "versionId">>;

export interface OperationFilter {
  projectId?: string;
  versionId?: string;
  status?: OperationStatus[];
  /** Newest first when true; oldest first otherwise. */
  newestFirst?: boolean;
  limit?: number;
}

export interface EnqueueOptions {
  /** Ask the version's running operations to stop, with this as their error (a delete does). */
  cancelRunning?: string;
}

export interface AuditFilter {
  projectId?: string;
  /** Entries at or after this time (ISO). */
  since?: string;
  limit?: number;
}

/** Where one retention batch stopped: the last operation it looked at. */
export interface RetentionCursor {
  finishedAt: string;
  id: string;
}

/** One batch of retention (docs/api.md, "Retention"). */
export interface RetentionBatch {
  /** Operations that finished before this time (ISO) may go. */
  finishedBefore: string;
  /** Operations looked at in this batch, oldest finished first (then by id). */
  limit: number;
  /** Log lines deleted at most in this batch (at least 1): a long log takes several batches. */
  maxLogLines: number;
  /** Where the previous batch stopped (its `next`); unset: from the oldest. */
  after?: RetentionCursor;
}

export interface RetentionResult {
  deletedOperations: number;
  deletedLogLines: number;
  /** Where the next batch starts; unset when nothing older is left to look at. */
  next?: RetentionCursor;
}

export interface ClaimRequest {
  /** Replica id taking the operation. */
  owner: string;
  /** Lease end written on the claimed operation (ISO). */
  leaseUntil: string;
  /** Now (ISO), written as startedAt. */
  now: string;
}

/**
 * The persistence port. Two implementations (SQLite, MongoDB) pass one contract suite
 * (test/support/store-contract.ts). Methods are async so both fit; a missing record is
 * `undefined`, never an error.
 */
export interface Store {
  readonly kind: "sqlite" | "mongodb";
  close(): Promise<void>;
  /** Cheap round-trip used by /api/health. Throws StoreUnavailableError when down. */
  ping(): Promise<void>;

  // Settings: small named values (hashed admin token, instance id).
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;

  // Projects. Names are unique: createProject / updateProject throw StoreConflictError.
  createProject(project: ProjectRecord): Promise<void>;
  getProject(id: string): Promise<ProjectRecord | undefined>;
  getProjectByName(name: string): Promise<ProjectRecord | undefined>;
  listProjects(): Promise<ProjectRecord[]>;
  updateProject(id: string, patch: ProjectPatch): Promise<ProjectRecord | undefined>;
  /** Removes the project and its deliveries (versions must be gone already). */
  deleteProject(id: string): Promise<void>;

  // Versions. (projectId, name) is unique: create / update throw StoreConflictError.
  createVersion(version: VersionRecord): Promise<void>;
  getVersion(id: string): Promise<VersionRecord | undefined>;
  getVersionByName(projectId: string, name: string): Promise<VersionRecord | undefined>;
  /** Oldest first. */
  listVersions(projectId?: string): Promise<VersionRecord[]>;
  updateVersion(id: string, patch: VersionPatch): Promise<VersionRecord | undefined>;
  /** Removes the version and lets go of its host ports. */
  deleteVersion(id: string): Promise<void>;

  // Host ports of versions' published ports. A host port is held by at most one
  // (version, service, target, protocol), and each of those holds at most one host port: both
  // are unique keys in the database, so two replicas on one MongoDB never hand one out twice.
  /** The ports held by one version, or by every version, in host port order. */
  listPortAllocations(versionId?: string): Promise<PortAllocation[]>;
  /** Holds a host port; false (and nothing stored) when the port or that key is held already. */
  reservePort(allocation: PortAllocation): Promise<boolean>;
  /** Lets go of a version's host ports: the ones given, or all of them. */
  releasePorts(versionId: string, hostPorts?: number[]): Promise<void>;

  // Operations.
  /**
   * Stores a queued operation and, in the same step, marks every other `queued` operation of
   * the same version `superseded` (finishedAt = op.queuedAt). With `cancelRunning`, the same
   * step also asks the version's operations running now, all queued before this one, to stop
   * (cancelRequested, error = the reason); the new operation is never among them, even when a
   * runner claims it at once. Returns what it stopped: the superseded operations, then the
   * running ones it asked to stop (status still `running`), oldest first within each group.
   */
  enqueueOperation(op: OperationRecord, opts?: EnqueueOptions): Promise<OperationRecord[]>;
  getOperation(id: string): Promise<OperationRecord | undefined>;
  listOperations(filter?: OperationFilter): Promise<OperationRecord[]>;
  /**
   * Atomically takes the oldest queued operation whose version has no operation running
   * (status running), sets it running with owner, lease and startedAt, and returns it.
   * Two callers never get the same operation.
   */
  claimOperation(req: ClaimRequest): Promise<OperationRecord | undefined>;
  /**
   * Stores `op` as already running (status `running`, with owner, lease and startedAt set), in
   * one step with the check that its version has no operation queued or running; false, and
   * nothing stored, when it has one. For an operation the runner decided on and runs itself
   * instead of queueing it (the running limit's down, src/deploy/running-limit.ts), so it never
   * waits for a free runner slot. Its version is then held as by a claim until it finishes. Of
   * two starts for one version at the same moment at most one goes through (both may say false).
   */
  startOperation(op: OperationRecord): Promise<boolean>;
  /**
   * Stores `op` (status `queued`) in one step with the check that its version has no operation
   * queued or running; false, and nothing stored, when it has one. Of two for one version at the
   * same moment at most one is stored. Idle stop queues its downs so (src/deploy/idle-stop.ts):
   * replicas that look at once queue one down, not one each.
   */
  enqueueOperationIfIdle(op: OperationRecord): Promise<boolean>;
  /**
   * Updates an operation. With `ifStatus`, only when its status is one of those (returns
   * undefined otherwise); with `ifOwner`, only when it is held by that owner.
   */
  updateOperation(
    id: string,
    patch: OperationPatch,
    cond?: { ifStatus?: OperationStatus[]; ifOwner?: string },
  ): Promise<OperationRecord | undefined>;

  /**
   * Retention, one bounded batch: of the operations that finished before `finishedBefore`
   * (after the cursor), deletes each with its log lines, except, while its version exists, the
   * version's newest operation (queuedAt order, the API's `lastOperation`) and the operations of
   * its kept verified deploys (src/store/retention-keep.ts). An operation goes only once its last
   * line went, so a batch cut short by `maxLogLines` is continued by the next one.
   */
  deleteOldOperations(batch: RetentionBatch): Promise<RetentionResult>;

  // Log lines of an operation.
  appendLogLines(lines: LogLine[]): Promise<void>;
  /** Lines with seq > afterSeq, in seq order, at most `limit`. */
  getLogLines(operationId: string, afterSeq?: number, limit?: number): Promise<LogLine[]>;
  /** Deletes lines with fromSeq <= seq <= toSeq (cutting the middle of a long log). */
  deleteLogLines(operationId: string, fromSeq: number, toSeq: number): Promise<void>;

  // Webhook deliveries. (projectId, deliveryKey) is unique.
  /** Returns false (and stores nothing) when the key was recorded before for the project. */
  insertDelivery(delivery: DeliveryRecord): Promise<boolean>;
  /** A new `deliveryKey` gives the old one back: a retry with it is no duplicate. */
  updateDelivery(
    id: string,
    patch: Partial<Pick<DeliveryRecord, "deliveryKey" | "outcome" | "reason" | "operationIds">>,
  ): Promise<void>;
  /** Newest first. */
  listDeliveries(projectId: string, limit?: number): Promise<DeliveryRecord[]>;

  // Sessions (dashboard sign-ins), API tokens and the audit log (src/auth).
  /** Throws StoreConflictError when the id is taken. */
  createSession(session: SessionRecord): Promise<void>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  deleteSession(id: string): Promise<void>;
  /** Removes sessions whose expiresAt is before `now` (ISO); returns how many. */
  deleteExpiredSessions(now: string): Promise<number>;
  /** Throws StoreConflictError when the id or hash is taken. */
  createApiToken(token: ApiTokenRecord): Promise<void>;
  getApiTokenByHash(hash: string): Promise<ApiTokenRecord | undefined>;
  getApiToken(id: string): Promise<ApiTokenRecord | undefined>;
  /** Oldest first. */
  listApiTokens(): Promise<ApiTokenRecord[]>;
  revokeApiToken(id: string, at: string): Promise<ApiTokenRecord | undefined>;
  appendAudit(entry: AuditRecord): Promise<void>;
  /** Newest first. */
  listAudit(filter?: AuditFilter): Promise<AuditRecord[]>;
}
