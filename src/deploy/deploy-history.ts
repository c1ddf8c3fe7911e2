// A version's verified deploys and what a rollback brings back, in pure rules (docs/api.md,
// "Health and rollback"): which deploys are kept, which are dropped, under which tag each
// built image is kept, which image tags can go, and which deploy a rollback goes to.
//
// What holds here:
// - the history is newest first; its first entry is the version's `lastGood`;
// - at most KEPT_DEPLOYS deploys are kept (the current one and the ones before it), one per
//   commit: a commit deployed again replaces its older entry;
// - a tag is only ever removable when it is a kept tag (`<repo>:good-<sha12>`) of an image repo
//   this version's own deploys recorded (`<composeProject>-<service>`), and no kept deploy still
//   names it: never another version's image, never a pulled one.
import type { GoodDeploy, VersionRecord } from "../store/types.js";

/** Verified deploys a version keeps: the current one and one before it (docs/api.md, "Rollback"). */
export const KEPT_DEPLOYS = 2;

/** Kept images are tagged `<repo>:good-<first 12 of the sha>`. */
const KEPT_TAG = /^good-[0-9a-f]{7,12}$/;

/** The repository part of an image reference (`name:tag` without the tag). */
export function imageRepoOf(ref: string): string {
  const colon = ref.lastIndexOf(":");
  return colon > ref.lastIndexOf("/") ? ref.slice(0, colon) : ref;
}

/** The tag a deploy of `sha` keeps a built image under (the running tag stays the model's). */
export function keptImageTag(image: string, sha: string): string {
  return `${imageRepoOf(image)}:good-${sha.slice(0, 12)}`;
}

/** The kept deploys of a version, newest first; a `lastGood` from before the list is its one entry. */
export function historyOf(version: Pick<VersionRecord, "goodDeploys" | "lastGood">): GoodDeploy[] {
  if (version.goodDeploys !== undefined) return version.goodDeploys;
  return version.lastGood
    ? [{ sha: version.lastGood.sha, deployedAt: version.lastGood.deployedAt }]
    : [];
}

export interface HistoryChange {
  /** The history from now on, newest first (its first entry is `lastGood`). */
  kept: GoodDeploy[];
  /** Deploys no longer kept (none of them shares a commit with a kept one): their images and
   * saved models can go. */
  dropped: GoodDeploy[];
}

/** A verified deploy joins the history at its head; the oldest beyond `keep` are dropped. */
export function recordGoodDeploy(
  history: readonly GoodDeploy[],
  deploy: GoodDeploy,
  keep: number = KEPT_DEPLOYS,
): HistoryChange {
  // The same commit deployed again replaces its older entry (its kept tag and model are the
  // new deploy's now, so nothing of it is dropped).
  const all = [deploy, ...history.filter((d) => d.sha !== deploy.sha)];
  const count = Math.max(1, keep);
  return { kept: all.slice(0, count), dropped: all.slice(count) };
}

/** The verified deploy before the current one: what a manual rollback goes to. */
export function previousDeploy(history: readonly GoodDeploy[]): GoodDeploy | undefined {
  return history[1];
}

export type RollbackPlan =
  ({ ok: true; target: GoodDeploy } & HistoryChange) | { ok: false; reason: string };

/**
 * A manual rollback to `sha` (the deploy before the current one when it was asked for): the
 * deploys newer than it are dropped, it becomes the head. Refused when `sha` is the current
 * deploy or no longer kept.
 */
export function planRollback(
  history: readonly GoodDeploy[],
  sha: string | undefined,
): RollbackPlan {
  const wanted = sha ?? previousDeploy(history)?.sha;
  if (wanted === undefined) {
    return { ok: false, reason: "there is no verified deploy before the current one" };
  }
  const at = history.findIndex((d) => d.sha === wanted);
  const short = wanted.slice(0, 8);
  if (at === 0) return { ok: false, reason: `${short} is the current verified deploy already` };
  const target = history[at];
  if (at < 0 || target === undefined) {
    return { ok: false, reason: `the verified deploy ${short} is no longer kept` };
  }
  return { ok: true, target, kept: history.slice(at), dropped: history.slice(0, at) };
}

/** Image repos the version's deploys built (`<composeProject>-<service>` and nothing else). */
export function versionImageRepos(
  deploys: readonly GoodDeploy[],
  composeProject: string,
): string[] {
  const repos = new Set<string>();
  for (const d of deploys) {
    for (const tag of Object.values(d.images ?? {})) {
      const repo = imageRepoOf(tag);
      if (repo.startsWith(`${composeProject}-`)) repos.add(repo);
    }
  }
  return [...repos].sort();
}

/**
 * Kept tags that can be removed: of `existing` (`repo:tag` as Docker lists them), those of the
 * version's own repos (`repos`, from versionImageRepos) with a kept tag that no deploy in `kept`
 * names. Running tags (`latest`, what the model runs) are never in it.
 */
export function removableTags(
  existing: readonly string[],
  kept: readonly GoodDeploy[],
  repos: readonly string[],
): string[] {
  const own = new Set(repos);
  const stillKept = new Set(kept.flatMap((d) => Object.values(d.images ?? {})));
  const out = new Set<string>();
  for (const ref of existing) {
    const repo = imageRepoOf(ref);
    const tag = ref.slice(repo.length + 1);
    if (own.has(repo) && KEPT_TAG.test(tag) && !stillKept.has(ref)) out.add(ref);
  }
  return [...out].sort();
}
