// Onboarding through dockbot's API against a fake GitLab that follows GitLab's project hooks and
// deploy keys code (test/support/fake-gitlab-review.ts): a project created with
// gitlab.projectId gets its hook and read-only key by itself, sync repairs them and never
// duplicates them, a hook GitLab disabled is reported with what to do, GitLab's refusals are
// kept with GitLab's message and never with the token or the secret.
import { afterAll, beforeAll, expect, it } from "vitest";
import { startDockbot, type DockbotHarness } from "../support/dockbot-harness.js";
import { startFakeGitlab, type FakeGitlab } from "../support/fake-gitlab.js";
import { checkGitServer, describeWithServices } from "../support/services.js";

interface Item {
  id: number | null;
  status: string;
  error?: string;
  alertStatus?: string;
  disabledUntil?: string;
}
interface Status {
  hook: Item;
  deployKey: Item;
  checkedAt: string;
}

let seq = 0;

describeWithServices([await checkGitServer()], "GitLab onboarding: hook and deploy key", () => {
  let h: DockbotHarness;
  let gitlab: FakeGitlab;
  let publicKey = "";

  beforeAll(async () => {
    gitlab = await startFakeGitlab();
    h = await startDockbot({
      DOCKBOT_GITLAB_URL: gitlab.url,
      DOCKBOT_GITLAB_TOKEN: gitlab.token,
      DOCKBOT_PUBLIC_URL: "https://dockbot.example.com",
    });
    publicKey = (await h.api<{ publicKey: string }>("GET", "/api/ssh-key")).body.publicKey;
  });

  afterAll(async () => {
    await h?.close();
    await gitlab?.close();
  });

  /** A dockbot project linked to a fresh GitLab project; waits for the onboarding it starts. */
  async function linkedProject(gitlabId: number, opts: { register?: boolean } = {}) {
    seq += 1;
    if (opts.register !== false) gitlab.registerProject(gitlabId);
    const name = `gonb-${seq}`;
    const res = await h.api<{ webhookSecret: string; webhookUrl: string }>(
      "POST",
      "/api/projects",
      {
        name,
        repoUrl: "git@gitlab.example.com:team/app.git",
        gitlab: { projectId: gitlabId },
      },
    );
    expect(res.status).toBe(201);
    return { name, secret: res.body.webhookSecret, webhookUrl: res.body.webhookUrl };
  }

  const sync = (name: string) => h.api<Status>("POST", `/api/projects/${name}/gitlab/sync`);
  const status = (name: string) => h.api<Status>("GET", `/api/projects/${name}/gitlab`);
  const waitForHook = async (gitlabId: number) => {
    const until = Date.now() + 20_000;
    while (gitlab.hooks(gitlabId).length === 0 || gitlab.deployKeys(gitlabId).length === 0) {
      if (Date.now() > until) throw new Error("onboarding did not happen");
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it("adds the hook with the project's secret and the read-only deploy key when a linked project is created", async () => {
    const p = await linkedProject(901);
    await waitForHook(901);
    const [hook] = gitlab.hooks(901);
    expect(gitlab.hooks(901)).toHaveLength(1);
    expect(hook?.url).toBe(p.webhookUrl);
    expect(hook?.url).toBe("https://dockbot.example.com/webhooks/gitlab");
    expect(hook?.token).toBe(p.secret);
    expect(hook?.flags).toMatchObject({
      push_events: true,
      tag_push_events: true,
      merge_requests_events: true,
      note_events: false,
      pipeline_events: false,
      job_events: false,
      issues_events: false,
      wiki_page_events: false,
      deployment_events: false,
      releases_events: false,
      enable_ssl_verification: true,
    });
    const [key] = gitlab.deployKeys(901);
    expect(gitlab.deployKeys(901)).toHaveLength(1);
    expect(key?.key.split(" ").slice(0, 2)).toEqual(publicKey.split(" ").slice(0, 2));
    expect(key?.can_push).toBe(false);
    const res = await status(p.name);
    expect(res.status).toBe(200);
    expect(res.body.hook).toEqual({ id: hook?.id, status: "ok" });
    expect(res.body.deployKey).toEqual({ id: key?.id, status: "ok" });
  });

  it("keeps one hook and one key when synced twice, reporting them ok", async () => {
    const p = await linkedProject(902);
    await waitForHook(902);
    const first = await sync(p.name);
    const second = await sync(p.name);
    expect(first.status).toBe(200);
    expect(second.body.hook.status).toBe("ok");
    expect(second.body.deployKey.status).toBe("ok");
    expect(gitlab.hooks(902)).toHaveLength(1);
    expect(gitlab.deployKeys(902)).toHaveLength(1);
  });

  it("sets the secret again on sync when someone changed the hook's token on GitLab", async () => {
    const p = await linkedProject(912);
    await waitForHook(912);
    const hook = gitlab.hooks(912)[0];
    const res = await fetch(`${gitlab.url}/api/v4/projects/912/hooks/${hook?.id}`, {
      method: "PUT",
      headers: { "private-token": gitlab.token, "content-type": "application/json" },
      body: JSON.stringify({ url: hook?.url, token: "someone-else-s-token" }),
    });
    expect(res.status).toBe(200);
    const synced = await sync(p.name);
    expect(synced.body.hook).toEqual({ id: hook?.id, status: "ok" });
    expect(gitlab.hooks(912)[0]?.token).toBe(p.secret);
  });

  it("reports a hook deleted on GitLab and creates it again on sync", async () => {
    const p = await linkedProject(903);
    await waitForHook(903);
    const old = gitlab.hooks(903)[0];
    gitlab.deleteHook(903, old?.id ?? 0);
    const seen = await status(p.name);
    expect(seen.body.hook.status).toBe("failed");
    expect(seen.body.hook.error).toContain("sync");
    const repaired = await sync(p.name);
    expect(repaired.body.hook.status).toBe("created");
    expect(gitlab.hooks(903)).toHaveLength(1);
    expect(gitlab.hooks(903)[0]?.token).toBe(p.secret);
    expect(repaired.body.hook.id).toBe(gitlab.hooks(903)[0]?.id);
  });

  it("updates a hook with dockbot's URL whose settings were changed by hand instead of adding one", async () => {
    const p = await linkedProject(904);
    await waitForHook(904);
    const hook = gitlab.hooks(904)[0];
    // Someone turns pipeline events on and merge request events off in GitLab's settings.
    const res = await fetch(`${gitlab.url}/api/v4/projects/904/hooks/${hook?.id}`, {
      method: "PUT",
      headers: { "private-token": gitlab.token, "content-type": "application/json" },
      body: JSON.stringify({ url: hook?.url, pipeline_events: true, merge_requests_events: false }),
    });
    expect(res.status).toBe(200);
    expect((await status(p.name)).body.hook.status).toBe("failed");
    const repaired = await sync(p.name);
    expect(repaired.body.hook).toEqual({ id: hook?.id, status: "updated" });
    expect(gitlab.hooks(904)).toHaveLength(1);
    expect(gitlab.hooks(904)[0]?.flags).toMatchObject({
      pipeline_events: false,
      merge_requests_events: true,
    });
    expect(gitlab.hooks(904)[0]?.token).toBe(p.secret);
  });

  it("reports a hook GitLab disabled, with its alert status and what to do", async () => {
    const p = await linkedProject(905);
    await waitForHook(905);
    const hook = gitlab.hooks(905)[0];
    const until = new Date(Date.now() + 3_600_000).toISOString();
    gitlab.disableHook(905, hook?.id ?? 0, "temporarily_disabled", until);
    const seen = await status(p.name);
    expect(seen.body.hook).toMatchObject({
      id: hook?.id,
      status: "disabled",
      alertStatus: "temporarily_disabled",
      disabledUntil: until,
    });
    expect(seen.body.hook.error).toContain("re-enable");
    expect(seen.body.hook.error).toContain("https://dockbot.example.com/webhooks/gitlab");
    expect((await sync(p.name)).body.hook.status).toBe("disabled");
    expect(gitlab.hooks(905)).toHaveLength(1);
  });

  it("keeps GitLab's 403 with what the token needs when its user is no Maintainer", async () => {
    gitlab.registerProject(906);
    gitlab.setRole(906, "developer");
    const p = await linkedProject(906, { register: false });
    const res = await sync(p.name);
    expect(res.status).toBe(200);
    expect(res.body.hook).toMatchObject({ status: "failed", id: null });
    expect(res.body.hook.error).toContain("HTTP 403");
    expect(res.body.hook.error).toContain("Maintainer");
    expect(res.body.deployKey.status).toBe("failed");
    expect(JSON.stringify(res.body)).not.toContain(gitlab.token);
    expect(JSON.stringify(res.body)).not.toContain(p.secret);
    // Kept on the project: the dashboard shows it without asking GitLab.
    const stored = await h.dockbot.store.getProjectByName(p.name);
    expect(stored?.gitlabStatus?.hook.status).toBe("failed");
  });

  it("keeps GitLab's 404 for a GitLab project that does not exist, and its 422 for a URL it refuses", async () => {
    const missing = await linkedProject(907, { register: false });
    const notFound = await sync(missing.name);
    expect(notFound.body.hook.error).toContain("HTTP 404");
    expect(notFound.body.hook.error).toContain("gitlab.projectId");

    const p = await linkedProject(908);
    await waitForHook(908);
    gitlab.deleteHook(908, gitlab.hooks(908)[0]?.id ?? 0);
    gitlab.failWhen({ method: "POST", path: /^\/projects\/908\/hooks$/, times: 5, status: 422 });
    const refused = await sync(p.name);
    expect(refused.body.hook).toMatchObject({ status: "failed" });
    expect(refused.body.hook.error).toContain("HTTP 422: Invalid url given");
    expect(gitlab.hooks(908)).toHaveLength(0);
  });

  it("adds the hook exactly once through GitLab's 502s and an answer lost after GitLab acted", async () => {
    const p = await linkedProject(909);
    await waitForHook(909);
    gitlab.deleteHook(909, gitlab.hooks(909)[0]?.id ?? 0);
    gitlab.failWhen({ method: "GET", path: /^\/projects\/909\/hooks$/, times: 10, status: 502 });
    gitlab.loseAnswer({ method: "POST", path: /^\/projects\/909\/hooks$/, times: 1 });
    const res = await sync(p.name);
    // The lost answer's hook is found on the next try and brought in line, not added again.
    expect(["created", "updated"]).toContain(res.body.hook.status);
    expect(gitlab.hooks(909)).toHaveLength(1);
    expect(res.body.hook.id).toBe(gitlab.hooks(909)[0]?.id);
  });

  it("answers within seconds with a network error when GitLab is down", async () => {
    const p = await linkedProject(910);
    await waitForHook(910);
    gitlab.stall({ path: /^\/projects\/910\//, times: 10 });
    const started = Date.now();
    const res = await sync(p.name);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(res.status).toBe(200);
    expect(res.body.hook.status).toBe("failed");
    expect(res.body.hook.error).toMatch(/timeout/i);
    expect(res.body.deployKey.status).toBe("failed");
    expect(res.body.hook.id).toBe(gitlab.hooks(910)[0]?.id);
  }, 40_000);

  it("lists the GitLab projects the token can see for the new-project page", async () => {
    gitlab.describeProject(920, {
      path_with_namespace: "team/shop-frontend",
      ssh_url_to_repo: "git@gitlab.example.com:team/shop-frontend.git",
      web_url: "https://gitlab.example.com/team/shop-frontend",
      default_branch: "main",
    });
    gitlab.describeProject(921, {
      path_with_namespace: "team/billing",
      ssh_url_to_repo: "git@gitlab.example.com:team/billing.git",
      web_url: "https://gitlab.example.com/team/billing",
      default_branch: null,
    });
    const res = await h.api<unknown[]>("GET", "/api/gitlab/projects?search=shop");
    expect(res.status).toBe(200);
    expect(res.body).toEqual([
      {
        id: 920,
        pathWithNamespace: "team/shop-frontend",
        sshUrl: "git@gitlab.example.com:team/shop-frontend.git",
        webUrl: "https://gitlab.example.com/team/shop-frontend",
        defaultBranch: "main",
      },
    ]);
  });

  it("onboards the GitLab project a project is relinked to", async () => {
    const p = await linkedProject(913);
    await waitForHook(913);
    gitlab.registerProject(914);
    const patched = await h.api("PATCH", `/api/projects/${p.name}`, { gitlab: { projectId: 914 } });
    expect(patched.status).toBe(200);
    await waitForHook(914);
    expect(gitlab.hooks(914)[0]?.token).toBe(p.secret);
    expect((await status(p.name)).body.hook).toEqual({
      id: gitlab.hooks(914)[0]?.id,
      status: "ok",
    });
  });

  it("answers 409 for a project without gitlab.projectId", async () => {
    await h.api("POST", "/api/projects", {
      name: "gonb-unlinked",
      repoUrl: "git@x.example:a/b.git",
    });
    const res = await h.api<{ error: { code: string } }>(
      "GET",
      "/api/projects/gonb-unlinked/gitlab",
    );
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("conflict");
  });

  it("removes the hook when the project is deleted and leaves the deploy key", async () => {
    const p = await linkedProject(911);
    await waitForHook(911);
    expect((await h.api("DELETE", `/api/projects/${p.name}`)).status).toBe(202);
    const until = Date.now() + 20_000;
    while (gitlab.hooks(911).length > 0) {
      if (Date.now() > until) throw new Error("the hook was not removed");
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(gitlab.deployKeys(911)).toHaveLength(1);
  });
});

describeWithServices([await checkGitServer()], "GitLab routes without GitLab configured", () => {
  it("answer 503 naming DOCKBOT_GITLAB_URL and DOCKBOT_GITLAB_TOKEN", async () => {
    const h = await startDockbot({});
    try {
      await h.api("POST", "/api/projects", {
        name: "gonb-alone",
        repoUrl: "git@x.example:a/b.git",
        gitlab: { projectId: 5 },
      });
      for (const [method, url] of [
        ["GET", "/api/projects/gonb-alone/gitlab"],
        ["POST", "/api/projects/gonb-alone/gitlab/sync"],
        ["GET", "/api/gitlab/projects?search=x"],
      ] as const) {
        const res = await h.api<{ error: { code: string; message: string } }>(method, url);
        expect(res.status).toBe(503);
        expect(res.body.error.code).toBe("unavailable");
        expect(res.body.error.message).toContain("DOCKBOT_GITLAB_URL");
      }
    } finally {
      await h.close();
    }
  });
});
