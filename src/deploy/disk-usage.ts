// Each version's disk use for the dashboard (docs/api.md, "Disk use per version"): its images, its
// volumes and its checkout. Measured in the background (`docker system df -v` and a walk of the
// checkout), kept in memory, and read by the project page from that cache: the page never waits
// for Docker or the disk.
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import type { Store } from "../store/store.js";
import type { VersionRecord } from "../store/types.js";
import type { DockerDisk } from "./disk.js";
import type { EventBus } from "./events.js";
import { imageRepoOf } from "./deploy-history.js";

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
  store: Pick<Store, "listVersions" | "listProjects">;
  docker: Pick<DockerDisk, "images" | "usage">;
  /** The checkout directory of a version (git.ts). */
  checkoutDir: (project: string, version: string) => string;
  logger: Logger;
  bus?: Pick<EventBus, "on" | "off">;
  now?: () => number;
  /** Between measurements; default 10 minutes. */
  intervalMs?: number;
  /** After a finished operation, measure again this much later (coalesced); default 30 s. */
  settleMs?: number;
}

export interface DiskUsage {
  /** The last measurement of a version; undefined until one was made. */
  get(versionId: string): VersionDiskUse | undefined;
  /** Measures every version now (a measurement under way is joined). */
  refresh(): Promise<void>;
  start(): void;
  stop(): Promise<void>;
}

export function createDiskUsage(opts: DiskUsageOptions): DiskUsage {
  const log = opts.logger.child({ component: "disk-usage" });
  const now = opts.now ?? Date.now;
  let figures = new Map<string, VersionDiskUse>();
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let settle: NodeJS.Timeout | undefined;

  async function measure(): Promise<void> {
    const [versions, projects, images, usage] = await Promise.all([
      opts.store.listVersions(),
      opts.store.listProjects(),
      opts.docker.images(),
      opts.docker.usage(),
    ]);
    const projectName = new Map(projects.map((p) => [p.id, p.name]));
    const measuredAt = new Date(now()).toISOString();
    const next = new Map<string, VersionDiskUse>();
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
      const project = projectName.get(v.projectId);
      const checkoutBytes =
        project === undefined ? 0 : await treeBytes(opts.checkoutDir(project, v.name));
      next.set(v.id, {
        imagesBytes,
        volumesBytes,
        checkoutBytes,
        totalBytes: imagesBytes + volumesBytes + checkoutBytes,
        measuredAt,
      });
    }
    figures = next;
  }

  function refresh(): Promise<void> {
    running ??= measure().finally(() => {
      running = undefined;
    });
    return running;
  }

  function background(): void {
    refresh().then(
      () => undefined,
      (error: unknown) => log.warn({ err: error }, "measuring versions' disk use failed"),
    );
  }

  const soon = () => {
    if (settle) return;
    settle = setTimeout(() => {
      settle = undefined;
      background();
    }, opts.settleMs ?? 30_000);
    settle.unref();
  };

  return {
    get: (versionId) => figures.get(versionId),
    refresh,
    start() {
      soon();
      timer = setInterval(background, opts.intervalMs ?? 10 * 60_000);
      timer.unref();
      opts.bus?.on("operation.finished", soon);
    },
    async stop() {
      if (timer) clearInterval(timer);
      if (settle) clearTimeout(settle);
      timer = settle = undefined;
      opts.bus?.off("operation.finished", soon);
      // A failed measurement was logged by background(); stop only waits for it to end.
      await running?.then(
        () => undefined,
        () => undefined,
      );
    },
  };
}

/** Ids of the images of a version: labelled with its compose project or named after it. */
function imagesOf(
  v: Pick<VersionRecord, "composeProject">,
  images: Awaited<ReturnType<DockerDisk["images"]>>,
): string[] {
  const own = (ref: string) => {
    const repo = imageRepoOf(ref);
    return repo.startsWith(`${v.composeProject}-`) || repo.startsWith(`${v.composeProject}_`);
  };
  return images
    .filter((i) => i.composeProject === v.composeProject || i.repoTags.some(own))
    .map((i) => i.id);
}
