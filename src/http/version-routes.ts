import { createRoute, z } from "@hono/zod-openapi";
import { newRouter, type AppDeps } from "./app.js";
import { AppError } from "../errors.js";
import {
  errorResponses,
  OperationSchema,
  operationJson,
  ProjectParams,
  TurnOnSchema,
  VersionCreateSchema,
  versionJson,
  VersionParams,
  VersionSchema,
} from "./schemas.js";

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export function versionRoutes(deps: AppDeps) {
  const app = newRouter();
  const { service, store } = deps;
  const links = (project: string) => ({ project, preview: deps.preview });

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/projects/{project}/versions",
      summary: "Add a version from a branch, tag or commit (state off)",
      request: {
        params: ProjectParams,
        body: { required: true, content: { "application/json": { schema: VersionCreateSchema } } },
      },
      responses: {
        201: json(VersionSchema, "created, off"),
        ...errorResponses(400, 401, 404, 409),
      },
    }),
    async (c) => {
      const version = await service.createVersion(
        c.req.valid("param").project,
        c.req.valid("json"),
      );
      const project = await service.getProject(version.projectId);
      return c.json(versionJson(version, undefined, links(project.name)), 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/projects/{project}/versions",
      summary: "List a project's versions",
      request: { params: ProjectParams },
      responses: { 200: json(z.array(VersionSchema), "versions"), ...errorResponses(401, 404) },
    }),
    async (c) => {
      const project = await service.getProject(c.req.valid("param").project);
      const versions = await service.listVersions(project.id);
      const withLast = await Promise.all(
        versions.map(async (v) =>
          versionJson(v, await service.lastOperation(v.id), links(project.name)),
        ),
      );
      return c.json(withLast, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/projects/{project}/versions/{version}",
      summary: "One version, with its last operation",
      request: { params: VersionParams },
      responses: { 200: json(VersionSchema, "the version"), ...errorResponses(401, 404) },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const { project, version } = await service.getVersion(p.project, p.version);
      return c.json(
        versionJson(version, await service.lastOperation(version.id), links(project.name)),
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/projects/{project}/versions/{version}/on",
      summary: "Turn on: fetch the ref, check out its commit, build and start",
      request: {
        params: VersionParams,
        body: { required: false, content: { "application/json": { schema: TurnOnSchema } } },
      },
      responses: {
        202: json(OperationSchema, "queued operation up"),
        ...errorResponses(400, 401, 404, 409),
      },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const { version } = await service.getVersion(p.project, p.version);
      const op = await service.requestOperation(
        version,
        "up",
        { source: "api" },
        { sha: c.req.valid("json").sha },
      );
      return c.json(operationJson(op), 202);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/projects/{project}/versions/{version}/off",
      summary: "Turn off: stop and remove the containers (images, volumes and checkout stay)",
      request: { params: VersionParams },
      responses: {
        202: json(OperationSchema, "queued operation down"),
        ...errorResponses(401, 404),
      },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const { version } = await service.getVersion(p.project, p.version);
      return c.json(
        operationJson(await service.requestOperation(version, "down", { source: "api" })),
        202,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/projects/{project}/versions/{version}/rollback",
      summary:
        "Roll back: queue an operation rollback to the verified deploy before the current one",
      request: { params: VersionParams },
      responses: {
        202: json(OperationSchema, "queued operation rollback"),
        ...errorResponses(401, 404, 409),
      },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const { version } = await service.getVersion(p.project, p.version);
      return c.json(operationJson(await service.requestRollback(version, { source: "api" })), 202);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/projects/{project}/versions/{version}/view",
      summary: "View: the version's most recent operation with its full log",
      request: { params: VersionParams },
      responses: {
        200: json(OperationSchema, "the last operation, with log"),
        ...errorResponses(401, 404),
      },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const { version } = await service.getVersion(p.project, p.version);
      const op = await service.lastOperation(version.id);
      if (!op) throw new AppError("not_found", `version '${version.name}' has no operation yet`);
      return c.json(operationJson(op, await store.getLogLines(op.id)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/projects/{project}/versions/{version}",
      summary: "Delete: containers, built images, networks, volumes and checkout; then the version",
      request: {
        params: VersionParams,
        query: z.object({ keepVolumes: z.enum(["true", "false"]).optional() }),
      },
      responses: {
        202: json(OperationSchema, "queued operation delete"),
        ...errorResponses(400, 401, 404),
      },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const { version } = await service.getVersion(p.project, p.version);
      const keepVolumes = c.req.valid("query").keepVolumes === "true";
      const op = await service.requestOperation(
        version,
        "delete",
        { source: "api" },
        { keepVolumes },
      );
      return c.json(operationJson(op), 202);
    },
  );

  return app;
}
