// The Socket.io protocol dockbot speaks (docs/api.md, "Socket.io"): the events each side sends,
// their payloads, and the validation of `subscribe` / `unsubscribe` requests.
import type { Server, Socket } from "socket.io";
import { z } from "zod";
import type { OperationJson, VersionJson } from "../http/schemas.js";
import type { LogLine, LogStream, OperationRecord } from "../store/types.js";

/** One log line as clients receive it. */
export interface LogLineEvent {
  operationId: string;
  seq: number;
  stream: LogStream;
  text: string;
}

/** One line inside an `operation.logs` batch (its operation is named once, on the batch). */
export interface LogBatchLine {
  seq: number;
  stream: LogStream;
  text: string;
}

/** Consecutive lines of one operation, in seq order, for subscribers that asked for `batch`. */
export interface LogBatchEvent {
  operationId: string;
  lines: LogBatchLine[];
}

/**
 * Sent when the server stopped streaming an operation's log to a socket that fell behind,
 * whichever subscription (operation, version or project) carried the lines.
 */
export interface ResubscribeEvent {
  operationId: string;
  /** Seq of the last line sent: subscribe again with `{operationId, since}`. */
  since: number;
}

export interface ServerToClientEvents {
  "operation.queued": (operation: OperationJson) => void;
  "operation.started": (operation: OperationJson) => void;
  "operation.finished": (operation: OperationJson) => void;
  "operation.log": (line: LogLineEvent) => void;
  /** Instead of `operation.log`, to a socket that subscribed with `batch: true`. */
  "operation.logs": (batch: LogBatchEvent) => void;
  "version.updated": (version: VersionJson) => void;
  "version.deleted": (version: VersionJson) => void;
  resubscribe: (request: ResubscribeEvent) => void;
}

export type SubscribeRequest =
  | { operationId: string; since?: number; batch?: boolean }
  | { versionId: string; batch?: boolean }
  | { projectId: string; batch?: boolean }
  | Record<string, never>;

export type SubscribeAck =
  | { ok: true }
  | {
      ok: false;
      error: { code: "invalid_request" | "not_found" | "unavailable"; message: string };
    };

export interface ClientToServerEvents {
  subscribe: (request: SubscribeRequest, ack?: (answer: SubscribeAck) => void) => void;
  /** Leaves what `subscribe` with the same payload joined (`since` and `batch` are ignored). */
  unsubscribe: (request: SubscribeRequest, ack?: (answer: SubscribeAck) => void) => void;
}

/** What a replica needs to know of an operation another replica started or finished. */
export interface OperationScope {
  id: string;
  versionId: string;
  projectId: string;
}

/** Between replicas (Redis adapter `serverSideEmit`). */
export interface InterServerEvents {
  /** Lines already stored, in seq order per operation. */
  "operation.log": (lines: LogLine[]) => void;
  "operation.started": (operation: OperationScope) => void;
  "operation.finished": (operation: OperationScope) => void;
}

export type RealtimeServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents>;
export type RealtimeSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents>;

const Id = z.string().min(1).max(200);
const SubscribeSchema = z.union([
  z.strictObject({
    operationId: Id,
    since: z.number().int().min(0).optional(),
    batch: z.boolean().optional(),
  }),
  z.strictObject({ versionId: Id, batch: z.boolean().optional() }),
  z.strictObject({ projectId: Id, batch: z.boolean().optional() }),
  z.strictObject({}),
]);

/** A valid `subscribe` / `unsubscribe` payload. */
export type Subscription = z.infer<typeof SubscribeSchema>;

export const SUBSCRIBE_USAGE =
  "subscribe takes {operationId, since?, batch?}, {versionId, batch?}, {projectId, batch?} or {}";

/** The request, or undefined when it is not one of the shapes above (no payload: `{}`). */
export function parseSubscription(payload: unknown): Subscription | undefined {
  const parsed = SubscribeSchema.safeParse(payload ?? {});
  return parsed.success ? parsed.data : undefined;
}

/** A version or project subscription, which also carries its operations' log lines. */
export interface ScopeRequest {
  kind: "version" | "project";
  id: string;
  batch: boolean;
}

/** The version or project a subscription names; undefined for an operation or everything. */
export function scopeOf(request: Subscription): ScopeRequest | undefined {
  if ("versionId" in request)
    return { kind: "version", id: request.versionId, batch: request.batch ?? false };
  if ("projectId" in request)
    return { kind: "project", id: request.projectId, batch: request.batch ?? false };
  return undefined;
}

export type Ack = (answer: SubscribeAck) => void;

/** The client's ack callback, or a no-op when it sent none. */
export function ackOf(value: unknown): Ack {
  return typeof value === "function" ? (answer) => void (value as Ack)(answer) : () => undefined;
}

export function lineEvent(line: LogLine): LogLineEvent {
  return { operationId: line.operationId, seq: line.seq, stream: line.stream, text: line.text };
}

export function batchLine(line: LogLine): LogBatchLine {
  return { seq: line.seq, stream: line.stream, text: line.text };
}

export function operationScope(op: OperationRecord): OperationScope {
  return { id: op.id, versionId: op.versionId, projectId: op.projectId };
}
