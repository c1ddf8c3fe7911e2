// Onboarding (docs/gitlab.md, "Onboarding"): makes sure a linked GitLab project has dockbot's
// project hook (the project's webhookUrl, its webhookSecret as token, push / tag push / merge
// request events on, every other event explicitly off, SSL verification on for https) and
// dockbot's public key as a read-only deploy key; reports both, including a hook GitLab
// auto-disabled; removes the hook when the project is deleted.
//
// Invariants:
// - Never a second hook or key: every try lists what the GitLab project has first and updates
//   the hook with dockbot's URL instead of adding one (GitLab returns the key it has when the
//   same key is added again); syncs of one project run one at a time in this process.
// - The outcome is kept on the project (`gitlabStatus`) with GitLab's message; the token and
//   the webhook secret appear in no status, log line or answer (GitLab never returns a hook's
//   token, and texts are scrubbed of both).
// - Retries stop after a bounded time (the retry policy's totalMs).
import type { Logger } from "pino";
import {
  callGitlab,
  clip,
  createGitlabApi,
  DEFAULT_RETRY,
  errorText,
  explainFailure,
  makeScrubber,
  type GitlabApi,
  type RetryPolicy,
} from "./gitlab-call.js";
import type { EventBus } from "../deploy/events.js";
import { AppError } from "../errors.js";
import type { Store } from "../store/store.js";
import type { GitlabItem, ProjectGitlabStatus, ProjectRecord } from "../store/types.js";
import { webhookUrlFor } from "../webhooks/gitlab-receiver.js";
import {
  disabledAdvice,
  hookDifferences,
  hookDisabled,
  hookOptions,
  idOf,
  keyBody,
  unreachable,
} from "./hook-rules.js";

export interface GitlabProjectSummary {
  id: number;
  pathWithNamespace: string;
  sshUrl: string;
  webUrl: string;
  defaultBranch: string | null;
}

export interface OnboardingDeps {
  store: Store;
  bus: EventBus;
  api: GitlabApi;
  /** For the calls a person waits on (the routes): a shorter request timeout. */
  gitlabUrl: string;
  token: string;
  publicUrl: string;
  /** dockbot's public SSH key, added as the read-only deploy key. */
  publicKey: string;
  logger: Logger;
  retry?: RetryPolicy;
}

export interface GitlabOnboarding {
  /**
   * Creates or repairs hook and key; keeps and returns the outcome. `waiting`: someone waits
   * for the answer, so retries stop within seconds (else within the retry policy's totalMs).
   */
  sync(project: ProjectRecord, opts?: { waiting?: boolean }): Promise<ProjectGitlabStatus>;
  /** Looks at hook and key on GitLab without changing them; keeps and returns what it saw. */
  check(project: ProjectRecord): Promise<ProjectGitlabStatus>;
  /** GitLab projects the token can see, for adding one. */
  searchProjects(search: string): Promise<GitlabProjectSummary[]>;
  stop(): void;
  idle(): Promise<void>;
}

/** A GitLab side check answers quickly: one try, no backoff. */
const CHECK_POLICY: RetryPolicy = { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 };
/** A sync someone waits for: a few quick tries. */
const WAITING_POLICY: RetryPolicy = {
  attempts: 3,
  baseDelayMs: 500,
  maxDelayMs: 2_000,
  totalMs: 8_000,
};
/** Per request, for calls someone waits for (the background ones allow 30 s). */
const WAITING_TIMEOUT_MS = 5_000;

export function createGitlabOnboarding(deps: OnboardingDeps): GitlabOnboarding {
  const { store } = deps;
  const backgroundPolicy = deps.retry ?? DEFAULT_RETRY;
  const quick = createGitlabApi({
    url: deps.gitlabUrl,
    token: deps.token,
    timeoutMs: WAITING_TIMEOUT_MS,
  });
  /** The client and retry policy of one piece of work. */
  interface Mode {
    api: GitlabApi;
    policy: RetryPolicy;
  }
  const background: Mode = { api: deps.api, policy: backgroundPolicy };
  const waiting: Mode = { api: quick, policy: WAITING_POLICY };
  const checking: Mode = { api: quick, policy: CHECK_POLICY };
  const log = deps.logger.child({ module: "gitlab-onboarding" });
  const url = webhookUrlFor(deps.publicUrl);
  const stopping = new AbortController();
  const chains = new Map<string, Promise<unknown>>();
  const inFlight = new Set<Promise<unknown>>();

  const scrubFor = (project: ProjectRecord) =>
    makeScrubber([deps.token, project.webhookSecret, ...Object.values(project.env)]);

  /** Runs one project's GitLab work after the previous one (no two syncs race to add a hook). */
  function serial<T>(projectId: string, work: () => Promise<T>): Promise<T> {
    const previous = chains.get(projectId) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    chains.set(projectId, settled);
    inFlight.add(settled);
    void settled.finally(() => {
      inFlight.delete(settled);
      if (chains.get(projectId) === settled) chains.delete(projectId);
    });
    return next;
  }

  /** One GitLab call that tells a hook's or key's state; a failed call keeps the stored id. */
  async function itemCall(
    project: ProjectRecord,
    policy: RetryPolicy,
    storedId: number | undefined,
    work: () => Promise<GitlabItem>,
  ): Promise<GitlabItem> {
    const outcome = await callGitlab(work, {
      policy,
      signal: stopping.signal,
      scrub: scrubFor(project),
    });
    if (outcome.ok) return outcome.value;
    return {
      ...idOf(storedId),
      status: "failed",
      error: clip(explainFailure({ ...outcome.failure, message: outcome.error }), 600),
    };
  }

  async function keep(project: ProjectRecord, status: ProjectGitlabStatus): Promise<void> {
    await store.updateProject(project.id, { gitlabStatus: status });
    const fields = {
      project: project.name,
      hook: status.hook.status,
      deployKey: status.deployKey.status,
    };
    if (status.hook.status === "failed" || status.deployKey.status === "failed") {
      log.warn(
        { ...fields, hookError: status.hook.error, keyError: status.deployKey.error },
        "GitLab hook or deploy key not in place",
      );
    } else log.info(fields, "GitLab hook and deploy key checked");
  }

  function linked(project: ProjectRecord): number {
    const id = project.gitlab?.projectId;
    if (id === undefined) {
      throw new AppError(
        "conflict",
        `project '${project.name}' has no gitlab.projectId: set it with PATCH /api/projects/${project.name}`,
      );
    }
    return id;
  }

  async function syncHook(project: ProjectRecord, pid: number, mode: Mode): Promise<GitlabItem> {
    const { api, policy } = mode;
    const storedId = project.gitlabStatus?.hook.id;
    return itemCall(project, policy, storedId, async (): Promise<GitlabItem> => {
      // Listed on every try: a try whose answer was lost may have added it already.
      const hooks = (await api.hooks.all(pid)) as unknown as Array<Record<string, unknown>>;
      const same = hooks.filter((h) => h.url === url);
      const options = hookOptions(url, project.webhookSecret);
      let hook = same.find((h) => h.id === storedId) ?? same[0];
      let status: GitlabItem["status"];
      if (!hook) {
        hook = await api.hooks.add(pid, url, options);
        status = "created";
      } else {
        // Always written again: GitLab never shows a hook's token, so a token someone changed
        // (or a hook made by hand) is only set right by sending it. "ok" when dockbot's own
        // hook had every flag right already.
        const asWanted = hook.id === storedId && hookDifferences(hook, url).length === 0;
        hook = await api.hooks.edit(pid, Number(hook.id), url, options);
        status = asWanted ? "ok" : "updated";
      }
      // Copies (made by hand, or by an older dockbot) would deliver every event twice.
      for (const extra of same) {
        if (extra.id !== hook.id) await api.hooks.remove(pid, Number(extra.id));
      }
      const out: GitlabItem = { id: Number(hook.id), status };
      if (hookDisabled(hook)) return disabledItem(out, hook);
      return out;
    });
  }

  function disabledItem(base: GitlabItem, hook: Record<string, unknown>): GitlabItem {
    const out: GitlabItem = { ...base, status: "disabled", error: disabledAdvice(hook, url) };
    if (typeof hook.alert_status === "string") out.alertStatus = hook.alert_status;
    if (typeof hook.disabled_until === "string") out.disabledUntil = hook.disabled_until;
    return out;
  }

  async function syncKey(project: ProjectRecord, pid: number, mode: Mode): Promise<GitlabItem> {
    const { api, policy } = mode;
    const storedId = project.gitlabStatus?.deployKey.id;
    return itemCall(project, policy, storedId, async (): Promise<GitlabItem> => {
      const keys = await api.deployKeys.all({ projectId: pid });
      const mine = keys.find((k) => keyBody(String(k.key)) === keyBody(deps.publicKey));
      if (mine && !mine.can_push) return { id: mine.id, status: "ok" };
      if (mine) {
        await api.deployKeys.edit(pid, mine.id, { canPush: false });
        return { id: mine.id, status: "updated" };
      }
      // GitLab hands back the key it has when the same key is added again.
      const created = await api.deployKeys.create(pid, "dockbot", deps.publicKey, {
        canPush: false,
      });
      return { id: created.id, status: "created" };
    });
  }

  async function checkHook(project: ProjectRecord, pid: number): Promise<GitlabItem> {
    const { api, policy } = checking;
    const storedId = project.gitlabStatus?.hook.id;
    return itemCall(project, policy, storedId, async (): Promise<GitlabItem> => {
      const hooks = (await api.hooks.all(pid)) as unknown as Array<Record<string, unknown>>;
      const hook = hooks.find((h) => h.id === storedId) ?? hooks.find((h) => h.url === url);
      if (!hook) {
        return {
          status: "failed",
          error: `GitLab project ${pid} has no hook to ${url}: sync (the repair button) creates it`,
        };
      }
      const out: GitlabItem = { id: Number(hook.id), status: "ok" };
      if (hookDisabled(hook)) return disabledItem(out, hook);
      const differs = hookDifferences(hook, url);
      if (hook.url !== url || differs.length > 0) {
        return {
          ...out,
          status: "failed",
          error: `the hook's settings differ (${differs.join(", ") || "url"}): sync (the repair button) fixes them`,
        };
      }
      return out;
    });
  }

  async function checkKey(project: ProjectRecord, pid: number): Promise<GitlabItem> {
    const { api, policy } = checking;
    const storedId = project.gitlabStatus?.deployKey.id;
    return itemCall(project, policy, storedId, async (): Promise<GitlabItem> => {
      const keys = await api.deployKeys.all({ projectId: pid });
      const mine = keys.find((k) => keyBody(String(k.key)) === keyBody(deps.publicKey));
      if (!mine) {
        return {
          status: "failed",
          error: `GitLab project ${pid} does not have dockbot's deploy key: sync (the repair button) adds it`,
        };
      }
      if (mine.can_push) {
        return {
          id: mine.id,
          status: "failed",
          error: "dockbot's deploy key can push: sync (the repair button) makes it read-only",
        };
      }
      return { id: mine.id, status: "ok" };
    });
  }

  async function sync(
    project: ProjectRecord,
    opts: { waiting?: boolean } = {},
  ): Promise<ProjectGitlabStatus> {
    const pid = linked(project);
    const mode = opts.waiting ? waiting : background;
    return hookThenKey(
      project,
      (current) => syncHook(current, pid, mode),
      (current) => syncKey(current, pid, mode),
    );
  }

  /** The hook, then the deploy key, of the project's newest record; the status is kept. */
  function hookThenKey(
    project: ProjectRecord,
    doHook: (current: ProjectRecord) => Promise<GitlabItem>,
    doKey: (current: ProjectRecord) => Promise<GitlabItem>,
  ): Promise<ProjectGitlabStatus> {
    return serial(project.id, async () => {
      // The newest record: a sync queued behind another sees the hook id that one kept.
      const current = (await store.getProject(project.id)) ?? project;
      const hook = await doHook(current);
      const status: ProjectGitlabStatus = {
        hook,
        // GitLab did not answer at all: the key would only wait as long again for the same.
        deployKey: unreachable(hook)
          ? {
              ...idOf(current.gitlabStatus?.deployKey.id),
              status: "failed",
              error: hook.error ?? "",
            }
          : await doKey(current),
        checkedAt: new Date().toISOString(),
      };
      await keep(current, status);
      return status;
    });
  }

  async function removeHook(project: ProjectRecord): Promise<void> {
    const { api, policy } = background;
    const pid = project.gitlab?.projectId;
    if (pid === undefined) return;
    const others = (await store.listProjects()).filter(
      (p) => p.id !== project.id && p.gitlab?.projectId === pid,
    );
    // Another dockbot project of the same GitLab project still needs the hook.
    if (others.length > 0) return;
    const outcome = await callGitlab(
      async () => {
        const hooks = (await api.hooks.all(pid)) as unknown as Array<Record<string, unknown>>;
        const ours = hooks.filter(
          (h) => h.url === url || (h.id !== undefined && h.id === project.gitlabStatus?.hook.id),
        );
        for (const h of ours) await api.hooks.remove(pid, Number(h.id));
        return ours.length;
      },
      { policy, signal: stopping.signal, scrub: scrubFor(project) },
    );
    if (outcome.ok)
      log.info({ project: project.name, removed: outcome.value }, "GitLab hook removed");
    else log.warn({ project: project.name, error: outcome.error }, "GitLab hook not removed");
  }

  function inBackground(project: ProjectRecord, what: string, work: () => Promise<unknown>): void {
    void serial(project.id, work).catch((error: unknown) => {
      log.error(
        { project: project.name, what, error: scrubFor(project)(errorText(error)) },
        "GitLab onboarding failed",
      );
    });
  }

  // Projects created, relinked or deleted anywhere (API, dashboard) are onboarded from here.
  const onCreated = (project: ProjectRecord): void => {
    if (project.gitlab) void sync(project).catch((e: unknown) => logFailure(project, e));
  };
  const onUpdated = (project: ProjectRecord, before: ProjectRecord): void => {
    if (project.gitlab && project.gitlab.projectId !== before.gitlab?.projectId) {
      void sync(project).catch((e: unknown) => logFailure(project, e));
    }
  };
  const onDeleted = (project: ProjectRecord): void =>
    inBackground(project, "remove hook", () => removeHook(project));
  function logFailure(project: ProjectRecord, error: unknown): void {
    log.error(
      { project: project.name, error: scrubFor(project)(errorText(error)) },
      "GitLab onboarding failed",
    );
  }
  deps.bus.on("project.created", onCreated);
  deps.bus.on("project.updated", onUpdated);
  deps.bus.on("project.deleted", onDeleted);

  return {
    sync,
    async check(project) {
      const pid = linked(project);
      return hookThenKey(
        project,
        (current) => checkHook(current, pid),
        (current) => checkKey(current, pid),
      );
    },
    async searchProjects(search) {
      const outcome = await callGitlab(
        () =>
          quick.projects.all({
            search,
            membership: true,
            simple: true,
            orderBy: "last_activity_at",
            sort: "desc",
            perPage: 20,
            maxPages: 1,
          }),
        { policy: WAITING_POLICY, signal: stopping.signal, scrub: makeScrubber([deps.token]) },
      );
      if (!outcome.ok) {
        throw new AppError(
          "unavailable",
          `GitLab: ${explainFailure({ ...outcome.failure, message: outcome.error })}`,
        );
      }
      return outcome.value.map((p) => {
        const r = p as unknown as Record<string, unknown>;
        const text = (v: unknown) => (typeof v === "string" ? v : "");
        return {
          id: Number(r.id),
          pathWithNamespace: text(r.path_with_namespace),
          sshUrl: text(r.ssh_url_to_repo),
          webUrl: text(r.web_url),
          defaultBranch: typeof r.default_branch === "string" ? r.default_branch : null,
        };
      });
    },
    stop() {
      deps.bus.off("project.created", onCreated);
      deps.bus.off("project.updated", onUpdated);
      deps.bus.off("project.deleted", onDeleted);
      stopping.abort();
    },
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
