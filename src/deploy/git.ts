// The git side of deploys: one bare mirror per project, one checkout per version.
//
//   <dataDir>/repos/<project>.git            `git clone --mirror` once, then `git fetch --prune`
//   <dataDir>/checkouts/<project>/<version>  a worktree of the mirror, detached at the exact SHA
//   <dataDir>/known_hosts                    dockbot's own host keys (DOCKBOT_SSH_STRICT)
//
// Invariants:
// - Every value that reaches git (URL, ref, SHA, project and version names) is validated here
//   first and passed after `--` where git allows it; git runs from an argv array, never a shell.
// - Only ssh and https transports run (GIT_ALLOW_PROTOCOL), so `ext::` and `file://` never do.
// - Operations on one project's mirror and checkouts run one at a time in this process: two
//   concurrent fetches into one mirror fail on ref locks, and a worktree add during a prune races.
// - Failures are a GitError whose message is one readable line without secrets.
// Worktrees rather than clones: a checkout shares the mirror's objects (no copy per version) and
// its `.git` is a one-line file, so `docker build .` does not send the history to the daemon.
import { randomBytes } from "node:crypto";
import { mkdir, readdir, realpath, rename, rm, stat } from "node:fs/promises";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { AppError } from "../errors.js";
import type { VersionRef } from "../store/types.js";
import { isValidRepoUrl } from "./input-rules.js";
import { isSlug, isValidRefName, SHA_PATTERN } from "./names.js";
import type { GitPort } from "./ports.js";
import { CommandError, runCommand } from "./run-command.js";
import type { OutputStream } from "./run-command.js";

export type SshStrict = "accept-new" | "yes";

export interface GitOptions {
  dataDir: string;
  privateKeyPath: string;
  sshStrict: SshStrict;
}

export interface GitRunOptions {
  signal?: AbortSignal;
  onLine?: (stream: OutputStream, text: string) => void;
}

/** What went wrong, for callers that react differently (e.g. retry only `unreachable`). */
export type GitFailure =
  "invalid" | "unreachable" | "auth" | "host-key" | "not-found" | "canceled" | "failed";

export class GitError extends AppError {
  override readonly name = "GitError";
  constructor(
    readonly reason: GitFailure,
    message: string,
    readonly exitCode?: number,
    options?: { cause?: unknown },
  ) {
    super("unprocessable", message, undefined, options);
  }
}

// The rule lives with the API's other input rules (docs/api.md `repoUrl`).
export { isValidRepoUrl } from "./input-rules.js";

/** `https://user:secret@host` -> `https://user:***@host` in anything shown to a user. */
function redactUrlCredentials(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*):[^@\s/]*@/gi, "$1:***@");
}

function hostOf(url: string): string {
  const ssh = /^ssh:\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/]+)/.exec(url);
  if (ssh?.[1]) return ssh[1];
  const bracket = /^\[(?:[^@\]]*@)?([^:\]]+)/.exec(url);
  if (bracket?.[1]) return bracket[1];
  if (url.startsWith("https://")) {
    try {
      return new URL(url).hostname;
    } catch {
      return url;
    }
  }
  return /^(?:[^@:]*@)?([^:]+):/.exec(url)?.[1] ?? url;
}

/**
 * One SSH connection per Git host, kept for a minute and shared by the fetches that follow, so
 * a redeploy does not pay the SSH handshake again. The socket lives in the data dir's ssh/
 * folder (mode 0700); a data dir too deep for a Unix socket path (108 bytes, and ssh adds a
 * temporary suffix) simply goes without sharing.
 */
function connectionSharing(dataDir: string): string[] {
  const socket = path.join(dataDir, "ssh", "cm-%C");
  if (socket.length - 2 + 40 + 20 > 100) return [];
  // ssh refuses to connect at all when it cannot create the socket's folder.
  mkdirSync(path.dirname(socket), { recursive: true, mode: 0o700 });
  return ["-o ControlMaster=auto", `-o ControlPath=${shellQuote(socket)}`, "-o ControlPersist=60"];
}

/** For GIT_SSH_COMMAND, which git hands to `sh -c`. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

const SUBCOMMANDS = new Set([
  "clone",
  "fetch",
  "remote",
  "worktree",
  "checkout",
  "clean",
  "rev-parse",
  "config",
  "cat-file",
]);
const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const MR_IID = /^[1-9][0-9]{0,9}$/;

/** A rejected value quoted for a one-line message: control characters escaped, long ones cut. */
function quoted(value: string): string {
  const cut = value.length > 100 ? `${value.slice(0, 100)}...` : value;
  // eslint-disable-next-line no-control-regex
  return /[\x00-\x1f\x7f']/.test(cut) ? JSON.stringify(cut) : `'${cut}'`;
}

function assertName(kind: "project" | "version", value: string): void {
  if (!isSlug(value))
    throw new GitError(
      "invalid",
      `invalid ${kind} name ${quoted(value)}: expected a slug like my-app`,
    );
}

export function createGit(options: GitOptions): GitRepos {
  return new GitRepos(options);
}

export class GitRepos implements GitPort {
  readonly dataDir: string;
  readonly knownHostsPath: string;
  private readonly env: Record<string, string>;
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(options: GitOptions) {
    this.dataDir = path.resolve(options.dataDir);
    this.knownHostsPath = path.join(this.dataDir, "known_hosts");
    const ssh = [
      "ssh",
      `-i ${shellQuote(path.resolve(options.privateKeyPath))}`,
      "-o IdentitiesOnly=yes",
      "-o BatchMode=yes",
      `-o UserKnownHostsFile=${shellQuote(this.knownHostsPath)}`,
      `-o StrictHostKeyChecking=${options.sshStrict === "yes" ? "yes" : "accept-new"}`,
      "-o ConnectTimeout=20",
      // Plain host names, so an admin can read the file and remove a line (Debian hashes by default).
      "-o HashKnownHosts=no",
      ...connectionSharing(this.dataDir),
    ].join(" ");
    this.env = {
      GIT_SSH_COMMAND: ssh,
      GIT_SSH_VARIANT: "ssh",
      GIT_TERMINAL_PROMPT: "0",
      // The only transports a deploy needs; `ext::` would run an arbitrary command.
      GIT_ALLOW_PROTOCOL: "ssh:https",
    };
  }

  mirrorPath(project: string): string {
    assertName("project", project);
    return path.join(this.dataDir, "repos", `${project}.git`);
  }

  checkoutDir(project: string, version: string): string {
    assertName("project", project);
    assertName("version", version);
    return path.join(this.dataDir, "checkouts", project, version);
  }

  /** Clones the mirror the first time, then fetches (with prune) into it. */
  async syncMirror(
    project: string,
    repoUrl: string,
    run: GitRunOptions = {},
  ): Promise<{ cloned: boolean }> {
    const mirror = this.mirrorPath(project);
    if (!isValidRepoUrl(repoUrl)) {
      throw new GitError(
        "invalid",
        `invalid repository URL ${quoted(redactUrlCredentials(repoUrl))}: use git@host:group/app.git, ssh://git@host:2222/group/app.git or https://`,
      );
    }
    return this.withLock(project, async () => {
      // ssh writes known_hosts but does not create the folder around it.
      await mkdir(this.dataDir, { recursive: true });
      if (await this.isMirror(mirror)) {
        const current = await this.configGet(mirror, "remote.origin.url");
        if (current !== repoUrl) {
          await this.git(
            ["--git-dir", mirror, "remote", "set-url", "origin", "--", repoUrl],
            repoUrl,
          );
        }
        await this.git(
          ["--git-dir", mirror, "-c", "gc.autoDetach=false", "fetch", "--prune", "origin"],
          repoUrl,
          run,
        );
        return { cloned: false };
      }
      await rm(mirror, { recursive: true, force: true });
      await mkdir(path.dirname(mirror), { recursive: true });
      // Cloned beside and renamed into place, so a clone killed halfway never looks like a mirror.
      const tmp = `${mirror}.tmp-${randomBytes(6).toString("hex")}`;
      try {
        await this.git(["clone", "--mirror", "--", repoUrl, tmp], repoUrl, run);
        await rename(tmp, mirror);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
      return { cloned: true };
    });
  }

  /**
   * The full SHA a ref points to in the mirror (sync first). With `sha`, checks that this commit
   * exists in the mirror and returns it in full instead.
   */
  async resolveRef(project: string, ref: VersionRef, sha?: string): Promise<string> {
    const mirror = this.mirrorPath(project);
    const url = await this.requireMirror(project, mirror);
    if (sha !== undefined) {
      if (!SHA_PATTERN.test(sha))
        throw new GitError("invalid", `invalid commit SHA ${quoted(sha)}`);
      return this.resolveCommit(mirror, sha, `commit ${sha} not found in ${url}`);
    }
    switch (ref.type) {
      case "branch":
      case "tag": {
        if (!isValidRefName(ref.name))
          throw new GitError("invalid", `invalid ${ref.type} name ${quoted(ref.name)}`);
        const full = `refs/${ref.type === "branch" ? "heads" : "tags"}/${ref.name}`;
        return this.revParseCommit(mirror, full, `${ref.type} '${ref.name}' not found in ${url}`);
      }
      case "mergeRequest": {
        if (!MR_IID.test(ref.name))
          throw new GitError("invalid", `invalid merge request iid ${quoted(ref.name)}`);
        const full = `refs/merge-requests/${ref.name}/head`;
        return this.revParseCommit(mirror, full, `merge request !${ref.name} not found in ${url}`);
      }
      case "commit": {
        if (!SHA_PATTERN.test(ref.name))
          throw new GitError("invalid", `invalid commit SHA ${quoted(ref.name)}`);
        return this.resolveCommit(mirror, ref.name, `commit ${ref.name} not found in ${url}`);
      }
    }
  }

  /**
   * What a name the API received is in the mirror: a branch (preferred, like GitLab's UI), a tag,
   * or a commit hash. Undefined when the mirror does not know it or was never synced; never throws
   * for a bad name (the caller validates and answers 400).
   */
  async classifyRef(project: string, name: string): Promise<VersionRef["type"] | undefined> {
    if (!isSlug(project)) return undefined;
    const mirror = this.mirrorPath(project);
    if (!(await this.isMirror(mirror))) return undefined;
    if (isValidRefName(name)) {
      for (const [type, prefix] of [
        ["branch", "refs/heads/"],
        ["tag", "refs/tags/"],
      ] as const) {
        try {
          await this.revParseCommit(mirror, `${prefix}${name}`, "");
          return type;
        } catch (error) {
          if (!(error instanceof GitError && error.reason === "not-found")) throw error;
        }
      }
    }
    if (SHA_PATTERN.test(name)) {
      try {
        await this.resolveCommit(mirror, name, "");
        return "commit";
      } catch (error) {
        if (!(error instanceof GitError && error.reason === "not-found")) throw error;
      }
    }
    return undefined;
  }

  /**
   * The repository's default branch as the mirror's HEAD names it, asked locally (no network):
   * `git clone --mirror` copies the remote's HEAD, GitLab's default branch. Later fetches do not
   * move it, so a default branch renamed on GitLab shows after the mirror is cloned again.
   * Undefined when there is no mirror yet or its HEAD names no branch (docs/api.md, "Idle stop").
   */
  async defaultBranch(project: string): Promise<string | undefined> {
    if (!isSlug(project)) return undefined;
    const mirror = this.mirrorPath(project);
    if (!(await this.isMirror(mirror))) return undefined;
    let ref: string;
    try {
      ref = await this.query(["--git-dir", mirror, "symbolic-ref", "--quiet", "HEAD"]);
    } catch (error) {
      // Exit 1: HEAD is detached, not a branch.
      if (error instanceof CommandError && error.exitCode === 1) return undefined;
      throw this.explain(error, ["symbolic-ref"], mirror);
    }
    const name = ref.startsWith("refs/heads/") ? ref.slice("refs/heads/".length) : "";
    return isValidRefName(name) ? name : undefined;
  }

  /**
   * `defaultBranch`, cloning the mirror first when there is none here. With several replicas the
   * one that looks at a running version (idle stop, the running limit) may never have deployed
   * its project; without a mirror it would take the default branch for an ordinary branch and
   * turn it off (docs/api.md, "Idle stop"). Local once the mirror exists.
   */
  async defaultBranchCloning(project: string, repoUrl: string): Promise<string | undefined> {
    if (!isSlug(project)) return undefined;
    if (!(await this.isMirror(this.mirrorPath(project)))) await this.syncMirror(project, repoUrl);
    return this.defaultBranch(project);
  }

  /**
   * The version's checkout at exactly `sha`, files of other commits and untracked or ignored
   * files removed (`git clean -ffdx`). Returns its directory.
   */
  async checkout(
    project: string,
    version: string,
    sha: string,
    run: GitRunOptions = {},
  ): Promise<string> {
    const mirror = this.mirrorPath(project);
    const dir = this.checkoutDir(project, version);
    if (!FULL_SHA.test(sha))
      throw new GitError("invalid", `invalid commit SHA ${quoted(sha)}: expected the full hash`);
    return this.withLock(project, async () => {
      const url = await this.requireMirror(project, mirror);
      await this.resolveCommit(mirror, sha, `commit ${sha} not found in ${url}`);
      if (await this.isWorktreeOf(dir, mirror)) {
        await this.git(
          ["-C", dir, "checkout", "--quiet", "--force", "--detach", sha, "--"],
          url,
          run,
        );
      } else {
        // Missing, or left broken (mirror re-cloned, checkout interrupted): start over.
        await rm(dir, { recursive: true, force: true });
        await this.git(["--git-dir", mirror, "worktree", "prune"], url);
        await mkdir(path.dirname(dir), { recursive: true });
        await this.git(
          ["--git-dir", mirror, "worktree", "add", "--force", "--detach", "--", dir, sha],
          url,
          run,
        );
      }
      await this.git(["-C", dir, "clean", "-ffdx", "--quiet"], url, run);
      const head = (await this.git(["-C", dir, "rev-parse", "--verify", "HEAD"], url)).trim();
      if (head !== sha)
        throw new GitError("failed", `checkout of ${version} is at ${head}, expected ${sha}`);
      return dir;
    });
  }

  async removeCheckout(project: string, version: string): Promise<void> {
    const mirror = this.mirrorPath(project);
    const dir = this.checkoutDir(project, version);
    await this.withLock(project, async () => {
      await rm(dir, { recursive: true, force: true });
      if (await this.isMirror(mirror))
        await this.git(["--git-dir", mirror, "worktree", "prune"], mirror);
    });
  }

  /** The mirror and any half-done clone of it. Checkouts stay; they are recreated when used again. */
  async removeMirror(project: string): Promise<void> {
    const mirror = this.mirrorPath(project);
    await this.withLock(project, async () => {
      await rm(mirror, { recursive: true, force: true });
      const reposDir = path.dirname(mirror);
      if (!(await isDirectory(reposDir))) return;
      const leftovers = (await readdir(reposDir)).filter((name) =>
        name.startsWith(`${project}.git.tmp-`),
      );
      for (const name of leftovers)
        await rm(path.join(reposDir, name), { recursive: true, force: true });
    });
  }

  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const current = previous.then(fn);
    const tail = current.catch(() => undefined);
    this.locks.set(key, tail);
    try {
      return await current;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }

  private async git(args: string[], url: string, run: GitRunOptions = {}): Promise<string> {
    const onLine = run.onLine;
    try {
      const result = await runCommand("git", args, {
        env: this.env,
        ...(run.signal ? { signal: run.signal } : {}),
        ...(onLine
          ? {
              onLine: (stream: OutputStream, text: string) =>
                onLine(stream, redactUrlCredentials(text)),
            }
          : {}),
      });
      return result.stdout;
    } catch (error) {
      throw this.explain(error, args, url);
    }
  }

  /** One readable line for a failed git command, from what git and ssh printed. */
  private explain(error: unknown, args: string[], url: string): GitError {
    const action = `git ${args.find((arg) => SUBCOMMANDS.has(arg)) ?? ""}`.trim();
    if (!(error instanceof CommandError)) {
      return new GitError(
        "failed",
        `${action} failed: ${error instanceof Error ? error.message : String(error)}`,
        undefined,
        { cause: error },
      );
    }
    const shownUrl = redactUrlCredentials(url);
    const host = hostOf(url);
    const code = error.exitCode;
    const exit = code === undefined ? "" : ` (git exit code ${code})`;
    const lines = error.stderrTail
      .map((line) => redactUrlCredentials(line.trim()))
      .filter((line) => line !== "");
    const text = lines.join("\n");
    const find = (pattern: RegExp) => lines.find((line) => pattern.test(line));
    const make = (reason: GitFailure, message: string) =>
      new GitError(reason, message, code, { cause: error });

    if (error.canceled) return make("canceled", `${action} was stopped`);
    if (/REMOTE HOST IDENTIFICATION HAS CHANGED/.test(text)) {
      return make(
        "host-key",
        `the SSH host key of ${host} changed since dockbot first connected: if that is expected, remove its old line from ${this.knownHostsPath}`,
      );
    }
    if (/Host key verification failed|host key is known for/i.test(text)) {
      return make(
        "host-key",
        `the SSH host key of ${host} is not in ${this.knownHostsPath} and DOCKBOT_SSH_STRICT=yes: add it (ssh-keyscan) or use accept-new`,
      );
    }
    if (/Permission denied \(publickey/.test(text)) {
      return make(
        "auth",
        `the Git server refused dockbot's SSH key for ${shownUrl}: add the deploy key shown at GET /api/ssh-key to the GitLab project (Settings > Repository > Deploy keys)`,
      );
    }
    const network = find(
      /Connection refused|Could not resolve host|Name or service not known|Temporary failure in name resolution|timed out|No route to host|Network is unreachable|Failed to connect|Connection reset|Connection closed by/i,
    );
    if (network)
      return make(
        "unreachable",
        `cannot reach ${shownUrl}: ${network.replace(/^(ssh|fatal): /, "")}${exit}`,
      );
    if (/could not read Username|Authentication failed|terminal prompts disabled/i.test(text)) {
      return make(
        "auth",
        `${shownUrl} asks for a user name and password: use its SSH URL and add the deploy key shown at GET /api/ssh-key to the GitLab project`,
      );
    }
    if (
      /does not appear to be a git repository|Repository not found|could not be found|not found/i.test(
        text,
      )
    ) {
      return make(
        "not-found",
        `repository ${shownUrl} not found, or dockbot's deploy key has no access to it${exit}`,
      );
    }
    const detail = find(/^(fatal|error|ERROR):/) ?? lines.at(-1) ?? "no output";
    return make(
      "failed",
      `${action} failed for ${shownUrl}${exit}: ${detail.replace(/^(fatal|error): /, "")}`,
    );
  }

  /** git for local questions: no output to the operation log, failures left to the caller. */
  private async query(args: string[]): Promise<string> {
    return (await runCommand("git", args, { env: this.env })).stdout.trim();
  }

  private async isMirror(mirror: string): Promise<boolean> {
    if (!(await isDirectory(mirror))) return false;
    try {
      return (
        (await this.query(["--git-dir", mirror, "rev-parse", "--is-bare-repository"])) === "true"
      );
    } catch (error) {
      if (error instanceof CommandError && !error.canceled) return false;
      throw error;
    }
  }

  /** The mirror's URL (for messages); a GitError when the project was never synced. */
  private async requireMirror(project: string, mirror: string): Promise<string> {
    if (!(await this.isMirror(mirror))) {
      throw new GitError(
        "not-found",
        `no mirror of project '${project}' yet: fetch its repository first`,
      );
    }
    return redactUrlCredentials((await this.configGet(mirror, "remote.origin.url")) ?? mirror);
  }

  private async configGet(mirror: string, key: string): Promise<string | undefined> {
    try {
      return await this.query(["--git-dir", mirror, "config", "--get", key]);
    } catch (error) {
      // Exit 1: the key is not set.
      if (error instanceof CommandError && error.exitCode === 1) return undefined;
      throw this.explain(error, ["config"], mirror);
    }
  }

  private async revParseCommit(mirror: string, ref: string, missing: string): Promise<string> {
    try {
      return await this.query([
        "--git-dir",
        mirror,
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        `${ref}^{commit}`,
      ]);
    } catch (error) {
      if (error instanceof CommandError && error.exitCode === 1)
        throw new GitError("not-found", missing, 1, { cause: error });
      throw this.explain(error, ["rev-parse"], mirror);
    }
  }

  /**
   * A (possibly abbreviated) commit hash as an object name, never as a ref: `rev-parse abc1234`
   * would prefer a branch that happens to be called `abc1234`.
   */
  private async resolveCommit(mirror: string, sha: string, missing: string): Promise<string> {
    let candidates: string[];
    if (FULL_SHA.test(sha)) {
      candidates = [sha];
    } else {
      try {
        const out = await this.query(["--git-dir", mirror, "rev-parse", `--disambiguate=${sha}`]);
        candidates = out.split("\n").filter((line) => FULL_SHA.test(line));
      } catch (error) {
        // Exit 128 "ambiguous argument": no object has this prefix.
        if (!(error instanceof CommandError) || error.canceled) throw error;
        candidates = [];
      }
    }
    const commits: string[] = [];
    for (const candidate of candidates) {
      if ((await this.objectType(mirror, candidate)) === "commit") commits.push(candidate);
    }
    if (commits.length > 1)
      throw new GitError(
        "not-found",
        `${missing.replace(/ not found/, " is ambiguous")}: give more characters`,
      );
    const [commit] = commits;
    if (commit === undefined) throw new GitError("not-found", missing);
    return commit;
  }

  /** `commit`, `tree`, ...; undefined when the mirror has no such object. */
  private async objectType(mirror: string, sha: string): Promise<string | undefined> {
    try {
      return await this.query(["--git-dir", mirror, "cat-file", "-t", sha]);
    } catch (error) {
      if (error instanceof CommandError && !error.canceled) return undefined;
      throw error;
    }
  }

  private async isWorktreeOf(dir: string, mirror: string): Promise<boolean> {
    // A `.git` file in the folder itself; otherwise git would search upwards and might find an
    // unrelated repository around the data dir.
    if (!(await isFile(path.join(dir, ".git")))) return false;
    let commonDir: string;
    try {
      commonDir = await this.query([
        "-C",
        dir,
        "rev-parse",
        "--path-format=absolute",
        "--git-common-dir",
      ]);
    } catch (error) {
      // Its mirror is gone or it was never finished: not a usable worktree.
      if (error instanceof CommandError && !error.canceled) return false;
      throw error;
    }
    return (await realpathOrSelf(commonDir)) === (await realpathOrSelf(mirror));
  }
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

async function realpathOrSelf(file: string): Promise<string> {
  try {
    return await realpath(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return file;
    throw error;
  }
}

async function isDirectory(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isDirectory();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}
