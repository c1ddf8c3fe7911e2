import { createHash } from "node:crypto";
import type { RefType } from "../store/types.js";

/** Project and version names (API.md): lowercase slugs of at most 63 characters. */
export const SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
const MAX_SLUG = 63;

export function isSlug(value: string): boolean {
  return SLUG_PATTERN.test(value);
}

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

/** A full or abbreviated commit hash as the API accepts it. */
export const SHA_PATTERN = /^[0-9a-f]{7,64}$/;

/**
 * Branch and tag names as `git check-ref-format --branch` accepts them, and never starting with
 * `-` (so a name can't be read as an option). Checked before any name reaches git.
 */
export function isValidRefName(name: string): boolean {
  if (name.length === 0 || name.length > 255) return false;
  if (name.startsWith("-") || name.startsWith("/") || name.endsWith("/")) return false;
  if (name.endsWith(".") || name.endsWith(".lock") || name === "@") return false;
  if (name.includes("..") || name.includes("@{") || name.includes("//")) return false;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(name)) return false;
  return name.split("/").every((part) => part.length > 0 && !part.startsWith("."));
}
