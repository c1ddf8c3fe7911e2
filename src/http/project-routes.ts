import { createRoute, z } from "@hono/zod-openapi";
import { newRouter, type AppDeps } from "./app.js";
import {
  DeliverySchema,
  deliveryJson,
  errorResponses,
  OperationSchema,
  operationJson,
  ProjectCreateSchema,
  projectJson as toProjectJson,
  ProjectParams,
  ProjectPatchSchema,
  ProjectSchema,
  ProjectWithSecretSchema,
  queryInteger,
} from "./schemas.js";
import type { ProjectRecord } from "../store/types.js";

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export function projectRoutes(deps: AppDeps) {
  const app = newRouter();
  const { service, publicUrl } = deps;
  const projectJson = (p: ProjectRecord, url: string) => toProjectJson(p, url, deps.idleHours);

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/projects",
      summary: "Register a project (a GitLab repository with a compose file)",
      request: {
        body: { required: true, content: { "application/json": { schema: ProjectCreateSchema } } },
      },
      responses: {
        201: json(ProjectWithSecretSchema, "created; webhookSecret is shown here"),
        ...errorResponses(400, 401, 409),
      },
    }),
    async (c) => {
      const project = await service.createProject(c.req.valid("json"));
      return c.json(
        { ...projectJson(project, publicUrl), webhookSecret: project.webhookSecret },
        201,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/projects",
      summary: "List projects",
      responses: { 200: json(z.array(ProjectSchema), "projects"), ...errorResponses(401) },
    }),
    async (c) =>
      c.json(
        (await service.listProjects()).map((p) => projectJson(p, publicUrl)),
        200,
      ),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/projects/{project}",
      summary: "One project",
      request: { params: ProjectParams },
      responses: { 200: json(ProjectSchema, "the project"), ...errorResponses(401, 404) },
    }),
    async (c) =>
      c.json(projectJson(await service.getProject(c.req.valid("param").project), publicUrl), 200),
  );

  app.openapi(
    createRoute({
      method: "patch",
      path: "/api/projects/{project}",
      summary: "Change any field of a project",
      request: {
        params: ProjectParams,
        // Every field is optional, so no body at all is an empty change, as the server reads it.
        body: { required: false, content: { "application/json": { schema: ProjectPatchSchema } } },
      },
      responses: {
        200: json(ProjectSchema, "the changed project"),
        ...errorResponses(400, 401, 404, 409),
      },
    }),
    async (c) => {
      const updated = await service.updateProject(
        c.req.valid("param").project,
        c.req.valid("json"),
      );
      return c.json(projectJson(updated, publicUrl), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/projects/{project}",
      summary: "Delete every version (queued delete operations), then the project",
      request: { params: ProjectParams },
      responses: {
        202: json(
          z.object({ project: ProjectSchema, operations: z.array(OperationSchema) }),
          "deletion under way",
        ),
        ...errorResponses(401, 404),
      },
    }),
    async (c) => {
      const { project, operations } = await service.deleteProject(c.req.valid("param").project, {
        source: "api",
      });
      return c.json(
        {
          project: projectJson(project, publicUrl),
          operations: operations.map((o) => operationJson(o)),
        },
        202,
      );
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/projects/{project}/webhook-secret",
      summary: "The secret GitLab sends as X-Gitlab-Token",
      request: { params: ProjectParams },
      responses: {
        200: json(z.object({ webhookSecret: z.string() }), "the secret"),
        ...errorResponses(401, 404),
      },
    }),
    async (c) => {
      const project = await service.getProject(c.req.valid("param").project);
      return c.json({ webhookSecret: project.webhookSecret }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/projects/{project}/deliveries",
      summary: "Webhook deliveries received for the project, newest first",
      request: {
        params: ProjectParams,
        query: z.object({ limit: queryInteger(1, 1000).optional() }),
      },
      responses: { 200: json(z.array(DeliverySchema), "deliveries"), ...errorResponses(401, 404) },
    }),
    async (c) => {
      const project = await service.getProject(c.req.valid("param").project);
      const deliveries = await deps.store.listDeliveries(
        project.id,
        c.req.valid("query").limit ?? 100,
      );
      return c.json(deliveries.map(deliveryJson), 200);
    },
  );

  return app;
}
