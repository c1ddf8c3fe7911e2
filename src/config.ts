import path from "node:path";
import { z } from "zod";
import { parseFreeSpaceRule, type FreeSpaceRule } from "./deploy/byte-sizes.js";
import { DEFAULT_IDLE_HOURS, IDLE_HOURS_MAX, MAX_RUNNING_MAX } from "./deploy/project-settings.js";
import { PREVIEW_URL_PATTERN } from "./preview/preview-host.js";

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  mongodbUrl?: string;
  adminToken?: string;
  publicUrl: string;
  gitlabUrl?: string;
  gitlabToken?: string;
  concurrency: number;
  compose: "auto" | "v2" | "v1";
  operationTimeoutSeconds: number;
  /** Seconds an `up` waits for its services to be healthy (docs/api.md, "Health"). */
  healthTimeoutSeconds: number;
  /** Default `autoStop.idleHours` (DOCKBOT_IDLE_HOURS; fractions allowed, 0: never). */
  idleHours: number;
  /** Versions running at once on this instance (DOCKBOT_MAX_RUNNING; 0: no limit). */
  maxRunning: number;
  /** Free space under which dockbot removes what it owns and no version needs. */
  diskMinFree: FreeSpaceRule;
  /** Days operations and their logs are kept (DOCKBOT_RETENTION_DAYS). */
  retentionDays: number;
  sshStrict: "accept-new" | "yes";
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** Log cap per operation in bytes (head and tail kept). An operator's knob (docs/api.md). */
  logMaxBytes: number;
  /** Seconds an operation's claim lasts unless renewed (several replicas on one MongoDB). */
  leaseSeconds: number;
  /** Seconds a start waits for MongoDB before it gives up. */
  mongodbStartWaitSeconds: number;
  /** Host ports dockbot hands to versions' published ports (DOCKBOT_PORT_RANGE), inclusive. */
  portRange: { from: number; to: number };
  redisUrl?: string;
  /** GitLab OAuth application for signing in (DOCKBOT_GITLAB_OAUTH_ID / _SECRET). */
  gitlabOauth?: { clientId: string; clientSecret: string };
  /** GitLab usernames with every right (DOCKBOT_ADMINS). */
  admins: string[];
  /** Preview router port (0: off) and the URL pattern of previews (docs/api.md, "Preview router"). */
  previewPort: number;
  previewUrl: string;
  /** Where the router reaches a version's services (docs/deploying.md, "Preview router"). */
  previewUpstream: PreviewUpstream;
}

/**
 * `published`: the service's published host port (at `address`, else its declared host_ip, else
 * 127.0.0.1); `network`: the service's container on the `dockbot-preview` network at its target
 * port; `auto`: `network` when dockbot runs in a bridged container of the engine it drives.
 */
export type PreviewUpstream =
  { mode: "auto" } | { mode: "published"; address?: string } | { mode: "network" };

const blankToUndefined = (v: unknown) => (typeof v === "string" && v.trim() === "" ? undefined : v);

const integer = (name: string, min: number, max: number) =>
  z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^\d+$/, `${name} must be a whole number from ${min} to ${max}`)
      .transform(Number)
      .pipe(
        z
          .number()
          .min(min, `${name} must be at least ${min}`)
          .max(max, `${name} must be at most ${max}`),
      )
      .optional(),
  );

const httpUrl = (name: string) =>
  z.preprocess(
    blankToUndefined,
    z
      .string()
      .refine((v) => /^https?:\/\/[^\s/]+/.test(v) && URL.canParse(v), {
        message: `${name} must be an http:// or https:// URL, e.g. https://gitlab.example.com`,
      })
      .transform((v) => v.replace(/\/+$/, ""))
      .optional(),
  );

/** A number of hours or days with an optional fraction (`0.5`, `72`). */
const decimal = (name: string, min: number, max: number) =>
  z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^\d+(\.\d+)?$/, `${name} must be a number from ${min} to ${max}, e.g. 72 or 0.5`)
      .transform(Number)
      .pipe(
        z
          .number()
          .min(min, `${name} must be at least ${min}`)
          .max(max, `${name} must be at most ${max}`),
      )
      .optional(),
  );

const freeSpace = z.preprocess(
  blankToUndefined,
  z
    .string()
    .transform((v, ctx) => {
      const rule = parseFreeSpaceRule(v);
      if (rule === undefined) {
        ctx.addIssue({
          code: "custom",
          message:
            "DOCKBOT_DISK_MIN_FREE must be a percentage up to 100% or bytes with a unit, e.g. 10% or 5g",
        });
        return z.NEVER;
      }
      return rule;
    })
    .optional(),
);

const optionalString = z.preprocess(blankToUndefined, z.string().optional());

const PORT_RANGE_HINT =
  "DOCKBOT_PORT_RANGE must be two ports from 1 to 65535, low-high, e.g. 20000-29999";

const portRange = z.preprocess(
  blankToUndefined,
  z
    .string()
    .regex(/^\s*\d{1,5}\s*-\s*\d{1,5}\s*$/, PORT_RANGE_HINT)
    .transform((v) => {
      const [from = 0, to = 0] = v.split("-").map((p) => Number(p.trim()));
      return { from, to };
    })
    .refine((r) => r.from >= 1 && r.to <= 65535 && r.from <= r.to, PORT_RANGE_HINT)
    .optional(),
);

const previewUpstream = z.preprocess(
  blankToUndefined,
  z
    .string()
    .regex(
      /^(auto|network|published(:[A-Za-z0-9.:[\]-]+)?)$/,
      "DOCKBOT_PREVIEW_UPSTREAM must be auto, network, published or published:<address>",
    )
    .transform((v): PreviewUpstream => {
      if (v === "auto" || v === "network") return { mode: v };
      const address = v.slice("published:".length);
      return address ? { mode: "published", address } : { mode: "published" };
    })
    .optional(),
);

const schema = z.object({
  DOCKBOT_PORT: integer("DOCKBOT_PORT", 0, 65535),
  DOCKBOT_HOST: optionalString,
  DOCKBOT_DATA_DIR: optionalString,
  DOCKBOT_MONGODB_URL: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(
        /^mongodb(\+srv)?:\/\//,
        "DOCKBOT_MONGODB_URL must start with mongodb:// or mongodb+srv://",
      )
      .optional(),
  ),
  DOCKBOT_ADMIN_TOKEN: z.preprocess(
    blankToUndefined,
    z.string().min(16, "DOCKBOT_ADMIN_TOKEN must be at least 16 characters long").optional(),
  ),
  DOCKBOT_PUBLIC_URL: httpUrl("DOCKBOT_PUBLIC_URL"),
  DOCKBOT_GITLAB_URL: httpUrl("DOCKBOT_GITLAB_URL"),
  DOCKBOT_GITLAB_TOKEN: optionalString,
  DOCKBOT_CONCURRENCY: integer("DOCKBOT_CONCURRENCY", 0, 64),
  DOCKBOT_COMPOSE: z.preprocess(
    blankToUndefined,
    z.enum(["auto", "v2", "v1"], { message: "DOCKBOT_COMPOSE must be auto, v2 or v1" }).optional(),
  ),
  DOCKBOT_OPERATION_TIMEOUT: integer("DOCKBOT_OPERATION_TIMEOUT", 1, 7 * 24 * 3600),
  DOCKBOT_HEALTH_TIMEOUT: integer("DOCKBOT_HEALTH_TIMEOUT", 1, 24 * 3600),
  DOCKBOT_IDLE_HOURS: decimal("DOCKBOT_IDLE_HOURS", 0, IDLE_HOURS_MAX),
  DOCKBOT_MAX_RUNNING: integer("DOCKBOT_MAX_RUNNING", 0, MAX_RUNNING_MAX),
  DOCKBOT_DISK_MIN_FREE: freeSpace,
  DOCKBOT_RETENTION_DAYS: decimal("DOCKBOT_RETENTION_DAYS", 0.001, 100_000),
  DOCKBOT_SSH_STRICT: z.preprocess(
    blankToUndefined,
    z
      .enum(["accept-new", "yes"], { message: "DOCKBOT_SSH_STRICT must be accept-new or yes" })
      .optional(),
  ),
  DOCKBOT_LOG_LEVEL: z.preprocess(
    blankToUndefined,
    z
      .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], {
        message: "DOCKBOT_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent",
      })
      .optional(),
  ),
  DOCKBOT_LOG_MAX_BYTES: integer("DOCKBOT_LOG_MAX_BYTES", 10_000, 1_000_000_000),
  DOCKBOT_LEASE_SECONDS: integer("DOCKBOT_LEASE_SECONDS", 2, 3600),
  DOCKBOT_MONGODB_START_WAIT: integer("DOCKBOT_MONGODB_START_WAIT", 0, 3600),
  DOCKBOT_PREVIEW_PORT: integer("DOCKBOT_PREVIEW_PORT", 0, 65535),
  DOCKBOT_PREVIEW_URL: z.preprocess(
    blankToUndefined,
    z
      .string()
      .refine((v) => PREVIEW_URL_PATTERN.test(v) && URL.canParse(v.replace("*", "x")), {
        message:
          "DOCKBOT_PREVIEW_URL must be an http:// or https:// URL whose host starts with *., e.g. https://*.preview.example.com",
      })
      .transform((v) => v.replace(/\/+$/, ""))
      .optional(),
  ),
  DOCKBOT_PREVIEW_UPSTREAM: previewUpstream,
  DOCKBOT_PORT_RANGE: portRange,
  DOCKBOT_GITLAB_OAUTH_ID: optionalString,
  DOCKBOT_GITLAB_OAUTH_SECRET: optionalString,
  DOCKBOT_ADMINS: z.preprocess(
    blankToUndefined,
    z
      .string()
      .refine(
        (v) => v.split(",").every((name) => /^[A-Za-z0-9_.][A-Za-z0-9_.-]*$/.test(name.trim())),
        "DOCKBOT_ADMINS must be GitLab usernames separated by commas, e.g. alice,bob",
      )
      .transform((v) => v.split(",").map((name) => name.trim()))
      .optional(),
  ),
  DOCKBOT_REDIS_URL: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^rediss?:\/\//, "DOCKBOT_REDIS_URL must start with redis:// or rediss://")
      .optional(),
  ),
});

export type ParseConfigResult = { ok: true; config: Config } | { ok: false; errors: string[] };

/** Environment -> typed config, or every problem as one line naming the variable and the fix. */
export function parseConfig(
  env: Record<string, string | undefined>,
  cwd: string = process.cwd(),
): ParseConfigResult {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    return {
      ok: false,
      errors: parsed.error.issues.map((issue) => {
        const variable = String(issue.path[0] ?? "configuration");
        return issue.message.startsWith(variable) ? issue.message : `${variable}: ${issue.message}`;
      }),
    };
  }
  const e = parsed.data;
  const errors: string[] = [];
  if (e.DOCKBOT_GITLAB_TOKEN && !e.DOCKBOT_GITLAB_URL) {
    errors.push(
      "DOCKBOT_GITLAB_URL must be set when DOCKBOT_GITLAB_TOKEN is set (e.g. https://gitlab.com)",
    );
  }
  if (Boolean(e.DOCKBOT_GITLAB_OAUTH_ID) !== Boolean(e.DOCKBOT_GITLAB_OAUTH_SECRET)) {
    errors.push(
      "DOCKBOT_GITLAB_OAUTH_ID and DOCKBOT_GITLAB_OAUTH_SECRET must be set together (the GitLab application's id and secret)",
    );
  }
  if (e.DOCKBOT_GITLAB_OAUTH_ID && !e.DOCKBOT_GITLAB_URL) {
    errors.push(
      "DOCKBOT_GITLAB_URL must be set when DOCKBOT_GITLAB_OAUTH_ID is set (e.g. https://gitlab.com)",
    );
  }
  if (errors.length > 0) return { ok: false, errors };
  const port = e.DOCKBOT_PORT ?? 3000;
  const config: Config = {
    port,
    host: e.DOCKBOT_HOST ?? "0.0.0.0",
    dataDir: path.resolve(cwd, e.DOCKBOT_DATA_DIR ?? "./data"),
    publicUrl: e.DOCKBOT_PUBLIC_URL ?? `http://localhost:${port}`,
    concurrency: e.DOCKBOT_CONCURRENCY ?? 2,
    compose: e.DOCKBOT_COMPOSE ?? "auto",
    operationTimeoutSeconds: e.DOCKBOT_OPERATION_TIMEOUT ?? 1800,
    healthTimeoutSeconds: e.DOCKBOT_HEALTH_TIMEOUT ?? 120,
    idleHours: e.DOCKBOT_IDLE_HOURS ?? DEFAULT_IDLE_HOURS,
    maxRunning: e.DOCKBOT_MAX_RUNNING ?? 0,
    diskMinFree: e.DOCKBOT_DISK_MIN_FREE ?? { percent: 10 },
    retentionDays: e.DOCKBOT_RETENTION_DAYS ?? 30,
    sshStrict: e.DOCKBOT_SSH_STRICT ?? "accept-new",
    logLevel: e.DOCKBOT_LOG_LEVEL ?? "info",
    logMaxBytes: e.DOCKBOT_LOG_MAX_BYTES ?? 5 * 1024 * 1024,
    leaseSeconds: e.DOCKBOT_LEASE_SECONDS ?? 30,
    mongodbStartWaitSeconds: e.DOCKBOT_MONGODB_START_WAIT ?? 60,
    admins: e.DOCKBOT_ADMINS ?? [],
    portRange: e.DOCKBOT_PORT_RANGE ?? { from: 20000, to: 29999 },
    previewPort: e.DOCKBOT_PREVIEW_PORT ?? 3001,
    previewUrl: e.DOCKBOT_PREVIEW_URL ?? `http://*.localhost:${e.DOCKBOT_PREVIEW_PORT ?? 3001}`,
    previewUpstream: e.DOCKBOT_PREVIEW_UPSTREAM ?? { mode: "auto" },
  };
  if (e.DOCKBOT_MONGODB_URL) config.mongodbUrl = e.DOCKBOT_MONGODB_URL;
  if (e.DOCKBOT_ADMIN_TOKEN) config.adminToken = e.DOCKBOT_ADMIN_TOKEN;
  if (e.DOCKBOT_GITLAB_URL) config.gitlabUrl = e.DOCKBOT_GITLAB_URL;
  if (e.DOCKBOT_GITLAB_TOKEN) config.gitlabToken = e.DOCKBOT_GITLAB_TOKEN;
  if (e.DOCKBOT_REDIS_URL) config.redisUrl = e.DOCKBOT_REDIS_URL;
  if (e.DOCKBOT_GITLAB_OAUTH_ID && e.DOCKBOT_GITLAB_OAUTH_SECRET) {
    config.gitlabOauth = {
      clientId: e.DOCKBOT_GITLAB_OAUTH_ID,
      clientSecret: e.DOCKBOT_GITLAB_OAUTH_SECRET,
    };
  }
  return { ok: true, config };
}
