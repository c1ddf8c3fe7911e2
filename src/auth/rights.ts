// What a person or token may do, as ranked rights (docs/api.md, "Who may do what"). Pure: the
// one mapping from GitLab access levels and token scopes to rights, used by every check.
import type { TokenScope } from "../store/types.js";

/**
 * - `read`: see a project (versions, logs, deliveries): GitLab Reporter (20).
 * - `deploy`: also create versions, turn them on and off, cancel: Developer (30).
 * - `maintain`: also change the project (env, policy, autoDeploy, GitLab sync), delete versions
 *   and the project, read its audit log: Maintainer (40) and Owner (50).
 * - `admin`: everything, creating projects included: DOCKBOT_ADMINS and the admin token.
 */
export type Right = "read" | "deploy" | "maintain" | "admin";

export const RIGHTS: readonly Right[] = ["read", "deploy", "maintain", "admin"];

const RANK: Record<Right, number> = { read: 1, deploy: 2, maintain: 3, admin: 4 };

/** GitLab's access levels (docs/gitlab.md): Guest 10, Reporter 20, Developer 30, Maintainer 40, Owner 50. */
export const ACCESS_LEVEL = { reporter: 20, developer: 30, maintainer: 40 } as const;

export function atLeast(have: Right | undefined, need: Right): boolean {
  return have !== undefined && RANK[have] >= RANK[need];
}

export function lower(a: Right | undefined, b: Right | undefined): Right | undefined {
  if (a === undefined || b === undefined) return undefined;
  return RANK[a] <= RANK[b] ? a : b;
}

export function higher(a: Right | undefined, b: Right | undefined): Right | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return RANK[a] >= RANK[b] ? a : b;
}

/** A GitLab access level on a project as a dockbot right (below Reporter: none). */
export function rightOfAccessLevel(level: number): Right | undefined {
  if (level >= ACCESS_LEVEL.maintainer) return "maintain";
  if (level >= ACCESS_LEVEL.developer) return "deploy";
  if (level >= ACCESS_LEVEL.reporter) return "read";
  return undefined;
}

/** The most a token with these scopes may do (its maker's rights cap it further). */
export function capOfScopes(scopes: readonly TokenScope[]): Right | undefined {
  if (scopes.includes("admin")) return "admin";
  if (scopes.includes("deploy")) return "deploy";
  if (scopes.includes("read")) return "read";
  return undefined;
}

/**
 * The right a maker needs somewhere to make a token with a scope: `read` and `deploy` as named;
 * `admin` ("everything the maker may do") needs at least `maintain`, so a Developer cannot make
 * a token that looks like more than a deploy token.
 */
export function rightNeededForScope(scope: TokenScope): Right {
  return scope === "admin" ? "maintain" : scope;
}
