// The API's shapes: zod schemas that validate requests and describe responses in
// /openapi.json, and the functions that turn store records into those responses.
import { z } from "@hono/zod-openapi";
import { webhookUrlFor } from "../webhooks/gitlab-receiver.js";
import type {
  DeliveryRecord,
  LogLine,
  OperationRecord,
  ProjectRecord,
  VersionRecord,
} from "../store/types.js";
import { isPolicyWord, POLICY_WORDS } from "../deploy/compose-policy.js";
import { versionPreviewUrl, type PreviewSettings } from "../preview/preview-host.js";
import {
  autoStopOf,
  DEFAULT_IDLE_HOURS,
  IDLE_HOURS_MAX,
  MAX_RUNNING_MAX,
} from "../deploy/project-settings.js";
import {
  API_REF_PATTERN,
  BRANCH_GLOB_PATTERN,
  BRANCH_GLOBS_MAX,
  charLength,
  COMPOSE_FILE_PATTERN,
  ENV_NAME_PATTERN,
  ENV_VALUE_MAX,
  CPUS_MAX,
  HEALTH_PATH_PATTERN,
  KEY_PATTERN,
  MEMORY_LIMIT_PATTERN,
  REPO_URL_PATTERN,
  SHA_PATTERN,
  SLUG_PATTERN,
} from "../deploy/input-rules.js";

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "not_found" }),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi("Error");

// Every rule a request must meet is stated here from src/deploy/input-rules.ts, the definitions
// DeployService checks with, so /openapi.json promises exactly what the server accepts.

/** A string rule given by a pattern: zod checks it, the document states it (`pattern`). */
const matching = (pattern: RegExp, message: string) =>
  // The document gets the source alone: the generator would keep the `/u` of the flags.
  z.string().regex(pattern, message).openapi({ pattern: pattern.source });

/**
 * At most `max` characters counted as JSON Schema counts them (code points): zod's own `max`
 * counts UTF-16 units, which would refuse a string of emoji the document allows.
 */
const maxChars = (max: number) =>
  z
    .string()
    .refine((value) => charLength(value) <= max, `must be at most ${max} characters`)
    .openapi({ maxLength: max });

/** JSON Schema's `propertyNames`, a keyword the metadata type (openapi3-ts) lacks. */
const propertyNames = (pattern: RegExp) =>
  ({ propertyNames: { pattern: pattern.source } }) as unknown as { description?: string };

const Slug = matching(SLUG_PATTERN, `must be a slug: ${SLUG_PATTERN.source}`);
const Sha = matching(SHA_PATTERN, "must be a commit hash of 7 to 64 lowercase hex characters");

const AutoDeploySchema = z
  .object({
    branches: z
      .array(
        matching(
          BRANCH_GLOB_PATTERN,
          "must be a branch glob of 1 to 255 characters, not starting with -",
        ),
      )
      .max(BRANCH_GLOBS_MAX),
    tags: z.boolean(),
    mergeRequests: z.boolean(),
  })
  .openapi("AutoDeploy");

const GitlabSchema = z
  .object({
    // zod's int() refuses integers past 2^53 - 1; the document says so too.
    projectId: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    url: z.string().url().optional(),
  })
  .openapi("GitlabLink");

const AutoStopSchema = z
  .object({
    idleHours: z.number().min(0).max(IDLE_HOURS_MAX).openapi({
      description:
        "hours without a deploy or a preview request before the version is turned off (0: never)",
    }),
    exemptDefaultBranch: z.boolean(),
    exemptTags: z.boolean(),
  })
  .openapi("AutoStop");

const MaxRunning = z.number().int().min(1).max(MAX_RUNNING_MAX).openapi({
  description:
    "versions of this project running at once; one more turns the least recently used off",
});

const LimitsFields = z
  .object({
    cpus: z.number().positive().max(CPUS_MAX).optional().openapi({ example: 0.5 }),
    memory: matching(
      MEMORY_LIMIT_PATTERN,
      "must be a memory size as compose writes it, a number with an optional unit b, k, m or g, e.g. 512m",
    )
      .optional()
      .openapi({ example: "512m" }),
  })
  .strict()
  .openapi({ description: "limits for every service that sets none itself" });
// Named in the document; the patch's nullable one stays inline (a nullable $ref loses its null).
const LimitsSchema = LimitsFields.openapi("Limits");

const HealthPath = matching(
  HEALTH_PATH_PATTERN,
  "must be a URL path starting with / (at most 1024 characters)",
).openapi({
  example: "/healthz",
  description: "path the primary service must answer 2xx/3xx on before an up counts",
});

export const ProjectCreateSchema = z
  .object({
    name: Slug.openapi({ example: "shop" }),
    repoUrl: matching(
      REPO_URL_PATTERN,
      "must be an SSH URL (git@host:group/app.git or ssh://git@host:2222/group/app.git) or an https URL without a password, of at most 1000 characters",
    ).openapi({ example: "git@gitlab.example.com:team/shop.git" }),
    composeFile: matching(
      COMPOSE_FILE_PATTERN,
      "must be a relative path inside the repository (A-Z a-z 0-9 . _ / -, at most 255 characters)",
    ).optional(),
    gitlab: GitlabSchema.optional(),
    autoDeploy: AutoDeploySchema.partial().optional(),
    healthPath: HealthPath.optional(),
    rollback: z
      .enum(["auto", "off"])
      .optional()
      .openapi({ description: "a failed up brings the last good deploy back (default auto)" }),
    autoStop: AutoStopSchema.partial().strict().optional(),
    maxRunning: MaxRunning.optional(),
    limits: LimitsSchema.optional(),
    policy: z
      .object({ allow: z.array(z.enum(POLICY_WORDS)).max(POLICY_WORDS.length * 2) })
      .strict()
      .optional()
      .openapi({ description: "compose policy words the project allows (default none)" }),
    env: z
      .record(
        matching(ENV_NAME_PATTERN, `env names must match ${ENV_NAME_PATTERN.source}`),
        maxChars(ENV_VALUE_MAX),
      )
      // The generator drops a record's key rule: stated as JSON Schema's propertyNames.
      .openapi(propertyNames(ENV_NAME_PATTERN))
      .optional(),
  })
  .strict()
  .openapi("ProjectCreate");

export const ProjectPatchSchema = ProjectCreateSchema.partial()
  // null removes a project's healthPath, maxRunning or limits.
  .extend({
    healthPath: HealthPath.nullable().optional(),
    maxRunning: MaxRunning.nullable().optional(),
    limits: LimitsFields.nullable().optional(),
  })
  .strict()
  .openapi("ProjectPatch");

/** Present once `DELETE /api/projects/:project` was asked for, until the project is gone. */
export const ProjectDeletionSchema = z
  .object({
    requestedAt: z.string(),
    state: z.enum(["deleting", "failed"]),
    error: z.string().optional(),
  })
  .openapi("ProjectDeletion");

export const ProjectSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    repoUrl: z.string(),
    composeFile: z.string().optional(),
    gitlab: GitlabSchema.optional(),
    autoDeploy: AutoDeploySchema,
    policy: z.object({ allow: z.array(z.enum(POLICY_WORDS)) }),
    healthPath: z.string().optional(),
    rollback: z.enum(["auto", "off"]),
    autoStop: AutoStopSchema,
    maxRunning: z.number().int().optional(),
    limits: z.object({ cpus: z.number().optional(), memory: z.string().optional() }).optional(),
    env: z.record(z.string(), z.literal("***")),
    webhookUrl: z.string(),
    deletion: ProjectDeletionSchema.optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Project");

export const ProjectWithSecretSchema = ProjectSchema.extend({ webhookSecret: z.string() }).openapi(
  "ProjectWithSecret",
);

export const TriggerSchema = z.object({
  source: z.enum(["webhook", "api", "ui", "policy"]).openapi({
    description: "policy: dockbot itself (idle stop, the running limit, disk hygiene)",
  }),
  event: z.string().optional(),
  deliveryId: z.string().optional(),
  reason: z.string().optional().openapi({ example: "idle" }),
});

export const OperationSchema = z
  .object({
    id: z.string(),
    projectId: z.string(),
    versionId: z.string(),
    kind: z.enum(["up", "down", "delete", "rollback"]),
    sha: z.string().optional(),
    trigger: TriggerSchema,
    status: z.enum(["queued", "running", "succeeded", "failed", "canceled", "superseded"]),
    error: z.string().optional(),
    exitCode: z.number().optional(),
    rolledBackTo: z.string().optional().openapi({
      description: "a failed up that brought the version's last good commit back: that sha",
    }),
    queuedAt: z.string(),
    startedAt: z.string().optional(),
    finishedAt: z.string().optional(),
    gitlab: z
      .array(
        z.object({
          kind: z
            .enum(["status", "environment", "deployment", "note", "stop"])
            .optional()
            .openapi({ description: "what was posted; unset: a commit status" }),
          id: z.number().optional().openapi({ description: "GitLab's id of what was posted" }),
          state: z.string(),
          ok: z.boolean(),
          attempts: z.number(),
          at: z.string(),
          error: z.string().optional(),
        }),
      )
      .optional()
      .openapi({
        description:
          "Outcome of each call to GitLab for this operation: commit statuses, environment, deployment, merge request note",
      }),
    log: z.string().optional(),
  })
  .openapi("Operation");

export const VersionSchema = z
  .object({
    id: z.string(),
    projectId: z.string(),
    name: z.string(),
    ref: z.object({
      type: z.enum(["branch", "tag", "mergeRequest", "commit"]),
      name: z.string(),
      sourceBranch: z
        .string()
        .optional()
        .openapi({ description: "a merge request's source branch" }),
    }),
    sha: z.string().optional(),
    deployedSha: z.string().optional(),
    lastGood: z
      .object({ sha: z.string(), deployedAt: z.string() })
      .optional()
      .openapi({ description: "the last deploy that passed its health check" }),
    goodDeploys: z
      .array(
        z.object({
          sha: z.string(),
          deployedAt: z.string(),
          operationId: z.string().optional(),
          images: z.record(z.string(), z.string()).optional(),
        }),
      )
      .optional()
      .openapi({
        description:
          "the verified deploys kept for a rollback, newest first (the first is lastGood), each with its built images' kept tags",
      }),
    lastRequestAt: z
      .string()
      .optional()
      .openapi({ description: "the last request through the preview router" }),
    state: z.enum(["off", "queued", "deploying", "running", "stopping", "failed", "deleting"]),
    composeProject: z.string(),
    urls: z.array(z.string()),
    ports: z.array(
      z.object({
        service: z.string(),
        target: z.number().int(),
        protocol: z.enum(["tcp", "udp"]),
        hostPort: z.number().int(),
      }),
    ),
    previewUrl: z.string().nullable().openapi({
      description:
        "The version on the preview router (null while it has no published TCP port or the router is off)",
      example: "http://main--shop.localhost:3001",
    }),
    lastOperation: OperationSchema.optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Version");

export const VersionCreateSchema = z
  .object({
    ref: matching(
      API_REF_PATTERN,
      "must be a branch or tag name as git check-ref-format accepts it (at most 255 characters, not starting with -), refs/heads/<branch>, refs/tags/<tag>, refs/merge-requests/<iid>/head or a commit hash",
    ).openapi({
      example: "main",
      description:
        "branch, tag (or refs/heads/x, refs/tags/x, refs/merge-requests/<iid>/head) or commit",
    }),
    name: Slug.optional(),
    sha: Sha.optional(),
  })
  .strict()
  .openapi("VersionCreate");

export const TurnOnSchema = z
  .object({
    sha: Sha.optional(),
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

/**
 * An integer query parameter, as the document states it (`integer`, `minimum`, `maximum`): only
 * decimal digits are read as a number, so `1e2`, ` 5` or `0x10` are refused like any non-integer
 * (z.coerce would read them as 100, 5 and 16).
 */
export const queryInteger = (min: number, max: number) =>
  z.preprocess(
    (value) =>
      typeof value === "string" && /^-?(?:0|[1-9][0-9]*)$/.test(value) ? Number(value) : value,
    z.number().int().min(min).max(max),
  );

/** A path parameter naming a record by id or name: both are slugs, so nothing else names one. */
export const keyParam = (name: string, description: string) =>
  matching(KEY_PATTERN, `must be an id or a name (${KEY_PATTERN.source})`).openapi({
    param: { name, in: "path" },
    description,
  });

export const ProjectParams = z.object({ project: keyParam("project", "id or name") });
export const VersionParams = ProjectParams.extend({
  version: keyParam("version", "id or name"),
});
export const OperationParams = z.object({ id: keyParam("id", "operation id") });

/** The statuses an error answer can have (docs/api.md, "Errors"). */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 422 | 429 | 503;

/**
 * The documented error answers of a route. 400, 401, 403, 404, 413, 429 and 503 are added to
 * every route that can give them by src/http/openapi-document.ts; a route lists the others
 * (409, 422) itself.
 */
export function errorResponses(...codes: ErrorStatus[]) {
  const descriptions: Record<ErrorStatus, string> = {
    400: "invalid request (invalid_request): a parameter or the body breaks the schema",
    401: "missing or wrong token (unauthorized)",
    403: "the token or session may not do this (forbidden)",
    404: "not found (not_found)",
    409: "conflict",
    413: "body too large (too_large)",
    422: "unprocessable",
    429: "too many failed sign-ins or token checks from this address (rate_limited)",
    503: "the database is unavailable (unavailable)",
  };
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

/**
 * `defaultIdleHours`: DOCKBOT_IDLE_HOURS, the `autoStop.idleHours` of projects that set none
 * (docs/api.md, "Resources").
 */
export function projectJson(
  p: ProjectRecord,
  publicUrl: string,
  defaultIdleHours: number = DEFAULT_IDLE_HOURS,
): ProjectJson {
  const out: ProjectJson = {
    id: p.id,
    name: p.name,
    repoUrl: p.repoUrl,
    autoDeploy: p.autoDeploy,
    policy: { allow: (p.policy?.allow ?? []).filter(isPolicyWord) },
    rollback: p.rollback ?? "auto",
    autoStop: autoStopOf(p, defaultIdleHours),
    env: Object.fromEntries(Object.keys(p.env).map((k) => [k, "***" as const])),
    webhookUrl: webhookUrlFor(publicUrl),
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
  };
  if (p.composeFile !== undefined) out.composeFile = p.composeFile;
  if (p.healthPath !== undefined) out.healthPath = p.healthPath;
  if (p.maxRunning !== undefined) out.maxRunning = p.maxRunning;
  if (p.limits !== undefined) out.limits = p.limits;
  if (p.gitlab !== undefined) out.gitlab = p.gitlab;
  if (p.deletion !== undefined) out.deletion = p.deletion;
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
  if (o.rolledBackTo !== undefined) out.rolledBackTo = o.rolledBackTo;
  if (o.startedAt !== undefined) out.startedAt = o.startedAt;
  if (o.finishedAt !== undefined) out.finishedAt = o.finishedAt;
  if (o.gitlabReports !== undefined) out.gitlab = o.gitlabReports;
  if (lines !== undefined) out.log = logText(lines);
  return out;
}

/** What a version's JSON needs beyond its record: its project's name and the preview settings. */
export interface VersionLinks {
  project: string;
  preview?: PreviewSettings | undefined;
}

export function versionJson(
  v: VersionRecord,
  last?: OperationRecord,
  links?: VersionLinks,
): VersionJson {
  const out: VersionJson = {
    id: v.id,
    projectId: v.projectId,
    name: v.name,
    ref: v.ref,
    state: v.state,
    composeProject: v.composeProject,
    urls: v.urls,
    ports: v.ports,
    previewUrl: links ? versionPreviewUrl(links.preview, links.project, v) : null,
    createdAt: v.createdAt,
    updatedAt: v.updatedAt,
  };
  if (v.sha !== undefined) out.sha = v.sha;
  if (v.deployedSha !== undefined) out.deployedSha = v.deployedSha;
  if (v.lastGood !== undefined) out.lastGood = v.lastGood;
  if (v.goodDeploys !== undefined) out.goodDeploys = v.goodDeploys;
  if (v.lastRequestAt !== undefined) out.lastRequestAt = v.lastRequestAt;
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
