// A person's access level on a GitLab project, asked of GitLab and kept at most 60 s
// (docs/api.md, "Who may do what"). `GET /projects/:id/members/all/:user_id` answers it for
// direct, inherited and shared memberships alike (docs/gitlab.md). A GitLab that cannot be
// reached, or answers anything unexpected, gives access level 0: no rights, never more; such
// an answer is not kept, so the next request asks again.
import type { Logger } from "pino";

export const ROLE_CACHE_MS = 60_000;
const GITLAB_TIMEOUT_MS = 5000;
const MAX_CACHED = 10_000;

/** How to ask: the person's own OAuth token, or dockbot's DOCKBOT_GITLAB_TOKEN. */
export type GitlabCredential = { oauthToken: string } | { privateToken: string };

export function gitlabHeaders(credential: GitlabCredential): Record<string, string> {
  return "oauthToken" in credential
    ? { authorization: `Bearer ${credential.oauthToken}` }
    : { "private-token": credential.privateToken };
}

export interface GitlabRoles {
  accessLevel(
    gitlabProjectId: number,
    userId: number,
    credential: GitlabCredential | undefined,
  ): Promise<number>;
}

export function gitlabRoles(deps: {
  gitlabUrl: string | undefined;
  logger: Logger;
  fetch?: typeof fetch;
  now?: () => number;
}): GitlabRoles {
  const doFetch = deps.fetch ?? fetch;
  const now = deps.now ?? (() => Date.now());
  const cache = new Map<string, { level: number; until: number }>();

  const ask = async (
    projectId: number,
    userId: number,
    credential: GitlabCredential,
  ): Promise<number | undefined> => {
    const url = `${deps.gitlabUrl ?? ""}/api/v4/projects/${projectId}/members/all/${userId}`;
    try {
      const res = await doFetch(url, {
        headers: { accept: "application/json", ...gitlabHeaders(credential) },
        signal: AbortSignal.timeout(GITLAB_TIMEOUT_MS),
      });
      if (res.status === 404) {
        await res.body?.cancel();
        return 0; // not a member (or the project is hidden from this person): no rights
      }
      if (!res.ok) {
        await res.body?.cancel();
        deps.logger.warn({ projectId, userId, status: res.status }, "GitLab refused a role lookup");
        return undefined;
      }
      const body = (await res.json()) as { access_level?: unknown; state?: unknown };
      if (typeof body.access_level !== "number") return undefined;
      if (body.state !== undefined && body.state !== "active") return 0;
      return body.access_level;
    } catch (error) {
      deps.logger.warn({ err: error, projectId, userId }, "GitLab unreachable for a role lookup");
      return undefined;
    }
  };

  return {
    async accessLevel(projectId, userId, credential) {
      if (deps.gitlabUrl === undefined || credential === undefined) return 0;
      const key = `${projectId}:${userId}`;
      const hit = cache.get(key);
      if (hit && hit.until > now()) return hit.level;
      const level = await ask(projectId, userId, credential);
      if (level === undefined) return 0;
      if (cache.size >= MAX_CACHED) cache.clear();
      cache.set(key, { level, until: now() + ROLE_CACHE_MS });
      return level;
    },
  };
}
