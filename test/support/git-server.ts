// Test repositories on the sshd git server that scripts/test-services.sh sets up. Tests run as
// root: repos are written by file path (a work clone pushing into the bare repo) and read by
// dockbot over SSH as the `git` user, like a GitLab project with a deploy key.
import { randomBytes } from "node:crypto";
import { appendFile, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { runCommand } from "../../src/deploy/run-command.js";
import { gitServer } from "./services.js";

const authorizedKeysPath = path.join(gitServer.home, ".ssh", "authorized_keys");

/** Lets `publicKey` (`ssh-ed25519 AAAA... comment`) log in as the git user; added once. */
export async function authorizeKey(publicKey: string): Promise<void> {
  const [type, blob] = publicKey.trim().split(/\s+/);
  if (!type || !blob) throw new Error(`not an OpenSSH public key: ${publicKey}`);
  let current = "";
  try {
    current = await readFile(authorizedKeysPath, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    await mkdir(path.dirname(authorizedKeysPath), { recursive: true, mode: 0o755 });
  }
  if (current.split("\n").some((line) => line.split(/\s+/).includes(blob))) return;
  // `restrict`: no pty or forwarding, as GitLab's own authorized_keys entries.
  await appendFile(authorizedKeysPath, `restrict ${type} ${blob} dockbot-test\n`, { mode: 0o644 });
}

/** File contents by path; `null` deletes the file. */
export type RepoFiles = Record<string, string | null>;

export interface TestRepo {
  /** Unique per run: `<name>-<random>`. */
  name: string;
  /** The bare repository on disk. */
  path: string;
  /** `ssh://git@127.0.0.1:<port>/<home>/repos/<name>.git` */
  sshUrl: string;
  /** scp-like with git's bracket form for a port: `[git@127.0.0.1:<port>]:repos/<name>.git` */
  scpUrl: string;
  /** Commits `files` on top of `branch` (default main; a new branch starts at main). */
  commit(files: RepoFiles, message?: string, branch?: string): Promise<string>;
  createBranch(name: string, from?: string): Promise<string>;
  deleteBranch(name: string): Promise<void>;
  /** Annotated tag at `sha` (default: head of main), so resolving it has to peel. */
  tag(name: string, sha?: string): Promise<void>;
  deleteTag(name: string): Promise<void>;
  /** `refs/merge-requests/<iid>/head`, the ref GitLab keeps for a merge request's source. */
  setMergeRequestHead(iid: number, sha: string): Promise<void>;
  head(branch?: string): Promise<string>;
  remove(): Promise<void>;
}

export interface CreateTestRepoOptions {
  defaultBranch?: string;
  message?: string;
}

// Fixed identity and no user or system config: the machine's git setup must not matter.
const gitEnv: Record<string, string> = {
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_AUTHOR_NAME: "Dockbot Test",
  GIT_AUTHOR_EMAIL: "test@dockbot.invalid",
  GIT_COMMITTER_NAME: "Dockbot Test",
  GIT_COMMITTER_EMAIL: "test@dockbot.invalid",
};

async function git(args: string[], cwd?: string): Promise<string> {
  const result = await runCommand("git", args, {
    env: gitEnv,
    ...(cwd === undefined ? {} : { cwd }),
  });
  return result.stdout.trim();
}

export function uniqueName(base: string): string {
  return `${base}-${randomBytes(4).toString("hex")}`;
}

export async function createTestRepo(
  baseName: string,
  files: RepoFiles,
  opts: CreateTestRepoOptions = {},
): Promise<TestRepo> {
  const name = uniqueName(baseName);
  const mainBranch = opts.defaultBranch ?? "main";
  const reposDir = path.join(gitServer.home, "repos");
  const bare = path.join(reposDir, `${name}.git`);
  await mkdir(reposDir, { recursive: true, mode: 0o755 });
  // 0644: the git user (sshd) reads what root writes, whatever root's umask.
  await git(["init", "--quiet", "--bare", "--shared=0644", `--initial-branch=${mainBranch}`, bare]);
  const work = await mkdtemp(path.join(os.tmpdir(), `dockbot-work-${name}-`));
  await git(["init", "--quiet", `--initial-branch=${mainBranch}`, work]);

  const refSha = (ref: string) =>
    git(["--git-dir", bare, "rev-parse", "--verify", "--end-of-options", ref]);
  const branchExists = async (branch: string) => {
    try {
      await refSha(`refs/heads/${branch}`);
      return true;
    } catch {
      return false;
    }
  };

  const writeFiles = async (changes: RepoFiles) => {
    for (const [file, content] of Object.entries(changes)) {
      const target = path.join(work, file);
      if (content === null) {
        await unlink(target);
      } else {
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, content);
      }
    }
  };

  const commitOn = async (changes: RepoFiles, message: string, branch: string, first: boolean) => {
    if (!first) {
      const parent = await refSha(
        `refs/heads/${(await branchExists(branch)) ? branch : mainBranch}`,
      );
      await git(["checkout", "--quiet", "--force", "--detach", parent], work);
      await git(["clean", "-ffdxq"], work);
    }
    await writeFiles(changes);
    await git(["add", "--all"], work);
    await git(["commit", "--quiet", "--allow-empty", "--no-verify", "-m", message], work);
    const sha = await git(["rev-parse", "HEAD"], work);
    await git(["push", "--quiet", bare, `HEAD:refs/heads/${branch}`], work);
    return sha;
  };

  await commitOn(files, opts.message ?? "initial commit", mainBranch, true);

  const host = "127.0.0.1";
  return {
    name,
    path: bare,
    sshUrl: `ssh://${gitServer.user}@${host}:${gitServer.port}${bare}`,
    scpUrl: `[${gitServer.user}@${host}:${gitServer.port}]:repos/${name}.git`,
    commit: (changes, message = "change", branch = mainBranch) =>
      commitOn(changes, message, branch, false),
    async createBranch(branch, from = mainBranch) {
      const sha = /^[0-9a-f]{40}$/.test(from) ? from : await refSha(`refs/heads/${from}`);
      await git(["--git-dir", bare, "update-ref", `refs/heads/${branch}`, sha]);
      return sha;
    },
    async deleteBranch(branch) {
      await git(["--git-dir", bare, "update-ref", "-d", `refs/heads/${branch}`]);
    },
    async tag(tagName, sha) {
      const target = sha ?? (await refSha(`refs/heads/${mainBranch}`));
      await git([
        "--git-dir",
        bare,
        "tag",
        "--annotate",
        "--message",
        `tag ${tagName}`,
        tagName,
        target,
      ]);
    },
    async deleteTag(tagName) {
      await git(["--git-dir", bare, "update-ref", "-d", `refs/tags/${tagName}`]);
    },
    async setMergeRequestHead(iid, sha) {
      await git(["--git-dir", bare, "update-ref", `refs/merge-requests/${iid}/head`, sha]);
    },
    head: (branch = mainBranch) => refSha(`refs/heads/${branch}`),
    async remove() {
      await rm(bare, { recursive: true, force: true });
      await rm(work, { recursive: true, force: true });
    },
  };
}
