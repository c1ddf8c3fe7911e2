import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { ProjectRecord } from "../../src/store/types.js";
import {
  branchMatches,
  intentsFromDelivery,
  type IntentsResult,
} from "../../src/webhooks/intents.js";

// GitLab's sample payloads (see test/fixtures/gitlab/README.md for which are derived and how).
function fixture(name: string): Record<string, unknown> {
  const url = new URL(`../fixtures/gitlab/${name}.json`, import.meta.url);
  return JSON.parse(readFileSync(url, "utf8")) as Record<string, unknown>;
}

/** A deep copy of a fixture with `edit` applied, for malformed variants. */
function edited(name: string, edit: (p: Record<string, unknown>) => void): Record<string, unknown> {
  const payload = structuredClone(fixture(name));
  edit(payload);
  return payload;
}

function project(overrides: Partial<ProjectRecord> = {}): ProjectRecord {
  return {
    id: "p1",
    name: "diaspora",
    repoUrl: "git@example.com:mike/diaspora.git",
    autoDeploy: { branches: ["*"], tags: true, mergeRequests: true },
    env: {},
    webhookSecret: "s3cret",
    createdAt: "2024-01-01T00:00:00.000Z",
    updatedAt: "2024-01-01T00:00:00.000Z",
    ...overrides,
  };
}

const auto = (a: Partial<ProjectRecord["autoDeploy"]>): Partial<ProjectRecord> => ({
  autoDeploy: { branches: ["*"], tags: true, mergeRequests: true, ...a },
});

interface Case {
  name: string;
  event: string;
  payload: unknown;
  project?: Partial<ProjectRecord>;
  expected: IntentsResult | { ignoredMatching: RegExp };
}

const MR_HEAD = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
const MR_NEW_HEAD = "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327";
const TAG_COMMIT = "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7";

const cases: Case[] = [
  // Pushes
  {
    name: "turns the branch's version on at checkout_sha for a push to a branch matching the globs",
    event: "Push Hook",
    payload: fixture("push"),
    expected: {
      intents: [
        {
          action: "on",
          ref: { type: "branch", name: "master" },
          sha: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
          versionName: "master",
        },
      ],
    },
  },
  {
    name: "turns a new branch on under a slug of its name when it is pushed without new commits",
    event: "Push Hook",
    payload: fixture("push-create-branch"),
    project: auto({ branches: ["feature/*"] }),
    expected: {
      intents: [
        {
          action: "on",
          ref: { type: "branch", name: "feature/Login_2" },
          sha: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
          versionName: "feature-login-2",
        },
      ],
    },
  },
  {
    name: "deletes the branch's version when a push deletes a matching branch",
    event: "Push Hook",
    payload: fixture("push-delete-branch"),
    expected: {
      intents: [
        {
          action: "delete",
          ref: { type: "branch", name: "feature/Login_2" },
          versionName: "feature-login-2",
        },
      ],
    },
  },
  {
    name: "ignores a push to a branch that matches none of autoDeploy.branches",
    event: "Push Hook",
    payload: fixture("push"),
    project: auto({ branches: ["release/*", "main"] }),
    expected: { ignored: "branch 'master' does not match autoDeploy.branches" },
  },
  {
    name: "ignores the deletion of a branch that matches none of autoDeploy.branches",
    event: "Push Hook",
    payload: fixture("push-delete-branch"),
    project: auto({ branches: ["master"] }),
    expected: { ignored: "branch 'feature/Login_2' does not match autoDeploy.branches" },
  },
  {
    name: "ignores every branch push when autoDeploy.branches is empty",
    event: "Push Hook",
    payload: fixture("push"),
    project: auto({ branches: [] }),
    expected: { ignored: "branch 'master' does not match autoDeploy.branches" },
  },

  // Tags
  {
    name: "turns the tag's version on at the tagged commit for a tag push",
    event: "Tag Push Hook",
    payload: fixture("tag-push"),
    expected: {
      intents: [
        {
          action: "on",
          ref: { type: "tag", name: "v1.0.0" },
          sha: TAG_COMMIT,
          versionName: "v1-0-0",
        },
      ],
    },
  },
  {
    name: "deletes the tag's version when the tag is deleted",
    event: "Tag Push Hook",
    payload: fixture("tag-push-delete"),
    expected: {
      intents: [{ action: "delete", ref: { type: "tag", name: "v1.0.0" }, versionName: "v1-0-0" }],
    },
  },
  {
    name: "ignores a tag push when autoDeploy.tags is off",
    event: "Tag Push Hook",
    payload: fixture("tag-push"),
    project: auto({ tags: false }),
    expected: { ignored: "tag 'v1.0.0': autoDeploy.tags is off" },
  },
  {
    name: "ignores a tag push whose tag points at no commit",
    event: "Tag Push Hook",
    payload: edited("tag-push", (p) => {
      p.checkout_sha = null;
    }),
    expected: { ignored: "tag 'v1.0.0' points at no commit (checkout_sha is empty)" },
  },

  // Merge requests
  {
    name: "turns mr-<iid> on at the last commit when a merge request is opened",
    event: "Merge Request Hook",
    payload: fixture("merge-request-open"),
    expected: {
      intents: [
        {
          action: "on",
          ref: { type: "mergeRequest", name: "1", sourceBranch: "ms-viewport" },
          sha: MR_HEAD,
          versionName: "mr-1",
        },
      ],
    },
  },
  {
    name: "turns mr-<iid> on again when a merge request is reopened",
    event: "Merge Request Hook",
    payload: fixture("merge-request-reopen"),
    expected: {
      intents: [
        {
          action: "on",
          ref: { type: "mergeRequest", name: "1", sourceBranch: "ms-viewport" },
          sha: MR_HEAD,
          versionName: "mr-1",
        },
      ],
    },
  },
  {
    name: "redeploys mr-<iid> at the new head when an update brings new commits",
    event: "Merge Request Hook",
    payload: fixture("merge-request-update-new-commits"),
    expected: {
      intents: [
        {
          action: "on",
          ref: { type: "mergeRequest", name: "1", sourceBranch: "ms-viewport" },
          sha: MR_NEW_HEAD,
          versionName: "mr-1",
        },
      ],
    },
  },
  {
    name: "ignores a merge request update without new commits such as a title edit",
    event: "Merge Request Hook",
    payload: fixture("merge-request-update-title"),
    expected: { ignored: "merge request update without new commits" },
  },
  {
    name: "deletes mr-<iid> when the merge request is closed",
    event: "Merge Request Hook",
    payload: fixture("merge-request-close"),
    expected: {
      intents: [
        { action: "delete", ref: { type: "mergeRequest", name: "1" }, versionName: "mr-1" },
      ],
    },
  },
  {
    name: "deletes mr-<iid> when the merge request is merged",
    event: "Merge Request Hook",
    payload: fixture("merge-request-merge"),
    expected: {
      intents: [
        { action: "delete", ref: { type: "mergeRequest", name: "1" }, versionName: "mr-1" },
      ],
    },
  },
  {
    name: "ignores a merge request approval",
    event: "Merge Request Hook",
    payload: fixture("merge-request-approved"),
    expected: { ignored: "merge request action 'approved' is not acted on" },
  },
  {
    name: "ignores merge requests when autoDeploy.mergeRequests is off",
    event: "Merge Request Hook",
    payload: fixture("merge-request-open"),
    project: auto({ mergeRequests: false }),
    expected: { ignored: "merge request !1: autoDeploy.mergeRequests is off" },
  },
  {
    name: "does not deploy a merge request opened from a fork by itself",
    event: "Merge Request Hook",
    payload: fixture("merge-request-open-from-fork"),
    expected: { ignored: "merge request !1 comes from a fork (project 20)" },
  },

  // Events dockbot does not act on
  {
    name: "ignores comments",
    event: "Note Hook",
    payload: fixture("note-merge-request"),
    expected: { ignored: "event 'Note Hook' is not acted on" },
  },
  {
    name: "ignores pipeline events",
    event: "Pipeline Hook",
    payload: fixture("pipeline"),
    expected: { ignored: "event 'Pipeline Hook' is not acted on" },
  },
  {
    name: "ignores an event it does not know",
    event: "Made Up Hook",
    payload: fixture("push"),
    expected: { ignored: "event 'Made Up Hook' is not acted on" },
  },
  {
    name: "ignores system hooks even when they carry a push payload",
    event: "System Hook",
    payload: fixture("push"),
    expected: { ignoredMatching: /^system hooks are not acted on/ },
  },

  // The linked GitLab project
  {
    name: "acts on a payload for the GitLab project the project is linked to",
    event: "Push Hook",
    payload: fixture("push"),
    project: { gitlab: { projectId: 15 } },
    expected: {
      intents: [
        {
          action: "on",
          ref: { type: "branch", name: "master" },
          sha: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
          versionName: "master",
        },
      ],
    },
  },
  {
    name: "ignores a payload for another GitLab project than the linked one",
    event: "Push Hook",
    payload: fixture("push"),
    project: { gitlab: { projectId: 16 } },
    expected: { ignored: "payload is for GitLab project 15, not 16" },
  },
  {
    name: "ignores a merge request of another GitLab project than the linked one",
    event: "Merge Request Hook",
    payload: fixture("merge-request-close"),
    project: { gitlab: { projectId: 14 } },
    expected: { ignored: "payload is for GitLab project 1, not 14" },
  },

  // Untrusted input
  {
    name: "ignores a push whose branch name git would refuse or read as an option",
    event: "Push Hook",
    payload: edited("push", (p) => {
      p.ref = "refs/heads/--upload-pack=touch /tmp/pwned";
    }),
    expected: { ignoredMatching: /^malformed payload: .* is not a valid ref name$/ },
  },
  {
    name: "ignores a push whose ref climbs out with '..'",
    event: "Push Hook",
    payload: edited("push", (p) => {
      p.ref = "refs/heads/../../etc";
    }),
    expected: { ignoredMatching: /is not a valid ref name$/ },
  },
  {
    name: "ignores a push whose checkout_sha is not a 40-hex SHA",
    event: "Push Hook",
    payload: edited("push", (p) => {
      p.checkout_sha = "HEAD; rm -rf /";
    }),
    expected: { ignoredMatching: /^malformed payload: checkout_sha: / },
  },
  {
    name: "ignores a merge request whose last commit id is not a SHA",
    event: "Merge Request Hook",
    payload: edited("merge-request-open", (p) => {
      (p.object_attributes as { last_commit: { id: string } }).last_commit.id = "--orphan";
    }),
    expected: { ignoredMatching: /^malformed payload: object_attributes\.last_commit\.id: / },
  },
  {
    name: "ignores a push hook whose ref is a tag",
    event: "Push Hook",
    payload: edited("push", (p) => {
      p.ref = "refs/tags/v1";
    }),
    expected: { ignored: "malformed payload: ref 'refs/tags/v1' is not under refs/heads/" },
  },
  {
    name: "ignores a tag push hook that carries a branch push body",
    event: "Tag Push Hook",
    payload: fixture("push"),
    expected: { ignored: "malformed payload: object_kind 'push' in a 'Tag Push Hook'" },
  },
  {
    name: "ignores a body that is not an object",
    event: "Push Hook",
    payload: "refs/heads/main",
    expected: { ignoredMatching: /^malformed payload/ },
  },
  {
    name: "ignores a null body",
    event: "Merge Request Hook",
    payload: null,
    expected: { ignoredMatching: /^malformed payload/ },
  },
  {
    name: "ignores a payload without a project id when the project is linked",
    event: "Push Hook",
    payload: edited("push", (p) => {
      delete p.project;
    }),
    project: { gitlab: { projectId: 15 } },
    expected: { ignored: "malformed payload: project.id is missing or not a number" },
  },
];

describe("intentsFromDelivery", () => {
  it.each(cases)("$name", ({ event, payload, project: overrides, expected }) => {
    const result = intentsFromDelivery(event, payload, project(overrides));
    if ("ignoredMatching" in expected) {
      expect(Object.keys(result)).toEqual(["ignored"]);
      expect("ignored" in result ? result.ignored : "").toMatch(expected.ignoredMatching);
    } else {
      expect(result).toEqual(expected);
    }
  });

  it("keeps a reason short when the payload echoes a huge event name", () => {
    const result = intentsFromDelivery("X".repeat(10_000), fixture("push"), project());
    expect(Object.keys(result)).toEqual(["ignored"]);
    expect("ignored" in result ? result.ignored.length : Infinity).toBeLessThan(120);
  });
});

describe("branchMatches", () => {
  it.each([
    { globs: ["*"], branch: "main", matches: true },
    { globs: ["*"], branch: "feature/x", matches: true },
    { globs: ["*"], branch: "a/b/c", matches: true },
    { globs: ["release/*"], branch: "release/1.0", matches: true },
    { globs: ["release/*"], branch: "release/1.0/hotfix", matches: true },
    { globs: ["release/*"], branch: "releases", matches: false },
    { globs: ["release/*"], branch: "main", matches: false },
    { globs: ["*-stable"], branch: "team/1-0-stable", matches: true },
    { globs: ["main"], branch: "main", matches: true },
    { globs: ["main"], branch: "main2", matches: false },
    { globs: ["{main,develop}"], branch: "develop", matches: true },
    { globs: ["*", "!wip/*"], branch: "wip/try", matches: false },
    { globs: ["*", "!wip/*"], branch: "feature/try", matches: true },
    { globs: ["!wip/*"], branch: "feature/try", matches: true },
    { globs: [], branch: "main", matches: false },
  ])("says $matches for $branch against $globs", ({ globs, branch, matches }) => {
    expect(branchMatches(branch, globs)).toBe(matches);
  });
});
