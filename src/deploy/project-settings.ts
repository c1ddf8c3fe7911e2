// A project's settings as they apply, with the instance's defaults filled in (docs/api.md,
// "Resources", "Idle stop and limits"). The store keeps only what the project set, so a changed
// DOCKBOT_IDLE_HOURS applies to every project that did not choose its own.
import type { AutoStop, ProjectRecord, VersionRef } from "../store/types.js";

/** DOCKBOT_IDLE_HOURS when unset. */
export const DEFAULT_IDLE_HOURS = 72;

/** The highest `idleHours` and `maxRunning` accepted (about 11 years; a hundred thousand). */
export const IDLE_HOURS_MAX = 100_000;
export const MAX_RUNNING_MAX = 100_000;

export type EffectiveAutoStop = Required<AutoStop>;

/** The project's idle stop, `idleHours` from the instance default where it set none. */
export function autoStopOf(project: ProjectRecord, defaultIdleHours: number): EffectiveAutoStop {
  return {
    idleHours: project.autoStop?.idleHours ?? defaultIdleHours,
    exemptDefaultBranch: project.autoStop?.exemptDefaultBranch ?? true,
    exemptTags: project.autoStop?.exemptTags ?? true,
  };
}

/**
 * Why dockbot itself never turns this version off (idle stop and the running limit, docs/api.md
 * "Idle stop and limits"): a tag, or the repository's default branch (`defaultBranch` undefined
 * when unknown: then no branch is exempt as it), unless the project says otherwise.
 */
export function policyExemption(
  ref: Pick<VersionRef, "type" | "name">,
  autoStop: Pick<EffectiveAutoStop, "exemptDefaultBranch" | "exemptTags">,
  defaultBranch: string | undefined,
): "tag" | "default-branch" | undefined {
  if (ref.type === "tag" && autoStop.exemptTags) return "tag";
  if (
    ref.type === "branch" &&
    autoStop.exemptDefaultBranch &&
    defaultBranch !== undefined &&
    ref.name === defaultBranch
  ) {
    return "default-branch";
  }
  return undefined;
}
