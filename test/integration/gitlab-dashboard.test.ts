// The dashboard's GitLab pieces against the fake GitLab: the new-project page picks a repository
// from GitLab and comes back filled in, the project page shows the hook and key status, and its
// "Repair" button re-creates a hook someone deleted.
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createGitlabApi } from "../../src/gitlab/gitlab-call.js";
import { createGitlabOnboarding, type GitlabOnboarding } from "../../src/gitlab/onboarding.js";
import { adminToken } from "../../src/http/admin-token.js";
import { uiRoutes } from "../../src/ui/ui-routes.js";
import { startApiHarness, TEST_TOKEN, type ApiHarness } from "../support/api-harness.js";
import { startFakeGitlab, type FakeGitlab } from "../support/fake-gitlab.js";

const PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdashboardtestkey dockbot";
const FORM = { "content-type": "application/x-www-form-urlencoded" };

let h: ApiHarness;
let gitlab: FakeGitlab;
let onboarding: GitlabOnboarding;

beforeEach(async () => {
  gitlab = await startFakeGitlab();
  h = await startApiHarness("sqlite");
  const logger = pino({ level: "silent" });
  onboarding = createGitlabOnboarding({
    store: h.store,
    bus: h.bus,
    api: createGitlabApi({ url: gitlab.url, token: gitlab.token }),
    gitlabUrl: gitlab.url,
    token: gitlab.token,
    publicUrl: "http://dockbot.test",
    publicKey: PUBLIC_KEY,
    logger,
    retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 10, totalMs: 2_000 },
  });
  h.app.route(
    "/",
    uiRoutes({
      service: h.service,
      store: h.store,
      token: await adminToken(h.store, TEST_TOKEN),
      sshKey: { publicKey: PUBLIC_KEY, fingerprint: "SHA256:x" },
      publicUrl: "http://dockbot.test",
      logger,
      gitlab: onboarding,
    }),
  );
});

afterEach(async () => {
  onboarding.stop();
  await onboarding.idle();
  await h.close();
  await gitlab.close();
});

async function browser() {
  const res = await h.app.request("/login", {
    method: "POST",
    headers: FORM,
    body: new URLSearchParams({ token: TEST_TOKEN, next: "/" }),
  });
  const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  const get = (url: string) => h.app.request(url, { headers: { cookie } });
  const html = await (await get("/")).text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
  const post = (url: string, fields: Record<string, string>) =>
    h.app.request(url, {
      method: "POST",
      headers: { ...FORM, cookie },
      body: new URLSearchParams({ _csrf: csrf, ...fields }),
    });
  return { get, post };
}

describe("the dashboard's GitLab pieces", () => {
  it("finds a repository on GitLab and fills the new-project form with it", async () => {
    gitlab.describeProject(31, {
      path_with_namespace: "team/Shop_Front",
      ssh_url_to_repo: "git@gitlab.example.com:team/Shop_Front.git",
      web_url: "https://gitlab.example.com/team/Shop_Front",
      default_branch: "main",
    });
    const b = await browser();
    const found = await (await b.get("/new-project?gitlabSearch=shop")).text();
    expect(found).toContain("team/Shop_Front");
    const link = /href="(\/new-project\?gitlabProjectId=31[^"]*)"/.exec(found)?.[1];
    expect(link).toBeDefined();
    const filled = await (await b.get((link ?? "").replaceAll("&amp;", "&"))).text();
    expect(filled).toContain('value="git@gitlab.example.com:team/Shop_Front.git"');
    expect(filled).toContain('value="31"');
    expect(filled).toContain('value="shop-front"');
  });

  it("shows GitLab's refusal on the new-project page when the search fails", async () => {
    gitlab.failWhen({ method: "GET", path: /^\/projects$/, times: 5, status: 401 });
    const b = await browser();
    const page = await (await b.get("/new-project?gitlabSearch=x")).text();
    expect(page).toContain("HTTP 401");
    expect(page).not.toContain(gitlab.token);
  });

  it("lists on an operation's page what was posted to GitLab for it, failures open with GitLab's message", async () => {
    const b = await browser();
    const project = await h.service.createProject({
      name: "dash-ops",
      repoUrl: "git@gitlab.example.com:team/dash-ops.git",
    });
    const version = await h.service.createVersion(project.name, { ref: "main" });
    const op = await h.service.requestOperation(version, "up", { source: "api" });
    await h.store.updateOperation(op.id, {
      gitlabReports: [
        {
          kind: "deployment",
          id: 77,
          state: "running",
          ok: true,
          attempts: 1,
          at: "2024-05-01T10:00:00Z",
        },
        {
          kind: "note",
          state: "running",
          ok: false,
          attempts: 1,
          at: "2024-05-01T10:00:01Z",
          error: "HTTP 403: 403 Forbidden (the token's user needs the Maintainer role)",
        },
      ],
    });
    const page = await (await b.get(`/operations/${op.id}`)).text();
    expect(page).toContain("GitLab: 1 of 2 calls done");
    expect(page).toContain('<details class="gitlab-reports" open');
    expect(page).toContain("merge request note");
    expect(page).toContain("HTTP 403: 403 Forbidden");
  });

  it("shows the hook and key status and repairs a deleted hook with the button", async () => {
    gitlab.registerProject(32);
    const b = await browser();
    const created = await b.post("/projects", {
      name: "dash",
      repoUrl: "git@gitlab.example.com:team/dash.git",
      branches: "*",
      gitlabProjectId: "32",
    });
    expect(created.status).toBe(303);
    await onboarding.idle();
    expect(gitlab.hooks(32)).toHaveLength(1);
    const page = await (await b.get("/projects/dash")).text();
    expect(page).toContain("GitLab hook and deploy key");
    expect(page).toContain("created");
    gitlab.deleteHook(32, gitlab.hooks(32)[0]?.id ?? 0);
    const repaired = await b.post("/projects/dash/gitlab/sync", {});
    expect(repaired.status).toBe(303);
    expect(repaired.headers.get("location")).toBe("/projects/dash?done=gitlab-synced#gitlab");
    expect(gitlab.hooks(32)).toHaveLength(1);
    const after = await (await b.get("/projects/dash?done=gitlab-synced")).text();
    expect(after).toContain(`#${gitlab.hooks(32)[0]?.id}`);
  });
});
