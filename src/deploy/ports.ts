// What the runner needs from git and Docker Compose. The real implementations are git.ts and
// compose.ts; the runner depends on these shapes only, so each side can be read on its own.
import type { OutputStream } from "./run-command.js";
import type { VersionRef } from "../store/types.js";

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
}

export interface ComposePort {
  detect(): Promise<"v2" | "v1" | "missing">;
  dockerReachable(): Promise<boolean>;
  findComposeFile(dir: string, configured?: string): Promise<string>;
  up(target: ComposeTarget): Promise<void>;
  down(target: ComposeTarget): Promise<void>;
  remove(target: ComposeTarget & { keepVolumes: boolean }): Promise<void>;
  /** Removes a project's objects by label when its checkout is gone. */
  removeByLabel(
    projectName: string,
    opts: { keepVolumes: boolean; images: boolean } & RunIo,
  ): Promise<void>;
  runningProjects(prefix?: string): Promise<Map<string, { running: number; total: number }>>;
  publishedPorts(projectName: string): Promise<Array<{ service: string; port: number }>>;
}
