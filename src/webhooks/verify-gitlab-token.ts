// Which project a GitLab webhook delivery belongs to, by its X-Gitlab-Token.
//
// GitLab sends the hook secret in plain text (GITLAB.md §1), so the comparison must not leak how
// much of a secret matched or how long it is: both sides are hashed with SHA-256 first (equal
// length digests, so timingSafeEqual never throws and the secret's length stays hidden), and
// every project is compared, with no early return, whether or not one matched already.
import { createHash, timingSafeEqual } from "node:crypto";
import type { ProjectRecord } from "../store/types.js";

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/**
 * The project whose `webhookSecret` equals `given`, or undefined (answer 401).
 *
 * A project linked to a GitLab project (`gitlab.projectId`) accepts only deliveries whose
 * payload names that project (`payloadProjectId`, the payload's `project.id`): a secret copied
 * to another repository's hook must not deploy this one. When several projects share the secret,
 * the one linked to the payload's project wins over an unlinked one.
 */
export function verifyGitlabToken(
  given: string | undefined,
  projects: readonly ProjectRecord[],
  payloadProjectId?: number,
): ProjectRecord | undefined {
  const givenDigest = digest(given ?? "");
  const hasToken = given !== undefined && given.length > 0;

  let linked: ProjectRecord | undefined;
  let unlinked: ProjectRecord | undefined;
  for (const project of projects) {
    // Compare first, decide after, so the work per project is the same whatever matched.
    const equal = timingSafeEqual(givenDigest, digest(project.webhookSecret));
    const usable = equal && hasToken && project.webhookSecret.length > 0;
    const link = project.gitlab?.projectId;
    if (!usable) continue;
    if (link === undefined) unlinked ??= project;
    else if (payloadProjectId !== undefined && link === payloadProjectId) linked ??= project;
  }
  return linked ?? unlinked;
}
