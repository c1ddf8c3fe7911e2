// The application layer: what the REST API, the webhooks and the UI ask of dockbot. It validates
// domain rules, writes to the store, queues operations and wakes the runner. It never runs git
// or compose itself (the runner does) and never sees HTTP.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { AppError, ConflictError, InvalidRequestError, NotFoundError } from "../errors.js";
import { newId } from "../ids.js";
import { isPolicyWord, POLICY_WORDS } from "./compose-policy.js";
import { historyOf, previousDeploy } from "./deploy-history.js";
import type { EventBus } from "./events.js";
import { isValidRepoUrl } from "./git.js";
import {
  API_REF_PATTERN,
  BRANCH_GLOB_PATTERN,
  BRANCH_GLOBS_MAX,
  charLength,
  COMPOSE_FILE_PATTERN,
  ENV_NAME_PATTERN,
  ENV_VALUE_MAX,
  CPUS_MAX,
  HEALTH_PATH_PATTERN,
  MEMORY_LIMIT_PATTERN,
  SLUG_PATTERN,
} from "./input-rules.js";
import { IDLE_HOURS_MAX, MAX_RUNNING_MAX } from "./project-settings.js";
import {
  composeProjectName,
  isSlug,
  isValidRefName,
  SHA_PATTERN,
  versionNameForRef,
} from "./names.js";
import { StoreConflictError, type Store } from "../store/store.js";
import type {
  AutoDeploy,
  AutoStop,
  GitlabLink,
  OperationKind,
  OperationRecord,
  OperationTrigger,
  ProjectRecord,
  VersionRecord,
  VersionRef,
  ServiceLimits,
} from "../store/types.js";

export const DEFAULT_AUTO_DEPLOY: AutoDeploy = { branches: ["*"], tags: true, mergeRequests: true };

export interface ProjectInput {
  name: string;
  repoUrl: string;
  composeFile?: string | undefined;
  gitlab?: { projectId: number; url?: string | undefined } | undefined;
  autoDeploy?:
    | {
        branches?: string[] | undefined;
        tags?: boolean | undefined;
        mergeRequests?: boolean | undefined;
      }
    | undefined;
  env?: Record<string, string> | undefined;
  /** Compose policy words the project allows (docs/api.md, "Compose policy"). */
  policy?: { allow: string[] } | undefined;
  /** Path the primary service must answer before an up counts (docs/api.md, "Health"). */
  healthPath?: string | undefined;
  /** A failed up brings the last good deploy back (docs/api.md, "Health and rollback"). */
  rollback?: "auto" | "off" | undefined;
  /** Idle stop (docs/api.md, "Idle stop and limits"); fields left out keep their value. */
  autoStop?: AutoStopInput | undefined;
  /** Versions of the project running at once. */
  maxRunning?: number | undefined;
  /** Limits for every service that sets none itself (docs/api.md, "Resources"). */
  limits?: LimitsInput | undefined;
}

type AutoStopInput = { [K in keyof AutoStop]?: AutoStop[K] | undefined };
type LimitsInput = { [K in keyof ServiceLimits]?: ServiceLimits[K] | undefined };

/** `null` removes `healthPath`, `maxRunning` or `limits`. */
type Removable = "healthPath" | "maxRunning" | "limits";
export type ProjectPatchInput = {
  [K in Exclude<keyof ProjectInput, Removable>]?: ProjectInput[K] | undefined;
} & {
  healthPath?: string | null | undefined;
  maxRunning?: number | null | undefined;
  limits?: LimitsInput | null | undefined;
};

function definedOnly<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}

/** What the store keeps of a project's idle stop: idleHours only when the project chose one. */
function autoStopRecord(input: AutoStopInput): AutoStop {
  const out: AutoStop = {
    exemptDefaultBranch: input.exemptDefaultBranch ?? true,
    exemptTags: input.exemptTags ?? true,
  };
  if (input.idleHours !== undefined) out.idleHours = input.idleHours;
  return out;
}

function gitlabLink(input: NonNullable<ProjectInput["gitlab"]>): GitlabLink {
  return input.url === undefined
    ? { projectId: input.projectId }
    : { projectId: input.projectId, url: input.url };
}

export interface VersionInput {
  ref: string;
  name?: string | undefined;
  sha?: string | undefined;
}

/** What the service needs of the runner: a nudge when work is queued, and local cancels. */
export interface RunnerControl {
  wake(): void;
  /** Stops the operation if this process runs it; false when it runs elsewhere (or nowhere). */
  cancelLocal(operationId: string): boolean;
  /** Sets a version's state from what Docker runs for it (no operation active). */
  reconcileVersion(versionId: string): Promise<void>;
}

export interface DeployServiceDeps {
  store: Store;
  bus: EventBus;
  logger: Logger;
  runner?: RunnerControl;
  /** Looks a ref up in the project's local mirror, when there is one (no network). */
  classifyRef?: (project: string, ref: string) => Promise<VersionRef["type"] | undefined>;
}

/** The error of a running operation a delete stops (what `GET .../versions` then shows). */
export const SUPERSEDED_BY_DELETE = "superseded by a delete";

function now(): string {
  return new Date().toISOString();
}

/** requestOperation with `unlessBusy` found an operation of the version queued or running. */
class VersionBusyError extends ConflictError {
  constructor(version: string) {
    super(`version '${version}' has an operation queued or running`);
  }
}

export class DeployService {
  private runner: RunnerControl | undefined;

  constructor(private readonly deps: DeployServiceDeps) {
    this.runner = deps.runner;
    // Every way an operation ends (the runner, a cancel, a supersede, a restart, a dead lease)
    // is announced here once it is stored, so this is the one place that sees every delete
    // that did not succeed: a project deletion waiting for it is marked failed, never left
    // waiting for a version nothing will delete.
    deps.bus.on("operation.finished", (op) => {
      if (op.kind !== "delete" || op.status === "succeeded") return;
      void this.failProjectDeletion(op).catch((error: unknown) =>
        deps.logger.error(
          { err: error, operationId: op.id, projectId: op.projectId },
          "marking the project deletion failed did not work",
        ),
      );
    });
  }

  /** The runner is built after the service in main.ts; it plugs itself in here. */
  attachRunner(runner: RunnerControl): void {
    this.runner = runner;
  }

  get store(): Store {
    return this.deps.store;
  }

  // ---------------------------------------------------------------- projects

  async createProject(input: ProjectInput): Promise<ProjectRecord> {
    this.checkProjectInput(input);
    const at = now();
    const project: ProjectRecord = {
      id: newId(),
      name: input.name,
      repoUrl: input.repoUrl,
      autoDeploy: { ...DEFAULT_AUTO_DEPLOY, ...definedOnly(input.autoDeploy ?? {}) },
      env: input.env ?? {},
      webhookSecret: randomBytes(24).toString("base64url"),
      createdAt: at,
      updatedAt: at,
    };
    if (input.composeFile !== undefined) project.composeFile = input.composeFile;
    if (input.gitlab !== undefined) project.gitlab = gitlabLink(input.gitlab);
    if (input.policy !== undefined) project.policy = { allow: [...new Set(input.policy.allow)] };
    if (input.healthPath !== undefined) project.healthPath = input.healthPath;
    if (input.rollback !== undefined) project.rollback = input.rollback;
    if (input.autoStop !== undefined) project.autoStop = autoStopRecord(input.autoStop);
    if (input.maxRunning !== undefined) project.maxRunning = input.maxRunning;
    if (input.limits !== undefined) project.limits = definedOnly(input.limits);
    try {
      await this.deps.store.createProject(project);
    } catch (error) {
      if (error instanceof StoreConflictError) {
        throw new ConflictError(`a project named '${input.name}' exists already`);
      }
      throw error;
    }
    this.deps.bus.emit("project.created", project);
    return project;
  }

  async updateProject(key: string, patch: ProjectPatchInput): Promise<ProjectRecord> {
    const project = await this.getProject(key);
    const merged: ProjectInput = {
      name: patch.name ?? project.name,
      repoUrl: patch.repoUrl ?? project.repoUrl,
      autoDeploy: { ...project.autoDeploy, ...definedOnly(patch.autoDeploy ?? {}) },
      env: patch.env ?? project.env,
      composeFile: patch.composeFile === undefined ? project.composeFile : patch.composeFile,
      gitlab: patch.gitlab === undefined ? project.gitlab : patch.gitlab,
      policy: patch.policy === undefined ? project.policy : patch.policy,
      healthPath: patch.healthPath === null ? undefined : (patch.healthPath ?? project.healthPath),
      rollback: patch.rollback ?? project.rollback,
      autoStop: { ...project.autoStop, ...definedOnly(patch.autoStop ?? {}) },
      maxRunning: patch.maxRunning === null ? undefined : (patch.maxRunning ?? project.maxRunning),
      limits: patch.limits === null ? undefined : (patch.limits ?? project.limits),
    };
    this.checkProjectInput(merged);
    if (
      merged.name !== project.name &&
      (await this.deps.store.listVersions(project.id)).length > 0
    ) {
      // Checkouts, mirrors and compose project names derive from the name.
      throw new ConflictError(
        "a project with versions cannot be renamed: delete its versions first",
      );
    }
    try {
      const updated = await this.deps.store.updateProject(project.id, {
        name: merged.name,
        repoUrl: merged.repoUrl,
        autoDeploy: { ...DEFAULT_AUTO_DEPLOY, ...definedOnly(merged.autoDeploy ?? {}) },
        env: merged.env ?? {},
        ...(merged.composeFile === undefined ? {} : { composeFile: merged.composeFile }),
        ...(merged.gitlab === undefined ? {} : { gitlab: gitlabLink(merged.gitlab) }),
        ...(merged.policy === undefined
          ? {}
          : { policy: { allow: [...new Set(merged.policy.allow)] } }),
        // Always written: undefined removes a healthPath the patch set to null.
        healthPath: merged.healthPath,
        ...(merged.rollback === undefined ? {} : { rollback: merged.rollback }),
        autoStop: autoStopRecord(merged.autoStop ?? {}),
        // Always written: undefined removes what the patch set to null.
        maxRunning: merged.maxRunning,
        limits: merged.limits === undefined ? undefined : definedOnly(merged.limits),
        updatedAt: now(),
      });
      if (!updated) throw new NotFoundError("project", key);
      this.deps.bus.emit("project.updated", updated, project);
      return updated;
    } catch (error) {
      if (error instanceof StoreConflictError) {
        throw new ConflictError(`a project named '${merged.name}' exists already`);
      }
      throw error;
    }
  }

  async getProject(key: string): Promise<ProjectRecord> {
    const project =
      (await this.deps.store.getProject(key)) ?? (await this.deps.store.getProjectByName(key));
    if (!project) throw new NotFoundError("project", key);
    return project;
  }

  listProjects(): Promise<ProjectRecord[]> {
    return this.deps.store.listProjects();
  }

  /**
   * Deletes every version (each through a queued `delete` operation), then the project: the
   * runner finishes the job when the last version is gone. The deletion is kept on the project
   * (`deletion`) until then; when a delete of one of its versions does not succeed it is marked
   * `failed` with the reason, and calling this again retries: a delete is queued for every
   * version still there that has none queued or running (queueing another would stop it).
   */
  async deleteProject(
    key: string,
    trigger: OperationTrigger,
  ): Promise<{ project: ProjectRecord; operations: OperationRecord[] }> {
    const found = await this.getProject(key);
    const project =
      (await this.deps.store.updateProject(found.id, {
        deletion: { requestedAt: now(), state: "deleting" },
      })) ?? found;
    const operations: OperationRecord[] = [];
    for (const version of await this.deps.store.listVersions(project.id)) {
      const [newest] = await this.deps.store.listOperations({
        versionId: version.id,
        status: ["queued", "running"],
        newestFirst: true,
        limit: 1,
      });
      operations.push(
        newest?.kind === "delete"
          ? newest
          : await this.requestOperation(version, "delete", trigger),
      );
    }
    if (operations.length === 0) await this.finishProjectDeletion(project.id);
    return { project, operations };
  }

  /** Called by the runner after a version is deleted: removes a project marked for deletion. */
  async finishProjectDeletion(projectId: string): Promise<boolean> {
    const project = await this.deps.store.getProject(projectId);
    if (!project?.deletion) return false;
    if ((await this.deps.store.listVersions(projectId)).length > 0) return false;
    await this.deps.store.deleteProject(projectId);
    this.deps.logger.info({ projectId }, "project deleted");
    this.deps.bus.emit("project.deleted", project);
    return true;
  }

  /**
   * A delete that ended without success (failed, canceled, superseded) stops the deletion of
   * its project, if one is under way: the project says so, with the reason.
   */
  private async failProjectDeletion(op: OperationRecord): Promise<void> {
    const project = await this.deps.store.getProject(op.projectId);
    const deletion = project?.deletion;
    if (!project || deletion?.state !== "deleting") return;
    // A delete that ended before this deletion was asked for (the one a retry follows) is not
    // this deletion's failure.
    if (op.finishedAt !== undefined && op.finishedAt < deletion.requestedAt) return;
    // Replaced by a newer delete of the same version (a version DELETE, a merge request closed
    // again): that one carries the deletion on.
    const [newest] = await this.deps.store.listOperations({
      versionId: op.versionId,
      status: ["queued", "running"],
      newestFirst: true,
      limit: 1,
    });
    if (newest?.kind === "delete") return;
    const version = await this.deps.store.getVersion(op.versionId);
    const outcome = op.status === "failed" ? "failed" : `was ${op.status}`;
    const error =
      `the delete of version '${version?.name ?? op.versionId}' ${outcome}` +
      `${op.error === undefined ? "" : `: ${op.error}`} (operation ${op.id})`;
    await this.deps.store.updateProject(project.id, {
      deletion: { ...deletion, state: "failed", error },
    });
    this.deps.logger.warn(
      { projectId: project.id, operationId: op.id, error },
      "project deletion failed",
    );
  }

  // ---------------------------------------------------------------- versions

  async createVersion(projectKey: string, input: VersionInput): Promise<VersionRecord> {
    const project = await this.getProject(projectKey);
    if (project.deletion?.state === "deleting") {
      throw new ConflictError(`project '${project.name}' is being deleted`);
    }
    const ref = await this.parseRef(project, input.ref);
    if (input.sha !== undefined && !SHA_PATTERN.test(input.sha)) {
      throw new InvalidRequestError("sha must be a commit hash of 7 to 64 hex characters", {
        field: "sha",
      });
    }
    const existing = new Set((await this.deps.store.listVersions(project.id)).map((v) => v.name));
    let name = input.name;
    if (name !== undefined) {
      if (!isSlug(name)) {
        throw new InvalidRequestError(`name must match ${SLUG_PATTERN.source}`, {
          field: "name",
        });
      }
      if (existing.has(name)) throw new ConflictError(`version '${name}' exists already`);
    } else {
      name = versionNameForRef(ref, (n) => existing.has(n));
      if (existing.has(name)) throw new ConflictError(`version '${name}' exists already`);
    }
    return this.insertVersion(
      project,
      name,
      ref,
      input.sha ?? (ref.type === "commit" ? ref.name : undefined),
    );
  }

  /** The version of a ref (same type and name), if there is one. */
  async findVersionByRef(
    project: ProjectRecord,
    ref: VersionRef,
  ): Promise<VersionRecord | undefined> {
    const bySlug = await this.deps.store.getVersionByName(project.id, versionNameForRef(ref));
    if (bySlug && bySlug.ref.type === ref.type && bySlug.ref.name === ref.name) return bySlug;
    const versions = await this.deps.store.listVersions(project.id);
    return versions.find((v) => v.ref.type === ref.type && v.ref.name === ref.name);
  }

  /**
   * The version a webhook ref maps to, created in state `off` if new. Found by its ref, not its
   * name: a ref whose slug collided with another's has a name with a hash suffix.
   */
  async ensureVersionForRef(project: ProjectRecord, ref: VersionRef): Promise<VersionRecord> {
    // Fast path (every push of a known branch): the version under the ref's own slug.
    const bySlug = await this.deps.store.getVersionByName(project.id, versionNameForRef(ref));
    if (bySlug && bySlug.ref.type === ref.type && bySlug.ref.name === ref.name) return bySlug;
    for (let attempt = 0; ; attempt++) {
      const versions = await this.deps.store.listVersions(project.id);
      const found = versions.find((v) => v.ref.type === ref.type && v.ref.name === ref.name);
      if (found) return found;
      const taken = new Set(versions.map((v) => v.name));
      try {
        return await this.insertVersion(
          project,
          versionNameForRef(ref, (n) => taken.has(n)),
          ref,
          undefined,
        );
      } catch (error) {
        // Two deliveries for a new branch at once: the other one created it; look again.
        if (!(error instanceof ConflictError) || attempt >= 2) throw error;
      }
    }
  }

  private async insertVersion(
    project: ProjectRecord,
    name: string,
    ref: VersionRef,
    sha: string | undefined,
  ): Promise<VersionRecord> {
    const at = now();
    const version: VersionRecord = {
      id: newId(),
      projectId: project.id,
      name,
      ref,
      state: "off",
      composeProject: composeProjectName(project.name, name),
      urls: [],
      ports: [],
      createdAt: at,
      updatedAt: at,
    };
    if (sha !== undefined) version.sha = sha;
    try {
      await this.deps.store.createVersion(version);
    } catch (error) {
      if (error instanceof StoreConflictError)
        throw new ConflictError(`version '${name}' exists already`);
      throw error;
    }
    this.deps.bus.emit("version.updated", version);
    return version;
  }

  async getVersion(
    projectKey: string,
    key: string,
  ): Promise<{ project: ProjectRecord; version: VersionRecord }> {
    const project = await this.getProject(projectKey);
    const byId = await this.deps.store.getVersion(key);
    const version =
      byId && byId.projectId === project.id
        ? byId
        : await this.deps.store.getVersionByName(project.id, key);
    if (!version) throw new NotFoundError("version", key);
    return { project, version };
  }

  async listVersions(projectKey: string): Promise<VersionRecord[]> {
    const project = await this.getProject(projectKey);
    return this.deps.store.listVersions(project.id);
  }

  // ---------------------------------------------------------------- operations

  /**
   * Queues an operation for a version. Stored before it is announced or answered; a newer
   * operation supersedes the queued ones of the same version (the newest request wins), and a
   * delete also stops the one running, so a closed merge request never keeps deploying. Both
   * happen in the store's one enqueue step, which only ever stops operations queued before the
   * new one: a runner may claim the delete the moment it is stored, and it must never cancel
   * itself (docs/architecture.md, invariant 7).
   */
  async requestOperation(
    version: VersionRecord,
    kind: OperationKind,
    trigger: OperationTrigger,
    opts: {
      sha?: string | undefined;
      keepVolumes?: boolean;
      /** The operation's id when the caller had to know it first (a webhook stores it first). */
      id?: string;
      /** Only when the version has no operation queued or running (requestOperationUnlessBusy). */
      unlessBusy?: boolean;
    } = {},
  ): Promise<OperationRecord> {
    if (opts.sha !== undefined && !SHA_PATTERN.test(opts.sha)) {
      throw new InvalidRequestError("sha must be a commit hash of 7 to 64 hex characters", {
        field: "sha",
      });
    }
    const op: OperationRecord = {
      id: opts.id ?? newId(),
      projectId: version.projectId,
      versionId: version.id,
      kind,
      trigger,
      status: "queued",
      queuedAt: now(),
    };
    if (kind === "up") {
      const sha = opts.sha ?? (await this.pinnedSha(version));
      if (sha !== undefined) op.sha = sha;
    }
    // A rollback names the kept deploy it goes to (requestRollback).
    if (kind === "rollback" && opts.sha !== undefined) op.sha = opts.sha;
    if (kind === "delete" && opts.keepVolumes) op.options = { keepVolumes: true };
    let stopped: OperationRecord[] = [];
    if (!opts.unlessBusy) {
      stopped = await this.deps.store.enqueueOperation(
        op,
        kind === "delete" ? { cancelRunning: SUPERSEDED_BY_DELETE } : {},
      );
    } else if (!(await this.deps.store.enqueueOperationIfIdle(op))) {
      throw new VersionBusyError(version.name);
    }
    const versionPatch: Partial<VersionRecord> = { state: "queued", updatedAt: op.queuedAt };
    // The commit the version's ref asks for; a rollback runs an older one and leaves it.
    if (op.sha !== undefined && kind === "up") versionPatch.sha = op.sha;
    const updated = await this.deps.store.updateVersion(version.id, versionPatch);
    for (const old of stopped) {
      // Superseded ones are finished; running ones were asked to stop: the runner that holds
      // each ends it (at once here, at its next lease renewal on another replica).
      if (old.status === "running") this.runner?.cancelLocal(old.id);
      else this.deps.bus.emit("operation.finished", old);
    }
    this.deps.bus.emit("operation.queued", op);
    if (updated) this.deps.bus.emit("version.updated", updated);
    this.runner?.wake();
    return op;
  }

  /**
   * requestOperation, stored only when the version has no operation queued or running, checked
   * in the same step (Store.enqueueOperationIfIdle); undefined when it has one. Idle stop queues
   * its downs so: replicas that look at the same moment queue one down, not one each.
   */
  async requestOperationUnlessBusy(
    version: VersionRecord,
    kind: OperationKind,
    trigger: OperationTrigger,
  ): Promise<OperationRecord | undefined> {
    try {
      return await this.requestOperation(version, kind, trigger, { unlessBusy: true });
    } catch (error) {
      if (error instanceof VersionBusyError) return undefined;
      throw error;
    }
  }

  /** A commit version runs its commit; a version created at a given sha runs it the first time. */
  private async pinnedSha(version: VersionRecord): Promise<string | undefined> {
    if (version.ref.type === "commit") return version.sha ?? version.ref.name;
    if (version.sha === undefined || version.deployedSha !== undefined) return undefined;
    const ups = await this.deps.store.listOperations({ versionId: version.id, limit: 1 });
    return ups.length === 0 ? version.sha : undefined;
  }

  /**
   * Queues a manual rollback (docs/api.md, "Rollback"): an operation `rollback` to the verified
   * deploy before the current one, whose commit it carries. `409 conflict` when the version
   * keeps no such deploy.
   */
  async requestRollback(
    version: VersionRecord,
    trigger: OperationTrigger,
  ): Promise<OperationRecord> {
    const target = previousDeploy(historyOf(version));
    if (!target) {
      throw new ConflictError(
        `version '${version.name}' has no verified deploy before the current one to roll back to`,
      );
    }
    return this.requestOperation(version, "rollback", trigger, { sha: target.sha });
  }

  async getOperation(id: string): Promise<OperationRecord> {
    const op = await this.deps.store.getOperation(id);
    if (!op) throw new NotFoundError("operation", id);
    return op;
  }

  async lastOperation(versionId: string): Promise<OperationRecord | undefined> {
    const [op] = await this.deps.store.listOperations({ versionId, newestFirst: true, limit: 1 });
    return op;
  }

  async cancelOperation(id: string, reason = "canceled by request"): Promise<OperationRecord> {
    const op = await this.getOperation(id);
    if (op.status === "queued") {
      const canceled = await this.deps.store.updateOperation(
        id,
        { status: "canceled", error: reason, finishedAt: now() },
        { ifStatus: ["queued"] },
      );
      if (canceled) {
        this.deps.bus.emit("operation.finished", canceled);
        await this.settleVersionAfterCancel(canceled);
        return canceled;
      }
      return this.cancelOperation(id, reason); // it started meanwhile
    }
    if (op.status === "running") {
      const marked = await this.deps.store.updateOperation(
        id,
        { cancelRequested: true, error: reason },
        { ifStatus: ["running"] },
      );
      this.runner?.cancelLocal(id);
      return marked ?? (await this.getOperation(id));
    }
    throw new AppError(
      "conflict",
      `operation ${id} is ${op.status}; only queued or running operations can be canceled`,
    );
  }

  /** A version whose only queued operation was canceled goes back to what Docker runs. */
  private async settleVersionAfterCancel(op: OperationRecord): Promise<void> {
    const active = await this.deps.store.listOperations({
      versionId: op.versionId,
      status: ["queued", "running"],
      limit: 1,
    });
    if (active.length === 0) await this.runner?.reconcileVersion(op.versionId);
  }

  // ---------------------------------------------------------------- validation

  private checkProjectInput(input: ProjectInput): void {
    if (!isSlug(input.name)) {
      throw new InvalidRequestError(`name must match ${SLUG_PATTERN.source}`, { field: "name" });
    }
    if (!isValidRepoUrl(input.repoUrl)) {
      throw new InvalidRequestError(
        "repoUrl must be an SSH URL (git@host:group/app.git or ssh://git@host:2222/group/app.git) or an https URL",
        { field: "repoUrl" },
      );
    }
    if (input.composeFile !== undefined && !COMPOSE_FILE_PATTERN.test(input.composeFile)) {
      throw new InvalidRequestError("composeFile must be a relative path inside the repository", {
        field: "composeFile",
      });
    }
    if (input.healthPath !== undefined && !HEALTH_PATH_PATTERN.test(input.healthPath)) {
      throw new InvalidRequestError(
        "healthPath must be a URL path starting with / (at most 1024 characters)",
        { field: "healthPath" },
      );
    }
    const idleHours = input.autoStop?.idleHours;
    if (
      idleHours !== undefined &&
      !(Number.isFinite(idleHours) && idleHours >= 0 && idleHours <= IDLE_HOURS_MAX)
    ) {
      throw new InvalidRequestError(`autoStop.idleHours must be from 0 to ${IDLE_HOURS_MAX}`, {
        field: "autoStop.idleHours",
      });
    }
    if (
      input.maxRunning !== undefined &&
      !(
        Number.isInteger(input.maxRunning) &&
        input.maxRunning >= 1 &&
        input.maxRunning <= MAX_RUNNING_MAX
      )
    ) {
      throw new InvalidRequestError(
        `maxRunning must be a whole number from 1 to ${MAX_RUNNING_MAX}`,
        {
          field: "maxRunning",
        },
      );
    }
    const cpus = input.limits?.cpus;
    if (cpus !== undefined && !(Number.isFinite(cpus) && cpus > 0 && cpus <= CPUS_MAX)) {
      throw new InvalidRequestError(`limits.cpus must be a number above 0, at most ${CPUS_MAX}`, {
        field: "limits.cpus",
      });
    }
    const memory = input.limits?.memory;
    if (memory !== undefined && !MEMORY_LIMIT_PATTERN.test(memory)) {
      throw new InvalidRequestError(
        "limits.memory must be a memory size as compose writes it, e.g. 512m",
        { field: "limits.memory" },
      );
    }
    const globs = input.autoDeploy?.branches ?? [];
    if (globs.length > BRANCH_GLOBS_MAX) {
      throw new InvalidRequestError(
        `autoDeploy.branches has more than ${BRANCH_GLOBS_MAX} entries`,
        { field: "autoDeploy.branches" },
      );
    }
    for (const glob of globs) {
      if (!BRANCH_GLOB_PATTERN.test(glob)) {
        throw new InvalidRequestError(`autoDeploy.branches entry '${glob}' is not a branch glob`, {
          field: "autoDeploy.branches",
        });
      }
    }
    for (const word of input.policy?.allow ?? []) {
      if (!isPolicyWord(word)) {
        throw new InvalidRequestError(
          `policy.allow entry '${word}' is not one of ${POLICY_WORDS.join(", ")}`,
          { field: "policy.allow" },
        );
      }
    }
    for (const [key, value] of Object.entries(input.env ?? {})) {
      if (!ENV_NAME_PATTERN.test(key)) {
        throw new InvalidRequestError(`env name '${key}' must match ${ENV_NAME_PATTERN.source}`, {
          field: "env",
        });
      }
      if (charLength(value) > ENV_VALUE_MAX) {
        throw new InvalidRequestError(
          `env value of '${key}' is longer than ${ENV_VALUE_MAX} characters`,
          { field: "env" },
        );
      }
    }
  }

  /** API refs: `refs/heads/x`, `refs/tags/x`, a commit hash, or a name looked up in the mirror. */
  private async parseRef(project: ProjectRecord, raw: string): Promise<VersionRef> {
    const bad = () =>
      new InvalidRequestError(`ref '${raw}' is not a valid branch, tag or commit`, {
        field: "ref",
      });
    // The whole rule (docs/api.md): what follows only tells branches, tags, merge requests and
    // commits apart.
    if (!API_REF_PATTERN.test(raw)) throw bad();
    if (raw.startsWith("refs/heads/")) {
      const name = raw.slice("refs/heads/".length);
      if (!isValidRefName(name)) throw bad();
      return { type: "branch", name };
    }
    if (raw.startsWith("refs/tags/")) {
      const name = raw.slice("refs/tags/".length);
      if (!isValidRefName(name)) throw bad();
      return { type: "tag", name };
    }
    const mr = /^refs\/merge-requests\/(\d+)\/head$/.exec(raw);
    if (mr?.[1]) return { type: "mergeRequest", name: mr[1] };
    if (/^[0-9a-f]{7,40}$/.test(raw)) {
      const known = await this.deps.classifyRef?.(project.name, raw);
      if (known !== "branch" && known !== "tag") return { type: "commit", name: raw };
    }
    if (!isValidRefName(raw)) throw bad();
    const type = (await this.deps.classifyRef?.(project.name, raw)) ?? "branch";
    return { type: type === "commit" ? "branch" : type, name: raw };
  }
}
