// The authorization module (docs/architecture.md, "src/auth"): who is asking (a dashboard
// session, an API token, the admin token; a GitLab user behind the first two) and what they may
// do on each project. src/http, src/ui and src/realtime ask it; none of them decides by itself.
//
// Rules kept here:
// - Rights on a project come from the person's GitLab access level on its `gitlab.projectId`
//   (gitlab-roles.ts, cached at most 60 s); a project without one is admins' only.
// - Admins are the admin token and the GitLab usernames in DOCKBOT_ADMINS.
// - A token's rights are the lower of its scope and its maker's rights at the moment it is
//   used (asked of GitLab again, with dockbot's own token), and only on its listed projects.
import { createHash, randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { gitlabRoles, type GitlabCredential, type GitlabRoles } from "./gitlab-roles.js";
import type { OAuthConfig } from "./oauth.js";
import { rateLimiter, type RateLimiter, type RateLimiterOptions } from "./rate-limit.js";
import {
  ACCESS_LEVEL,
  atLeast,
  capOfScopes,
  higher,
  lower,
  rightNeededForScope,
  rightOfAccessLevel,
  type Right,
} from "./rights.js";
import { createSessions, type Sessions } from "./sessions.js";
import { AppError, NotFoundError } from "../errors.js";
import type { AdminToken } from "../http/admin-token.js";
import { newId } from "../ids.js";
import type { Store } from "../store/store.js";
import type {
  ApiTokenRecord,
  AuditActor,
  AuditRecord,
  GitlabUser,
  ProjectRecord,
  SessionRecord,
  TokenScope,
} from "../store/types.js";

/** Who is asking. */
export interface Identity {
  via: "session" | "token" | "admin-token";
  /** Every right before a token's scope: the admin token, or a DOCKBOT_ADMINS user. */
  admin: boolean;
  user?: GitlabUser;
  session?: SessionRecord;
  token?: ApiTokenRecord;
  /** How GitLab is asked for this person's access levels. */
  credential?: GitlabCredential;
}

export interface AuthOptions {
  store: Store;
  adminToken: AdminToken;
  publicUrl: string;
  logger: Logger;
  gitlabUrl?: string;
  /** dockbot's own GitLab token: roles of token makers and merge request authors. */
  gitlabToken?: string;
  /** The GitLab application; unset: the dashboard signs in with a token only. */
  oauth?: { clientId: string; clientSecret: string };
  /** GitLab usernames with every right (DOCKBOT_ADMINS). */
  admins?: readonly string[];
  fetch?: typeof fetch;
  now?: () => number;
  rateLimit?: RateLimiterOptions;
}

export interface TokenInput {
  name: string;
  scopes: TokenScope[];
  projects?: string[];
  expiresAt?: string;
}

export interface Auth {
  readonly publicUrl: string;
  /** Cookies are Secure (and __Host-) under an https public URL. */
  readonly secure: boolean;
  readonly sessions: Sessions;
  readonly limiter: RateLimiter;
  readonly roles: GitlabRoles;
  readonly oauth: OAuthConfig | undefined;
  readonly gitlabUrl: string | undefined;
  readonly fetch: typeof fetch;
  readonly logger: Logger;
  /** The admin token or an API token, or undefined when it is neither (or expired, revoked). */
  fromBearer(token: string): Promise<Identity | undefined>;
  fromSession(session: SessionRecord): Identity;
  isAdminUser(user: GitlabUser | undefined): boolean;
  /** The right on a project, or undefined for none. */
  rightOn(identity: Identity, project: ProjectRecord): Promise<Right | undefined>;
  /** `admin` when the asker may do what no single project covers (create projects...). */
  globalRight(identity: Identity): Right | undefined;
  /** The highest right on any project (a token's scope may not be above it). */
  highestRight(identity: Identity): Promise<Right | undefined>;
  may(identity: Identity, need: Right, project?: ProjectRecord): Promise<boolean>;
  /** The projects the asker may read, in the order given. */
  readable(identity: Identity, projects: ProjectRecord[]): Promise<ProjectRecord[]>;
  mayReadProject(identity: Identity, projectId: string): Promise<boolean>;
  /** GitLab's access level of a person on a project, asked with dockbot's own token. */
  accessLevelOf(gitlabProjectId: number, userId: number): Promise<number>;
  /**
   * Why a merge request by this author may not deploy by itself (below Developer on the
   * project, or GitLab cannot say), or undefined when it may.
   */
  mergeRequestRefusal(
    project: ProjectRecord,
    authorId: number | undefined,
  ): Promise<string | undefined>;
  createToken(
    maker: Identity,
    input: TokenInput,
  ): Promise<{ record: ApiTokenRecord; token: string }>;
  /** Tokens the asker may see and revoke: their own; admins every one. */
  tokensOf(identity: Identity): Promise<ApiTokenRecord[]>;
  revokeToken(identity: Identity, id: string): Promise<ApiTokenRecord>;
  actorOf(identity: Identity): AuditActor;
  record(entry: Omit<AuditRecord, "id" | "at">): Promise<void>;
}

export const TOKEN_PREFIX = "dbt_";

export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

const sameUser = (a: GitlabUser | undefined, b: GitlabUser | undefined) =>
  a !== undefined && b !== undefined && a.id === b.id;

/** The deps' Auth, or, unset, one that knows the admin token alone (no GitLab sign-in). */
export function authOrAdminOnly(deps: {
  auth?: Auth;
  store: Store;
  token: AdminToken;
  publicUrl: string;
  logger: Logger;
}): Auth {
  return (
    deps.auth ??
    createAuth({
      store: deps.store,
      adminToken: deps.token,
      publicUrl: deps.publicUrl,
      logger: deps.logger,
    })
  );
}

export function createAuth(options: AuthOptions): Auth {
  const now = options.now ?? (() => Date.now());
  const doFetch = options.fetch ?? fetch;
  const admins = new Set((options.admins ?? []).map((a) => a.trim().toLowerCase()));
  const { store } = options;
  const roles = gitlabRoles({
    gitlabUrl: options.gitlabUrl,
    logger: options.logger,
    fetch: doFetch,
    now,
  });
  const sessions = createSessions({ store, adminTokenId: options.adminToken.id, now });
  const oauth: OAuthConfig | undefined =
    options.oauth && options.gitlabUrl
      ? {
          gitlabUrl: options.gitlabUrl,
          clientId: options.oauth.clientId,
          clientSecret: options.oauth.clientSecret,
          redirectUri: `${options.publicUrl.replace(/\/+$/, "")}/auth/gitlab/callback`,
        }
      : undefined;
  const dockbotCredential: GitlabCredential | undefined =
    options.gitlabToken === undefined ? undefined : { privateToken: options.gitlabToken };

  const isAdminUser = (user: GitlabUser | undefined) =>
    user !== undefined && admins.has(user.username.toLowerCase());

  const rightOn = async (identity: Identity, project: ProjectRecord) => {
    let right: Right | undefined;
    if (identity.admin) right = "admin";
    else if (project.gitlab && identity.user) {
      const level = await roles.accessLevel(
        project.gitlab.projectId,
        identity.user.id,
        identity.credential,
      );
      right = rightOfAccessLevel(level);
    }
    const token = identity.token;
    if (token) {
      if (token.projects && !token.projects.includes(project.id)) return undefined;
      right = lower(right, capOfScopes(token.scopes));
    }
    return right;
  };

  const globalRight = (identity: Identity): Right | undefined => {
    if (!identity.admin) return undefined;
    const token = identity.token;
    if (token && (token.projects !== undefined || capOfScopes(token.scopes) !== "admin")) {
      return undefined;
    }
    return "admin";
  };

  const auth: Auth = {
    publicUrl: options.publicUrl,
    secure: options.publicUrl.startsWith("https:"),
    sessions,
    limiter: rateLimiter(options.rateLimit),
    roles,
    oauth,
    gitlabUrl: options.gitlabUrl,
    fetch: doFetch,
    logger: options.logger,

    async fromBearer(presented) {
      if (options.adminToken.verify(presented)) return { via: "admin-token", admin: true };
      if (!presented.startsWith(TOKEN_PREFIX) || presented.length > 200) return undefined;
      const token = await store.getApiTokenByHash(hashToken(presented));
      if (!token || token.revokedAt !== undefined) return undefined;
      if (token.expiresAt !== undefined && Date.parse(token.expiresAt) <= now()) return undefined;
      const identity: Identity = {
        via: "token",
        admin: token.maker.via === "admin-token" || isAdminUser(token.maker.user),
        token,
      };
      if (token.maker.user) identity.user = token.maker.user;
      if (dockbotCredential) identity.credential = dockbotCredential;
      return identity;
    },

    fromSession(session) {
      if (session.kind === "admin-token") return { via: "session", admin: true, session };
      const identity: Identity = { via: "session", admin: isAdminUser(session.user), session };
      if (session.user) identity.user = session.user;
      if (session.gitlabToken) identity.credential = { oauthToken: session.gitlabToken };
      return identity;
    },

    isAdminUser,
    rightOn,
    globalRight,

    async highestRight(identity) {
      const global = globalRight(identity);
      if (global) return global;
      let best: Right | undefined;
      for (const project of await store.listProjects()) {
        best = higher(best, await rightOn(identity, project));
        if (best === "admin") break;
      }
      return best;
    },

    async may(identity, need, project) {
      if (project === undefined || need === "admin") return atLeast(globalRight(identity), need);
      return atLeast(await rightOn(identity, project), need);
    },

    async readable(identity, projects) {
      const rights = await Promise.all(projects.map((p) => rightOn(identity, p)));
      return projects.filter((_, i) => atLeast(rights[i], "read"));
    },

    async mayReadProject(identity, projectId) {
      if (globalRight(identity)) return true;
      const project = await store.getProject(projectId);
      return project !== undefined && atLeast(await rightOn(identity, project), "read");
    },

    accessLevelOf(gitlabProjectId, userId) {
      return roles.accessLevel(gitlabProjectId, userId, dockbotCredential);
    },

    async mergeRequestRefusal(project, authorId) {
      const byHand = "a Developer can turn its version on from the dashboard";
      if (!project.gitlab) {
        return `merge request not deployed by itself: the project has no gitlab.projectId to check its author's role on; ${byHand}`;
      }
      if (authorId === undefined) {
        return `merge request not deployed by itself: the payload names no author; ${byHand}`;
      }
      if (!dockbotCredential) {
        return `merge request not deployed by itself: its author's role cannot be asked without DOCKBOT_GITLAB_TOKEN; ${byHand}`;
      }
      const level = await roles.accessLevel(project.gitlab.projectId, authorId, dockbotCredential);
      if (level >= ACCESS_LEVEL.developer) return undefined;
      return `merge request not deployed by itself: its author (GitLab user ${authorId}) is below Developer on the project${level === 0 ? " (or GitLab could not say)" : ""}; ${byHand}`;
    },

    async createToken(maker, input) {
      if (maker.via === "token") {
        throw new AppError("forbidden", "a token cannot make tokens: sign in to make one");
      }
      const highest = await auth.highestRight(maker);
      for (const scope of input.scopes) {
        if (!atLeast(highest, rightNeededForScope(scope))) {
          throw new AppError(
            "forbidden",
            `scope '${scope}' is above your rights (${highest ?? "none"}): a token never has more rights than its maker`,
          );
        }
      }
      if (input.expiresAt !== undefined && Date.parse(input.expiresAt) <= now()) {
        // Well-formed (the schema takes any date-time), but not something that can be made: 422.
        throw new AppError("unprocessable", "expiresAt must be in the future", {
          field: "expiresAt",
        });
      }
      const token = `${TOKEN_PREFIX}${randomBytes(32).toString("base64url")}`;
      const record: ApiTokenRecord = {
        id: newId(),
        name: input.name,
        hash: hashToken(token),
        scopes: [...new Set(input.scopes)],
        createdAt: new Date(now()).toISOString(),
        maker: maker.user ? { via: "session", user: maker.user } : { via: "admin-token" },
      };
      if (input.projects !== undefined) {
        const ids: string[] = [];
        for (const key of input.projects) {
          const project = (await store.getProject(key)) ?? (await store.getProjectByName(key));
          if (!project) throw new NotFoundError("project", key);
          ids.push(project.id);
        }
        record.projects = [...new Set(ids)];
      }
      if (input.expiresAt !== undefined) record.expiresAt = new Date(input.expiresAt).toISOString();
      await store.createApiToken(record);
      return { record, token };
    },

    async tokensOf(identity) {
      const all = await store.listApiTokens();
      if (identity.via !== "token" && identity.admin) return all;
      return all.filter((t) => sameUser(t.maker.user, identity.user));
    },

    async revokeToken(identity, id) {
      const token = (await auth.tokensOf(identity)).find((t) => t.id === id);
      if (!token) throw new NotFoundError("token", id);
      const revoked = await store.revokeApiToken(token.id, new Date(now()).toISOString());
      if (!revoked) throw new NotFoundError("token", id);
      return revoked;
    },

    actorOf(identity) {
      const actor: AuditActor = { via: identity.via };
      if (identity.user) actor.user = identity.user;
      if (identity.token) {
        actor.tokenId = identity.token.id;
        actor.tokenName = identity.token.name;
      }
      return actor;
    },

    async record(entry) {
      await store.appendAudit({ ...entry, id: newId(), at: new Date(now()).toISOString() });
    },
  };
  return auth;
}
