// What retention keeps of a version's old operations (docs/api.md, "Retention",
// DOCKBOT_RETENTION_DAYS), one rule for both stores: the version's last operation (its newest by
// queuedAt, which the API shows as `lastOperation`; the store checks that part) and the
// operations of its kept verified deploys (`goodDeploys`, whose head is `lastGood`).
import type { OperationRecord, VersionRecord } from "./types.js";

/** Operations of a kept deploy that recorded no operation id: the succeeded ups and rollbacks of its commit. */
function madeDeploy(op: OperationRecord, sha: string): boolean {
  return (
    op.status === "succeeded" && (op.kind === "up" || op.kind === "rollback") && op.sha === sha
  );
}

/**
 * True when `op` made one of `version`'s kept verified deploys. A deploy that carries its
 * `operationId` keeps that operation; one without (and a `lastGood` from before `goodDeploys`)
 * keeps the succeeded ups and rollbacks of its commit.
 */
export function keptByVersion(
  op: OperationRecord,
  version: Pick<VersionRecord, "goodDeploys" | "lastGood">,
): boolean {
  const deploys = version.goodDeploys ?? [];
  for (const d of deploys) {
    if (d.operationId === undefined ? madeDeploy(op, d.sha) : d.operationId === op.id) return true;
  }
  const lastGood = version.lastGood;
  if (lastGood !== undefined && !deploys.some((d) => d.sha === lastGood.sha)) {
    return madeDeploy(op, lastGood.sha);
  }
  return false;
}
