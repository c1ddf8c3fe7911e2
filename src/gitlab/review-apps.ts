// Feeds GitLab's review-app machinery from dockbot's events (docs/gitlab.md, "Environments,
// deployments and the merge request note"): one environment `dockbot/<version>` per version,
// one deployment per `up` (running when it starts, then success / failed / canceled), the
// environment stopped when the version is deleted or turned off by dockbot's policy (an idle
// stop: docs/gitlab.md), and one note per merge request version.
//
// Invariants:
// - Off the deploy's path: bus listeners only append to a per-version promise chain and return;
//   nothing here throws into the runner or delays it. Work for one version runs in event order,
//   so an environment or a note is never made twice by two overlapping deploys.
// - Nothing is made twice, also across a restart or a retry whose answer was lost: the
//   environment's and the note's ids are kept on the version (`version.gitlab`), the deployment's
//   id in the operation's reports; a missing id is looked up on GitLab first (environment by
//   name, note by its hidden marker, deployment by environment, status and sha) before anything
//   is created.
// - A finished deployment is never moved again; a deployment is only made for a ref GitLab
//   knows (branch, tag, a merge request's source branch), never for a bare commit.
// - Every call's outcome is appended to the operation's reports; the token and the project's
//   secrets never reach a report, a log line or GitLab.
import type { Logger } from "pino";
import {
  callGitlab,
  classifyGitlabError,
  clip,
  DEFAULT_RETRY,
  errorText,
  explainFailure,
  firstLine,
  makeScrubber,
  type CallFailure,
  type CallOutcome,
  type GitlabApi,
  type RetryPolicy,
} from "./gitlab-call.js";
import { hasNoteMarker, mergeRequestNoteBody, noteKey, type NoteFacts } from "./mr-note.js";
import type { ReportLog } from "./report-log.js";
import {
  deployRefOf,
  deploysCommit,
  environmentName,
  FINAL,
  finalStatusOf,
  FULL_SHA,
  type DeployRef,
  type FinalStatus,
} from "./review-app-rules.js";
import type { EventBus } from "../deploy/events.js";
import type { Store } from "../store/store.js";
import type {
  GitlabReport,
  OperationRecord,
  ProjectRecord,
  VersionGitlab,
  VersionRecord,
} from "../store/types.js";

export interface ReviewAppsDeps {
  bus: EventBus;
  store: Store;
  api: GitlabApi;
  token: string;
  /** dockbot's public base URL; notes link to `<publicUrl>/operations/<id>`. */
  publicUrl: string;
  logger: Logger;
  reportLog: ReportLog;
  retry?: RetryPolicy;
  /**
   * The URL GitLab's "View app" button opens: the version's preview URL, else its first `urls`
   * entry (the default here). main.ts passes the preview router's when it runs.
   */
  externalUrlFor?: (version: VersionRecord, project: ProjectRecord) => string | undefined;
}

export interface ReviewApps {
  stop(): void;
  idle(): Promise<void>;
}

interface Context {
  project: ProjectRecord;
  gitlabProjectId: number;
  version: VersionRecord;
  secrets: string[];
}

export function createReviewApps(deps: ReviewAppsDeps): ReviewApps {
  const { api, store } = deps;
  const policy = deps.retry ?? DEFAULT_RETRY;
  const log = deps.logger.child({ module: "gitlab-review-apps" });
  const publicUrl = deps.publicUrl.replace(/\/+$/, "");
  const externalUrlFor =
    deps.externalUrlFor ?? ((version: VersionRecord) => version.urls[0] ?? undefined);
  const chains = new Map<string, Promise<void>>();
  const inFlight = new Set<Promise<void>>();
  const stopping = new AbortController();
  /** What this process wrote to `version.gitlab` last, ahead of records read earlier. */
  const known = new Map<string, VersionGitlab>();
  /** Project and version as they were when a delete started (both may be gone at its end). */
  const deleting = new Map<string, { ctx: Context; opId: string }>();

  const logUrl = (opId: string) => `${publicUrl}/operations/${encodeURIComponent(opId)}`;

  async function contextOf(versionOrId: VersionRecord | string): Promise<Context | undefined> {
    const version =
      typeof versionOrId === "string" ? await store.getVersion(versionOrId) : versionOrId;
    if (!version) return undefined;
    const project = await store.getProject(version.projectId);
    const gitlabProjectId = project?.gitlab?.projectId;
    if (!project || gitlabProjectId === undefined) return undefined;
    return {
      project,
      gitlabProjectId,
      version,
      secrets: [...Object.values(project.env), project.webhookSecret],
    };
  }

  function gitlabOf(version: VersionRecord): VersionGitlab {
    return { ...version.gitlab, ...known.get(version.id) };
  }

  async function saveGitlab(version: VersionRecord, patch: VersionGitlab): Promise<void> {
    const next = { ...gitlabOf(version), ...patch };
    known.set(version.id, next);
    await store.updateVersion(version.id, { gitlab: next });
  }

  async function forgetNote(version: VersionRecord): Promise<void> {
    const { noteId: _noteId, ...rest } = gitlabOf(version);
    known.set(version.id, rest);
    await store.updateVersion(version.id, { gitlab: rest });
  }

  /** One GitLab call with retries; its outcome appended to the operation's reports. */
  async function call<T>(
    ctx: Context,
    opId: string,
    report: { kind: NonNullable<GitlabReport["kind"]>; state: string },
    fn: (attempt: number) => Promise<T>,
    recover?: (failure: CallFailure, attempt: number) => Promise<T | undefined>,
    idOf?: (value: T) => number | undefined,
  ): Promise<CallOutcome<T>> {
    const scrub = makeScrubber([deps.token, ...ctx.secrets]);
    const outcome = await callGitlab(fn, {
      policy,
      signal: stopping.signal,
      scrub,
      ...(recover ? { recover } : {}),
    });
    const entry: GitlabReport = {
      kind: report.kind,
      state: report.state,
      ok: outcome.ok,
      attempts: outcome.attempts,
      at: new Date().toISOString(),
    };
    if (outcome.ok) {
      const id = idOf?.(outcome.value);
      if (id !== undefined) entry.id = id;
    } else {
      entry.error = clip(explainFailure({ ...outcome.failure, message: outcome.error }));
    }
    const fields = { operationId: opId, kind: report.kind, state: report.state };
    if (outcome.ok) log.debug({ ...fields, attempts: outcome.attempts }, "GitLab call done");
    else log.warn({ ...fields, error: entry.error }, "GitLab call failed");
    await deps.reportLog.append(opId, entry);
    return outcome;
  }

  // ------------------------------------------------------------------ environments

  async function findEnvironment(ctx: Context): Promise<{ id: number; url?: string } | undefined> {
    const list = await api.environments.all(ctx.gitlabProjectId, {
      name: environmentName(ctx.version.name),
    });
    const env = list.find((e) => e.name === environmentName(ctx.version.name));
    if (!env) return undefined;
    const url = typeof env.external_url === "string" ? env.external_url : undefined;
    return url === undefined ? { id: env.id } : { id: env.id, url };
  }

  /** The version's environment id: kept, found by name, or created (once). */
  async function ensureEnvironment(ctx: Context, opId: string): Promise<number | undefined> {
    const kept = gitlabOf(ctx.version).environmentId;
    if (kept !== undefined) return kept;
    const name = environmentName(ctx.version.name);
    const url = externalUrlFor(ctx.version, ctx.project);
    const outcome = await call(
      ctx,
      opId,
      { kind: "environment", state: "created" },
      async () => {
        // First and after a lost answer: an environment of that name may exist already.
        const found = await findEnvironment(ctx);
        if (found) return found;
        const created = await api.environments.create(
          ctx.gitlabProjectId,
          name,
          url === undefined ? {} : { externalUrl: url },
        );
        return url === undefined ? { id: created.id } : { id: created.id, url };
      },
      async (failure) =>
        // "Name has already been taken": another replica or a lost answer made it.
        failure.status === 400 && /taken/i.test(failure.description)
          ? await findEnvironment(ctx).catch(() => undefined)
          : undefined,
      (env) => env.id,
    );
    if (!outcome.ok) return undefined;
    const patch: VersionGitlab = { environmentId: outcome.value.id };
    if (outcome.value.url !== undefined) patch.externalUrl = outcome.value.url;
    await saveGitlab(ctx.version, patch);
    return outcome.value.id;
  }

  /** Keeps the environment's external_url in step with the version's URL. */
  async function syncExternalUrl(ctx: Context, opId: string): Promise<void> {
    const g = gitlabOf(ctx.version);
    const url = externalUrlFor(ctx.version, ctx.project);
    if (g.environmentId === undefined || url === undefined || url === g.externalUrl) return;
    const envId = g.environmentId;
    const outcome = await call(ctx, opId, { kind: "environment", state: "external_url" }, () =>
      api.environments.edit(ctx.gitlabProjectId, envId, { externalUrl: url }),
    );
    if (outcome.ok) await saveGitlab(ctx.version, { externalUrl: url });
  }

  // ------------------------------------------------------------------ deployments

  /** The deployment this operation made, and whether it was moved to a final status. */
  async function deploymentOf(
    opId: string,
  ): Promise<{ id?: number; finished: boolean; triedFinal: boolean }> {
    const reports = (await store.getOperation(opId))?.gitlabReports ?? [];
    const mine = reports.filter((r) => r.kind === "deployment");
    const created = mine.find((r) => r.ok && r.id !== undefined);
    const finished = mine.some((r) => r.ok && FINAL.includes(r.state));
    const triedFinal = mine.some((r) => FINAL.includes(r.state));
    return created?.id === undefined
      ? { finished, triedFinal }
      : { id: created.id, finished, triedFinal };
  }

  async function findDeployment(
    ctx: Context,
    sha: string,
    status: "running" | FinalStatus,
  ): Promise<number | undefined> {
    const list = await api.deployments.all(ctx.gitlabProjectId, {
      environment: environmentName(ctx.version.name),
      status,
      orderBy: "id",
      sort: "desc",
      perPage: 20,
      maxPages: 1,
    });
    return list.find((d) => d.sha === sha)?.id;
  }

  async function createDeployment(
    ctx: Context,
    opId: string,
    sha: string,
    ref: DeployRef,
    status: "running" | FinalStatus,
  ): Promise<void> {
    const name = environmentName(ctx.version.name);
    await call(
      ctx,
      opId,
      { kind: "deployment", state: status },
      async (attempt) => {
        if (attempt > 1) {
          // The previous try may have reached GitLab and lost its answer.
          const found = await findDeployment(ctx, sha, status);
          if (found !== undefined) return found;
        }
        // `status` is optional in gitbeaker's types but required by GitLab (docs/gitlab.md).
        const d = await api.deployments.create(ctx.gitlabProjectId, name, sha, ref.ref, ref.tag, {
          status,
        });
        return d.id;
      },
      undefined,
      (id) => id,
    );
  }

  // ------------------------------------------------------------------ merge request note

  async function findNote(ctx: Context, iid: number): Promise<number | undefined> {
    const notes = await api.notes.all(ctx.gitlabProjectId, iid, {
      sort: "asc",
      orderBy: "created_at",
      perPage: 100,
      maxPages: 10,
    });
    return notes.find(
      (n) =>
        typeof n.body === "string" &&
        hasNoteMarker(n.body, noteKey(ctx.project.id, ctx.version.name)),
    )?.id;
  }

  async function writeNote(ctx: Context, opId: string, facts: NoteFacts): Promise<void> {
    if (ctx.version.ref.type !== "mergeRequest") return;
    const iid = Number(ctx.version.ref.name);
    if (!Number.isInteger(iid) || iid <= 0) return;
    const body = mergeRequestNoteBody(facts);
    const outcome = await call(
      ctx,
      opId,
      { kind: "note", state: facts.state },
      async () => {
        // Kept, else found by its marker (a restart, or a create whose answer was lost).
        const id = gitlabOf(ctx.version).noteId ?? (await findNote(ctx, iid));
        if (id !== undefined) {
          try {
            await api.notes.edit(ctx.gitlabProjectId, iid, id, { body });
            return id;
          } catch (error) {
            // Someone deleted the note on GitLab: write it anew (it is the only one).
            if (classifyGitlabError(error).status !== 404) throw error;
            await forgetNote(ctx.version);
          }
        }
        const created = await api.notes.create(ctx.gitlabProjectId, iid, body);
        return created.id;
      },
      undefined,
      (id) => id,
    );
    if (outcome.ok && gitlabOf(ctx.version).noteId !== outcome.value) {
      await saveGitlab(ctx.version, { noteId: outcome.value });
    }
  }

  // ------------------------------------------------------------------ event handlers

  async function upStarted(op: OperationRecord): Promise<void> {
    const ctx = await contextOf(op.versionId);
    if (!ctx) return;
    const sha = op.sha;
    const ref = deployRefOf(ctx.version);
    await writeNote(ctx, op.id, {
      key: noteKey(ctx.project.id, ctx.version.name),
      versionName: ctx.version.name,
      url: externalUrlFor(ctx.version, ctx.project),
      state: "deploying",
      sha,
      logUrl: logUrl(op.id),
    });
    if (!ref) return;
    const envId = await ensureEnvironment(ctx, op.id);
    if (envId === undefined) return;
    // A commit given by the API may still be short: the deployment waits for the full one.
    if (sha === undefined || !FULL_SHA.test(sha)) return;
    // A runner that takes over an operation announces its start again: one deployment only.
    if ((await deploymentOf(op.id)).id !== undefined) return;
    await createDeployment(ctx, op.id, sha, ref, "running");
  }

  async function upFinished(op: OperationRecord): Promise<void> {
    const status = finalStatusOf(op);
    // Superseded or canceled before it started: nothing of it reached GitLab.
    if (!status || op.startedAt === undefined) return;
    const ctx = await contextOf(op.versionId);
    if (!ctx) return;
    const fresh = (await store.getOperation(op.id)) ?? op;
    const sha = fresh.sha;
    const ref = deployRefOf(ctx.version);
    if (ref) {
      const mine = await deploymentOf(op.id);
      if (!mine.finished && !mine.triedFinal) {
        if (mine.id !== undefined) {
          const id = mine.id;
          await call(
            ctx,
            op.id,
            { kind: "deployment", state: status },
            async (attempt) => {
              if (attempt > 1) {
                // Moved already by a try whose answer was lost: never a second transition.
                const shown = await api.deployments.show(ctx.gitlabProjectId, id);
                if (FINAL.includes(shown.status)) return id;
              }
              await api.deployments.edit(ctx.gitlabProjectId, id, status);
              return id;
            },
            undefined,
            (value) => value,
          );
        } else if (sha !== undefined && FULL_SHA.test(sha)) {
          // Its start could not make one (GitLab down, the sha not known yet): made now, final.
          const envId = await ensureEnvironment(ctx, op.id);
          if (envId !== undefined) await createDeployment(ctx, op.id, sha, ref, status);
        }
      }
      await syncExternalUrl(ctx, op.id);
    }
    await writeNote(ctx, op.id, {
      key: noteKey(ctx.project.id, ctx.version.name),
      versionName: ctx.version.name,
      url: externalUrlFor(ctx.version, ctx.project),
      state: status === "success" ? "running" : status,
      sha,
      logUrl: logUrl(op.id),
      error: status === "failed" && fresh.error ? firstLine(fresh.error) : undefined,
    });
  }

  /** Stops the version's environment, when it has one (a version with a deploy ref). */
  async function stopEnvironment(ctx: Context, opId: string): Promise<void> {
    if (!deployRefOf(ctx.version)) return;
    await call(ctx, opId, { kind: "stop", state: "stopped" }, async () => {
      const id = gitlabOf(ctx.version).environmentId ?? (await findEnvironment(ctx))?.id;
      if (id === undefined) return undefined;
      await api.environments.stop(ctx.gitlabProjectId, id);
      return id;
    });
  }

  /**
   * A version dockbot turned off by itself (idle stop, running limit): nobody is looking at it, so
   * GitLab's "View app" goes away with it (docs/gitlab.md). Its next successful deployment starts
   * the environment again. A version turned off by a person keeps its environment.
   */
  async function policyDownFinished(op: OperationRecord): Promise<void> {
    if (op.status !== "succeeded" || op.trigger.source !== "policy") return;
    const ctx = await contextOf(op.versionId);
    if (!ctx) return;
    await stopEnvironment(ctx, op.id);
    // The merge request's note says so too (its preview URL now shows the turn-on page).
    await writeNote(ctx, op.id, {
      key: noteKey(ctx.project.id, ctx.version.name),
      versionName: ctx.version.name,
      url: externalUrlFor(ctx.version, ctx.project),
      state: "stopped",
      sha: ctx.version.deployedSha ?? ctx.version.sha,
      logUrl: logUrl(op.id),
    });
  }

  async function deleteStarted(op: OperationRecord): Promise<void> {
    const ctx = await contextOf(op.versionId);
    if (ctx) deleting.set(op.versionId, { ctx, opId: op.id });
  }

  async function versionDeleted(version: VersionRecord): Promise<void> {
    const pending = deleting.get(version.id);
    deleting.delete(version.id);
    const ctx = pending?.ctx ?? (await contextOf(version));
    if (!ctx) return;
    const opId =
      pending?.opId ??
      (await store.listOperations({ versionId: version.id, newestFirst: true, limit: 1 }))[0]?.id;
    if (opId === undefined) return;
    const full: Context = { ...ctx, version: { ...ctx.version, gitlab: gitlabOf(version) } };
    await stopEnvironment(full, opId);
    await writeNote(full, opId, {
      key: noteKey(full.project.id, version.name),
      versionName: version.name,
      state: "removed",
      sha: version.deployedSha ?? version.sha,
      logUrl: logUrl(opId),
    });
    known.delete(version.id);
  }

  // ------------------------------------------------------------------ wiring

  function enqueue(versionId: string, what: string, step: () => Promise<void>): void {
    const previous = chains.get(versionId) ?? Promise.resolve();
    const next = previous.then(step).catch((error: unknown) => {
      // Store or programming errors: kept off the deploy, never silent.
      log.error(
        { versionId, what, error: makeScrubber([deps.token])(errorText(error)) },
        "reporting to GitLab failed",
      );
    });
    chains.set(versionId, next);
    inFlight.add(next);
    void next.finally(() => {
      inFlight.delete(next);
      if (chains.get(versionId) === next) chains.delete(versionId);
    });
  }

  const onStarted = (op: OperationRecord): void => {
    if (deploysCommit(op)) enqueue(op.versionId, "up started", () => upStarted(op));
    else if (op.kind === "delete") enqueue(op.versionId, "delete started", () => deleteStarted(op));
  };
  const onFinished = (op: OperationRecord): void => {
    if (deploysCommit(op)) enqueue(op.versionId, "up finished", () => upFinished(op));
    else if (op.kind === "down" && op.trigger.source === "policy")
      enqueue(op.versionId, "policy down finished", () => policyDownFinished(op));
  };
  const onDeleted = (version: VersionRecord): void =>
    enqueue(version.id, "version deleted", () => versionDeleted(version));
  deps.bus.on("operation.started", onStarted);
  deps.bus.on("operation.finished", onFinished);
  deps.bus.on("version.deleted", onDeleted);

  return {
    stop() {
      deps.bus.off("operation.started", onStarted);
      deps.bus.off("operation.finished", onFinished);
      deps.bus.off("version.deleted", onDeleted);
      stopping.abort();
    },
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
