// The one table of who may do what, keyed by route (docs/api.md, "Who may do what"). The API's
// middleware (middleware.ts) and the dashboard's (ui-rules in the same shape, below) apply it to
// every request, so no route handler checks rights by itself. A route without a rule is refused
// to everyone but admins, and test/unit/auth-rules.test.ts fails when a registered route has
// none.
import type { Right } from "./rights.js";

/** `public`: no sign-in; `signed-in`: anyone known; else the right needed on the project. */
export type Need = "public" | "signed-in" | Right;

/**
 * Where a rule finds its project: a path parameter holding the project's id or name, a path
 * parameter holding an operation id (the operation's project), or a query parameter (optional:
 * without it the rule needs `admin`, e.g. the audit log of every project).
 */
export type ProjectFrom = { param: string } | { operationParam: string } | { query: string };

export interface Rule {
  need: Need;
  project?: ProjectFrom;
  /** Path parameter naming the version (recorded in the audit log). */
  versionParam?: string;
  /** Set on changes: the audit log's `action`. */
  action?: string;
  /** The answer is a list of projects: only those the asker may read are kept. */
  list?: "projects";
}

const P = { param: "project" } as const;
const OP = { operationParam: "id" } as const;
const V = "version";

/** Every route under /api, as `METHOD /path/:param`. */
export const API_RULES: Readonly<Record<string, Rule>> = {
  "GET /api/health": { need: "public" },
  "GET /api/ssh-key": { need: "public" },

  "POST /api/projects": { need: "admin", action: "project.create" },
  "GET /api/projects": { need: "signed-in", list: "projects" },
  "GET /api/projects/:project": { need: "read", project: P },
  "PATCH /api/projects/:project": { need: "maintain", project: P, action: "project.update" },
  "DELETE /api/projects/:project": { need: "maintain", project: P, action: "project.delete" },
  // The secret lets its holder post deliveries that deploy: the people who set up the hook.
  "GET /api/projects/:project/webhook-secret": { need: "maintain", project: P },
  "GET /api/projects/:project/deliveries": { need: "read", project: P },

  "POST /api/projects/:project/versions": {
    need: "deploy",
    project: P,
    action: "version.create",
  },
  "GET /api/projects/:project/versions": { need: "read", project: P },
  "GET /api/projects/:project/versions/:version": { need: "read", project: P, versionParam: V },
  "POST /api/projects/:project/versions/:version/on": {
    need: "deploy",
    project: P,
    versionParam: V,
    action: "version.on",
  },
  "POST /api/projects/:project/versions/:version/off": {
    need: "deploy",
    project: P,
    versionParam: V,
    action: "version.off",
  },
  // A rollback turns the version on at an earlier verified commit: a Developer's turn on.
  "POST /api/projects/:project/versions/:version/rollback": {
    need: "deploy",
    project: P,
    versionParam: V,
    action: "version.rollback",
  },
  "GET /api/projects/:project/versions/:version/view": {
    need: "read",
    project: P,
    versionParam: V,
  },
  "DELETE /api/projects/:project/versions/:version": {
    need: "maintain",
    project: P,
    versionParam: V,
    action: "version.delete",
  },

  "GET /api/operations/:id": { need: "read", project: OP },
  "GET /api/operations/:id/log": { need: "read", project: OP },
  "POST /api/operations/:id/cancel": { need: "deploy", project: OP, action: "operation.cancel" },

  "GET /api/projects/:project/gitlab": { need: "read", project: P },
  "POST /api/projects/:project/gitlab/sync": {
    need: "maintain",
    project: P,
    action: "gitlab.sync",
  },
  // The GitLab projects dockbot's token can see, to add one: adding projects is admins' only.
  "GET /api/gitlab/projects": { need: "admin" },

  "GET /api/me": { need: "signed-in" },
  "POST /api/tokens": { need: "signed-in", action: "token.create" },
  "GET /api/tokens": { need: "signed-in" },
  "DELETE /api/tokens/:id": { need: "signed-in", action: "token.revoke" },
  "GET /api/audit": { need: "maintain", project: { query: "project" } },
};

/** Every dashboard route (src/ui), in the same shape: the same rights as the API's twin. */
export const UI_RULES: Readonly<Record<string, Rule>> = {
  "GET /": { need: "signed-in", list: "projects" },
  "GET /new-project": { need: "admin" },
  "POST /projects": { need: "admin", action: "project.create" },
  "GET /projects/:project": { need: "read", project: P },
  "GET /projects/:project/edit": { need: "maintain", project: P },
  "POST /projects/:project": { need: "maintain", project: P, action: "project.update" },
  "GET /projects/:project/audit": { need: "maintain", project: P },
  "POST /projects/:project/versions": { need: "deploy", project: P, action: "version.create" },
  "GET /projects/:project/versions/:version/view": { need: "read", project: P, versionParam: V },
  "POST /projects/:project/versions/:version/on": {
    need: "deploy",
    project: P,
    versionParam: V,
    action: "version.on",
  },
  "POST /projects/:project/versions/:version/off": {
    need: "deploy",
    project: P,
    versionParam: V,
    action: "version.off",
  },
  // The confirm page behind the preview router's "Turn on": readers see why it is off; the
  // button (a POST to .../on) is there for those who may deploy.
  "GET /projects/:project/versions/:version/turn-on": {
    need: "read",
    project: P,
    versionParam: V,
  },
  "GET /projects/:project/versions/:version/delete": {
    need: "maintain",
    project: P,
    versionParam: V,
  },
  "POST /projects/:project/versions/:version/delete": {
    need: "maintain",
    project: P,
    versionParam: V,
    action: "version.delete",
  },
  "POST /projects/:project/versions/:version/rollback": {
    need: "deploy",
    project: P,
    versionParam: V,
    action: "version.rollback",
  },
  "POST /projects/:project/gitlab/sync": { need: "maintain", project: P, action: "gitlab.sync" },
  "GET /operations/:id": { need: "read", project: OP },
  "POST /operations/:id/cancel": { need: "deploy", project: OP, action: "operation.cancel" },
  "GET /tokens": { need: "signed-in" },
  "POST /tokens": { need: "signed-in", action: "token.create" },
  "POST /tokens/:id/revoke": { need: "signed-in", action: "token.revoke" },
  "POST /logout": { need: "signed-in" },
};

interface CompiledRule {
  method: string;
  pattern: string;
  regex: RegExp;
  params: string[];
  rule: Rule;
}

function compile(table: Readonly<Record<string, Rule>>): CompiledRule[] {
  return Object.entries(table).map(([key, rule]) => {
    const [method = "", pattern = ""] = key.split(" ");
    const params: string[] = [];
    const source = pattern
      .split("/")
      .map((part) => {
        if (!part.startsWith(":")) return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
        params.push(part.slice(1));
        return "([^/]+)";
      })
      .join("/");
    return { method, pattern, regex: new RegExp(`^${source}/?$`), params, rule };
  });
}

export interface MatchedRule {
  key: string;
  rule: Rule;
  params: Record<string, string>;
}

/** The rule of a request (HEAD counts as GET), with its path parameters decoded. */
export function ruleMatcher(
  table: Readonly<Record<string, Rule>>,
): (method: string, path: string) => MatchedRule | undefined {
  const compiled = compile(table);
  return (method, path) => {
    const m = method === "HEAD" ? "GET" : method;
    for (const c of compiled) {
      if (c.method !== m) continue;
      const found = c.regex.exec(path);
      if (!found) continue;
      const params: Record<string, string> = {};
      try {
        c.params.forEach((name, i) => (params[name] = decodeURIComponent(found[i + 1] ?? "")));
      } catch {
        return undefined; // a malformed %-escape: no route will take it either
      }
      return { key: `${c.method} ${c.pattern}`, rule: c.rule, params };
    }
    return undefined;
  };
}
