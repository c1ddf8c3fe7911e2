// GitLab's OAuth provider and the user/membership endpoints, for test/support/fake-gitlab.ts
// (`startFakeGitlab({plugins: [oauth.plugin]})`). It rejects what GitLab's Doorkeeper rejects
// (docs/gitlab.md): an unknown client or redirect URI, a missing S256 code challenge, a code
// used twice or by another redirect URI, a verifier that does not hash to the challenge.
//
// GET  /oauth/authorize   redirects back at once with a code for the user picked by signInAs()
//                         (the person clicking "Authorize" on GitLab), or error=access_denied.
// POST /oauth/token       grant_type=authorization_code: checks client, code, redirect URI, PKCE.
// GET  /api/v4/user       the user of a Bearer access token.
// GET  /api/v4/projects/:id/members/all/:user_id
//                         with a user's Bearer token (who must be a member to see the project)
//                         or the fake's PRIVATE-TOKEN; 404 for a non-member.
import { createHash, randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { FakeGitlabPlugin, FakeGitlabRequest } from "./fake-gitlab.js";

export interface FakeUser {
  id: number;
  username: string;
  name: string;
}

export interface FakeGitlabOauth {
  plugin: FakeGitlabPlugin;
  clientId: string;
  clientSecret: string;
  /** The application's one redirect URI; set it once dockbot's address is known. */
  redirectUri: string;
  addUser(user: FakeUser): void;
  /** GitLab access level of a user on a GitLab project (0 removes the membership). */
  setAccessLevel(projectId: number, userId: number, level: number): void;
  /** Who approves the next /oauth/authorize; undefined: the person clicks "Deny". */
  signInAs(username: string | undefined): void;
  /** Codes handed out, oldest first. */
  codes: string[];
  /** Answer every membership lookup 503 (GitLab down) while true. */
  membershipDown: boolean;
  /** Membership lookups answered, for "asked at most once a minute" checks. */
  membershipLookups: number;
}

interface Grant {
  userId: number;
  challenge: string;
  redirectUri: string;
  used: boolean;
}

export function fakeGitlabOauth(opts: { privateToken: string }): FakeGitlabOauth {
  const users = new Map<number, FakeUser>();
  const levels = new Map<string, number>();
  const grants = new Map<string, Grant>();
  const accessTokens = new Map<string, number>();
  let approving: string | undefined;

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
    return true;
  };

  const bearerUser = (req: FakeGitlabRequest): FakeUser | undefined => {
    const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "");
    const id = match?.[1] ? accessTokens.get(match[1]) : undefined;
    return id === undefined ? undefined : users.get(id);
  };

  const fake: FakeGitlabOauth = {
    clientId: "fake-oauth-application-id",
    clientSecret: "fake-oauth-application-secret",
    redirectUri: "",
    codes: [],
    membershipDown: false,
    membershipLookups: 0,
    addUser: (user) => void users.set(user.id, user),
    setAccessLevel(projectId, userId, level) {
      if (level > 0) levels.set(`${projectId}:${userId}`, level);
      else levels.delete(`${projectId}:${userId}`);
    },
    signInAs(username) {
      approving = username;
    },
    plugin(req, res) {
      if (req.method === "GET" && req.path === "/oauth/authorize") {
        const q = req.query;
        if (q.client_id !== fake.clientId) return json(res, 401, { error: "invalid_client" });
        if (q.redirect_uri !== fake.redirectUri) {
          return json(res, 400, { error: "invalid_redirect_uri" });
        }
        if (q.response_type !== "code" || !q.state) {
          return json(res, 400, { error: "invalid_request" });
        }
        if (q.code_challenge_method !== "S256" || !q.code_challenge) {
          return json(res, 400, {
            error: "invalid_request",
            error_description: "PKCE S256 needed",
          });
        }
        if (!(q.scope ?? "").split(" ").includes("read_user")) {
          return json(res, 400, { error: "invalid_scope" });
        }
        const back = new URL(fake.redirectUri);
        back.searchParams.set("state", q.state);
        const user = [...users.values()].find((u) => u.username === approving);
        if (!user) back.searchParams.set("error", "access_denied");
        else {
          const code = randomBytes(16).toString("hex");
          grants.set(code, {
            userId: user.id,
            challenge: q.code_challenge,
            redirectUri: fake.redirectUri,
            used: false,
          });
          fake.codes.push(code);
          back.searchParams.set("code", code);
        }
        res.writeHead(302, { location: back.toString() });
        res.end();
        return true;
      }
      if (req.method === "POST" && req.path === "/oauth/token") {
        const b = (typeof req.body === "object" && req.body !== null ? req.body : {}) as Record<
          string,
          string
        >;
        if (b.client_id !== fake.clientId || b.client_secret !== fake.clientSecret) {
          return json(res, 401, { error: "invalid_client" });
        }
        if (b.grant_type !== "authorization_code") {
          return json(res, 400, { error: "unsupported_grant_type" });
        }
        const grant = grants.get(b.code ?? "");
        const verifierOk =
          grant !== undefined &&
          typeof b.code_verifier === "string" &&
          createHash("sha256").update(b.code_verifier).digest("base64url") === grant.challenge;
        if (!grant || grant.used || grant.redirectUri !== b.redirect_uri || !verifierOk) {
          return json(res, 400, {
            error: "invalid_grant",
            error_description:
              "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
          });
        }
        grant.used = true;
        const accessToken = randomBytes(24).toString("hex");
        accessTokens.set(accessToken, grant.userId);
        return json(res, 200, {
          access_token: accessToken,
          token_type: "Bearer",
          expires_in: 7200,
          refresh_token: randomBytes(24).toString("hex"),
          scope: "read_user read_api",
          created_at: Math.floor(Date.now() / 1000),
        });
      }
      if (req.method === "GET" && req.path === "/api/v4/user") {
        const user = bearerUser(req);
        if (!user) return json(res, 401, { message: "401 Unauthorized" });
        return json(res, 200, {
          ...user,
          state: "active",
          web_url: `http://fake/${user.username}`,
        });
      }
      const member = /^\/api\/v4\/projects\/(\d+)\/members\/all\/(\d+)$/.exec(req.path);
      if (req.method === "GET" && member) {
        const projectId = Number(member[1]);
        const userId = Number(member[2]);
        if (fake.membershipDown) return json(res, 503, { message: "503 Service Unavailable" });
        const asker = bearerUser(req);
        const privileged = req.headers["private-token"] === opts.privateToken;
        if (!asker && !privileged) return json(res, 401, { message: "401 Unauthorized" });
        // A private project is invisible to non-members: GitLab says 404 Project Not Found.
        if (asker && !levels.has(`${projectId}:${asker.id}`)) {
          return json(res, 404, { message: "404 Project Not Found" });
        }
        fake.membershipLookups++;
        const level = levels.get(`${projectId}:${userId}`);
        const user = users.get(userId) ?? {
          id: userId,
          username: `user${userId}`,
          name: `User ${userId}`,
        };
        if (level === undefined) return json(res, 404, { message: "404 Not found" });
        return json(res, 200, { ...user, state: "active", access_level: level, expires_at: null });
      }
      return false;
    },
  };
  return fake;
}
