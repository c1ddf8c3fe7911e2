import { describe, expect, it } from "vitest";
import type { ProjectRecord } from "../../src/store/types.js";
import { pickProject, projectsWithSecret } from "../../src/webhooks/verify-gitlab-token.js";

/** The receiver's two steps: the token before the body is read, the payload's project after. */
function verifyGitlabToken(
  given: string | undefined,
  projects: readonly ProjectRecord[],
  payloadProjectId?: number,
): ProjectRecord | undefined {
  return pickProject(projectsWithSecret(given, projects), payloadProjectId);
}

function project(id: string, webhookSecret: string, gitlabProjectId?: number): ProjectRecord {
  return {
    id,
    name: id,
    repoUrl: `git@example.com:group/${id}.git`,
    autoDeploy: { branches: ["*"], tags: true, mergeRequests: true },
    env: {},
    webhookSecret,
    ...(gitlabProjectId === undefined ? {} : { gitlab: { projectId: gitlabProjectId } }),
    createdAt: "2024-01-01T00:00:00.000Z",
    updatedAt: "2024-01-01T00:00:00.000Z",
  };
}

const alpha = project("alpha", "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6");
const beta = project("beta", "f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5");
const linked = project("linked", "0123456789abcdef0123456789abcdef", 42);

describe("verifyGitlabToken", () => {
  it("returns the project whose webhook secret equals the token", () => {
    expect(verifyGitlabToken(beta.webhookSecret, [alpha, beta, linked])?.id).toBe("beta");
    expect(verifyGitlabToken(alpha.webhookSecret, [alpha, beta, linked])?.id).toBe("alpha");
  });

  it("returns nothing when the token is missing", () => {
    expect(verifyGitlabToken(undefined, [alpha, beta])).toBeUndefined();
  });

  it("returns nothing for an empty token, even against a project with an empty secret", () => {
    const empty = project("empty", "");
    expect(verifyGitlabToken("", [alpha, empty])).toBeUndefined();
    expect(verifyGitlabToken(undefined, [empty])).toBeUndefined();
  });

  it("returns nothing when the token is wrong", () => {
    expect(verifyGitlabToken("not-the-secret", [alpha, beta])).toBeUndefined();
  });

  it("refuses a prefix, an extension or a different case of the secret", () => {
    const s = alpha.webhookSecret;
    expect(verifyGitlabToken(s.slice(0, -1), [alpha])).toBeUndefined();
    expect(verifyGitlabToken(`${s}0`, [alpha])).toBeUndefined();
    expect(verifyGitlabToken(s.toUpperCase(), [alpha])).toBeUndefined();
    expect(verifyGitlabToken(` ${s}`, [alpha])).toBeUndefined();
  });

  it("compares tokens of any length without throwing", () => {
    expect(verifyGitlabToken("x".repeat(100_000), [alpha, beta])).toBeUndefined();
    expect(verifyGitlabToken("é", [project("u", "é")])?.id).toBe("u");
  });

  it("returns nothing when there are no projects", () => {
    expect(verifyGitlabToken(alpha.webhookSecret, [])).toBeUndefined();
  });

  it("accepts a linked project's secret only with a payload of its GitLab project", () => {
    expect(verifyGitlabToken(linked.webhookSecret, [linked], 42)?.id).toBe("linked");
    expect(verifyGitlabToken(linked.webhookSecret, [linked], 43)).toBeUndefined();
    expect(verifyGitlabToken(linked.webhookSecret, [linked])).toBeUndefined();
  });

  it("accepts an unlinked project's secret whatever GitLab project the payload names", () => {
    expect(verifyGitlabToken(alpha.webhookSecret, [alpha], 999)?.id).toBe("alpha");
    expect(verifyGitlabToken(alpha.webhookSecret, [alpha])?.id).toBe("alpha");
  });

  it("picks the project linked to the payload's GitLab project when a secret is shared", () => {
    const shared = "shared-secret-shared-secret-0000";
    const one = project("one", shared, 1);
    const two = project("two", shared, 2);
    const loose = project("loose", shared);
    expect(verifyGitlabToken(shared, [one, loose, two], 2)?.id).toBe("two");
    expect(verifyGitlabToken(shared, [loose, one, two], 1)?.id).toBe("one");
    expect(verifyGitlabToken(shared, [one, two, loose], 3)?.id).toBe("loose");
    expect(verifyGitlabToken(shared, [one, two], 3)).toBeUndefined();
  });

  it("does not accept another project's secret for a linked project", () => {
    expect(verifyGitlabToken(alpha.webhookSecret, [linked], 42)).toBeUndefined();
  });
});
