// Each version's disk use for the dashboard (docs/api.md, "Disk use per version"): its images,
// its volumes and its checkout. Measured in the background, per project, when its page is looked
// at and the last figures are older than `maxAgeMs` (or an operation of it finished since), and
// kept in memory: the page shows the last figures and never waits for Docker or the disk. The
// engine-wide answers (`docker system df -v`, the image list) are shared by the projects
// measured within `engineTtlMs`. Nobody looking costs nothing, whatever the number of versions.
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import type { Store } from "../store/store.js";
import type { OperationRecord, VersionRecord } from "../store/types.js";
import { imageRepoOf } from "./deploy-history.js";
import type { DockerDisk, EngineUsage, ImageInfo } from "./disk.js";
import type { EventBus } from "./events.js";

export interface VersionDiskUse {
  imagesBytes: number;
  volumesBytes: number;
  checkoutBytes: number;
  totalBytes: number;
  /** When it was measured (ISO). */
  measuredAt: string;
}

/** Bytes a directory tree takes on disk (allocated blocks; symlinks not followed). */
export async function treeBytes(dir: string): Promise<number> {
  let info;
  try {
    info = await lstat(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
  let total = info.blocks * 512;
  if (!info.isDirectory()) return total;
  for (const name of await readdir(dir)) total += await treeBytes(path.join(dir, name));
  return total;
}

export interface DiskUsageOptions {
  store: Pick<Store, "listVersions" | "getProject">;
  docker: Pick<DockerDisk, "images" | "usage">;
  /** The checkout directory of a version (git.ts). */
  checkoutDir: (project: string, version: string) => string;
  logger: Logger;
  bus?: Pick<EventBus, "on" | "off">;
  now?: () => number;
  /** Figures older than this are measured again when the page is looked at; default 10 min. */
  maxAgeMs?: number;
  /** How long the engine's image list and sizes are reused across projects; default 60 s. */
  engineTtlMs?: number;
}

export interface DiskUsage {
  /**
   * The last figures of a project's versions, by version id; asks for a background measurement
   * of the project when they are missing or stale. Never waits.
   */
  forProject(projectId: string): (versionId: string) => VersionDiskUse | undefined;
  /** Measures a project's versions now (a measurement of it under way is joined). */
  refresh(projectId: string): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

interface ProjectFigures {
  at: number;
  stale: boolean;
  versions: Map<string, VersionDiskUse>;
}

export function createDiskUsage(opts: DiskUsageOptions): DiskUsage {
  const log = opts.logger.child({ component: "disk-usage" });
  const now = opts.now ?? Date.now;
  const maxAgeMs = opts.maxAgeMs ?? 10 * 60_000;
  const engineTtlMs = opts.engineTtlMs ?? 60_000;
  const figures = new Map<string, ProjectFigures>();
  const inFlight = new Map<string, Promise<void>>();
  let engine: { at: number; value: Promise<[ImageInfo[], EngineUsage]> } | undefined;
  // Measurements are asked for only between start() and stop() (a dockbot that serves).
  let started = false;

  function engineFacts(): Promise<[ImageInfo[], EngineUsage]> {
    if (!engine || now() - engine.at > engineTtlMs) {
      const value = Promise.all([opts.docker.images(), opts.docker.usage()]);
      engine = { at: now(), value };
      // A failed answer is not reused.
      value.catch(() => {
        if (engine?.value === value) engine = undefined;
      });
    }
    return engine.value;
  }

  async function measure(projectId: string): Promise<void> {
    const project = await opts.store.getProject(projectId);
    if (project === undefined) {
      figures.delete(projectId);
      return;
    }
    const [versions, [images, usage]] = await Promise.all([
      opts.store.listVersions(projectId),
      engineFacts(),
    ]);
    const measuredAt = new Date(now()).toISOString();
    const out = new Map<string, VersionDiskUse>();
    for (const v of versions) {
      const imagesBytes = imagesOf(v, images).reduce(
        (n, id) => n + (usage.imageUniqueBytes.get(id) ?? 0),
        0,
      );
      const volumesBytes = usage.volumes
        .filter(
          (vol) =>
            vol.composeProject === v.composeProject || vol.name.startsWith(`${v.composeProject}_`),
        )
        .reduce((n, vol) => n + vol.bytes, 0);
      const checkoutBytes = await treeBytes(opts.checkoutDir(project.name, v.name));
      out.set(v.id, {
        imagesBytes,
        volumesBytes,
        checkoutBytes,
        totalBytes: imagesBytes + volumesBytes + checkoutBytes,
        measuredAt,
      });
    }
    figures.set(projectId, { at: now(), stale: false, versions: out });
  }

  function refresh(projectId: string): Promise<void> {
    let running = inFlight.get(projectId);
    if (!running) {
      running = measure(projectId).finally(() => inFlight.delete(projectId));
      inFlight.set(projectId, running);
    }
    return running;
  }

  const onFinished = (op: OperationRecord) => {
    const known = figures.get(op.projectId);
    if (known) known.stale = true;
  };

  return {
    forProject(projectId) {
      const known = figures.get(projectId);
      if (started && (!known || known.stale || now() - known.at > maxAgeMs)) {
        refresh(projectId).then(
          () => undefined,
          (error: unknown) =>
            log.warn({ err: error, projectId }, "measuring versions' disk use failed"),
        );
      }
      return (versionId) => known?.versions.get(versionId);
    },
    refresh,
    start() {
      started = true;
      opts.bus?.on("operation.finished", onFinished);
    },
    async stop() {
      started = false;
      opts.bus?.off("operation.finished", onFinished);
      // A failed measurement was logged when it was asked for; stop only waits for them to end.
      await Promise.all(
        [...inFlight.values()].map((p) =>
          p.then(
            () => undefined,
            () => undefined,
          ),
        ),
      );
    },
  };
}

/** Ids of the images of a version: labelled with its compose project or named after it. */
function imagesOf(v: Pick<VersionRecord, "composeProject">, images: ImageInfo[]): string[] {
  const own = (ref: string) => {
    const repo = imageRepoOf(ref);
    return repo.startsWith(`${v.composeProject}-`) || repo.startsWith(`${v.composeProject}_`);
  };
  return images
    .filter((i) => i.composeProject === v.composeProject || i.repoTags.some(own))
    .map((i) => i.id);
}
