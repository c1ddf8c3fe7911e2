import { createHash } from "node:crypto";
import type { RefType } from "../store/types.js";

// The patterns themselves are input rules, defined once with the others the API states.
export { isSlug, isValidRefName, SHA_PATTERN, SLUG_PATTERN } from "./input-rules.js";

const MAX_SLUG = 63;

function shortHash(value: string): string {
  return createHash("sha256").update(value).digest("hex").slice(0, 7);
}

/** `feature/Login_2` -> `feature-login-2`; empty when nothing usable is left. */
export function slugify(value: string): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/**
 * The version name for a ref. Merge requests are `mr-<iid>`. A slug that is too long, empty, or
 * taken by a version of another ref gets a short hash of the ref as suffix, so two refs never
 * share a version.
 */
export function versionNameForRef(
  ref: { type: RefType; name: string },
  isTaken: (name: string) => boolean = () => false,
): string {
  if (ref.type === "mergeRequest") return `mr-${ref.name}`;
  const base = ref.type === "commit" ? ref.name.slice(0, 12).toLowerCase() : slugify(ref.name);
  if (base.length > 0 && base.length <= MAX_SLUG && !isTaken(base)) return base;
  const suffix = shortHash(`${ref.type}:${ref.name}`);
  const head = base.slice(0, MAX_SLUG - suffix.length - 1).replace(/-+$/, "");
  return head ? `${head}-${suffix}` : `v-${suffix}`;
}

/**
 * Compose project name `dockbot-<project>-<version>`, at most 63 characters (a hash replaces
 * the end when longer), so two versions never share containers, networks or volumes.
 */
export function composeProjectName(project: string, version: string): string {
  const full = `dockbot-${project}-${version}`;
  if (full.length <= MAX_SLUG) return full;
  const suffix = shortHash(full);
  return `${full.slice(0, MAX_SLUG - suffix.length - 1).replace(/-+$/, "")}-${suffix}`;
}
