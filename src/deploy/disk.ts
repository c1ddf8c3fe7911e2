// Disk facts: free space of the Docker data root and of dockbot's data dir (`disk` in
// GET /api/health, docs/api.md "Routes"), and the engine's images, build cache and per-object
// sizes that disk hygiene (hygiene.ts) and each version's disk use (disk-usage.ts) work from.
// compose.ts runs compose and the per-project docker commands; the engine-wide `docker`
// queries about disk live here, through the same runCommand (argv arrays, a timeout each).
import { statfs } from "node:fs/promises";
import { CommandError, runCommand } from "./run-command.js";

const PROJECT_LABEL = "com.docker.compose.project";

/** Free and total bytes of a file system, as `df` counts them (blocks free to non-root users). */
export interface FreeSpace {
  freeBytes: number;
  totalBytes: number;
}

/** `disk` of GET /api/health: null where the path is not visible to dockbot. */
export interface DiskFree {
  docker: FreeSpace | null;
  data: FreeSpace | null;
}

const NOT_VISIBLE = new Set(["ENOENT", "ENOTDIR", "EACCES", "EPERM"]);

/** Free space of the file system holding `dir`; null when dockbot cannot see that path. */
export async function freeSpaceOf(dir: string): Promise<FreeSpace | null> {
  try {
    const s = await statfs(dir);
    return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
  } catch (error) {
    if (NOT_VISIBLE.has((error as NodeJS.ErrnoException).code ?? "")) return null;
    throw error;
  }
}

const DOCKER_UNITS: Record<string, number> = { "": 0, k: 1, K: 1, M: 2, G: 3, T: 4, P: 5 };

/**
 * Bytes of a size as the docker CLI prints it (`1.982MB`, `6B`, `3.2kB`): go-units' HumanSize,
 * decimal units. undefined for anything else.
 */
export function parseDockerSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kKMGTP]?)B$/.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * 1000 ** (DOCKER_UNITS[m[2] ?? ""] ?? 0));
}

/** An image as the engine describes it. */
export interface ImageInfo {
  /** `sha256:...` */
  id: string;
  /** `repo:tag` references (empty for a dangling image). */
  repoTags: string[];
  /** The `com.docker.compose.project` label (Compose v2 with BuildKit puts it on builds). */
  composeProject?: string;
  sizeBytes: number;
  /** When it was built (ms since the epoch; 0 when unknown). */
  createdAt: number;
}

/** What `docker system df -v` says each image and volume takes. */
export interface EngineUsage {
  /** Image id to the bytes only that image holds (layers shared with others not counted). */
  imageUniqueBytes: Map<string, number>;
  volumes: Array<{ name: string; composeProject?: string; bytes: number }>;
}

export interface DockerDisk {
  /** The engine's DockerRootDir; undefined while the engine does not answer. */
  rootDir(): Promise<string | undefined>;
  images(): Promise<ImageInfo[]>;
  /** Ids of the images of every container, running or not. */
  containerImageIds(): Promise<Set<string>>;
  /** `docker rmi` without force: fails when a container uses it. */
  removeImage(ref: string): Promise<void>;
  /** `docker builder prune -f` (dangling build cache only); the bytes it says it reclaimed. */
  pruneBuildCache(): Promise<number>;
  usage(): Promise<EngineUsage>;
}

function lines(stdout: string): string[] {
  return stdout.split("\n").filter((l) => l.trim() !== "");
}

/** Labels as `docker system df -v` prints them: `a=b,c=d`. */
function labelOf(labels: string, name: string): string | undefined {
  for (const pair of labels.split(",")) {
    const at = pair.indexOf("=");
    if (at > 0 && pair.slice(0, at) === name) return pair.slice(at + 1);
  }
  return undefined;
}

export function createDockerDisk(opts: { queryTimeoutSeconds?: number } = {}): DockerDisk {
  const timeoutMs = (opts.queryTimeoutSeconds ?? 60) * 1000;
  const docker = async (args: string[]): Promise<string[]> =>
    lines((await runCommand("docker", args, { signal: AbortSignal.timeout(timeoutMs) })).stdout);

  return {
    async rootDir() {
      try {
        const [dir] = await docker(["info", "--format", "{{.DockerRootDir}}"]);
        return dir?.trim() || undefined;
      } catch (error) {
        if (error instanceof CommandError) return undefined;
        throw error;
      }
    },

    async images() {
      const ids = [...new Set(await docker(["images", "-q", "--no-trunc"]))];
      if (ids.length === 0) return [];
      const format = `{{.Id}}\t{{json .RepoTags}}\t{{index .Config.Labels "${PROJECT_LABEL}"}}\t{{.Size}}\t{{.Created}}`;
      const rows = await docker(["image", "inspect", "--format", format, ...ids]);
      return rows.map((row) => {
        const [id = "", tags = "[]", project = "", size = "0", created = ""] = row.split("\t");
        const image: ImageInfo = {
          id,
          repoTags: (JSON.parse(tags) as string[] | null) ?? [],
          sizeBytes: Number(size) || 0,
          createdAt: Date.parse(created) || 0,
        };
        if (project !== "" && project !== "<no value>") image.composeProject = project;
        return image;
      });
    },

    async containerImageIds() {
      const ids = await docker(["ps", "-a", "-q", "--no-trunc"]);
      if (ids.length === 0) return new Set();
      return new Set(
        await docker(["inspect", "--type", "container", "--format", "{{.Image}}", ...ids]),
      );
    },

    async removeImage(ref) {
      await docker(["rmi", ref]);
    },

    async pruneBuildCache() {
      const out = await docker(["builder", "prune", "-f"]);
      // 20.10: "Total reclaimed space: 1.2GB"; newer: "Total:\t1.2GB".
      const m = /([\d.]+\s*[kKMGTP]?B)\s*$/.exec(out.at(-1) ?? "");
      return (m && parseDockerSize(m[1] ?? "")) ?? 0;
    },

    async usage() {
      const json = (await docker(["system", "df", "-v", "--format", "{{json .}}"])).join("\n");
      const df = JSON.parse(json) as {
        Images?: Array<{ ID?: string; UniqueSize?: string }> | null;
        Volumes?: Array<{ Name?: string; Labels?: string; Size?: string }> | null;
      };
      const imageUniqueBytes = new Map<string, number>();
      for (const i of df.Images ?? []) {
        if (i.ID) imageUniqueBytes.set(i.ID, parseDockerSize(i.UniqueSize ?? "") ?? 0);
      }
      const volumes = (df.Volumes ?? []).map((v) => {
        const project = labelOf(v.Labels ?? "", PROJECT_LABEL);
        return {
          name: v.Name ?? "",
          ...(project === undefined ? {} : { composeProject: project }),
          bytes: parseDockerSize(v.Size ?? "") ?? 0,
        };
      });
      return { imageUniqueBytes, volumes };
    },
  };
}

/** How long a failed DockerRootDir lookup is not asked again. */
const ROOT_DIR_RETRY_MS = 30_000;

export interface DiskProbe {
  free(): Promise<DiskFree>;
}

/**
 * Free space of the Docker data root and the data dir. The root dir is asked of the engine once
 * (then cached; while the engine does not answer, again at most every 30 s); statfs itself is a
 * cheap system call. The Docker figure is null when the engine is not on this machine's file
 * systems as dockbot sees them: a remote engine (`engineLocal` false, e.g. DOCKER_HOST=tcp://...)
 * or a DockerRootDir path that does not exist here (dockbot in a container without it mounted at
 * the same path).
 */
export function createDiskProbe(opts: {
  docker: Pick<DockerDisk, "rootDir">;
  dataDir: string;
  engineLocal: boolean;
  now?: () => number;
}): DiskProbe {
  const now = opts.now ?? Date.now;
  let root: string | undefined;
  let askedAt = -Infinity;
  let asking: Promise<string | undefined> | undefined;

  async function rootDir(): Promise<string | undefined> {
    if (root !== undefined) return root;
    if (now() - askedAt < ROOT_DIR_RETRY_MS) return undefined;
    asking ??= opts.docker.rootDir().finally(() => {
      askedAt = now();
      asking = undefined;
    });
    root = await asking;
    return root;
  }

  return {
    async free() {
      const dockerRoot = opts.engineLocal ? await rootDir() : undefined;
      const [docker, data] = await Promise.all([
        dockerRoot === undefined ? null : freeSpaceOf(dockerRoot),
        freeSpaceOf(opts.dataDir),
      ]);
      return { docker, data };
    },
  };
}
