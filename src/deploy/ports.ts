// What the runner needs from git and Docker Compose. The real implementations are git.ts and
// compose.ts; the runner depends on these shapes only, so each side can be read on its own.
import type { OutputStream } from "./run-command.js";
import type { VersionRef } from "../store/types.js";
import type { ComposeFlavor, ComposeModel } from "./compose-model.js";
import type { ContainerState } from "./health.js";

export interface RunIo {
  signal?: AbortSignal;
  onLine?: (stream: OutputStream, text: string) => void;
}

export interface GitPort {
  syncMirror(project: string, repoUrl: string, run: RunIo): Promise<{ cloned: boolean }>;
  resolveRef(project: string, ref: VersionRef, sha?: string): Promise<string>;
  checkout(project: string, version: string, sha: string, run: RunIo): Promise<string>;
  removeCheckout(project: string, version: string): Promise<void>;
  removeMirror(project: string): Promise<void>;
  checkoutDir(project: string, version: string): string;
}

export interface ComposeTarget extends RunIo {
  dir: string;
  file: string;
  projectName: string;
  env: Record<string, string>;
  /**
   * The version's rendered compose model (an absolute path dockbot wrote): set, compose runs
   * from it with the checkout as project directory instead of from `file`.
   */
  rendered?: string;
}

/** What `docker compose config` printed for a checkout, and which Compose printed it. */
export interface RenderedCompose {
  flavor: ComposeFlavor;
  model: ComposeModel;
}

export interface ComposePort {
  detect(): Promise<"v2" | "v1" | "missing">;
  dockerReachable(): Promise<boolean>;
  findComposeFile(dir: string, configured?: string): Promise<string>;
  /**
   * Renders the checkout's compose model with the project's env. Fails, with compose's own
   * message, when it does not render or uses a variable that is not set.
   */
  render(target: ComposeTarget): Promise<RenderedCompose>;
  /**
   * `up -d`: builds first unless `build` is false (a rollback to kept images: nothing is built,
   * a missing image fails the command).
   */
  up(target: ComposeTarget, opts?: { build?: boolean }): Promise<void>;
  down(target: ComposeTarget): Promise<void>;
  /** `services`: the project's services, so their `<project>-<service>` images go too. */
  remove(
    target: ComposeTarget & { keepVolumes: boolean; services?: readonly string[] },
  ): Promise<void>;
  /** Removes a project's objects by label when its checkout is gone. */
  removeByLabel(
    projectName: string,
    opts: { keepVolumes: boolean; images: boolean; services?: readonly string[] } & RunIo,
  ): Promise<void>;
  runningProjects(prefix?: string): Promise<Map<string, { running: number; total: number }>>;
  publishedPorts(projectName: string): Promise<Array<{ service: string; port: number }>>;
  /** Every container of a compose project (running or not), as `docker inspect` shows it. */
  inspectContainers(projectName: string, io?: RunIo): Promise<ContainerState[]>;
  /** The last `tail` lines a container wrote (stdout and stderr, in order). */
  containerLogs(containerId: string, tail: number, io?: RunIo): Promise<string[]>;
  /** Tags the image `source` (a reference) also as `target`. */
  tagImage(source: string, target: string, io?: RunIo): Promise<void>;
  /** Every `repository:tag` the engine holds of these repositories. */
  imageTags(repos: readonly string[], io?: RunIo): Promise<string[]>;
  /**
   * Removes these image tags (never forced): an image goes with its last tag unless a container
   * uses it, then the command fails after removing what it could.
   */
  removeImageTags(refs: readonly string[], io?: RunIo): Promise<void>;
}
