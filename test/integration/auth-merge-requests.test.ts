// Who may deploy a merge request (docs/api.md, "Who may do what"): a merge request whose author
// is below Developer on the project is not deployed by itself; its delivery is listed as
// ignored with the reason and its version waits, off, for a Developer to turn it on.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUTH_ADMIN_TOKEN, startAuthHarness, type AuthHarness } from "../support/auth-harness.js";

const GITLAB_PROJECT = 501;
const SHA = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
const AUTHOR = 51; // author_id in GitLab's sample payloads

const fixture = JSON.parse(
  readFileSync(new URL("../fixtures/gitlab/merge-request-open.json", import.meta.url), "utf8"),
) as Record<string, unknown>;

function mrOpen(iid: number, authorId: number): Record<string, unknown> {
  const attrs = fixture.object_attributes as Record<string, unknown>;
  return {
    ...fixture,
    project: { ...(fixture.project as object), id: GITLAB_PROJECT },
    object_attributes: {
      ...attrs,
      iid,
      author_id: authorId,
      source_project_id: GITLAB_PROJECT,
      target_project_id: GITLAB_PROJECT,
      last_commit: { ...(attrs.last_commit as object), id: SHA },
    },
  };
}

let h: AuthHarness;
let secret = "";

beforeAll(async () => {
  h = await startAuthHarness();
  h.oauth.addUser({ id: 61, username: "devon", name: "Devon" });
  h.oauth.setAccessLevel(GITLAB_PROJECT, 61, 30);
  h.oauth.setAccessLevel(GITLAB_PROJECT, AUTHOR, 20);
  h.oauth.setAccessLevel(GITLAB_PROJECT, 52, 30);
  const res = await h.request("POST", "/api/projects", {
    bearer: AUTH_ADMIN_TOKEN,
    body: {
      name: "mrs",
      repoUrl: "git@gitlab.example.com:team/mrs.git",
      gitlab: { projectId: GITLAB_PROJECT },
    },
  });
  secret = ((await res.json()) as { webhookSecret: string }).webhookSecret;
});

afterAll(async () => {
  await h?.close();
});

const deliver = (payload: unknown) =>
  h.app.request("/webhooks/gitlab", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-gitlab-event": "Merge Request Hook",
      "x-gitlab-token": secret,
    },
    body: JSON.stringify(payload),
  });

describe("merge requests and their authors' roles", () => {
  it("does not deploy a Reporter's merge request, lists the delivery as ignored with the reason, and keeps the version off", async () => {
    const res = await deliver(mrOpen(5, AUTHOR));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ignored: string };
    expect(body.ignored).toMatch(/author \(GitLab user 51\) is below Developer/);
    const deliveries = (await (
      await h.request("GET", "/api/projects/mrs/deliveries", { bearer: AUTH_ADMIN_TOKEN })
    ).json()) as Array<{ outcome: string; reason?: string; operationIds: string[] }>;
    expect(deliveries[0]).toMatchObject({ outcome: "ignored", operationIds: [] });
    expect(deliveries[0]?.reason).toContain(
      "a Developer can turn its version on from the dashboard",
    );
    const version = (await (
      await h.request("GET", "/api/projects/mrs/versions/mr-5", { bearer: AUTH_ADMIN_TOKEN })
    ).json()) as { state: string };
    expect(version.state).toBe("off");
    expect(await h.store.listOperations({})).toEqual([]);
  });

  it("lets a Developer turn that version on by hand", async () => {
    const cookie = await h.signIn("devon");
    const on = await h.request("POST", "/api/projects/mrs/versions/mr-5/on", { cookie });
    expect(on.status).toBe(202);
    expect(((await on.json()) as { kind: string }).kind).toBe("up");
  });

  it("deploys a Developer's merge request by itself", async () => {
    const res = await deliver(mrOpen(6, 52));
    expect(res.status).toBe(202);
    expect(((await res.json()) as { operations: string[] }).operations).toHaveLength(1);
  });

  it("deploys nothing when GitLab cannot say what the author may do", async () => {
    h.oauth.membershipDown = true;
    h.advance(61_000);
    const res = await deliver(mrOpen(7, 52));
    h.oauth.membershipDown = false;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { ignored: string }).ignored).toMatch(/could not say/);
  });
});
