import { EventEmitter } from "node:events";
import type { LogLine, OperationRecord, ProjectRecord, VersionRecord } from "../store/types.js";

/** What the deploy engine announces, after the change is stored (invariant 3). */
export interface DeployEvents {
  "operation.queued": [OperationRecord];
  "operation.started": [OperationRecord];
  "operation.finished": [OperationRecord];
  /** Lines already stored, in seq order, in batches. */
  "operation.log": [LogLine[]];
  "version.updated": [VersionRecord];
  /** A version is gone from the store (its delete succeeded). */
  "version.deleted": [VersionRecord];
  /** Projects as stored (GitLab onboarding listens: docs/gitlab.md). */
  "project.created": [ProjectRecord];
  /** The project after and before the change. */
  "project.updated": [ProjectRecord, ProjectRecord];
  /** The project is gone from the store (its last version was deleted). */
  "project.deleted": [ProjectRecord];
}

/**
 * The in-process event bus. The runner publishes; realtime (Socket.io, follow streams) and the
 * GitLab reporter subscribe. Listeners must not throw: the bus is the runner's hot path.
 */
export class EventBus extends EventEmitter<DeployEvents> {
  constructor() {
    super({ captureRejections: false });
    // One listener per follow stream and socket room: many are normal.
    this.setMaxListeners(0);
  }
}
