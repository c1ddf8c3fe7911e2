// The review-app and onboarding endpoints of the fake GitLab (see fake-gitlab.ts), following
// GitLab's own code (lib/api/deployments.rb, environments.rb, notes.rb, project_hooks.rb,
// deploy_keys.rb, projects.rb; app/models/deployment.rb, environment.rb):
//
// POST   /projects/:id/deployments        environment, sha, ref, tag, status all required (400
//        "<x> is missing"); status one of running|success|failed|canceled; a ref that is no
//        branch or tag of the project: 400 {message: {ref: ["The branch or tag does not
//        exist"]}}; the environment is found by name or created. 201.
// PUT    /projects/:id/deployments/:did    status; running -> success|failed|canceled; a finished
//        deployment never moves again (400 "Cannot transition status via :x from :y"). A
//        successful deployment starts its environment again if it was stopped
//        (Deployments::UpdateEnvironmentService fires the environment's `start`).
// GET    /projects/:id/deployments[/:did]  environment, status, order_by, sort filters.
// GET    /projects/:id/environments       name, search, states filters.
// POST   /projects/:id/environments       name (GitLab's name rule; unique: 400 {message: {name:
//        ["has already been taken"]}}), external_url (http/https only). 201.
// PUT    /projects/:id/environments/:eid  external_url. POST .../:eid/stop: state stopped.
// DELETE /projects/:id/environments/:eid  403 while available; 204 once stopped.
// GET/POST /projects/:id/merge_requests/:iid/notes, PUT/DELETE .../notes/:nid (body).
// GET/POST /projects/:id/hooks, GET/PUT/DELETE .../hooks/:hid: Maintainer only (403), url
//        must be http(s) (422 "Invalid url given"); the token is never part of an answer.
// GET/POST /projects/:id/deploy_keys, PUT .../:kid: Maintainer only; adding a key the project
//        has returns that one (201), can_push defaults to false.
// GET    /projects?search=  the projects registered, as the token's user sees them.
import type { FakeGitlabRequest } from "./fake-gitlab.js";

export interface FakeEnvironment {
  id: number;
  name: string;
  slug: string;
  external_url: string | null;
  state: "available" | "stopping" | "stopped";
  created_at: string;
  updated_at: string;
}

export type FakeDeploymentStatus = "created" | "running" | "success" | "failed" | "canceled";

export interface FakeDeployment {
  id: number;
  iid: number;
  ref: string;
  sha: string;
  tag: boolean;
  status: FakeDeploymentStatus;
  environment: string;
  created_at: string;
  updated_at: string;
  /** Every status it had, in order (not part of GitLab's entity). */
  history: FakeDeploymentStatus[];
}

export interface FakeNote {
  id: number;
  body: string;
  noteable_iid: number;
  created_at: string;
  updated_at: string;
  /** How many times it was edited (not part of GitLab's entity). */
  edits: number;
}

export interface FakeHook {
  id: number;
  url: string;
  /** Kept by GitLab, never returned by its API. */
  token: string | null;
  flags: Record<string, unknown>;
  alert_status: string;
  disabled_until: string | null;
  created_at: string;
}

export interface FakeDeployKey {
  id: number;
  title: string;
  key: string;
  can_push: boolean;
  created_at: string;
}

export interface FakeProjectInfo {
  path_with_namespace: string;
  ssh_url_to_repo: string;
  web_url: string;
  default_branch: string | null;
}

export interface FakeReview {
  /** The token's user is Developer (not Maintainer) on the project: hooks and keys are 403. */
  setRole(projectId: number, role: "maintainer" | "developer"): void;
  registerMergeRequest(projectId: number, iid: number): void;
  describeProject(projectId: number, info: FakeProjectInfo): void;
  /** GitLab disables a hook after failed deliveries (its alert_status, disabled_until). */
  disableHook(projectId: number, hookId: number, alertStatus: string, until?: string): void;
  /** Someone removes a hook in GitLab's settings. */
  deleteHook(projectId: number, hookId: number): void;
  environments(projectId: number): FakeEnvironment[];
  deployments(projectId: number): FakeDeployment[];
  notes(projectId: number, iid: number): FakeNote[];
  hooks(projectId: number): FakeHook[];
  deployKeys(projectId: number): FakeDeployKey[];
}

interface Answer {
  status: number;
  body: unknown;
}

interface ReviewOptions {
  hasProject(id: number): boolean;
  knownRef(projectId: number, ref: string): boolean;
  answer(status: number, body: unknown): Error;
}

const DEPLOYMENT_STATUSES = ["running", "success", "failed", "canceled"] as const;
const FINISHED: readonly FakeDeploymentStatus[] = ["success", "failed", "canceled"];
/** The event GitLab's Deployment state machine fires for each status. */
const DEPLOYMENT_EVENT: Record<string, string> = {
  running: "run",
  success: "succeed",
  failed: "drop",
  canceled: "cancel",
};
/** GitLab's environment name rule (Gitlab::Regex.environment_name_regex). */
const ENVIRONMENT_NAME = /^[a-zA-Z0-9 _/${}.-]+$/;
const HOOK_FLAGS = [
  "push_events",
  "push_events_branch_filter",
  "tag_push_events",
  "merge_requests_events",
  "issues_events",
  "confidential_issues_events",
  "note_events",
  "confidential_note_events",
  "job_events",
  "pipeline_events",
  "wiki_page_events",
  "deployment_events",
  "releases_events",
  "repository_update_events",
  "enable_ssl_verification",
] as const;
/** GitLab's column defaults: push events on, SSL verification on, everything else off. */
const HOOK_DEFAULTS: Record<string, unknown> = {
  push_events: true,
  push_events_branch_filter: "",
  enable_ssl_verification: true,
};

export function createReviewEndpoints(opts: ReviewOptions): {
  route(req: FakeGitlabRequest): Answer | undefined;
  api: FakeReview;
} {
  let nextId = 5000;
  const envs = new Map<number, FakeEnvironment[]>();
  const deps = new Map<number, FakeDeployment[]>();
  const notes = new Map<string, FakeNote[]>();
  const mergeRequests = new Set<string>();
  const hooks = new Map<number, FakeHook[]>();
  const keys = new Map<number, FakeDeployKey[]>();
  const roles = new Map<number, "maintainer" | "developer">();
  const infos = new Map<number, FakeProjectInfo>();

  const fail = (status: number, body: unknown): never => {
    throw opts.answer(status, body);
  };
  const listOf = <T>(map: Map<number, T[]>, id: number): T[] => {
    let list = map.get(id);
    if (!list) {
      list = [];
      map.set(id, list);
    }
    return list;
  };
  const now = () => new Date().toISOString();

  function project(raw: string): number {
    const id = Number(raw);
    if (!Number.isInteger(id) || !opts.hasProject(id))
      fail(404, { message: "404 Project Not Found" });
    return id;
  }

  function maintainer(id: number): void {
    if (roles.get(id) === "developer") fail(403, { message: "403 Forbidden" });
  }

  function str(params: Record<string, unknown>, key: string): string | undefined {
    const v = params[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    return JSON.stringify(v);
  }

  function required(params: Record<string, unknown>, key: string): string {
    const v = str(params, key);
    if (v === undefined || v === "") fail(400, { error: `${key} is missing` });
    return v as string;
  }

  function bool(params: Record<string, unknown>, key: string): boolean | undefined {
    const v = params[key];
    if (v === undefined || v === null) return undefined;
    return v === true || v === "true";
  }

  function environmentEntity(e: FakeEnvironment): FakeEnvironment {
    return { ...e };
  }

  function deploymentEntity(d: FakeDeployment, pid: number) {
    const { history: _h, environment, ...rest } = d;
    const env = listOf(envs, pid).find((e) => e.name === environment);
    return { ...rest, environment: env ? environmentEntity(env) : { name: environment } };
  }

  function hookEntity(h: FakeHook, pid: number) {
    // The token is write-only (GitLab's Entities::ProjectHook has no token field).
    return {
      id: h.id,
      url: h.url,
      project_id: pid,
      created_at: h.created_at,
      alert_status: h.alert_status,
      disabled_until: h.disabled_until,
      ...Object.fromEntries(HOOK_FLAGS.map((f) => [f, h.flags[f] ?? HOOK_DEFAULTS[f] ?? false])),
    };
  }

  function findOrCreateEnvironment(
    pid: number,
    name: string,
    externalUrl?: string,
  ): FakeEnvironment {
    const list = listOf(envs, pid);
    const found = list.find((e) => e.name === name);
    if (found) return found;
    if (!ENVIRONMENT_NAME.test(name) || name.startsWith("/") || name.endsWith("/")) {
      fail(400, {
        message: {
          name: [
            "can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, but it cannot start or end with '/'",
          ],
        },
      });
    }
    if (externalUrl !== undefined && !/^https?:\/\//i.test(externalUrl)) {
      fail(400, {
        message: { external_url: ["is blocked: Only allowed schemes are http, https"] },
      });
    }
    const env: FakeEnvironment = {
      id: nextId++,
      name,
      slug: name
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "-")
        .slice(0, 24),
      external_url: externalUrl ?? null,
      state: "available",
      created_at: now(),
      updated_at: now(),
    };
    list.push(env);
    return env;
  }

  function route(req: FakeGitlabRequest): Answer | undefined {
    const parts = req.path.split("/").map((p) => decodeURIComponent(p));
    // ["", "api", "v4", "projects", ...]
    if (parts[1] !== "api" || parts[2] !== "v4" || parts[3] !== "projects") return undefined;
    const params: Record<string, unknown> = {
      ...req.query,
      ...(typeof req.body === "object" && req.body !== null && !Array.isArray(req.body)
        ? (req.body as Record<string, unknown>)
        : {}),
    };
    const m = req.method;
    const rest = parts.slice(4);
    if (rest.length === 0) {
      if (m !== "GET") return undefined;
      const search = (str(params, "search") ?? "").toLowerCase();
      const list = [...infos.entries()]
        .filter(([, info]) => info.path_with_namespace.toLowerCase().includes(search))
        .map(([id, info]) => ({ id, name: info.path_with_namespace.split("/").at(-1), ...info }));
      return { status: 200, body: list };
    }
    const [rawId, area, sub, action, extra] = rest;
    if (!rawId || !area) return undefined;

    if (area === "environments") {
      const pid = project(rawId);
      const list = listOf(envs, pid);
      if (sub === undefined && m === "GET") {
        const name = str(params, "name");
        const search = str(params, "search");
        const states = str(params, "states");
        return {
          status: 200,
          body: list
            .filter((e) => name === undefined || e.name === name)
            .filter((e) => search === undefined || e.name.includes(search))
            .filter((e) => states === undefined || e.state === states)
            .map(environmentEntity),
        };
      }
      if (sub === undefined && m === "POST") {
        const name = required(params, "name");
        if (list.some((e) => e.name === name)) {
          fail(400, { message: { name: ["has already been taken"] } });
        }
        return {
          status: 201,
          body: environmentEntity(findOrCreateEnvironment(pid, name, str(params, "external_url"))),
        };
      }
      const env = list.find((e) => String(e.id) === sub);
      if (!env) return fail(404, { message: "404 Environment Not Found" });
      if (action === undefined && m === "GET") return { status: 200, body: environmentEntity(env) };
      if (action === undefined && m === "PUT") {
        const url = str(params, "external_url");
        if (url !== undefined && !/^https?:\/\//i.test(url)) {
          fail(400, {
            message: { external_url: ["is blocked: Only allowed schemes are http, https"] },
          });
        }
        if (url !== undefined) env.external_url = url;
        env.updated_at = now();
        return { status: 200, body: environmentEntity(env) };
      }
      if (action === "stop" && m === "POST") {
        env.state = "stopped";
        env.updated_at = now();
        return { status: 200, body: environmentEntity(env) };
      }
      if (action === undefined && m === "DELETE") {
        // authorize! :destroy_environment: only a stopped environment can be deleted.
        if (env.state === "available") fail(403, { message: "403 Forbidden" });
        list.splice(list.indexOf(env), 1);
        return { status: 204, body: "" };
      }
      return undefined;
    }

    if (area === "deployments") {
      const pid = project(rawId);
      const list = listOf(deps, pid);
      if (sub === undefined && m === "GET") {
        const environment = str(params, "environment");
        const status = str(params, "status");
        const sorted = [...list].sort((a, b) => a.id - b.id);
        if (str(params, "sort") === "desc") sorted.reverse();
        return {
          status: 200,
          body: sorted
            .filter((d) => environment === undefined || d.environment === environment)
            .filter((d) => status === undefined || d.status === status)
            .map((d) => deploymentEntity(d, pid)),
        };
      }
      if (sub === undefined && m === "POST") {
        const environment = required(params, "environment");
        const sha = required(params, "sha");
        const ref = required(params, "ref");
        const tag = bool(params, "tag");
        if (tag === undefined) fail(400, { error: "tag is missing" });
        const status = required(params, "status");
        if (!(DEPLOYMENT_STATUSES as readonly string[]).includes(status)) {
          fail(400, { error: "status does not have a valid value" });
        }
        if (!opts.knownRef(pid, ref)) {
          fail(400, { message: { ref: ["The branch or tag does not exist"] } });
        }
        const env = findOrCreateEnvironment(pid, environment);
        const d: FakeDeployment = {
          id: nextId++,
          iid: list.length + 1,
          ref,
          sha,
          tag: tag ?? false,
          status: status as FakeDeploymentStatus,
          environment: env.name,
          created_at: now(),
          updated_at: now(),
          history: [status as FakeDeploymentStatus],
        };
        list.push(d);
        if (d.status === "success") env.state = "available";
        return { status: 201, body: deploymentEntity(d, pid) };
      }
      const d = list.find((x) => String(x.id) === sub);
      if (!d) return fail(404, { message: "404 Deployment Not Found" });
      if (action === undefined && m === "GET")
        return { status: 200, body: deploymentEntity(d, pid) };
      if (action === undefined && m === "PUT") {
        const status = required(params, "status");
        if (!(DEPLOYMENT_STATUSES as readonly string[]).includes(status)) {
          fail(400, { error: "status does not have a valid value" });
        }
        const allowed =
          (d.status === "created" && status !== "created") ||
          (d.status === "running" && FINISHED.includes(status as FakeDeploymentStatus));
        if (!allowed) {
          const event = DEPLOYMENT_EVENT[status] ?? status;
          fail(400, {
            message: `Cannot transition status via :${event} from :${d.status} (Reason(s): Status cannot transition via "${event}")`,
          });
        }
        d.status = status as FakeDeploymentStatus;
        d.history.push(d.status);
        d.updated_at = now();
        const env = listOf(envs, pid).find((e) => e.name === d.environment);
        if (env && d.status === "success") env.state = "available";
        return { status: 200, body: deploymentEntity(d, pid) };
      }
      return undefined;
    }

    if (area === "merge_requests" && action === "notes") {
      const pid = project(rawId);
      const key = `${pid}:${sub ?? ""}`;
      if (!mergeRequests.has(key)) return fail(404, { message: "404 Not found" });
      const list = notes.get(key) ?? [];
      notes.set(key, list);
      if (extra === undefined && m === "GET") {
        const sorted = [...list];
        if (str(params, "sort") !== "asc") sorted.reverse();
        return { status: 200, body: sorted.map(noteEntity) };
      }
      if (extra === undefined && m === "POST") {
        const body = required(params, "body");
        const note: FakeNote = {
          id: nextId++,
          body,
          noteable_iid: Number(sub),
          created_at: now(),
          updated_at: now(),
          edits: 0,
        };
        list.push(note);
        return { status: 201, body: noteEntity(note) };
      }
      const note = list.find((n) => String(n.id) === extra);
      if (!note) return fail(404, { message: "404 Note Not Found" });
      if (m === "PUT") {
        const body = str(params, "body");
        if (body !== undefined) note.body = body;
        note.edits += 1;
        note.updated_at = now();
        return { status: 200, body: noteEntity(note) };
      }
      if (m === "DELETE") {
        list.splice(list.indexOf(note), 1);
        return { status: 204, body: "" };
      }
      if (m === "GET") return { status: 200, body: noteEntity(note) };
      return undefined;
    }

    if (area === "hooks") {
      const pid = project(rawId);
      maintainer(pid);
      const list = listOf(hooks, pid);
      const flagsFrom = (into: Record<string, unknown>) => {
        for (const f of HOOK_FLAGS) {
          const v = f === "push_events_branch_filter" ? str(params, f) : bool(params, f);
          if (v !== undefined) into[f] = v;
        }
      };
      const checkUrl = (url: string) => {
        if (!/^https?:\/\/[^\s/]+/i.test(url)) fail(422, { error: "Invalid url given" });
      };
      if (sub === undefined && m === "GET") {
        return { status: 200, body: list.map((h) => hookEntity(h, pid)) };
      }
      if (sub === undefined && m === "POST") {
        const url = required(params, "url");
        checkUrl(url);
        const hook: FakeHook = {
          id: nextId++,
          url,
          token: str(params, "token") ?? null,
          flags: {},
          alert_status: "executable",
          disabled_until: null,
          created_at: now(),
        };
        flagsFrom(hook.flags);
        list.push(hook);
        return { status: 201, body: hookEntity(hook, pid) };
      }
      const hook = list.find((h) => String(h.id) === sub);
      if (!hook) return fail(404, { message: "404 Not found" });
      if (m === "GET") return { status: 200, body: hookEntity(hook, pid) };
      if (m === "PUT") {
        const url = required(params, "url");
        checkUrl(url);
        // Changing the URL resets the token unless a new one is given (docs/gitlab.md).
        if (url !== hook.url) hook.token = null;
        hook.url = url;
        const token = str(params, "token");
        if (token !== undefined) hook.token = token;
        flagsFrom(hook.flags);
        return { status: 200, body: hookEntity(hook, pid) };
      }
      if (m === "DELETE") {
        list.splice(list.indexOf(hook), 1);
        return { status: 204, body: "" };
      }
      return undefined;
    }

    if (area === "deploy_keys") {
      const pid = project(rawId);
      maintainer(pid);
      const list = listOf(keys, pid);
      if (sub === undefined && m === "GET")
        return { status: 200, body: list.map((k) => ({ ...k })) };
      if (sub === undefined && m === "POST") {
        const key = required(params, "key").trim();
        const title = required(params, "title");
        if (!/^(ssh-(ed25519|rsa)|ecdsa-sha2-\S+) [A-Za-z0-9+/=]+/.test(key)) {
          fail(400, { message: { key: ["is invalid"] } });
        }
        const body = key.split(/\s+/).slice(0, 2).join(" ");
        const same = list.find((k) => k.key.split(/\s+/).slice(0, 2).join(" ") === body);
        // "If the same key is already on the project the existing record is returned".
        if (same) return { status: 201, body: { ...same } };
        const created: FakeDeployKey = {
          id: nextId++,
          title,
          key,
          can_push: bool(params, "can_push") ?? false,
          created_at: now(),
        };
        list.push(created);
        return { status: 201, body: { ...created } };
      }
      const k = list.find((x) => String(x.id) === sub);
      if (!k) return fail(404, { message: "404 Deploy Key Not Found" });
      if (m === "PUT") {
        const canPush = bool(params, "can_push");
        if (canPush !== undefined) k.can_push = canPush;
        const title = str(params, "title");
        if (title !== undefined) k.title = title;
        return { status: 200, body: { ...k } };
      }
      return undefined;
    }
    return undefined;
  }

  function noteEntity(n: FakeNote) {
    const { edits: _e, ...rest } = n;
    return { ...rest, noteable_type: "MergeRequest", system: false };
  }

  return {
    route,
    api: {
      setRole(projectId, role) {
        roles.set(projectId, role);
      },
      registerMergeRequest(projectId, iid) {
        mergeRequests.add(`${projectId}:${iid}`);
      },
      describeProject(projectId, info) {
        infos.set(projectId, info);
      },
      disableHook(projectId, hookId, alertStatus, until) {
        const hook = listOf(hooks, projectId).find((h) => h.id === hookId);
        if (!hook) throw new Error(`no hook ${hookId}`);
        hook.alert_status = alertStatus;
        hook.disabled_until = until ?? null;
      },
      deleteHook(projectId, hookId) {
        const list = listOf(hooks, projectId);
        const i = list.findIndex((h) => h.id === hookId);
        if (i >= 0) list.splice(i, 1);
      },
      environments: (id) => listOf(envs, id).map((e) => ({ ...e })),
      deployments: (id) => listOf(deps, id).map((d) => ({ ...d, history: [...d.history] })),
      notes: (id, iid) => (notes.get(`${id}:${iid}`) ?? []).map((n) => ({ ...n })),
      hooks: (id) => listOf(hooks, id).map((h) => ({ ...h, flags: { ...h.flags } })),
      deployKeys: (id) => listOf(keys, id).map((k) => ({ ...k })),
    },
  };
}
