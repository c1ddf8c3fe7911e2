// The input rules (src/deploy/input-rules.ts) against the tools they stand for: ref names
// against git's own check-ref-format, on a table of the rules' edge cases and on random names.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_REF_PATTERN, isValidRefName } from "../../src/deploy/input-rules.js";

// Outside any repository: inside one, git expands `@{-1}` to the branch checked out before.
let outside: string;
beforeAll(async () => {
  outside = await mkdtemp(path.join(os.tmpdir(), "dockbot-refs-"));
});
afterAll(async () => {
  await rm(outside, { recursive: true, force: true });
});

/** What git says of a branch name (exit code 0 of `git check-ref-format --branch`). */
async function gitAccepts(name: string): Promise<boolean> {
  const r = await execa("git", ["check-ref-format", "--branch", name], {
    cwd: outside,
    reject: false,
    stdin: "ignore",
    env: { GIT_CEILING_DIRECTORIES: path.dirname(outside) },
  });
  return r.exitCode === 0;
}

const EDGES = [
  "main",
  "feature/login-2",
  "release/v1.2",
  "é/ü",
  "x@y",
  "a%b",
  "a#b",
  "a{b}",
  "a.b",
  "refs/heads/x",
  "-x",
  "a..b",
  "..a",
  "a/..b",
  "a/.b",
  ".a",
  "a.",
  "a.lock",
  "a.lock/b",
  "a/b.lock",
  "a.locks",
  "a/",
  "/a",
  "a//b",
  "a@{b",
  "@{-1}",
  "a b",
  "a~b",
  "a^b",
  "a:b",
  "a?b",
  "a*b",
  "a[b",
  "a\\b",
  "a\tb",
  "a\x7fb",
  "HEAD",
  "x/HEAD",
  "HEADS",
  "x".repeat(255),
];

/** Names of 1 to 8 characters drawn from the characters the rules are about. */
function randomNames(count: number, seed: number): string[] {
  const alphabet = ["a", "b", ".", "/", "-", "@", "{", "l", "o", "c", "k", "~", " ", "é", "H"];
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state;
  };
  return Array.from({ length: count }, () =>
    Array.from({ length: 1 + (next() % 8) }, () => alphabet[next() % alphabet.length]).join(""),
  );
}

describe("ref names", () => {
  it("accepts exactly the names git check-ref-format --branch accepts, except @", async () => {
    const names = [...EDGES, ...randomNames(200, 7)];
    const verdicts: boolean[] = [];
    // A few git processes at a time: one each would take seconds on a busy machine.
    for (let i = 0; i < names.length; i += 8) {
      verdicts.push(...(await Promise.all(names.slice(i, i + 8).map(gitAccepts))));
    }
    const disagreements = names.flatMap((name, i) => {
      const git = verdicts[i] === true && name !== "@";
      return isValidRefName(name) === git ? [] : [`${JSON.stringify(name)}: git ${git}`];
    });
    expect(disagreements).toEqual([]);
  }, 60_000);

  it("refuses @ although git takes it as a branch name, and more than 255 characters", () => {
    expect(isValidRefName("@")).toBe(false);
    expect(isValidRefName("x".repeat(256))).toBe(false);
    // Characters, not UTF-16 units: 255 emoji are 255 characters, as JSON Schema counts.
    expect(isValidRefName("😀".repeat(255))).toBe(true);
  });

  it("takes refs/heads/<b> and refs/tags/<t> in the API only when <b> and <t> are names too", () => {
    for (const ok of [
      "refs/heads/main",
      "refs/tags/v1/rc",
      "refs/merge-requests/7/head",
      "0a1b2c3",
    ]) {
      expect(API_REF_PATTERN.test(ok), ok).toBe(true);
    }
    for (const bad of ["refs/heads/-x", "refs/tags/@", "refs/heads/HEAD", "refs/heads/"]) {
      expect(API_REF_PATTERN.test(bad), bad).toBe(false);
    }
  });
});
