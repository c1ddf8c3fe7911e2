// Records as the store keeps them. Every other module sees these plain objects; only the store
// implementations know the database. Timestamps are ISO-8601 UTC strings.

export type RefType = "branch" | "tag" | "mergeRequest" | "commit";

export interface AutoDeploy {
  /** Globs matched against branch names. */
  branches: string[];
  tags: boolean;
  mergeRequests: boolean;
}

export interface GitlabLink {
  projectId: number;
  url?: string;
}

export interface ProjectRecord {
  id: string;
  name: string;
  repoUrl: string;
  /** Unset: the first of the default names that exists in the checkout. */
  composeFile?: string;
  gitlab?: GitlabLink;
  autoDeploy: AutoDeploy;
  /** Values in clear: the store is trusted; the API masks them. */
  env: Record<string, string>;
  /** Plain secret; shown by the API only at creation and on the webhook-secret route. */
  webhookSecret: string;
  createdAt: string;
  updatedAt: string;
}

export type VersionState =
  "off" | "queued" | "deploying" | "running" | "stopping" | "failed" | "deleting";

export interface VersionRef {
  type: RefType;
  name: string;
}

export interface VersionRecord {
  id: string;
  projectId: string;
  name: string;
  ref: VersionRef;
  /** The commit the version should run (pinned by a commit ref or the newest webhook). */
  sha?: string;
  /** The commit that is running now, after a successful `up`. */
  deployedSha?: string;
  state: VersionState;
  composeProject: string;
  urls: string[];
  createdAt: string;
  updatedAt: string;
}

export type OperationKind = "up" | "down" | "delete";

export type OperationStatus =
  "queued" | "running" | "succeeded" | "failed" | "canceled" | "superseded";

export const FINISHED_STATUSES: readonly OperationStatus[] = [
  "succeeded",
  "failed",
  "canceled",
  "superseded",
];

export interface OperationTrigger {
  source: "webhook" | "api" | "ui";
  event?: string;
  deliveryId?: string;
}

/** Outcome of one report to GitLab (commit status), kept on the operation. */
export interface GitlabReport {
  state: string;
  ok: boolean;
  attempts: number;
  at: string;
  error?: string;
}

export interface OperationRecord {
  id: string;
  projectId: string;
  versionId: string;
  kind: OperationKind;
  sha?: string;
  trigger: OperationTrigger;
  status: OperationStatus;
  error?: string;
  exitCode?: number;
  /** Options of the operation, e.g. `{keepVolumes: true}` for a delete. */
  options?: { keepVolumes?: boolean; takeovers?: number };
  queuedAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Replica holding the operation while it runs, and until when (lease). */
  owner?: string;
  leaseUntil?: string;
  /** Set when cancel was asked for a running operation; the runner acts on it. */
  cancelRequested?: boolean;
  gitlabReports?: GitlabReport[];
}

export type LogStream = "stdout" | "stderr" | "system";

export interface LogLine {
  operationId: string;
  /** 1, 2, 3, ... per operation; gaps only where a long log was cut in the middle. */
  seq: number;
  stream: LogStream;
  text: string;
  time: string;
}

export type DeliveryOutcome = "accepted" | "ignored" | "duplicate";

export interface DeliveryRecord {
  id: string;
  projectId: string;
  /** Idempotency-Key, else X-Gitlab-Event-UUID, else a generated id. */
  deliveryKey: string;
  event: string;
  receivedAt: string;
  outcome: DeliveryOutcome;
  reason?: string;
  operationIds: string[];
}
