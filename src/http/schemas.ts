// The API's shapes: zod schemas that validate requests and describe responses in
// /openapi.json, and the functions that turn store records into those responses.
import { z } from "@hono/zod-openapi";
import type {
  DeliveryRecord,
  LogLine,
  OperationRecord,
  ProjectRecord,
  VersionRecord,
} from "../store/types.js";

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "not_found" }),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi("Error");

const Slug = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be a slug: ^[a-z0-9][a-z0-9-]{0,62}$");

const AutoDeploySchema = z
  .object({
    branches: z.array(z.string().min(1).max(255)).max(100),
    tags: z.boolean(),
    mergeRequests: z.boolean(),
  })
  .openapi("AutoDeploy");

const GitlabSchema = z
  .object({ projectId: z.number().int().positive(), url: z.string().url().optional() })
  .openapi("GitlabLink");

export const ProjectCreateSchema = z
  .object({
    name: Slug.openapi({ example: "shop" }),
    repoUrl: z
      .string()
      .min(1)
      .max(1000)
      .openapi({ example: "git@gitlab.example.com:team/shop.git" }),
    composeFile: z.string().min(1).max(255).optional(),
    gitlab: GitlabSchema.optional(),
    autoDeploy: AutoDeploySchema.partial().optional(),
    env: z.record(z.string(), z.string().max(65536)).optional(),
  })
  .strict()
  .openapi("ProjectCreate");

export const ProjectPatchSchema = ProjectCreateSchema.partial().strict().openapi("ProjectPatch");

export const ProjectSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    repoUrl: z.string(),
    composeFile: z.string().optional(),
    gitlab: GitlabSchema.optional(),
    autoDeploy: AutoDeploySchema,
    env: z.record(z.string(), z.literal("***")),
    webhookUrl: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Project");

export const ProjectWithSecretSchema = ProjectSchema.extend({ webhookSecret: z.string() }).openapi(
  "ProjectWithSecret",
);

export const TriggerSchema = z.object({
  source: z.enum(["webhook", "api", "ui"]),
  event: z.string().optional(),
  deliveryId: z.string().optional(),
});

export const OperationSchema = z
  .object({
    id: z.string(),
    projectId: z.string(),
    versionId: z.string(),
    kind: z.enum(["up", "down", "delete"]),
    sha: z.string().optional(),
    trigger: TriggerSchema,
    status: z.enum(["queued", "running", "succeeded", "failed", "canceled", "superseded"]),
    error: z.string().optional(),
    exitCode: z.number().optional(),
    queuedAt: z.string(),
    startedAt: z.string().optional(),
    finishedAt: z.string().optional(),
    gitlab: z
      .array(
        z.object({
          state: z.string(),
          ok: z.boolean(),
          attempts: z.number(),
          at: z.string(),
          error: z.string().optional(),
        }),
      )
      .optional()
      .openapi({
        description: "Outcome of each commit status posted to GitLab for this operation",
      }),
    log: z.string().optional(),
  })
  .openapi("Operation");

export const VersionSchema = z
  .object({
    id: z.string(),
    projectId: z.string(),
    name: z.string(),
    ref: z.object({ type: z.enum(["branch", "tag", "mergeRequest", "commit"]), name: z.string() }),
    sha: z.string().optional(),
    deployedSha: z.string().optional(),
    state: z.enum(["off", "queued", "deploying", "running", "stopping", "failed", "deleting"]),
    composeProject: z.string(),
    urls: z.array(z.string()),
    lastOperation: OperationSchema.optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Version");

export const VersionCreateSchema = z
  .object({
    ref: z
      .string()
      .min(1)
      .max(255)
      .openapi({ example: "main", description: "branch, tag (or refs/tags/x) or commit" }),
    name: Slug.optional(),
    sha: z
      .string()
      .regex(/^[0-9a-f]{7,64}$/, "must be a commit hash")
      .optional(),
  })
  .strict()
  .openapi("VersionCreate");

export const TurnOnSchema = z
  .object({
    sha: z
      .string()
      .regex(/^[0-9a-f]{7,64}$/, "must be a commit hash")
      .optional(),
  })
  .strict()
  .openapi("TurnOn");

export const DeliverySchema = z
  .object({
    id: z.string(),
    event: z.string(),
    receivedAt: z.string(),
    outcome: z.enum(["accepted", "ignored", "duplicate"]),
    reason: z.string().optional(),
    operationIds: z.array(z.string()),
  })
  .openapi("Delivery");

export const ProjectParams = z.object({
  project: z
    .string()
    .min(1)
    .max(100)
    .openapi({ param: { name: "project", in: "path" }, description: "id or name" }),
});
export const VersionParams = ProjectParams.extend({
  version: z
    .string()
    .min(1)
    .max(100)
    .openapi({ param: { name: "version", in: "path" }, description: "id or name" }),
});
export const OperationParams = z.object({
  id: z
    .string()
    .min(1)
    .max(100)
    .openapi({ param: { name: "id", in: "path" } }),
});

export function errorResponses(...codes: Array<400 | 401 | 404 | 409 | 413 | 422 | 503>) {
  const descriptions = {
    400: "invalid request",
    401: "missing or wrong token",
    404: "not found",
    409: "conflict",
    413: "too large",
    422: "unprocessable",
    503: "unavailable",
  } as const;
  return Object.fromEntries(
    codes.map((code) => [
      code,
      { description: descriptions[code], content: { "application/json": { schema: ErrorSchema } } },
    ]),
  );
}

// ------------------------------------------------------------------ records -> responses

export type ProjectJson = z.infer<typeof ProjectSchema>;
export type VersionJson = z.infer<typeof VersionSchema>;
export type OperationJson = z.infer<typeof OperationSchema>;

export function projectJson(p: ProjectRecord, publicUrl: string): ProjectJson {
  const out: ProjectJson = {
    id: p.id,
    name: p.name,
    repoUrl: p.repoUrl,
    autoDeploy: p.autoDeploy,
    env: Object.fromEntries(Object.keys(p.env).map((k) => [k, "***" as const])),
    webhookUrl: `${publicUrl}/webhooks/gitlab`,
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
  };
  if (p.composeFile !== undefined) out.composeFile = p.composeFile;
  if (p.gitlab !== undefined) out.gitlab = p.gitlab;
  return out;
}

export function logText(lines: LogLine[]): string {
  return lines.map((l) => `${l.text}\n`).join("");
}

export function operationJson(o: OperationRecord, lines?: LogLine[]): OperationJson {
  const out: OperationJson = {
    id: o.id,
    projectId: o.projectId,
    versionId: o.versionId,
    kind: o.kind,
    trigger: o.trigger,
    status: o.status,
    queuedAt: o.queuedAt,
  };
  if (o.sha !== undefined) out.sha = o.sha;
  if (o.error !== undefined) out.error = o.error;
  if (o.exitCode !== undefined) out.exitCode = o.exitCode;
  if (o.startedAt !== undefined) out.startedAt = o.startedAt;
  if (o.finishedAt !== undefined) out.finishedAt = o.finishedAt;
  if (o.gitlabReports !== undefined) out.gitlab = o.gitlabReports;
  if (lines !== undefined) out.log = logText(lines);
  return out;
}

export function versionJson(v: VersionRecord, last?: OperationRecord): VersionJson {
  const out: VersionJson = {
    id: v.id,
    projectId: v.projectId,
    name: v.name,
    ref: v.ref,
    state: v.state,
    composeProject: v.composeProject,
    urls: v.urls,
    createdAt: v.createdAt,
    updatedAt: v.updatedAt,
  };
  if (v.sha !== undefined) out.sha = v.sha;
  if (v.deployedSha !== undefined) out.deployedSha = v.deployedSha;
  if (last !== undefined) out.lastOperation = operationJson(last);
  return out;
}

export function deliveryJson(d: DeliveryRecord): z.infer<typeof DeliverySchema> {
  const out: z.infer<typeof DeliverySchema> = {
    id: d.id,
    event: d.event,
    receivedAt: d.receivedAt,
    outcome: d.outcome,
    operationIds: d.operationIds,
  };
  if (d.reason !== undefined) out.reason = d.reason;
  return out;
}
