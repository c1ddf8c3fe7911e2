import { OpenAPIHono } from "@hono/zod-openapi";
import type { Hook } from "@hono/zod-openapi";
import type { Env } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "pino";
import type { AdminToken } from "./admin-token.js";
import { apiAuthMiddleware } from "../auth/api-middleware.js";
import { authApiRoutes } from "../auth/api-routes.js";
import { authOrAdminOnly, type Auth } from "../auth/auth.js";
import { signInRoutes } from "../auth/sign-in-routes.js";
import { allowedMethods } from "./allowed-methods.js";
import { gitlabRoutes } from "./gitlab-routes.js";
import { API_BODY_MAX_BYTES, openApiDocument } from "./openapi-document.js";
import { operationRoutes } from "./operation-routes.js";
import { projectRoutes } from "./project-routes.js";
import { systemRoutes } from "./system-routes.js";
import { versionRoutes } from "./version-routes.js";
import type { DeployService } from "../deploy/deploy-service.js";
import type { EventBus } from "../deploy/events.js";
import type { DiskProbe } from "../deploy/disk.js";
import type { ComposePort } from "../deploy/ports.js";
import { AppError, ERROR_STATUS, type ErrorCode } from "../errors.js";
import { StoreUnavailableError, type Store } from "../store/store.js";
import type { GitlabOnboarding } from "../gitlab/onboarding.js";
import type { PreviewSettings } from "../preview/preview-host.js";

export interface AppDeps {
  publicUrl: string;
  store: Store;
  service: DeployService;
  bus: EventBus;
  token: AdminToken;
  sshKey: { publicKey: string; fingerprint: string };
  compose: Pick<ComposePort, "detect" | "dockerReachable">;
  /** Free space of the Docker data root and the data dir, for `disk` in /api/health. */
  disk?: DiskProbe;
  logger: Logger;
  /** DOCKBOT_IDLE_HOURS: projects' default `autoStop.idleHours` (unset: 72). */
  idleHours?: number;
  /** The preview router's settings, for versions' `previewUrl` (unset: router off). */
  preview?: PreviewSettings;
  /** GitLab onboarding (hook, deploy key); unset without DOCKBOT_GITLAB_URL and token. */
  gitlab?: GitlabOnboarding;
  /** Who may do what (src/auth); unset: the admin token alone, no GitLab sign-in. */
  auth?: Auth;
}

const STATUS: Record<ErrorCode, ContentfulStatusCode> = ERROR_STATUS;

export function errorBody(code: ErrorCode, message: string, details?: unknown) {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** Validation failures of any route: 400 naming the field. */
export const validationHook: Hook<unknown, Env, string, unknown> = (result, c) => {
  if (result.success) return;
  const issues = result.error.issues.map((i) => ({ field: i.path.join("."), message: i.message }));
  const first = issues[0];
  const message = first
    ? `${first.field ? `${first.field}: ` : ""}${first.message}`
    : "invalid request";
  return c.json(errorBody("invalid_request", message, issues), 400);
};

export function newRouter(): OpenAPIHono {
  return new OpenAPIHono({ defaultHook: validationHook });
}

/** The hono app of dockbot's HTTP API; tests call `app.request()` on it without a port. */
export function createApp(deps: AppDeps): OpenAPIHono {
  const app = newRouter();
  const log = deps.logger.child({ component: "http" });

  // Who may do what: one middleware and one rule table for every /api/* route (src/auth).
  const auth = authOrAdminOnly(deps);
  app.use("/api/*", apiAuthMiddleware(auth, deps.store));
  app.use(
    "/api/*",
    bodyLimit({
      maxSize: API_BODY_MAX_BYTES,
      onError: (c) =>
        c.json(errorBody("too_large", `body larger than ${API_BODY_MAX_BYTES} bytes`), 413),
    }),
  );

  app.route("/", systemRoutes(deps));
  app.route("/", projectRoutes(deps));
  app.route("/", versionRoutes(deps));
  app.route("/", operationRoutes(deps));
  app.route("/", gitlabRoutes(deps));
  app.route("/", authApiRoutes(auth, deps.store));
  app.route("/", signInRoutes(auth));

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
  });
  app.get("/openapi.json", (c) =>
    c.json(
      openApiDocument(app, {
        title: "dockbot",
        version: "1",
        description:
          "Deploys every branch, tag and merge request of GitLab repositories with Docker Compose.",
      }),
    ),
  );

  // Routes mounted after createApp (webhooks, dashboard) count too: read when a request comes.
  const allowed = allowedMethods(app.routes);
  app.notFound((c) => {
    const methods = allowed(c.req.path);
    if (methods.length === 0) {
      return c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404);
    }
    c.header("Allow", methods.join(", "));
    return c.json(
      errorBody(
        "method_not_allowed",
        `${c.req.path} does not answer ${c.req.method}; it answers ${methods.join(", ")}`,
      ),
      405,
    );
  });

  app.onError((error, c) => {
    if (error instanceof AppError) {
      return c.json(errorBody(error.code, error.message, error.details), STATUS[error.code]);
    }
    if (error instanceof StoreUnavailableError) {
      return c.json(
        errorBody("unavailable", "the database is unavailable; try again shortly"),
        503,
      );
    }
    if (error instanceof HTTPException) {
      const status = error.status;
      const code: ErrorCode =
        status === 413
          ? "too_large"
          : status === 401
            ? "unauthorized"
            : status === 404
              ? "not_found"
              : "invalid_request";
      return c.json(errorBody(code, error.message || "invalid request"), STATUS[code]);
    }
    log.error({ err: error, method: c.req.method, path: c.req.path }, "request failed");
    return c.json({ error: { code: "internal", message: "internal error" } }, 500);
  });

  return app;
}
