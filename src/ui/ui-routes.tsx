// The web dashboard: server-rendered pages (hono/jsx) over the same DeployService as the API.
// Every page works with plain forms and redirects (JavaScript off); /assets/app.js adds the live
// parts over Socket.io.
//
// Security rules of this module:
// - Every page and action needs a session (session.ts); without one, GET pages redirect to
//   /login?next=<page> and actions to /login.
// - Every POST (sign-out included) carries the session's CSRF token in `_csrf` and, when the
//   browser sends an Origin, comes from dockbot's own origin; the cookie is SameSite=Strict too.
// - Pages are `Cache-Control: no-store` (some embed the admin token for Socket.io auth), framed by
//   nobody, and load scripts and styles only from dockbot (CSP), so no CDN and no inline script.
// - Env values never reach a page (names only); the webhook secret only on its project's page.
//
// Mounting: `app.route("/", uiRoutes(deps))`. Its middleware is attached per route, never with
// `use("*")`, which would also run for /api and /webhooks once mounted at "/".
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { HtmlEscapedString } from "hono/utils/html";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "pino";
import type { VersionDiskUse } from "../deploy/disk-usage.js";
import { APP_CSS, APP_JS, ASSET_VERSION } from "./assets/assets.js";
import {
  FormError,
  field,
  projectInputFromForm,
  projectPatchFromForm,
  safeNext,
  type FormFields,
} from "./forms.js";
import {
  DashboardPage,
  DeleteVersionPage,
  ErrorPage,
  formValuesOf,
  OperationPage,
  ProjectFormPage,
  ProjectPage,
  SameSiteHopPage,
  type ProjectFormValues,
} from "./pages.js";
import { AuditPage, SignInPage, TokensPage } from "./auth-pages.js";
import { GitlabPanel, RepositoryPicker } from "./gitlab-panel.js";
import { TurnOnPage } from "./turn-on-page.js";
import { uiAuth, type Session } from "./session.js";
import type { DeployService } from "../deploy/deploy-service.js";
import type { GitlabOnboarding } from "../gitlab/onboarding.js";
import { webhookUrlFor } from "../webhooks/gitlab-receiver.js";
import { AppError, ERROR_STATUS, type ErrorCode } from "../errors.js";
import { createAuth, type Auth, type Identity } from "../auth/auth.js";
import { authorize, recordChange, type Authorized } from "../auth/authorize.js";
import { addressOf, rateLimited } from "../auth/request-identity.js";
import { originAllowed } from "../auth/same-origin.js";
import { cookieOptions, SESSION_TTL_MS, sessionCookieName } from "../auth/sessions.js";
import { atLeast } from "../auth/rights.js";
import { ruleMatcher, UI_RULES } from "../auth/rules.js";
import type { AdminToken } from "../http/admin-token.js";
import { StoreUnavailableError, type Store } from "../store/store.js";
import type { ProjectRecord } from "../store/types.js";
import type { PreviewSettings } from "../preview/preview-host.js";
import { NavContext, type NavRights } from "./components.js";

export interface UiDeps {
  service: DeployService;
  store: Store;
  token: AdminToken;
  /** Who may do what (src/auth); unset: the admin token alone, no GitLab sign-in. */
  auth?: Auth;
  sshKey: { publicKey: string; fingerprint: string };
  publicUrl: string;
  logger: Logger;
  /** The preview router's settings, for each version's preview link (unset: router off). */
  preview?: PreviewSettings;
  /** GitLab onboarding (hook, deploy key, repository search); unset without GitLab access. */
  gitlab?: GitlabOnboarding;
  /**
   * A project's versions' disk use as last measured in the background (src/deploy/disk-usage.ts);
   * asking also has stale figures measured again, off the request.
   */
  diskUse?: (projectId: string) => (versionId: string) => VersionDiskUse | undefined;
}

type UiEnv = {
  Variables: { session: Session; identity: Identity; form: FormFields; mayCreate: boolean };
};

const matchUi = ruleMatcher(UI_RULES);
type UiContext = Context<UiEnv>;

const STATUS: Record<ErrorCode, ContentfulStatusCode> = ERROR_STATUS;

/** Messages after a redirect, by code: the query string never carries text to show. */
const NOTICES: Record<string, string> = {
  created: "Project created. Add the webhook below in GitLab to deploy on every push.",
  saved: "Project saved.",
  "version-added": "Version added. Turn it on when you are ready.",
  "no-operation": "That version has no operation yet: turn it on first.",
  "cancel-requested": "Cancel requested.",
  "already-finished": "The operation had finished already; nothing was canceled.",
  "token-revoked": "Token revoked: it is refused from now on.",
  "gitlab-synced": "GitLab hook and deploy key checked and repaired where needed (see below).",
};

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

/** A failed sign-in waits this long: guessing tokens gets slow without locking anyone out. */
const LOGIN_FAILURE_DELAY_MS = 400;

async function render(
  c: Context,
  node: HtmlEscapedString | Promise<HtmlEscapedString>,
  status: ContentfulStatusCode = 200,
): Promise<Response> {
  // What the navigation offers this person (set once their session is read).
  const nav: NavRights = { mayCreate: (c.get("mayCreate") as boolean | undefined) ?? false };
  const page = <NavContext.Provider value={nav}>{await node}</NavContext.Provider>;
  return c.html(`<!DOCTYPE html>${String(await page)}`, status);
}

function messageOf(error: unknown): string | undefined {
  if (error instanceof AppError || error instanceof FormError) return error.message;
  return undefined;
}

function statusOf(error: unknown): ContentfulStatusCode {
  return error instanceof AppError ? STATUS[error.code] : 400;
}

export function uiRoutes(deps: UiDeps): Hono<UiEnv> {
  const app = new Hono<UiEnv>();
  const { service, store } = deps;
  const log = deps.logger.child({ component: "ui" });
  const auth =
    deps.auth ??
    createAuth({ store, adminToken: deps.token, publicUrl: deps.publicUrl, logger: deps.logger });
  const sessions = uiAuth(auth);
  const secure = auth.secure;
  const COOKIE = sessionCookieName(secure);
  const webhookUrl = webhookUrlFor(deps.publicUrl);

  // ------------------------------------------------------------------ middleware (per route)

  const headers: MiddlewareHandler<UiEnv> = async (c, next) => {
    await next();
    const h = c.res.headers;
    h.set("Cache-Control", "no-store");
    h.set("Content-Security-Policy", CSP);
    h.set("X-Content-Type-Options", "nosniff");
    h.set("X-Frame-Options", "DENY");
    h.set("Referrer-Policy", "same-origin");
  };

  const requireSession: MiddlewareHandler<UiEnv> = async (c, next) => {
    const session = await sessions.read(getCookie(c, COOKIE));
    if (!session) {
      const url = new URL(c.req.url);
      const next = c.req.method === "GET" ? `${url.pathname}${url.search}` : "/";
      return c.redirect(`/login?next=${encodeURIComponent(next)}`, 303);
    }
    c.set("session", session);
    const identity = auth.fromSession(session);
    c.set("identity", identity);
    c.set("mayCreate", auth.globalRight(identity) === "admin");
    return next();
  };

  /** The rule table (src/auth/rules.ts) for this page or action, and the audit record after. */
  const authorized: MiddlewareHandler<UiEnv> = async (c, next) => {
    const matched = matchUi(c.req.method, c.req.path);
    const identity = c.get("identity");
    if (!matched) {
      if (!auth.globalRight(identity))
        throw new AppError("forbidden", "this page has no rule for you");
      return next();
    }
    const found: Authorized = await authorize(auth, store, identity, matched, c);
    await next();
    await recordChange(auth, identity, matched, found, c, "ui", addressOf(c));
  };

  /** Browsers send Origin on form POSTs; one that is not dockbot's is refused (src/auth). */
  const fromOwnOrigin = (c: Context) =>
    originAllowed(c.req.header("origin"), c.req.header("host"), deps.publicUrl);

  const formLimit = bodyLimit({
    maxSize: 512 * 1024,
    onError: (c) =>
      render(c, <ErrorPage status={413} message="That form is too large (512 KB at most)." />, 413),
  });

  const refuse = (c: UiContext, message: string) =>
    render(c, <ErrorPage status={403} message={message} csrf={c.get("session").csrf} />, 403);

  const checkPost: MiddlewareHandler<UiEnv> = async (c, next) => {
    if (!fromOwnOrigin(c))
      return refuse(c, "This form was sent from another site, so dockbot refused it.");
    const form = await c.req.parseBody({ all: true });
    if (!sessions.csrfMatches(c.get("session"), field(form, "_csrf") || undefined)) {
      return refuse(
        c,
        "This form has expired or did not come from dockbot. Go back, reload the page and try again.",
      );
    }
    c.set("form", form);
    return next();
  };

  const page = [headers, requireSession, authorized] as const;
  const action = [headers, formLimit, requireSession, checkPost, authorized] as const;

  app.onError(async (error, c) => {
    const session = c.get("session") as Session | undefined;
    let status: ContentfulStatusCode;
    let message: string;
    if (error instanceof AppError) {
      status = STATUS[error.code];
      message = error.message;
    } else if (error instanceof StoreUnavailableError) {
      status = 503;
      message = "The database is unavailable; try again shortly.";
    } else {
      log.error({ err: error, method: c.req.method, path: c.req.path }, "ui request failed");
      status = 500;
      message = "Internal error: the details are in dockbot's log.";
    }
    return render(c, <ErrorPage status={status} message={message} csrf={session?.csrf} />, status);
  });

  // ------------------------------------------------------------------ static files

  const asset = (body: string, type: string) => (c: Context) =>
    c.body(body, 200, {
      "Content-Type": type,
      "Cache-Control":
        c.req.query("v") === ASSET_VERSION ? "public, max-age=31536000, immutable" : "no-cache",
      "X-Content-Type-Options": "nosniff",
    });
  app.get("/assets/app.css", asset(APP_CSS, "text/css; charset=utf-8"));
  app.get("/assets/app.js", asset(APP_JS, "text/javascript; charset=utf-8"));

  // ------------------------------------------------------------------ sign in / out

  app.get("/login", headers, async (c) => {
    const next = safeNext(c.req.query("next"));
    if (await sessions.read(getCookie(c, COOKIE))) return c.redirect(next, 303);
    // Arrived from another site (a GitLab status link): the Strict cookie was not sent. Reload
    // from here once, so a signed-in user goes on without signing in again.
    if (c.req.header("sec-fetch-site") === "cross-site" && c.req.query("hop") === undefined) {
      return render(c, <SameSiteHopPage url={`/login?next=${encodeURIComponent(next)}&hop=1`} />);
    }
    return render(c, <SignInPage next={next} gitlab={auth.oauth !== undefined} />);
  });

  app.post("/login", headers, bodyLimit({ maxSize: 16 * 1024 }), async (c) => {
    const form = await c.req.parseBody({ all: true });
    const next = safeNext(field(form, "next"));
    if (!fromOwnOrigin(c)) {
      return render(
        c,
        <SignInPage
          next={next}
          gitlab={auth.oauth !== undefined}
          error="This sign-in came from another site, so dockbot refused it."
        />,
        403,
      );
    }
    const address = addressOf(c);
    if (auth.limiter.blocked(address)) {
      const refused = rateLimited(auth, address);
      return render(
        c,
        <SignInPage next={next} gitlab={auth.oauth !== undefined} error={refused.message} />,
        429,
      );
    }
    const token = field(form, "token");
    if (!deps.token.verify(token)) {
      auth.limiter.fail(address);
      await new Promise((resolve) => setTimeout(resolve, LOGIN_FAILURE_DELAY_MS));
      log.warn({ address }, "dashboard sign-in with a wrong token");
      return render(
        c,
        <SignInPage
          next={next}
          gitlab={auth.oauth !== undefined}
          error="That is not dockbot's admin token."
        />,
        401,
      );
    }
    // A new session at every sign-in (the id is never one the browser had before).
    const { cookie } = await sessions.create();
    setCookie(c, COOKIE, cookie, cookieOptions(secure, SESSION_TTL_MS));
    return c.redirect(next, 303);
  });

  app.post("/logout", ...action, async (c) => {
    await sessions.end(c.get("session"));
    deleteCookie(c, COOKIE, { path: "/", secure, httpOnly: true, sameSite: "Lax" });
    return c.redirect("/login", 303);
  });

  // ------------------------------------------------------------------ projects

  app.get("/", ...page, async (c) => {
    const session = c.get("session");
    const [all, versions] = await Promise.all([service.listProjects(), store.listVersions()]);
    // Only the projects this person may read (src/auth).
    const projects = await auth.readable(c.get("identity"), all);
    return render(
      c,
      <DashboardPage
        csrf={session.csrf}
        mayCreate={auth.globalRight(c.get("identity")) === "admin"}
        sshKey={deps.sshKey}
        projects={projects.map((project) => ({
          project,
          versions: versions.filter((v) => v.projectId === project.id),
        }))}
        notice={NOTICES[c.req.query("done") ?? ""]}
      />,
    );
  });

  app.get("/new-project", ...page, async (c) => {
    // Picked from GitLab (gitlab-panel.tsx): the form comes filled in with that repository.
    const values = formValuesOf();
    const pickedId = c.req.query("gitlabProjectId") ?? "";
    if (/^\d{1,12}$/.test(pickedId)) {
      values.gitlabProjectId = pickedId;
      values.repoUrl = (c.req.query("repoUrl") ?? "").slice(0, 1000);
      values.name = (c.req.query("name") ?? "").slice(0, 63);
    }
    const search = (c.req.query("gitlabSearch") ?? "").slice(0, 255);
    let picker;
    if (deps.gitlab) {
      let results;
      let error: string | undefined;
      if (search !== "") {
        try {
          results = await deps.gitlab.searchProjects(search);
        } catch (e) {
          error = messageOf(e);
          if (error === undefined) throw e;
        }
      }
      picker = <RepositoryPicker search={search} results={results} error={error} />;
    }
    return render(
      c,
      <ProjectFormPage csrf={c.get("session").csrf} values={values} picker={picker} />,
    );
  });

  /** The form as typed (minus env values, which are never echoed), for a re-render. */
  const typedValues = (form: FormFields, before: ProjectFormValues): ProjectFormValues => ({
    name: field(form, "name"),
    repoUrl: field(form, "repoUrl"),
    composeFile: field(form, "composeFile"),
    branches: field(form, "branches"),
    tags: field(form, "tags") !== "",
    mergeRequests: field(form, "mergeRequests") !== "",
    gitlabProjectId:
      field(form, "gitlabProjectId") || (field(form, "gitlabUrl") ? "" : before.gitlabProjectId),
    gitlabUrl: field(form, "gitlabUrl"),
  });

  app.post("/projects", ...action, async (c) => {
    const form = c.get("form");
    try {
      const project = await service.createProject(projectInputFromForm(form));
      return c.redirect(`/projects/${encodeURIComponent(project.name)}?done=created`, 303);
    } catch (error) {
      const message = messageOf(error);
      if (message === undefined) throw error;
      return render(
        c,
        <ProjectFormPage
          csrf={c.get("session").csrf}
          values={typedValues(form, formValuesOf())}
          error={message}
        />,
        statusOf(error),
      );
    }
  });

  const projectPage = async (
    c: UiContext,
    project: ProjectRecord,
    extra: { error?: string; refValue?: string; nameValue?: string } = {},
    status: ContentfulStatusCode = 200,
  ) => {
    const session = c.get("session");
    const right = await auth.rightOn(c.get("identity"), project);
    const [versions, deliveries] = await Promise.all([
      store.listVersions(project.id),
      store.listDeliveries(project.id, 20),
    ]);
    const diskOf = deps.diskUse?.(project.id);
    const rows = await Promise.all(
      versions.map(async (version) => ({
        version,
        last: await service.lastOperation(version.id),
        disk: diskOf?.(version.id),
      })),
    );
    return render(
      c,
      <ProjectPage
        csrf={session.csrf}
        may={{ deploy: atLeast(right, "deploy"), maintain: atLeast(right, "maintain") }}
        project={project}
        webhookUrl={webhookUrl}
        versions={rows}
        deliveries={deliveries}
        notice={NOTICES[c.req.query("done") ?? ""]}
        error={extra.error}
        refValue={extra.refValue}
        nameValue={extra.nameValue}
        preview={deps.preview}
        gitlabPanel={
          <GitlabPanel
            csrf={session.csrf}
            project={project}
            configured={Boolean(deps.gitlab)}
            mayRepair={atLeast(right, "maintain")}
          />
        }
      />,
      status,
    );
  };

  app.post("/projects/:project/gitlab/sync", ...action, async (c) => {
    const project = await service.getProject(c.req.param("project"));
    if (!deps.gitlab) {
      throw new AppError(
        "unavailable",
        "GitLab is not configured: set DOCKBOT_GITLAB_URL and DOCKBOT_GITLAB_TOKEN",
      );
    }
    // The outcome (also a failure, with GitLab's message) is kept on the project and shown.
    await deps.gitlab.sync(project, { waiting: true });
    return c.redirect(
      `/projects/${encodeURIComponent(project.name)}?done=gitlab-synced#gitlab`,
      303,
    );
  });

  app.get("/projects/:project", ...page, async (c) =>
    projectPage(c, await service.getProject(c.req.param("project"))),
  );

  app.get("/projects/:project/edit", ...page, async (c) => {
    const project = await service.getProject(c.req.param("project"));
    return render(
      c,
      <ProjectFormPage
        csrf={c.get("session").csrf}
        project={project}
        values={formValuesOf(project)}
      />,
    );
  });

  app.post("/projects/:project", ...action, async (c) => {
    const project = await service.getProject(c.req.param("project"));
    const form = c.get("form");
    try {
      const updated = await service.updateProject(project.id, projectPatchFromForm(form, project));
      return c.redirect(`/projects/${encodeURIComponent(updated.name)}?done=saved`, 303);
    } catch (error) {
      const message = messageOf(error);
      if (message === undefined) throw error;
      return render(
        c,
        <ProjectFormPage
          csrf={c.get("session").csrf}
          project={project}
          values={typedValues(form, formValuesOf(project))}
          error={message}
        />,
        statusOf(error),
      );
    }
  });

  // ------------------------------------------------------------------ versions

  app.post("/projects/:project/versions", ...action, async (c) => {
    const project = await service.getProject(c.req.param("project"));
    const form = c.get("form");
    const ref = field(form, "ref");
    const name = field(form, "name");
    try {
      if (ref === "")
        throw new FormError("Type a branch, a tag or a commit hash to add a version.");
      await service.createVersion(project.id, name === "" ? { ref } : { ref, name });
      return c.redirect(`/projects/${encodeURIComponent(project.name)}?done=version-added`, 303);
    } catch (error) {
      const message = messageOf(error);
      if (message === undefined) throw error;
      return projectPage(
        c,
        project,
        { error: message, refValue: ref, nameValue: name },
        statusOf(error),
      );
    }
  });

  const versionOf = (c: UiContext) =>
    service.getVersion(c.req.param("project") ?? "", c.req.param("version") ?? "");

  app.get("/projects/:project/versions/:version/view", ...page, async (c) => {
    const { project, version } = await versionOf(c);
    const last = await service.lastOperation(version.id);
    return c.redirect(
      last
        ? `/operations/${encodeURIComponent(last.id)}`
        : `/projects/${encodeURIComponent(project.name)}?done=no-operation`,
      303,
    );
  });

  for (const [path, kind] of [
    ["on", "up"],
    ["off", "down"],
  ] as const) {
    app.post(`/projects/:project/versions/:version/${path}`, ...action, async (c) => {
      const { version } = await versionOf(c);
      const op = await service.requestOperation(version, kind, { source: "ui" });
      return c.redirect(`/operations/${encodeURIComponent(op.id)}`, 303);
    });
  }

  // Back one verified deploy (docs/api.md, "Rollback"); the button shows only when there is one.
  app.post("/projects/:project/versions/:version/rollback", ...action, async (c) => {
    const { version } = await versionOf(c);
    const op = await service.requestRollback(version, { source: "ui" });
    return c.redirect(`/operations/${encodeURIComponent(op.id)}`, 303);
  });

  // The preview router's "Turn on" button lands here (src/ui/turn-on-page.tsx).
  app.get("/projects/:project/versions/:version/turn-on", ...page, async (c) => {
    const { project, version } = await versionOf(c);
    const [last, mayDeploy] = await Promise.all([
      service.lastOperation(version.id),
      auth.may(c.get("identity"), "deploy", project),
    ]);
    return render(
      c,
      <TurnOnPage
        csrf={c.get("session").csrf}
        project={project}
        version={version}
        last={last}
        mayDeploy={mayDeploy}
      />,
    );
  });

  app.get("/projects/:project/versions/:version/delete", ...page, async (c) => {
    const { project, version } = await versionOf(c);
    return render(
      c,
      <DeleteVersionPage csrf={c.get("session").csrf} project={project} version={version} />,
    );
  });

  app.post("/projects/:project/versions/:version/delete", ...action, async (c) => {
    const { version } = await versionOf(c);
    const keepVolumes = field(c.get("form"), "keepVolumes") !== "";
    const op = await service.requestOperation(version, "delete", { source: "ui" }, { keepVolumes });
    return c.redirect(`/operations/${encodeURIComponent(op.id)}`, 303);
  });

  // ------------------------------------------------------------------ operations

  // GitLab commit statuses link here (target_url), so this path is part of the public contract.
  app.get("/operations/:id", ...page, async (c) => {
    const session = c.get("session");
    const op = await service.getOperation(c.req.param("id"));
    const [lines, project, version, history] = await Promise.all([
      store.getLogLines(op.id),
      store.getProject(op.projectId),
      store.getVersion(op.versionId),
      store.listOperations({ versionId: op.versionId, newestFirst: true, limit: 30 }),
    ]);
    return render(
      c,
      <OperationPage
        csrf={session.csrf}
        mayCancel={
          project
            ? await auth.may(c.get("identity"), "deploy", project)
            : auth.globalRight(c.get("identity")) === "admin"
        }
        op={op}
        lines={lines}
        project={project}
        version={version}
        history={history}
        notice={NOTICES[c.req.query("done") ?? ""]}
      />,
    );
  });

  app.post("/operations/:id/cancel", ...action, async (c) => {
    const id = c.req.param("id");
    let done = "cancel-requested";
    try {
      await service.cancelOperation(id, "canceled from the dashboard");
    } catch (error) {
      if (!(error instanceof AppError && error.code === "conflict")) throw error;
      done = "already-finished";
    }
    return c.redirect(`/operations/${encodeURIComponent(id)}?done=${done}`, 303);
  });

  // ------------------------------------------------------------------ tokens and audit

  const tokensPage = async (
    c: UiContext,
    extra: { created?: { name: string; token: string }; error?: string } = {},
    status: ContentfulStatusCode = 200,
  ) => {
    const identity = c.get("identity");
    const [tokens, projects] = await Promise.all([auth.tokensOf(identity), store.listProjects()]);
    return render(
      c,
      <TokensPage
        csrf={c.get("session").csrf}
        tokens={tokens}
        projects={projects}
        created={extra.created}
        error={extra.error}
        notice={NOTICES[c.req.query("done") ?? ""]}
      />,
      status,
    );
  };

  app.get("/tokens", ...page, (c) => tokensPage(c));

  app.post("/tokens", ...action, async (c) => {
    const form = c.get("form");
    const scope = field(form, "scope");
    const projects = field(form, "projects")
      .split(/[\s,]+/)
      .filter((p) => p !== "");
    const expires = field(form, "expiresAt");
    try {
      if (scope !== "read" && scope !== "deploy" && scope !== "admin") {
        throw new FormError("Pick a scope: read, deploy or admin.");
      }
      const name = field(form, "name");
      if (name === "" || name.length > 100)
        throw new FormError("Give the token a name (at most 100 characters).");
      const input: Parameters<Auth["createToken"]>[1] = { name, scopes: [scope] };
      if (projects.length > 0) input.projects = projects;
      if (expires !== "") {
        if (!/^\d{4}-\d{2}-\d{2}$/.test(expires) || Number.isNaN(Date.parse(expires))) {
          throw new FormError("Expiry must be a date such as 2030-01-31.");
        }
        input.expiresAt = new Date(`${expires}T23:59:59Z`).toISOString();
      }
      const { token } = await auth.createToken(c.get("identity"), input);
      return await tokensPage(c, { created: { name, token } }, 201);
    } catch (error) {
      const message = messageOf(error);
      if (message === undefined) throw error;
      return tokensPage(c, { error: message }, statusOf(error));
    }
  });

  app.post("/tokens/:id/revoke", ...action, async (c) => {
    await auth.revokeToken(c.get("identity"), c.req.param("id"));
    return c.redirect("/tokens?done=token-revoked", 303);
  });

  app.get("/projects/:project/audit", ...page, async (c) => {
    const project = await service.getProject(c.req.param("project"));
    const [entries, versions] = await Promise.all([
      store.listAudit({ projectId: project.id, limit: 500 }),
      store.listVersions(project.id),
    ]);
    return render(
      c,
      <AuditPage
        csrf={c.get("session").csrf}
        project={project}
        entries={entries}
        versions={new Map(versions.map((v) => [v.id, v.name]))}
      />,
    );
  });

  return app;
}
