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
  /** Compose policy words this project allows (docs/api.md "Compose policy"); unset: none. */
  policy?: ProjectPolicy;
  /** Path the primary service must answer 2xx/3xx on before an up counts (docs/api.md, "Health"). */
  // `| undefined`: a patch with `healthPath: undefined` removes it.
  healthPath?: string | undefined;
  /** A failed up brings the last good deploy back (`auto`, the default when unset) or not. */
  rollback?: "auto" | "off";
  /** Idle stop (docs/api.md, "Idle stop and limits"); unset fields: the instance defaults. */
  autoStop?: AutoStop;
  /** Versions of this project running at once; unset: no project limit. */
  maxRunning?: number | undefined;
  /** Resource limits for every service that sets none itself (docs/api.md, "Resources"). */
  limits?: ServiceLimits | undefined;
  /** The GitLab side of the project (hook, deploy key) as last checked (docs/gitlab.md). */
  gitlabStatus?: ProjectGitlabStatus;
  /** Set by `DELETE /api/projects/:project` until the project is gone (docs/api.md). */
  deletion?: ProjectDeletion;
  createdAt: string;
  updatedAt: string;
}

/**
 * When a version with no deploy and no preview request is turned off. `idleHours` unset: the
 * instance default (DOCKBOT_IDLE_HOURS); `0`: never.
 */
export interface AutoStop {
  idleHours?: number;
  exemptDefaultBranch: boolean;
  exemptTags: boolean;
}

/** Compose resource limits: `cpus` as a number of CPUs, `memory` as compose writes it ("512m"). */
export interface ServiceLimits {
  cpus?: number;
  memory?: string;
}

/**
 * A project deletion under way (`deleting`: its versions' deletes are queued or running) or
 * stopped (`failed`: a delete of one of its versions did not succeed; `error` says which and
 * why, and another DELETE retries).
 */
export interface ProjectDeletion {
  requestedAt: string;
  state: "deleting" | "failed";
  error?: string;
}

export type GitlabItemStatus = "created" | "updated" | "ok" | "disabled" | "failed";

/** One thing dockbot keeps on a GitLab project (its hook, its deploy key). */
export interface GitlabItem {
  /** GitLab's id of the hook or key; unset when there is none (yet): the API shows null. */
  id?: number;
  status: GitlabItemStatus;
  /** GitLab's message, or what to do (a disabled hook). */
  error?: string;
  /** The hook's `alert_status` when GitLab disabled it. */
  alertStatus?: string;
  disabledUntil?: string;
}

export interface ProjectGitlabStatus {
  hook: GitlabItem;
  deployKey: GitlabItem;
  checkedAt: string;
}

/** Words of the compose policy (src/deploy/compose-policy.ts defines them). */
export interface ProjectPolicy {
  allow: string[];
}

/** A published port of a version and the host port allocated to it (docs/api.md). */
export interface VersionPort {
  service: string;
  target: number;
  protocol: "tcp" | "udp";
  hostPort: number;
}

/** A host port held in the store for (version, service, target, protocol). */
export interface PortAllocation extends VersionPort {
  versionId: string;
}

export type VersionState =
  "off" | "queued" | "deploying" | "running" | "stopping" | "failed" | "deleting";

export interface VersionRef {
  type: RefType;
  name: string;
  /** A merge request's source branch (from its webhook): the ref of its GitLab deployments. */
  sourceBranch?: string;
}

/** What dockbot made on GitLab for a version, kept so nothing is made twice (docs/gitlab.md). */
export interface VersionGitlab {
  environmentId?: number;
  /** The external_url the environment has. */
  externalUrl?: string;
  /** The merge request note dockbot writes and edits. */
  noteId?: number;
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
  /** The last deploy that passed its health check (docs/api.md, "Health and rollback"). */
  lastGood?: { sha: string; deployedAt: string };
  /**
   * Verified deploys, newest first (the first is `lastGood`): what a rollback brings back. The
   * images of each are kept under tags of the version's own (docs/api.md, "Health and rollback").
   */
  goodDeploys?: GoodDeploy[];
  /** The last request through the preview router (docs/api.md, "Idle stop and limits"). */
  lastRequestAt?: string;
  state: VersionState;
  composeProject: string;
  urls: string[];
  /** Host ports of the version's published ports, allocated from DOCKBOT_PORT_RANGE. */
  ports: VersionPort[];
  /** The service labelled `dockbot.primary: "true"`, else the first with a published TCP port. */
  primaryService?: string;
  gitlab?: VersionGitlab;
  createdAt: string;
  updatedAt: string;
}

/** One deploy that passed its health check. */
export interface GoodDeploy {
  sha: string;
  deployedAt: string;
  /** The operation that made it (kept by retention, docs/api.md "Configuration"). */
  operationId?: string;
  /** Built services' images, kept under the version's own tags: service to tag. */
  images?: Record<string, string>;
}

export type OperationKind = "up" | "down" | "delete" | "rollback";

export type OperationStatus =
  "queued" | "running" | "succeeded" | "failed" | "canceled" | "superseded";

export const FINISHED_STATUSES: readonly OperationStatus[] = [
  "succeeded",
  "failed",
  "canceled",
  "superseded",
];

export interface OperationTrigger {
  /** `policy`: dockbot itself (idle stop, the running limit, disk hygiene), with the `reason`. */
  source: "webhook" | "api" | "ui" | "policy";
  event?: string;
  deliveryId?: string;
  reason?: string;
}

/** Outcome of one call to GitLab for an operation, kept on the operation. */
export interface GitlabReport {
  /** Unset: a commit status. */
  kind?: "status" | "environment" | "deployment" | "note" | "stop";
  /** GitLab's id of what the call made or changed (a deployment's id, a note's id). */
  id?: number;
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
  /** A failed up that brought the version's last good commit back: that sha. */
  rolledBackTo?: string;
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

// Who is asking and what they did (src/auth; docs/api.md, "Who may do what").

/** A GitLab account as `/api/v4/user` names it. */
export interface GitlabUser {
  id: number;
  username: string;
  name: string;
}

/**
 * A dashboard session, or a GitLab sign-in under way (`kind: "sign-in"`, holding the OAuth
 * `state` and PKCE verifier until the callback). Its id is the SHA-256 of the cookie value, so
 * the store never holds a usable cookie.
 */
export interface SessionRecord {
  id: string;
  kind: "user" | "admin-token" | "sign-in";
  user?: GitlabUser;
  /** The person's GitLab OAuth access token: their access levels are asked with it. */
  gitlabToken?: string;
  /** kind "admin-token": which admin token signed in (a new one ends the session). */
  adminTokenId?: string;
  /** kind "sign-in": the OAuth round trip under way. */
  oauth?: { state: string; verifier: string; next: string };
  csrf: string;
  createdAt: string;
  expiresAt: string;
}

export type TokenScope = "read" | "deploy" | "admin";

/** An API token; only its SHA-256 is kept. */
export interface ApiTokenRecord {
  id: string;
  name: string;
  hash: string;
  scopes: TokenScope[];
  /** Project ids the token is limited to; unset: every project its maker may use. */
  projects?: string[];
  expiresAt?: string;
  createdAt: string;
  /** Who made it: a token never has more rights than its maker has when it is used. */
  maker: { via: "session" | "admin-token"; user?: GitlabUser };
  revokedAt?: string;
}

export interface AuditActor {
  via: "session" | "token" | "admin-token";
  user?: GitlabUser;
  tokenId?: string;
  tokenName?: string;
}

/** One change: who, what, which project or version, when, from where. */
export interface AuditRecord {
  id: string;
  at: string;
  actor: AuditActor;
  /** What was done, e.g. `version.on`, `project.update`. */
  action: string;
  /** `api` or `ui`, and the request (method and path). */
  source: "api" | "ui";
  request: string;
  projectId?: string;
  versionId?: string;
  /** The address the request came from. */
  address?: string;
  /** The HTTP status it was answered with. */
  status: number;
}
