// Disk hygiene (docs/api.md, "Disk hygiene"): when the Docker data root
// or the data dir has less free space than the rule asks, dockbot removes what it owns and no
// version needs: images it built that no container uses and no version keeps
// (hygiene-rules.ts says which), and dangling build cache (`docker builder prune -f`). It says
// so in its log, with what it removed and the space won. Checked every few minutes and after
// each finished operation; one check at a time, a check asked for meanwhile runs once after it.
import type { Logger } from "pino";
import type { Store } from "../store/store.js";
import { minFreeBytes, type FreeSpaceRule } from "./byte-sizes.js";
import type { DiskFree, DiskProbe, DockerDisk, FreeSpace } from "./disk.js";
import type { EventBus } from "./events.js";
import { imagesToRemove } from "./hygiene-rules.js";
import { CommandError } from "./run-command.js";

export interface HygieneOptions {
  store: Pick<Store, "listVersions">;
  docker: Pick<DockerDisk, "images" | "containerImageIds" | "removeImage" | "pruneBuildCache">;
  probe: DiskProbe;
  minFree: FreeSpaceRule;
  logger: Logger;
  /** Subscribed to "operation.finished" by start(). */
  bus?: Pick<EventBus, "on" | "off">;
  /** dockbot's compose projects start with this (names.ts); default `dockbot-`. */
  prefix?: string;
  now?: () => number;
  /** Between checks; default 5 minutes. */
  intervalMs?: number;
  /** Images built less than this long ago stay; default 15 minutes. */
  graceMs?: number;
  /**
   * Cleanups at most this often while space stays low (each finished operation asks for a
   * check, and a cleanup lists every image); default 1 minute.
   */
  minGapMs?: number;
}

export interface HygieneReport {
  /** Free space was below the rule, so dockbot cleaned up. */
  acted: boolean;
  before: DiskFree;
  after?: DiskFree;
  /** `docker rmi` arguments of each image removed. */
  removed: string[][];
  /** Images that could not be removed (in use since, or removed by someone else), and why. */
  failed: Array<{ refs: string[]; error: string }>;
  imageBytes: number;
  buildCacheBytes: number;
}

export interface Hygiene {
  check(): Promise<HygieneReport>;
  start(): void;
  stop(): Promise<void>;
}

function low(space: FreeSpace | null, rule: FreeSpaceRule): boolean {
  return space !== null && space.freeBytes < minFreeBytes(rule, space.totalBytes);
}

export function createHygiene(opts: HygieneOptions): Hygiene {
  const log = opts.logger.child({ component: "hygiene" });
  const now = opts.now ?? Date.now;
  const prefix = opts.prefix ?? "dockbot-";
  const graceMs = opts.graceMs ?? 15 * 60_000;
  let running: Promise<HygieneReport> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let lastClean = -Infinity;

  async function clean(before: DiskFree): Promise<HygieneReport> {
    const report: HygieneReport = {
      acted: true,
      before,
      removed: [],
      failed: [],
      imageBytes: 0,
      buildCacheBytes: 0,
    };
    const [images, inUse, versions] = await Promise.all([
      opts.docker.images(),
      opts.docker.containerImageIds(),
      opts.store.listVersions(),
    ]);
    const removals = imagesToRemove({ images, inUse, versions, prefix, now: now(), graceMs });
    for (const { image, refs } of removals) {
      try {
        for (const ref of refs) await opts.docker.removeImage(ref);
        report.removed.push(refs);
        report.imageBytes += image.sizeBytes;
      } catch (error) {
        // A container started on it meanwhile, or someone removed it first: it stays (or is
        // gone already), and the next check looks again.
        if (!(error instanceof CommandError)) throw error;
        report.failed.push({ refs, error: error.message });
      }
    }
    try {
      report.buildCacheBytes = await opts.docker.pruneBuildCache();
    } catch (error) {
      if (!(error instanceof CommandError)) throw error;
      report.failed.push({ refs: ["build cache"], error: error.message });
    }
    report.after = await opts.probe.free();
    lastClean = now();
    const won = (a?: FreeSpace | null, b?: FreeSpace | null) =>
      a && b ? Math.max(0, b.freeBytes - a.freeBytes) : undefined;
    log[report.removed.length > 0 ? "info" : "warn"](
      {
        removedImages: report.removed.map((refs) => refs.join(" ")),
        imageBytes: report.imageBytes,
        buildCacheBytes: report.buildCacheBytes,
        dockerFreeBefore: before.docker?.freeBytes ?? null,
        dockerFreeAfter: report.after.docker?.freeBytes ?? null,
        dockerBytesWon: won(before.docker, report.after.docker) ?? null,
        dataFreeAfter: report.after.data?.freeBytes ?? null,
        failed: report.failed,
      },
      `disk hygiene: free space below DOCKBOT_DISK_MIN_FREE; removed ${report.removed.length} image(s) no version needs and dangling build cache`,
    );
    return report;
  }

  async function checkOnce(): Promise<HygieneReport> {
    const before = await opts.probe.free();
    const tooSoon = now() - lastClean < (opts.minGapMs ?? 60_000);
    if (tooSoon || (!low(before.docker, opts.minFree) && !low(before.data, opts.minFree))) {
      return {
        acted: false,
        before,
        removed: [],
        failed: [],
        imageBytes: 0,
        buildCacheBytes: 0,
      };
    }
    return clean(before);
  }

  function check(): Promise<HygieneReport> {
    if (running) {
      again = true;
      return running;
    }
    running = checkOnce().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        background();
      }
    });
    return running;
  }

  function background(): void {
    check().then(
      () => undefined,
      (error: unknown) => log.error({ err: error }, "disk hygiene check failed"),
    );
  }

  return {
    check,
    start() {
      background();
      timer = setInterval(background, opts.intervalMs ?? 5 * 60_000);
      timer.unref();
      opts.bus?.on("operation.finished", background);
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      opts.bus?.off("operation.finished", background);
      again = false;
      // A failed check was logged by background(); stop only waits for it to end.
      await running?.then(
        () => undefined,
        () => undefined,
      );
    },
  };
}
