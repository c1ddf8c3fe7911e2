// Host label -> version -> service address, off the store and Docker, cached so the router's hot
// path is two Map lookups. The label index (every version's and routed service's host label) is
// rebuilt when a `version.updated` / `version.deleted` event says it changed, and at least every
// `ttlMs` in the background (another replica on the same MongoDB changes versions this bus never
// hears about; a project can be renamed). Service addresses are cached per (version, updatedAt,
// service): any change of the version gives a new key, and a failed connection forgets one.
import type { Logger } from "pino";
import type { EventBus } from "../deploy/events.js";
import type { Store } from "../store/store.js";
import type { VersionRecord } from "../store/types.js";
import { previewHostLabel } from "./preview-host.js";
import type { ServiceLocator, UpstreamAddress } from "./preview-upstream.js";

export type PreviewLookup =
  | { kind: "unknown"; label: string }
  /** Known, but not running: 503. */
  | { kind: "off"; project: string; version: VersionRecord; service?: string }
  /** Running, but the service has no published TCP port, or no container of it runs: 503. */
  | { kind: "unreachable"; project: string; version: VersionRecord; service: string }
  | {
      kind: "target";
      project: string;
      version: VersionRecord;
      service: string;
      address: UpstreamAddress;
      /** Pass to `forget` when the address stopped answering. */
      key: string;
    };

interface Route {
  project: string;
  version: VersionRecord;
  /** Set for `<service>--<version>--<project>`; unset: the primary service. */
  service?: string;
}

interface Index {
  routes: Map<string, Route>;
  projectNames: Map<string, string>;
  builtAt: number;
}

/** The version's primary service (docs/api.md): labelled, else the first with a TCP port. */
export function primaryService(version: VersionRecord): string | undefined {
  return version.primaryService ?? version.ports.find((p) => p.protocol === "tcp")?.service;
}

/** The first published TCP port of a service, as the router reaches it. */
function firstTcpTarget(version: VersionRecord, service: string): number | undefined {
  return version.ports.find((p) => p.service === service && p.protocol === "tcp")?.target;
}

export class PreviewTargets {
  private index: Index | undefined;
  private dirty = true;
  private building: Promise<Index> | undefined;
  private next: Promise<Index> | undefined;
  private readonly addresses = new Map<string, Promise<UpstreamAddress | undefined>>();
  private readonly ttlMs: number;
  private readonly onVersion = (v: VersionRecord) => {
    this.dirty = true;
    for (const key of this.addresses.keys()) {
      if (key.startsWith(`${v.id}|`)) this.addresses.delete(key);
    }
  };

  constructor(
    private readonly deps: {
      store: Store;
      bus: EventBus;
      locator: ServiceLocator;
      logger: Logger;
      ttlMs?: number;
    },
  ) {
    this.ttlMs = deps.ttlMs ?? 2000;
    deps.bus.on("version.updated", this.onVersion);
    deps.bus.on("version.deleted", this.onVersion);
  }

  close(): void {
    this.deps.bus.off("version.updated", this.onVersion);
    this.deps.bus.off("version.deleted", this.onVersion);
  }

  /** The project's name as of the last index build (synchronous: event payloads need it). */
  projectName(projectId: string): string | undefined {
    if (this.dirty) this.refreshSoon();
    return this.index?.projectNames.get(projectId);
  }

  /** Builds the index now (at start, so the first request and the first event find it). */
  async warm(): Promise<void> {
    await this.current();
  }

  async lookup(label: string): Promise<PreviewLookup> {
    const route = (await this.current()).routes.get(label);
    if (!route) return { kind: "unknown", label };
    const { project, version } = route;
    if (version.state !== "running") {
      return route.service === undefined
        ? { kind: "off", project, version }
        : { kind: "off", project, version, service: route.service };
    }
    const service = route.service ?? primaryService(version);
    const target = service === undefined ? undefined : firstTcpTarget(version, service);
    if (service === undefined || target === undefined) {
      return { kind: "unreachable", project, version, service: service ?? "" };
    }
    const key = `${version.id}|${version.updatedAt}|${service}`;
    let pending = this.addresses.get(key);
    if (!pending) {
      pending = this.deps.locator.locate(version.composeProject, service, target);
      this.addresses.set(key, pending);
      pending.then(
        (address) => {
          // Not running yet, or gone: ask Docker again next time.
          if (!address) this.addresses.delete(key);
        },
        (error: unknown) => {
          this.addresses.delete(key);
          this.deps.logger.warn(
            { err: error, version: version.name, service },
            "preview router could not ask Docker where the service is",
          );
        },
      );
    }
    const address = await pending;
    if (!address) return { kind: "unreachable", project, version, service };
    return { kind: "target", project, version, service, address, key };
  }

  forget(key: string): void {
    this.addresses.delete(key);
  }

  private async current(): Promise<Index> {
    const index = this.index;
    if (index && !this.dirty) {
      if (Date.now() - index.builtAt > this.ttlMs) this.refreshSoon();
      return index;
    }
    return this.rebuild();
  }

  private refreshSoon(): void {
    this.rebuild().catch((error: unknown) => {
      this.deps.logger.warn({ err: error }, "preview router could not read the versions");
    });
  }

  private rebuild(): Promise<Index> {
    if (this.building) {
      if (!this.dirty) return this.building;
      // Changed while a build reads the store: that build may have missed it, so build again.
      this.next ??= this.building
        .catch(() => undefined)
        .then(() => {
          this.next = undefined;
          return this.rebuild();
        });
      return this.next;
    }
    this.building = (async () => {
      this.dirty = false;
      try {
        const [projects, versions] = await Promise.all([
          this.deps.store.listProjects(),
          this.deps.store.listVersions(),
        ]);
        const projectNames = new Map(projects.map((p) => [p.id, p.name]));
        const routes = new Map<string, Route>();
        const live = new Set<string>();
        for (const version of versions) {
          const project = projectNames.get(version.projectId);
          if (project === undefined) continue;
          live.add(`${version.id}|${version.updatedAt}|`);
          // A version's own label wins over a service label that happens to spell the same.
          routes.set(previewHostLabel(project, version.name), { project, version });
        }
        for (const version of versions) {
          const project = projectNames.get(version.projectId);
          if (project === undefined) continue;
          for (const port of version.ports) {
            if (port.protocol !== "tcp") continue;
            const label = previewHostLabel(project, version.name, port.service);
            if (!routes.has(label)) routes.set(label, { project, version, service: port.service });
          }
        }
        for (const key of this.addresses.keys()) {
          if (!live.has(key.slice(0, key.lastIndexOf("|") + 1))) this.addresses.delete(key);
        }
        const built: Index = { routes, projectNames, builtAt: Date.now() };
        this.index = built;
        return built;
      } catch (error) {
        this.dirty = true;
        throw error;
      } finally {
        this.building = undefined;
      }
    })();
    return this.building;
  }
}
