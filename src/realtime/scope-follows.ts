// Version and project subscriptions carry log lines (docs/api.md, "Socket.io"): every operation
// of the version or project that runs while a socket is subscribed is followed from its line 1,
// with the guarantees of an operation subscription (a LogFollow from since 0, log-follow.ts).
//
// Invariants:
// - No operation missed: a scope is registered BEFORE the store is asked which of its operations
//   run now. An operation whose start is announced after that is opened from the announcement
//   (`operation.started`, from this replica's bus or another's); one started before is `running`
//   in the store read (stored before announced: docs/architecture.md, invariant 3).
// - Each operation once per socket: an operation in both, or in a version and a project scope of
//   the same socket, is opened once (`opened`). A follow the socket already has (an operation
//   subscription's, with its own `since`) is left as it is, never replaced.
// - Never opened twice: a follow that stopped for a slow client is not opened again by its scope,
//   which would start over at line 1; the client got `resubscribe {operationId, since}` and goes
//   on with an operation subscription.
// - Bounded: a scope's follows close once their operation finished and they handed every line
//   over, so a socket that watches a project for days holds follows only for what runs now.
import type { Store } from "../store/store.js";
import type { OperationRecord } from "../store/types.js";
import type { LogHub } from "./log-hub.js";
import {
  operationScope,
  type OperationScope,
  type RealtimeSocket,
  type ScopeRequest,
} from "./protocol.js";
import { projectRoom, versionRoom } from "./rooms.js";

interface SocketScopes {
  socket: RealtimeSocket;
  /** Scope key (its room name) -> whether its follows hand lines over in batches. */
  scopes: Map<string, boolean>;
  /** Operations these scopes opened (or found followed already), with their version and project. */
  opened: Map<string, OperationScope>;
}

/**
 * Operations that finished lately, with the sockets that had them open, for the store read of a
 * new scope that still saw one running (finished between that read and its answer): a socket
 * that had it is not given it again, one that had not gets it whole. Only that window matters.
 */
const RECENTLY_FINISHED = 1024;

function scopeKey(request: ScopeRequest): string {
  return request.kind === "version" ? versionRoom(request.id) : projectRoom(request.id);
}

function scopeKeysOf(op: OperationScope): string[] {
  return [versionRoom(op.versionId), projectRoom(op.projectId)];
}

export class ScopeFollows {
  private readonly bySocket = new Map<string, SocketScopes>();
  /** Scope key -> ids of the sockets subscribed to it. */
  private readonly byScope = new Map<string, Set<string>>();
  private readonly recentlyFinished = new Map<string, Set<string>>();

  constructor(
    private readonly hub: LogHub,
    private readonly store: Pick<Store, "listOperations">,
  ) {}

  /** Subscribes the socket; resolves once the operations running now are followed. */
  async add(socket: RealtimeSocket, request: ScopeRequest): Promise<void> {
    const key = scopeKey(request);
    const batch = request.batch;
    let state = this.bySocket.get(socket.id);
    if (!state) {
      state = { socket, scopes: new Map(), opened: new Map() };
      this.bySocket.set(socket.id, state);
    }
    const isNew = !state.scopes.has(key);
    state.scopes.set(key, batch);
    let sockets = this.byScope.get(key);
    if (!sockets) {
      sockets = new Set();
      this.byScope.set(key, sockets);
    }
    sockets.add(socket.id);
    // Registered above, so an operation announced from now on is opened by `started`.
    let running: OperationRecord[];
    try {
      running = await this.store.listOperations({
        ...(request.kind === "version" ? { versionId: request.id } : { projectId: request.id }),
        status: ["running"],
      });
    } catch (error) {
      if (isNew) this.remove(socket.id, request);
      throw error;
    }
    // Disconnected or unsubscribed meanwhile: nothing to follow for it.
    if (this.bySocket.get(socket.id) !== state || !state.scopes.has(key)) return;
    for (const op of running) this.open(state, operationScope(op), batch);
  }

  /** Unsubscribes; closes the scope's follows of operations no other scope of the socket covers. */
  remove(socketId: string, request: ScopeRequest): void {
    const state = this.bySocket.get(socketId);
    if (!state) return;
    const key = scopeKey(request);
    state.scopes.delete(key);
    this.unindex(key, socketId);
    for (const [operationId, op] of state.opened) {
      if (scopeKeysOf(op).some((k) => state.scopes.has(k))) continue;
      state.opened.delete(operationId);
      const follow = this.hub.followOf(socketId, operationId);
      if (follow?.endsWithOperation) follow.close();
    }
    if (state.scopes.size === 0 && state.opened.size === 0) this.bySocket.delete(socketId);
  }

  /** An operation started here or on another replica. */
  started(op: OperationScope): void {
    for (const key of scopeKeysOf(op)) {
      for (const socketId of [...(this.byScope.get(key) ?? [])]) {
        const state = this.bySocket.get(socketId);
        if (state) this.open(state, op, state.scopes.get(key) ?? false);
      }
    }
  }

  /** An operation finished here or on another replica: its last line was announced before. */
  finished(op: OperationScope): void {
    let had = this.recentlyFinished.get(op.id);
    if (!had) {
      had = new Set();
      this.recentlyFinished.set(op.id, had);
      if (this.recentlyFinished.size > RECENTLY_FINISHED) {
        const oldest = this.recentlyFinished.keys().next().value;
        if (oldest !== undefined) this.recentlyFinished.delete(oldest);
      }
    }
    for (const key of scopeKeysOf(op)) {
      for (const socketId of this.byScope.get(key) ?? []) {
        // A finished operation never starts again: only a stale store read could open it.
        if (this.bySocket.get(socketId)?.opened.delete(op.id)) had.add(socketId);
      }
    }
    this.hub.operationFinished(op.id);
  }

  closeSocket(socketId: string): void {
    const state = this.bySocket.get(socketId);
    if (!state) return;
    for (const key of state.scopes.keys()) this.unindex(key, socketId);
    this.bySocket.delete(socketId);
  }

  private open(state: SocketScopes, op: OperationScope, batch: boolean): void {
    if (state.opened.has(op.id)) return;
    const finished = this.recentlyFinished.get(op.id);
    if (finished?.has(state.socket.id)) return;
    // Finished already (a stale store read): remembered there, not in `opened`, which `finished`
    // will not clean up again.
    if (finished) finished.add(state.socket.id);
    else state.opened.set(op.id, op);
    if (this.hub.followOf(state.socket.id, op.id)) return;
    const follow = this.hub.follow(state.socket, op.id, {
      since: 0,
      batch,
      endsWithOperation: true,
    });
    if (finished) follow.operationFinished();
  }

  private unindex(key: string, socketId: string): void {
    const sockets = this.byScope.get(key);
    if (!sockets) return;
    sockets.delete(socketId);
    if (sockets.size === 0) this.byScope.delete(key);
  }
}
