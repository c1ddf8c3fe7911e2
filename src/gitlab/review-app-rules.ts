// What dockbot's review apps on GitLab are, in pure rules (docs/gitlab.md, "Environments,
// deployments and the merge request note"): an environment's name, the ref a version deploys on,
// the deployment status an operation ends in.
import type { OperationRecord, VersionRecord } from "../store/types.js";

/** The statuses a deployment ends in; none of them is ever left (docs/gitlab.md §11). */
export type FinalStatus = "success" | "failed" | "canceled";
export const FINAL: readonly string[] = ["success", "failed", "canceled"];
/** GitLab's widget matches the MR's head SHA exactly: deployments carry all 40 characters. */
export const FULL_SHA = /^[0-9a-f]{40}$/;

export interface DeployRef {
  ref: string;
  tag: boolean;
}

/** Environment names of dockbot's versions, grouped in one folder on GitLab's page. */
export function environmentName(versionName: string): string {
  return `dockbot/${versionName}`;
}

/** The ref GitLab's deployment of a version is on; none for a bare commit. */
export function deployRefOf(version: VersionRecord): DeployRef | undefined {
  switch (version.ref.type) {
    case "branch":
      return { ref: version.ref.name, tag: false };
    case "tag":
      return { ref: version.ref.name, tag: true };
    case "mergeRequest":
      return version.ref.sourceBranch === undefined
        ? undefined
        : { ref: version.ref.sourceBranch, tag: false };
    case "commit":
      return undefined;
  }
}

/**
 * Operations GitLab hears about as a deploy of their commit: an `up`, and a `rollback`, which
 * reports like an up of the kept commit it brings back (docs/gitlab.md).
 */
export function deploysCommit(op: Pick<OperationRecord, "kind">): boolean {
  return op.kind === "up" || op.kind === "rollback";
}

/** The deployment status an `up` ends in (a superseded one counts as canceled). */
export function finalStatusOf(op: OperationRecord): FinalStatus | undefined {
  switch (op.status) {
    case "succeeded":
      return "success";
    case "failed":
      return "failed";
    case "canceled":
    case "superseded":
      return "canceled";
    default:
      return undefined;
  }
}
