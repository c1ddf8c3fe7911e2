// The API's own auth routes (docs/api.md, "Who may do what"): GET /api/me, scoped tokens and
// the audit log. The middleware (api-middleware.ts) has already decided who may call them.
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AuthVariables } from "./api-middleware.js";
import type { Auth, Identity } from "./auth.js";
import { NotFoundError } from "../errors.js";
import { NON_BLANK_PATTERN } from "../deploy/input-rules.js";
import { validationHook } from "../http/app.js";
import { ErrorSchema, queryInteger } from "../http/schemas.js";
import type { Store } from "../store/store.js";
import type { ApiTokenRecord, AuditRecord } from "../store/types.js";

const errors = (...codes: Array<400 | 401 | 403 | 404 | 422 | 429>) =>
  Object.fromEntries(
    codes.map((code) => [
      code,
      { description: String(code), content: { "application/json": { schema: ErrorSchema } } },
    ]),
  );

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

const UserSchema = z.object({ id: z.number(), username: z.string(), name: z.string() });
const Scope = z.enum(["read", "deploy", "admin"]);

const MeSchema = z
  .object({
    user: UserSchema.optional(),
    admin: z.boolean(),
    via: z.enum(["session", "token", "admin-token"]),
    scopes: z.array(Scope).optional(),
  })
  .openapi("Me");

const TokenSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    scopes: z.array(Scope),
    projects: z.array(z.string()).optional(),
    expiresAt: z.string().optional(),
    createdAt: z.string(),
    revokedAt: z.string().optional(),
    maker: z.object({ via: z.enum(["session", "admin-token"]), user: UserSchema.optional() }),
  })
  .openapi("ApiToken");

const TokenCreateSchema = z
  .object({
    // The pattern before the trim, so the document states what is refused (white space only).
    name: z
      .string()
      .max(100)
      .regex(NON_BLANK_PATTERN, "must contain a character other than white space")
      .trim(),
    scopes: z.array(Scope).min(1).max(3),
    projects: z.array(z.string().min(1).max(200)).min(1).max(500).optional(),
    expiresAt: z.iso.datetime({ offset: true }).optional(),
  })
  .strict()
  .openapi("ApiTokenCreate");

const AuditSchema = z
  .object({
    id: z.string(),
    at: z.string(),
    actor: z.object({
      via: z.enum(["session", "token", "admin-token"]),
      user: UserSchema.optional(),
      tokenId: z.string().optional(),
      tokenName: z.string().optional(),
    }),
    action: z.string(),
    source: z.enum(["api", "ui"]),
    request: z.string(),
    projectId: z.string().optional(),
    versionId: z.string().optional(),
    address: z.string().optional(),
    status: z.number(),
  })
  .openapi("AuditEntry");

export function tokenJson(t: ApiTokenRecord): z.infer<typeof TokenSchema> {
  const { hash: _hash, ...rest } = t;
  return rest;
}

export function meJson(auth: Auth, identity: Identity): z.infer<typeof MeSchema> {
  const me: z.infer<typeof MeSchema> = {
    admin: auth.globalRight(identity) === "admin",
    via: identity.via,
  };
  if (identity.user) me.user = identity.user;
  if (identity.token) me.scopes = identity.token.scopes;
  return me;
}

function auditJson(e: AuditRecord): z.infer<typeof AuditSchema> {
  return e;
}

export function authApiRoutes(auth: Auth, store: Store) {
  const app = new OpenAPIHono<{ Variables: AuthVariables }>({
    defaultHook: validationHook as never,
  });

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/me",
      summary: "Who is asking",
      responses: { 200: json(MeSchema, "the asker"), ...errors(401, 429) },
    }),
    (c) => c.json(meJson(auth, c.get("identity")), 200),
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/api/tokens",
      summary: "Make a scoped API token (shown once; only its hash is kept)",
      request: {
        body: { required: true, content: { "application/json": { schema: TokenCreateSchema } } },
      },
      responses: {
        201: json(TokenSchema.extend({ token: z.string() }), "the token, shown this once"),
        ...errors(400, 401, 403, 404, 422),
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const input: Parameters<Auth["createToken"]>[1] = { name: body.name, scopes: body.scopes };
      if (body.projects !== undefined) input.projects = body.projects;
      if (body.expiresAt !== undefined) input.expiresAt = body.expiresAt;
      const { record, token } = await auth.createToken(c.get("identity"), input);
      return c.json({ ...tokenJson(record), token }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/tokens",
      summary: "The asker's API tokens (admins: every one), never the token itself",
      responses: { 200: json(z.array(TokenSchema), "tokens"), ...errors(401) },
    }),
    async (c) => c.json((await auth.tokensOf(c.get("identity"))).map(tokenJson), 200),
  );

  app.openapi(
    createRoute({
      method: "delete",
      path: "/api/tokens/{id}",
      summary: "Revoke a token at once",
      request: { params: z.object({ id: z.string().min(1).max(200) }) },
      responses: { 200: json(TokenSchema, "the revoked token"), ...errors(401, 404) },
    }),
    async (c) =>
      c.json(tokenJson(await auth.revokeToken(c.get("identity"), c.req.valid("param").id)), 200),
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/audit",
      summary: "Who changed what, newest first (admins; Maintainers for their projects)",
      request: {
        query: z.object({
          project: z.string().min(1).max(200).optional(),
          since: z.iso.datetime({ offset: true }).optional(),
          limit: queryInteger(1, 1000).optional(),
        }),
      },
      responses: {
        200: json(z.array(AuditSchema), "audit entries"),
        ...errors(400, 401, 403, 404),
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const filter: Parameters<Store["listAudit"]>[0] = { limit: q.limit ?? 200 };
      if (q.project !== undefined) {
        const project =
          (await store.getProject(q.project)) ?? (await store.getProjectByName(q.project));
        if (!project) throw new NotFoundError("project", q.project);
        filter.projectId = project.id;
      }
      if (q.since !== undefined) filter.since = new Date(q.since).toISOString();
      return c.json((await store.listAudit(filter)).map(auditJson), 200);
    },
  );

  return app;
}
