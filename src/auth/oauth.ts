// GitLab's OAuth 2 authorization code flow with PKCE (RFC 7636, S256), as GitLab documents it
// for applications (docs/gitlab.md): /oauth/authorize, then /oauth/token with the code, the
// redirect URI and the code verifier, then /api/v4/user with the access token.
import { createHash, randomBytes } from "node:crypto";
import type { GitlabUser } from "../store/types.js";

export const OAUTH_SCOPES = "read_user read_api";
const GITLAB_TIMEOUT_MS = 10_000;

export interface OAuthConfig {
  gitlabUrl: string;
  clientId: string;
  clientSecret: string;
  /** `$DOCKBOT_PUBLIC_URL/auth/gitlab/callback`, registered with the GitLab application. */
  redirectUri: string;
}

export class OAuthError extends Error {
  override readonly name = "OAuthError";
}

export function randomSecret(): string {
  return randomBytes(32).toString("base64url");
}

export function codeChallenge(verifier: string): string {
  return createHash("sha256").update(verifier, "ascii").digest("base64url");
}

export function authorizeUrl(config: OAuthConfig, state: string, verifier: string): string {
  const url = new URL(`${config.gitlabUrl}/oauth/authorize`);
  url.searchParams.set("client_id", config.clientId);
  url.searchParams.set("redirect_uri", config.redirectUri);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("state", state);
  url.searchParams.set("scope", OAUTH_SCOPES);
  url.searchParams.set("code_challenge", codeChallenge(verifier));
  url.searchParams.set("code_challenge_method", "S256");
  return url.toString();
}

export interface GitlabGrant {
  accessToken: string;
  /** Seconds the access token lives, when GitLab says (2 hours by default). */
  expiresIn?: number;
}

export async function exchangeCode(
  config: OAuthConfig,
  code: string,
  verifier: string,
  doFetch: typeof fetch = fetch,
): Promise<GitlabGrant> {
  const res = await doFetch(`${config.gitlabUrl}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: config.redirectUri,
      client_id: config.clientId,
      client_secret: config.clientSecret,
      code_verifier: verifier,
    }),
    signal: AbortSignal.timeout(GITLAB_TIMEOUT_MS),
  });
  const body = (await res.json().catch(() => ({}))) as {
    access_token?: unknown;
    expires_in?: unknown;
    error?: unknown;
  };
  if (!res.ok || typeof body.access_token !== "string") {
    throw new OAuthError(
      `GitLab refused the sign-in code (${res.status}${typeof body.error === "string" ? ` ${body.error}` : ""})`,
    );
  }
  const grant: GitlabGrant = { accessToken: body.access_token };
  if (typeof body.expires_in === "number" && body.expires_in > 0) grant.expiresIn = body.expires_in;
  return grant;
}

export async function fetchGitlabUser(
  gitlabUrl: string,
  accessToken: string,
  doFetch: typeof fetch = fetch,
): Promise<GitlabUser> {
  const res = await doFetch(`${gitlabUrl}/api/v4/user`, {
    headers: { authorization: `Bearer ${accessToken}`, accept: "application/json" },
    signal: AbortSignal.timeout(GITLAB_TIMEOUT_MS),
  });
  const body = (await res.json().catch(() => ({}))) as {
    id?: unknown;
    username?: unknown;
    name?: unknown;
  };
  if (!res.ok || typeof body.id !== "number" || typeof body.username !== "string") {
    throw new OAuthError(`GitLab did not say who signed in (${res.status})`);
  }
  return {
    id: body.id,
    username: body.username,
    name: typeof body.name === "string" ? body.name : body.username,
  };
}
