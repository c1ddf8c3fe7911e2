// Which images disk hygiene removes (docs/api.md, "Disk hygiene"), in a
// pure rule. What holds here:
// - only dockbot's images: built for one of its compose projects (`dockbot-…`, names.ts), known
//   by Compose v2's project label, by Compose v1's `<project>_<service>` name (dockbot's project
//   names have no `_`), or by a name `<composeProject>-…` of a version in the store (the built
//   image `<composeProject>-<service>` and its kept `good-<sha12>` tags). A name like
//   `dockbot-test-base` matches none of these, and an image that also carries a tag that is not
//   dockbot's is never touched;
// - never an image a container uses (running or not), never one a version keeps for a rollback
//   (`goodDeploys[].images`), never one of a version with an operation under way (its build may
//   not have a container yet), never one younger than the grace period.
import type { VersionRecord, VersionState } from "../store/types.js";
import { imageRepoOf } from "./deploy-history.js";
import type { ImageInfo } from "./disk.js";

/** States in which no operation of the version is building or starting. */
const SETTLED: ReadonlySet<VersionState> = new Set(["off", "running", "failed"]);

export interface ImageRemovalInput {
  images: readonly ImageInfo[];
  /** Ids of the images of every container. */
  inUse: ReadonlySet<string>;
  versions: ReadonlyArray<Pick<VersionRecord, "composeProject" | "state" | "goodDeploys">>;
  /** dockbot's compose project names start with this (`dockbot-`, or a narrower one). */
  prefix: string;
  now: number;
  /** Images built less than this long ago stay (ms). */
  graceMs: number;
}

export interface ImageRemoval {
  image: ImageInfo;
  /** What to hand `docker rmi`: every tag (the last one removes the image), or the id. */
  refs: string[];
}

/** The compose project an image reference belongs to when it is dockbot's, else undefined. */
function ownerOfRef(ref: string, prefix: string, projects: readonly string[]): string | undefined {
  const repo = imageRepoOf(ref);
  if (!repo.startsWith(prefix)) return undefined;
  const v1 = /^([a-z0-9-]+)_[a-z0-9._-]+$/.exec(repo);
  if (v1?.[1]?.startsWith(prefix)) return v1[1];
  return projects.find((p) => repo.startsWith(`${p}-`));
}

export function imagesToRemove(input: ImageRemovalInput): ImageRemoval[] {
  const projects = input.versions.map((v) => v.composeProject);
  const busy = new Set(
    input.versions.filter((v) => !SETTLED.has(v.state)).map((v) => v.composeProject),
  );
  const keptTags = new Set(
    input.versions.flatMap((v) =>
      (v.goodDeploys ?? []).flatMap((d) => Object.values(d.images ?? {})),
    ),
  );
  const out: ImageRemoval[] = [];
  for (const image of input.images) {
    if (input.inUse.has(image.id)) continue;
    if (input.now - image.createdAt < input.graceMs) continue;
    if (image.repoTags.some((t) => keptTags.has(t))) continue;
    const owners = new Set<string>();
    const labelled = image.composeProject?.startsWith(input.prefix) === true;
    if (labelled && image.composeProject !== undefined) owners.add(image.composeProject);
    let foreignTag = false;
    // A labelled build's own name (`<project>-<service>`) is its project's too.
    const known =
      labelled && image.composeProject !== undefined
        ? [image.composeProject, ...projects]
        : projects;
    for (const tag of image.repoTags) {
      const owner = ownerOfRef(tag, input.prefix, known);
      if (owner === undefined) foreignTag = true;
      else owners.add(owner);
    }
    if (foreignTag || owners.size === 0) continue;
    if ([...owners].some((p) => busy.has(p))) continue;
    out.push({ image, refs: image.repoTags.length > 0 ? [...image.repoTags] : [image.id] });
  }
  return out;
}
