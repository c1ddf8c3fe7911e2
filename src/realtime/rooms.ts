// Room names. Operation and version events are state snapshots broadcast to every room that
// may want them in one emit (`io.to([...rooms])`), so a socket in several of them gets each event
// once. Log lines never go through rooms: each socket has its own follow per operation
// (log-follow.ts), which is what makes "no repeat" checkable on the server.
import type { OperationRecord, VersionRecord } from "../store/types.js";
import type { Subscription } from "./protocol.js";

export const ALL_ROOM = "all";

export function operationRoom(operationId: string): string {
  return `op:${operationId}`;
}

export function versionRoom(versionId: string): string {
  return `version:${versionId}`;
}

export function projectRoom(projectId: string): string {
  return `project:${projectId}`;
}

/** Where an operation event goes. */
export function operationRooms(op: OperationRecord): string[] {
  return [operationRoom(op.id), versionRoom(op.versionId), projectRoom(op.projectId), ALL_ROOM];
}

/** Where a version event goes. */
export function versionRooms(v: VersionRecord): string[] {
  return [versionRoom(v.id), projectRoom(v.projectId), ALL_ROOM];
}

/** The rooms a subscription joins (and its unsubscribe leaves). */
export function roomsOf(request: Subscription): string[] {
  if ("operationId" in request) return [operationRoom(request.operationId)];
  if ("versionId" in request) return [versionRoom(request.versionId)];
  if ("projectId" in request) return [projectRoom(request.projectId)];
  return [ALL_ROOM];
}
