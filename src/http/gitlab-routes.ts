// The GitLab side of projects (docs/api.md, "Onboarding"): hook and deploy key status, their
// repair, and the GitLab projects the token can see. Without DOCKBOT_GITLAB_URL and
// DOCKBOT_GITLAB_TOKEN every route answers 503 `unavailable` naming the two variables (503 is
// among the answers every secured route documents: src/http/openapi-document.ts); a project
// without gitlab.projectId is 409.
import { createRoute, z } from "@hono/zod-openapi";
import { newRouter, type AppDeps } from "./app.js";
import { errorResponses, ProjectParams } from "./schemas.js";
import { AppError } from "../errors.js";
import type { GitlabOnboarding } from "../gitlab/onboarding.js";
import type { GitlabItem, ProjectGitlabStatus } from "../store/types.js";

const GitlabItemSchema = z
  .object({
    id: z.number().int().nullable().openapi({ description: "GitLab's id of the hook or key" }),
    status: z.enum(["created", "updated", "ok", "disabled", "failed"]),
    error: z
      .string()
      .optional()
      .openapi({ description: "GitLab's message, or what to do for a disabled hook" }),
    alertStatus: z.string().optional().openapi({ description: "the hook's alert_status" }),
    disabledUntil: z.string().optional(),
  })
  .openapi("GitlabItem");

export const GitlabStatusSchema = z
  .object({ hook: GitlabItemSchema, deployKey: GitlabItemSchema, checkedAt: z.string() })
  .openapi("GitlabStatus");

const GitlabProjectSchema = z
  .object({
    id: z.number().int(),
    pathWithNamespace: z.string(),
    sshUrl: z.string(),
    webUrl: z.string(),
    defaultBranch: z.string().nullable(),
  })
  .openapi("GitlabProject");

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

function itemJson(item: GitlabItem): z.infer<typeof GitlabItemSchema> {
  return { ...item, id: item.id ?? null };
}

function statusJson(s: ProjectGitlabStatus): z.infer<typeof GitlabStatusSchema> {
  return { hook: itemJson(s.hook), deployKey: itemJson(s.deployKey), checkedAt: s.checkedAt };
}

export function gitlabRoutes(deps: AppDeps) {
  const app = newRouter();
  const onboarding = (): GitlabOnboarding => {
    if (!deps.gitlab) {
      throw new AppError(
        "unavailable",
        "GitLab is not configured: set DOCKBOT_GITLAB_URL and DOCKBOT_GITLAB_TOKEN",
      );
    }
    return deps.gitlab;
  };

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/projects/{project}/gitlab",
      summary: "The project's GitLab hook and deploy key, as GitLab has them now",
      request: { params: ProjectParams },
      responses: {
        200: json(GitlabStatusSchema, "hook and deploy key status"),
        ...errorResponses(409),
      },
    }),
    async (c) => {
      const gitlab = onboarding();
      const project = await deps.service.getProject(c.req.valid("param").project);
      return c.json(statusJson(await gitlab.check(project)), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/projects/{project}/gitlab/sync",
      summary: "Create or repair the project's GitLab hook and read-only deploy key",
      request: { params: ProjectParams },
      responses: {
        200: json(GitlabStatusSchema, "what was done; a failure carries GitLab's message"),
        ...errorResponses(409),
      },
    }),
    async (c) => {
      const gitlab = onboarding();
      const project = await deps.service.getProject(c.req.valid("param").project);
      return c.json(statusJson(await gitlab.sync(project, { waiting: true })), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/gitlab/projects",
      summary: "GitLab projects the token can see, to add one",
      request: {
        query: z.object({
          search: z
            .string()
            .max(255)
            .optional()
            .openapi({ description: "part of the project's name or path" }),
        }),
      },
      responses: {
        200: json(z.array(GitlabProjectSchema), "at most 20, most recently active first"),
      },
    }),
    async (c) => {
      const gitlab = onboarding();
      return c.json(await gitlab.searchProjects(c.req.valid("query").search ?? ""), 200);
    },
  );

  return app;
}
