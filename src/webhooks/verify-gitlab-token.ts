// Which project a GitLab webhook delivery belongs to, by its X-Gitlab-Token.
//
// GitLab sends the hook secret in plain text (docs/gitlab.md §1), so the comparison must not leak
// how much of a secret matched or how long it is: both sides are hashed with SHA-256 first (equal
// length digests, so timingSafeEqual never throws and the secret's length stays hidden), and
// every project is compared, with no early return, whether or not one matched already.
import { createHash, timingSafeEqual } from "node:crypto";
import type { ProjectRecord } from "../store/types.js";

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

// The secrets' digests, kept: every delivery compares against every project. Bounded, in case
// secrets are rotated many times over a long run.
const secretDigests = new Map<string, Buffer>();
const MAX_KEPT_DIGESTS = 10_000;

function secretDigest(secret: string): Buffer {
  let d = secretDigests.get(secret);
  if (!d) {
    if (secretDigests.size >= MAX_KEPT_DIGESTS) secretDigests.clear();
    d = digest(secret);
    secretDigests.set(secret, d);
  }
  return d;
}

/**
 * The projects whose `webhookSecret` equals `given` (none: answer 401). Read before the body:
 * which of them the delivery is for is `pickProject`'s choice, once the payload is parsed.
 */
export function projectsWithSecret(
  given: string | undefined,
  projects: readonly ProjectRecord[],
): ProjectRecord[] {
  const givenDigest = digest(given ?? "");
  const hasToken = given !== undefined && given.length > 0;
  const matching: ProjectRecord[] = [];
  for (const project of projects) {
    // Compare first, decide after, so the work per project is the same whatever matched.
    const equal = timingSafeEqual(givenDigest, secretDigest(project.webhookSecret));
    if (equal && hasToken && project.webhookSecret.length > 0) matching.push(project);
  }
  return matching;
}

/**
 * Of the projects whose secret matched, the one a delivery is for, or undefined (answer 401).
 *
 * A project linked to a GitLab project (`gitlab.projectId`) accepts only deliveries whose
 * payload names that project (`payloadProjectId`, the payload's `project.id`): a secret copied
 * to another repository's hook must not deploy this one. When several projects share the secret,
 * the one linked to the payload's project wins over an unlinked one.
 */
export function pickProject(
  matching: readonly ProjectRecord[],
  payloadProjectId?: number,
): ProjectRecord | undefined {
  let linked: ProjectRecord | undefined;
  let unlinked: ProjectRecord | undefined;
  for (const project of matching) {
    const link = project.gitlab?.projectId;
    if (link === undefined) unlinked ??= project;
    else if (payloadProjectId !== undefined && link === payloadProjectId) linked ??= project;
  }
  return linked ?? unlinked;
}
