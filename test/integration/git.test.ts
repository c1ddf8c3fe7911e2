// Mirrors and checkouts against the real sshd git server of scripts/test-services.sh, with
// dockbot's real key, the way a GitLab project with a deploy key is cloned.
import { execa } from "execa";
import { access, copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGit, GitError, isValidRepoUrl } from "../../src/deploy/git.js";
import type { GitRepos } from "../../src/deploy/git.js";
import { ensureSshKey } from "../../src/deploy/ssh-key.js";
import type { SshKey } from "../../src/deploy/ssh-key.js";
import { authorizeKey, createTestRepo } from "../support/git-server.js";
import type { RepoFiles, TestRepo } from "../support/git-server.js";
import { checkGitServer, describeWithServices, gitServer } from "../support/services.js";
import { freePort } from "../support/dockbot-process.js";

const gitCheck = await checkGitServer();

async function fileExists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/** The GitError a promise rejects with (fails the test when it resolves or throws another). */
async function gitErrorOf(promise: Promise<unknown>): Promise<GitError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GitError);
  return error as GitError;
}

describe("isValidRepoUrl", () => {
  it.each([
    "git@gitlab.example.com:group/app.git",
    "git@gitlab.example.com:group/sub-group/my_app.git",
    "ssh://git@gitlab.example.com:2222/group/app.git",
    "ssh://git@127.0.0.1/srv/repos/app.git",
    "[git@127.0.0.1:2222]:repos/app.git",
    "https://gitlab.example.com/group/app.git",
  ])("accepts %s", (url) => {
    expect(isValidRepoUrl(url)).toBe(true);
  });

  it.each([
    "",
    "--upload-pack=touch /tmp/x",
    "-oProxyCommand=touch /tmp/x",
    "ssh://-oProxyCommand=touch/repo.git",
    "git@-oProxyCommand=x:repo.git",
    "-git@host:repo.git",
    "ext::sh -c touch% /tmp/x",
    "ext::sh",
    "file:///etc",
    "file:repo",
    "/srv/repos/app.git",
    "http://gitlab.example.com/group/app.git",
    "git://gitlab.example.com/group/app.git",
    "https://user:token@gitlab.example.com/group/app.git",
    "git@host:group/app.git\n--upload-pack=x",
    "git@host:group/app .git",
    "git@host:$(touch /tmp/x)",
    "git@host:group/app.git;touch /tmp/x",
    "ssh://git@host:99999/app.git",
  ])("rejects %j", (url) => {
    expect(isValidRepoUrl(url)).toBe(false);
  });
});

describeWithServices([gitCheck], "git mirrors and checkouts over SSH", () => {
  let dataDir: string;
  let key: SshKey;
  let git: GitRepos;
  const repos: TestRepo[] = [];
  const tmpDirs: string[] = [];
  let projectCounter = 0;

  const newProject = () => `app-${process.pid}-${++projectCounter}`;
  const newRepo = async (name: string, files: RepoFiles) => {
    const repo = await createTestRepo(name, files);
    repos.push(repo);
    return repo;
  };
  const newTmpDir = async (prefix: string) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
    tmpDirs.push(dir);
    return dir;
  };

  beforeAll(async () => {
    dataDir = await newTmpDir("dockbot-git-");
    key = await ensureSshKey(dataDir);
    await authorizeKey(key.publicKey);
    git = createGit({ dataDir, privateKeyPath: key.privateKeyPath, sshStrict: "accept-new" });
  });

  afterAll(async () => {
    for (const repo of repos) await repo.remove();
    for (const dir of tmpDirs) await rm(dir, { recursive: true, force: true });
  });

  it("clones over ssh:// on a custom port with the bot's key and pins the host key", async () => {
    const repo = await newRepo("clone", { "compose.yaml": "services: {}\n" });
    const project = newProject();
    const lines: string[] = [];

    const result = await git.syncMirror(project, repo.sshUrl, {
      onLine: (_stream, text) => lines.push(text),
    });

    expect(result).toEqual({ cloned: true });
    expect(await git.resolveRef(project, { type: "branch", name: "main" })).toBe(await repo.head());
    expect(lines.join("\n")).toContain("Cloning into bare repository");
    expect(await readFile(path.join(dataDir, "known_hosts"), "utf8")).toContain(
      `[127.0.0.1]:${gitServer.port}`,
    );
    const bare = await execa("git", [
      "--git-dir",
      git.mirrorPath(project),
      "rev-parse",
      "--is-bare-repository",
    ]);
    expect(bare.stdout).toBe("true");
  });

  it("fetches into the existing mirror on the next sync instead of cloning again", async () => {
    const repo = await newRepo("fetch", { "a.txt": "1" });
    const project = newProject();
    await git.syncMirror(project, repo.sshUrl);
    const newer = await repo.commit({ "a.txt": "2" }, "second");

    const result = await git.syncMirror(project, repo.sshUrl);

    expect(result).toEqual({ cloned: false });
    expect(await git.resolveRef(project, { type: "branch", name: "main" })).toBe(newer);
  });

  it("clones an scp-like URL (git's [user@host:port]:path form)", async () => {
    const repo = await newRepo("scp", { "a.txt": "1" });
    const project = newProject();

    await git.syncMirror(project, repo.scpUrl);

    expect(await git.resolveRef(project, { type: "branch", name: "main" })).toBe(await repo.head());
  });

  it("follows a changed repository URL on the next sync", async () => {
    const first = await newRepo("url-old", { "a.txt": "old" });
    const second = await newRepo("url-new", { "a.txt": "new" });
    const project = newProject();
    await git.syncMirror(project, first.sshUrl);

    const result = await git.syncMirror(project, second.sshUrl);

    expect(result).toEqual({ cloned: false });
    expect(await git.resolveRef(project, { type: "branch", name: "main" })).toBe(
      await second.head(),
    );
  });

  it("runs two syncs of one project one after the other, so both succeed", async () => {
    const repo = await newRepo("concurrent", { "a.txt": "1" });
    const project = newProject();

    const results = await Promise.all([
      git.syncMirror(project, repo.sshUrl),
      git.syncMirror(project, repo.sshUrl),
    ]);

    expect(results.map((r) => r.cloned).sort()).toEqual([false, true]);
  });

  it("checks out the exact commit and, moving to a newer one, leaves no file deleted upstream or added locally", async () => {
    const repo = await newRepo("checkout", {
      "compose.yaml": "services: {}\n",
      "old.txt": "goes away",
      "keep.txt": "original",
      "sub/dir/nested.txt": "nested",
    });
    const project = newProject();
    await git.syncMirror(project, repo.sshUrl);
    const first = await repo.head();

    const dir = await git.checkout(project, "main", first);

    expect(dir).toBe(path.join(dataDir, "checkouts", project, "main"));
    expect(await readFile(path.join(dir, "old.txt"), "utf8")).toBe("goes away");
    expect(await readFile(path.join(dir, "sub/dir/nested.txt"), "utf8")).toBe("nested");

    await writeFile(path.join(dir, "junk.txt"), "left by a build");
    await writeFile(path.join(dir, "keep.txt"), "edited in place");
    const second = await repo.commit(
      { "old.txt": null, "sub/dir/nested.txt": null, "new.txt": "arrived" },
      "move",
    );
    await git.syncMirror(project, repo.sshUrl);

    const again = await git.checkout(project, "main", second);

    expect(again).toBe(dir);
    expect((await execa("git", ["-C", dir, "rev-parse", "HEAD"])).stdout).toBe(second);
    expect(await fileExists(path.join(dir, "old.txt"))).toBe(false);
    expect(await fileExists(path.join(dir, "sub/dir/nested.txt"))).toBe(false);
    expect(await fileExists(path.join(dir, "junk.txt"))).toBe(false);
    expect(await readFile(path.join(dir, "keep.txt"), "utf8")).toBe("original");
    expect(await readFile(path.join(dir, "new.txt"), "utf8")).toBe("arrived");

    await git.checkout(project, "main", first);
    expect(await readFile(path.join(dir, "old.txt"), "utf8")).toBe("goes away");
  });

  it("keeps one checkout per version, each at its own commit", async () => {
    const repo = await newRepo("versions", { "v.txt": "main" });
    const project = newProject();
    await repo.createBranch("feature");
    const featureSha = await repo.commit({ "v.txt": "feature" }, "feature work", "feature");
    await git.syncMirror(project, repo.sshUrl);

    const mainDir = await git.checkout(project, "main", await repo.head());
    const featureDir = await git.checkout(project, "feature", featureSha);

    expect(await readFile(path.join(mainDir, "v.txt"), "utf8")).toBe("main");
    expect(await readFile(path.join(featureDir, "v.txt"), "utf8")).toBe("feature");
  });

  it("resolves branches, annotated tags, merge request heads and abbreviated SHAs to full commit SHAs", async () => {
    const repo = await newRepo("refs", { "a.txt": "1" });
    const project = newProject();
    const first = await repo.head();
    await repo.tag("v1.0.0", first);
    await repo.createBranch("feature/Login_2");
    const feature = await repo.commit({ "a.txt": "feature" }, "feature", "feature/Login_2");
    await repo.setMergeRequestHead(7, feature);
    const latest = await repo.commit({ "a.txt": "2" }, "main moves on");
    await git.syncMirror(project, repo.sshUrl);

    expect(await git.resolveRef(project, { type: "branch", name: "main" })).toBe(latest);
    expect(await git.resolveRef(project, { type: "branch", name: "feature/Login_2" })).toBe(
      feature,
    );
    expect(await git.resolveRef(project, { type: "tag", name: "v1.0.0" })).toBe(first);
    expect(await git.resolveRef(project, { type: "mergeRequest", name: "7" })).toBe(feature);
    expect(await git.resolveRef(project, { type: "commit", name: first.slice(0, 8) })).toBe(first);
    expect(
      await git.resolveRef(project, { type: "branch", name: "main" }, first.slice(0, 10)),
    ).toBe(first);
  });

  it("classifies a name the API received as the branch, tag or commit the mirror knows", async () => {
    const repo = await newRepo("classify", { "a.txt": "1" });
    const project = newProject();
    const first = await repo.head();
    await repo.tag("v2", first);
    await repo.createBranch("both");
    await repo.tag("both", first);
    expect(await git.classifyRef(project, "main")).toBeUndefined(); // not synced yet
    await git.syncMirror(project, repo.sshUrl);

    expect(await git.classifyRef(project, "main")).toBe("branch");
    expect(await git.classifyRef(project, "v2")).toBe("tag");
    expect(await git.classifyRef(project, "both")).toBe("branch");
    expect(await git.classifyRef(project, first.slice(0, 9))).toBe("commit");
    expect(await git.classifyRef(project, "nope")).toBeUndefined();
    expect(await git.classifyRef(project, "$(touch x)")).toBeUndefined();
  });

  it("resolves an abbreviated SHA as a commit even when a branch has the same name", async () => {
    const repo = await newRepo("sha-vs-branch", { "a.txt": "1" });
    const project = newProject();
    const first = await repo.head();
    const second = await repo.commit({ "a.txt": "2" });
    await repo.createBranch(first.slice(0, 8), second);
    await git.syncMirror(project, repo.sshUrl);

    expect(await git.resolveRef(project, { type: "commit", name: first.slice(0, 8) })).toBe(first);
  });

  it("names the missing ref and the repository when a branch, tag, merge request or commit does not exist", async () => {
    const repo = await newRepo("missing-ref", { "a.txt": "1" });
    const project = newProject();
    await git.syncMirror(project, repo.sshUrl);

    const branch = await gitErrorOf(git.resolveRef(project, { type: "branch", name: "nope" }));
    expect(branch.message).toBe(`branch 'nope' not found in ${repo.sshUrl}`);
    expect(branch.code).toBe("unprocessable");
    expect(branch.reason).toBe("not-found");
    expect((await gitErrorOf(git.resolveRef(project, { type: "tag", name: "v9" }))).message).toBe(
      `tag 'v9' not found in ${repo.sshUrl}`,
    );
    expect(
      (await gitErrorOf(git.resolveRef(project, { type: "mergeRequest", name: "42" }))).message,
    ).toBe(`merge request !42 not found in ${repo.sshUrl}`);
    expect(
      (await gitErrorOf(git.resolveRef(project, { type: "commit", name: "0123456789abc" })))
        .message,
    ).toBe(`commit 0123456789abc not found in ${repo.sshUrl}`);
    const pinned = await gitErrorOf(
      git.resolveRef(project, { type: "branch", name: "main" }, "abcdef0123456"),
    );
    expect(pinned.reason).toBe("not-found");
  });

  it("forgets a branch deleted upstream on the next sync", async () => {
    const repo = await newRepo("prune", { "a.txt": "1" });
    const project = newProject();
    await repo.createBranch("short-lived");
    await git.syncMirror(project, repo.sshUrl);
    expect(await git.resolveRef(project, { type: "branch", name: "short-lived" })).toBe(
      await repo.head(),
    );

    await repo.deleteBranch("short-lived");
    await git.syncMirror(project, repo.sshUrl);

    expect(
      (await gitErrorOf(git.resolveRef(project, { type: "branch", name: "short-lived" }))).reason,
    ).toBe("not-found");
  });

  it("says the repository cannot be reached when nothing listens on its port", async () => {
    const port = await freePort();

    const error = await gitErrorOf(
      git.syncMirror(newProject(), `ssh://git@127.0.0.1:${port}/srv/app.git`),
    );

    expect(error.reason).toBe("unreachable");
    expect(error.message).toMatch(
      /^cannot reach ssh:\/\/git@127\.0\.0\.1:\d+\/srv\/app\.git: .*Connection refused/,
    );
    expect(error.message).not.toContain("\n");
  });

  it("says the repository is missing when the server has no such path", async () => {
    const url = `ssh://git@127.0.0.1:${gitServer.port}${gitServer.home}/repos/does-not-exist-${process.pid}.git`;

    const error = await gitErrorOf(git.syncMirror(newProject(), url));

    expect(error.reason).toBe("not-found");
    expect(error.message).toContain(`repository ${url} not found`);
  });

  it("tells the user to add the deploy key from GET /api/ssh-key when the server refuses the key", async () => {
    const repo = await newRepo("refused", { "a.txt": "1" });
    const otherDir = await newTmpDir("dockbot-git-other-");
    const unknownKey = await ensureSshKey(otherDir);
    const other = createGit({
      dataDir: otherDir,
      privateKeyPath: unknownKey.privateKeyPath,
      sshStrict: "accept-new",
    });

    const error = await gitErrorOf(other.syncMirror("app", repo.sshUrl));

    expect(error.reason).toBe("auth");
    expect(error.message).toContain("GET /api/ssh-key");
    expect(error.message).toContain(repo.sshUrl);
    expect(error.message).not.toContain("\n");
    expect(await fileExists(other.mirrorPath("app"))).toBe(false);
  });

  it("refuses a host that is not in known_hosts when sshStrict is yes, and trusts it once it is", async () => {
    const repo = await newRepo("strict", { "a.txt": "1" });
    const strictDir = await newTmpDir("dockbot-git-strict-");
    const strict = createGit({
      dataDir: strictDir,
      privateKeyPath: key.privateKeyPath,
      sshStrict: "yes",
    });

    const error = await gitErrorOf(strict.syncMirror("app", repo.sshUrl));

    expect(error.reason).toBe("host-key");
    expect(error.message).toContain(path.join(strictDir, "known_hosts"));
    expect(await fileExists(path.join(strictDir, "known_hosts"))).toBe(false);

    await git.syncMirror(newProject(), repo.sshUrl); // pins the host key in the accept-new data dir
    await copyFile(path.join(dataDir, "known_hosts"), path.join(strictDir, "known_hosts"));
    expect(await strict.syncMirror("app", repo.sshUrl)).toEqual({ cloned: true });
  });

  it("recreates a checkout after its mirror was removed and cloned again", async () => {
    const repo = await newRepo("reclone", { "a.txt": "1" });
    const project = newProject();
    await git.syncMirror(project, repo.sshUrl);
    const sha = await repo.head();
    const dir = await git.checkout(project, "main", sha);

    await git.removeMirror(project);
    expect(await fileExists(git.mirrorPath(project))).toBe(false);
    expect(
      (await gitErrorOf(git.resolveRef(project, { type: "branch", name: "main" }))).reason,
    ).toBe("not-found");
    await git.syncMirror(project, repo.sshUrl);

    expect(await git.checkout(project, "main", sha)).toBe(dir);
    expect(await readFile(path.join(dir, "a.txt"), "utf8")).toBe("1");
  });

  it("removes a version's checkout and lets git forget its worktree", async () => {
    const repo = await newRepo("remove", { "a.txt": "1" });
    const project = newProject();
    await git.syncMirror(project, repo.sshUrl);
    const dir = await git.checkout(project, "preview", await repo.head());

    await git.removeCheckout(project, "preview");

    expect(await fileExists(dir)).toBe(false);
    const worktrees = await execa("git", [
      "--git-dir",
      git.mirrorPath(project),
      "worktree",
      "list",
      "--porcelain",
    ]);
    expect(worktrees.stdout).not.toContain(dir);
  });

  describe("security", () => {
    let marker: string;

    beforeAll(async () => {
      marker = path.join(await newTmpDir("dockbot-git-marker-"), "pwned");
    });

    it("rejects option-like and shell-like repository URLs and runs nothing", async () => {
      const urls = [
        `--upload-pack=touch ${marker}`,
        `-oProxyCommand=touch ${marker}`,
        `ssh://-oProxyCommand=touch%20${marker}/repo.git`,
        `ext::sh -c touch% ${marker}`,
        `$(touch ${marker})`,
        `git@127.0.0.1:repo.git;touch ${marker}`,
        `git@127.0.0.1:\`touch ${marker}\``,
        `git@127.0.0.1:repo.git\n--upload-pack=touch ${marker}`,
      ];
      for (const url of urls) {
        const error = await gitErrorOf(git.syncMirror(newProject(), url));
        expect(error.reason, url).toBe("invalid");
        expect(error.message, url).not.toContain("\n");
      }
      expect(await fileExists(marker)).toBe(false);
    });

    it("rejects option-like and shell-like refs and SHAs and runs nothing", async () => {
      const repo = await newRepo("evil-refs", { "a.txt": "1" });
      const project = newProject();
      await git.syncMirror(project, repo.sshUrl);
      const evil = [
        `--upload-pack=touch ${marker}`,
        `$(touch ${marker})`,
        `\`touch ${marker}\``,
        "main;touch x",
        "-main",
      ];

      for (const name of evil) {
        for (const type of ["branch", "tag", "mergeRequest", "commit"] as const) {
          expect(
            (await gitErrorOf(git.resolveRef(project, { type, name }))).reason,
            `${type} ${name}`,
          ).toBe("invalid");
        }
        expect(
          (await gitErrorOf(git.resolveRef(project, { type: "branch", name: "main" }, name)))
            .reason,
        ).toBe("invalid");
        expect((await gitErrorOf(git.checkout(project, "main", name))).reason).toBe("invalid");
      }
      expect(await fileExists(marker)).toBe(false);
    });

    it("rejects project and version names that would leave the data dir", async () => {
      const repo = await newRepo("evil-names", { "a.txt": "1" });
      const sha = await repo.head();

      expect((await gitErrorOf(git.syncMirror("../escape", repo.sshUrl))).reason).toBe("invalid");
      expect((await gitErrorOf(git.checkout("app", "../../escape", sha))).reason).toBe("invalid");
      expect((await gitErrorOf(git.removeCheckout("app", "../.."))).reason).toBe("invalid");
      expect((await gitErrorOf(git.removeMirror("--force"))).reason).toBe("invalid");
    });
  });
});
