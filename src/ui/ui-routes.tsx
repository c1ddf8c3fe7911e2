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
  LoginPage,
  OperationPage,
  ProjectFormPage,
  ProjectPage,
  SameSiteHopPage,
  type ProjectFormValues,
} from "./pages.js";
import { SESSION_TTL_MS, sessionKeeper, type Session } from "./session.js";
import type { DeployService } from "../deploy/deploy-service.js";
import { AppError, ERROR_STATUS, type ErrorCode } from "../errors.js";
import type { AdminToken } from "../http/admin-token.js";
import { StoreUnavailableError, type Store } from "../store/store.js";
import type { ProjectRecord } from "../store/types.js";

export interface UiDeps {
  service: DeployService;
  store: Store;
  token: AdminToken;
  sshKey: { publicKey: string; fingerprint: string };
  publicUrl: string;
  logger: Logger;
}

type UiEnv = { Variables: { session: Session; form: FormFields } };
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
  return c.html(`<!DOCTYPE html>${String(await node)}`, status);
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
  const sessions = sessionKeeper({ store, token: deps.token });
  const secure = deps.publicUrl.startsWith("https:");
  // __Host-: the browser accepts it only Secure, for "/", from this host (no subdomain can set it).
  const COOKIE = secure ? "__Host-dockbot_session" : "dockbot_session";
  const publicHost = new URL(deps.publicUrl).host;
  const webhookUrl = `${deps.publicUrl.replace(/\/+$/, "")}/webhooks/gitlab`;

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
    return next();
  };

  /** Browsers send Origin on form POSTs; one that is not dockbot's is refused. */
  const fromOwnOrigin = (c: Context) => {
    const origin = c.req.header("origin");
    if (origin === undefined) return true; // not a browser (or a very old one): the CSRF token still decides
    try {
      const host = new URL(origin).host;
      return host === c.req.header("host") || host === publicHost;
    } catch {
      return false; // "null" (sandboxed frames, privacy redirects) or junk
    }
  };

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

  const page = [headers, requireSession] as const;
  const action = [headers, formLimit, requireSession, checkPost] as const;

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
    return render(c, <LoginPage next={next} />);
  });

  app.post("/login", headers, bodyLimit({ maxSize: 16 * 1024 }), async (c) => {
    const form = await c.req.parseBody({ all: true });
    const next = safeNext(field(form, "next"));
    if (!fromOwnOrigin(c)) {
      return render(
        c,
        <LoginPage
          next={next}
          error="This sign-in came from another site, so dockbot refused it."
        />,
        403,
      );
    }
    const token = field(form, "token");
    if (!deps.token.verify(token)) {
      await new Promise((resolve) => setTimeout(resolve, LOGIN_FAILURE_DELAY_MS));
      log.warn({ ip: c.req.header("x-forwarded-for") }, "dashboard sign-in with a wrong token");
      return render(c, <LoginPage next={next} error="That is not dockbot's admin token." />, 401);
    }
    const { cookie } = await sessions.create(token);
    setCookie(c, COOKIE, cookie, {
      httpOnly: true,
      sameSite: "Strict",
      secure,
      path: "/",
      maxAge: Math.floor(SESSION_TTL_MS / 1000),
    });
    return c.redirect(next, 303);
  });

  app.post("/logout", ...action, async (c) => {
    await sessions.end(c.get("session"));
    deleteCookie(c, COOKIE, { path: "/", secure, httpOnly: true, sameSite: "Strict" });
    return c.redirect("/login", 303);
  });

  // ------------------------------------------------------------------ projects

  app.get("/", ...page, async (c) => {
    const session = c.get("session");
    const [projects, versions] = await Promise.all([service.listProjects(), store.listVersions()]);
    return render(
      c,
      <DashboardPage
        csrf={session.csrf}
        token={session.token}
        sshKey={deps.sshKey}
        projects={projects.map((project) => ({
          project,
          versions: versions.filter((v) => v.projectId === project.id),
        }))}
        notice={NOTICES[c.req.query("done") ?? ""]}
      />,
    );
  });

  app.get("/new-project", ...page, (c) =>
    render(c, <ProjectFormPage csrf={c.get("session").csrf} values={formValuesOf()} />),
  );

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
    const [versions, deliveries] = await Promise.all([
      store.listVersions(project.id),
      store.listDeliveries(project.id, 20),
    ]);
    const rows = await Promise.all(
      versions.map(async (version) => ({ version, last: await service.lastOperation(version.id) })),
    );
    return render(
      c,
      <ProjectPage
        csrf={session.csrf}
        token={session.token}
        project={project}
        webhookUrl={webhookUrl}
        versions={rows}
        deliveries={deliveries}
        notice={NOTICES[c.req.query("done") ?? ""]}
        error={extra.error}
        refValue={extra.refValue}
        nameValue={extra.nameValue}
      />,
      status,
    );
  };

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
        token={session.token}
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

  return app;
}
