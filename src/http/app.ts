import { OpenAPIHono } from "@hono/zod-openapi";
import type { Hook } from "@hono/zod-openapi";
import type { Env } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "pino";
import type { AdminToken } from "./admin-token.js";
import { operationRoutes } from "./operation-routes.js";
import { projectRoutes } from "./project-routes.js";
import { systemRoutes } from "./system-routes.js";
import { versionRoutes } from "./version-routes.js";
import type { DeployService } from "../deploy/deploy-service.js";
import type { EventBus } from "../deploy/events.js";
import type { ComposePort } from "../deploy/ports.js";
import { AppError, ERROR_STATUS, type ErrorCode } from "../errors.js";
import { StoreUnavailableError, type Store } from "../store/store.js";

export interface AppDeps {
  publicUrl: string;
  store: Store;
  service: DeployService;
  bus: EventBus;
  token: AdminToken;
  sshKey: { publicKey: string; fingerprint: string };
  compose: Pick<ComposePort, "detect" | "dockerReachable">;
  logger: Logger;
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

function bearer(header: string | undefined): string | undefined {
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return match?.[1];
}

/** The hono app of dockbot's HTTP API; tests call `app.request()` on it without a port. */
export function createApp(deps: AppDeps): OpenAPIHono {
  const app = newRouter();
  const log = deps.logger.child({ component: "http" });

  app.use("/api/*", async (c, next) => {
    const path = c.req.path;
    if (path === "/api/health" || path === "/api/ssh-key") return next();
    if (!deps.token.verify(bearer(c.req.header("authorization")))) {
      return c.json(errorBody("unauthorized", "missing or wrong bearer token"), 401);
    }
    return next();
  });

  app.route("/", systemRoutes(deps));
  app.route("/", projectRoutes(deps));
  app.route("/", versionRoutes(deps));
  app.route("/", operationRoutes(deps));

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "dockbot",
      version: "1",
      description:
        "Deploys every branch, tag and merge request of GitLab repositories with Docker Compose.",
    },
    security: [{ bearer: [] }],
  });

  app.notFound((c) =>
    c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404),
  );

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
