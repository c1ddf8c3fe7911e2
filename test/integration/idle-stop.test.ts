// Idle stop for real (docs/api.md, "Idle stop and limits"): a real dockbot (real SQLite store, git
// over the test sshd, real Docker and Compose v2, the preview router on a port of its own, a fake
// GitLab for the environments) whose clock the test moves instead of waiting for hours. A version
// used through the preview router stays on; one nobody used is turned off by a `down` with
// trigger policy/idle (containers gone, volume kept, GitLab environment stopped); the default
// branch and a tag are exempt until the project says otherwise; idleHours 0 never stops; the
// stopped version's preview URL shows the turn-on page, and turning it on from the dashboard
// brings it back.
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Dockbot } from "../../src/main.js";
import { sessionCookieName } from "../../src/auth/sessions.js";
import {
  ADMIN_TOKEN,
  dockerObjects,
  startDockbot,
  webApp,
  type DockbotHarness,
  type OperationJson,
  type VersionJson,
} from "../support/dockbot-harness.js";
import { freePort, waitUntil } from "../support/dockbot-process.js";
import { startFakeGitlab, type FakeGitlab } from "../support/fake-gitlab.js";
import { createTestRepo, uniqueName, type TestRepo } from "../support/git-server.js";
import { requestWithHost, untilStatus } from "../support/preview-upstream.js";
import { checkDeployServices, describeWithServices } from "../support/services.js";

const GITLAB_TOKEN = "glpat-idle-stop-0123456789abcdef";
const GITLAB_PROJECT = 7313;
const PUBLIC_URL = "http://dockbot.test:3000";
const MINUTE = 60_000;
/** The versions: the default branch, two feature branches, a tag. */
const VERSIONS = ["main", "used", "unused", "v1"] as const;
/** A merge request version too (never exempt; GitLab gets its note). */
const IID = 5;
const MR = `mr-${IID}`;

type Version = VersionJson & {
  lastRequestAt?: string;
  previewUrl: string | null;
  lastOperation?: OperationJson & {
    trigger: { source: string; reason?: string };
    finishedAt?: string;
  };
};

describeWithServices(await checkDeployServices(), "idle versions turned off by themselves", () => {
  const project = uniqueName("idl");
  let h: DockbotHarness;
  let dockbot: Dockbot;
  let gitlab: FakeGitlab;
  let repo: TestRepo;
  let previewPort = 0;
  /** The injected clock: real time plus what the test moved it by. */
  let offset = 0;
  const now = () => Date.now() + offset;
  const ids = new Map<string, string>();

  const version = async (name: string) =>
    (await h.api<Version>("GET", `/api/projects/${project}/versions/${name}`)).body;
  const preview = (name: string) =>
    requestWithHost(previewPort, `${name}--${project}.localhost:${previewPort}`);
  /** The idle-stop downs of a version, from the store. */
  const idleDowns = async (name: string) =>
    (await dockbot.store.listOperations({ versionId: ids.get(name) ?? "" })).filter(
      (op) => op.kind === "down" && op.trigger.source === "policy" && op.trigger.reason === "idle",
    );
  const environment = (name: string) =>
    gitlab.environments(GITLAB_PROJECT).find((e) => e.name === `dockbot/${name}`);
  /** Waits for the version's idle down to finish; returns it. */
  async function stoppedForIdle(name: string): Promise<OperationJson> {
    const [down] = await waitUntil(`the idle down of ${name}`, async () => {
      const found = await idleDowns(name);
      return found.length > 0 ? found : undefined;
    });
    return h.waitForOperation(down?.id ?? "");
  }

  beforeAll(async () => {
    gitlab = await startFakeGitlab({ token: GITLAB_TOKEN });
    previewPort = await freePort();
    h = await startDockbot(
      {
        DOCKBOT_PREVIEW_PORT: String(previewPort),
        DOCKBOT_PUBLIC_URL: PUBLIC_URL,
        DOCKBOT_GITLAB_URL: gitlab.url,
        DOCKBOT_GITLAB_TOKEN: GITLAB_TOKEN,
      },
      { now },
    );
    dockbot = h.dockbot;
    repo = await createTestRepo("idle", webApp("idle app"));
    const sha = await repo.head();
    await repo.createBranch("used");
    await repo.createBranch("unused");
    await repo.tag("v1");
    for (const ref of ["main", "used", "unused", "v1"]) {
      gitlab.registerCommit(GITLAB_PROJECT, sha, ref);
    }
    await repo.setMergeRequestHead(IID, sha);
    gitlab.registerMergeRequest(GITLAB_PROJECT, IID);
    const created = await h.api("POST", "/api/projects", {
      name: project,
      repoUrl: repo.sshUrl,
      gitlab: { projectId: GITLAB_PROJECT },
      autoStop: { idleHours: 1 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    for (const name of [...VERSIONS, MR]) {
      const ref =
        name === "v1"
          ? "refs/tags/v1"
          : name === MR
            ? `refs/merge-requests/${IID}/head`
            : `refs/heads/${name}`;
      const made = await h.api<Version>("POST", `/api/projects/${project}/versions`, { ref });
      expect(made.status, JSON.stringify(made.body)).toBe(201);
      expect(made.body.name).toBe(name);
      ids.set(name, made.body.id);
    }
    // One at a time: the first build fills the cache the others use.
    for (const name of [...VERSIONS, MR]) {
      const on = await h.api<OperationJson>("POST", `/api/projects/${project}/versions/${name}/on`);
      const done = await h.waitForOperation(on.body.id);
      expect(done.status, done.log ?? done.error).toBe("succeeded");
    }
    await waitUntil("the GitLab environments", () =>
      VERSIONS.every((n) => environment(n)?.state === "available") ? true : undefined,
    );
  }, 600_000);

  afterAll(async () => {
    for (const name of [...VERSIONS, MR]) {
      const res = await h
        ?.api<OperationJson>("DELETE", `/api/projects/${project}/versions/${name}`)
        .catch(() => undefined);
      if (res?.status === 202) await h.waitForOperation(res.body.id).catch(() => undefined);
    }
    await h?.close();
    await repo?.remove();
    await gitlab?.close();
  }, 300_000);

  it("keeps a version used through the preview router and turns off the one nobody used, keeping its volume", async () => {
    offset = 50 * MINUTE;
    expect((await untilStatus(() => preview("used"), 200)).body).toBe("idle app\n");
    await dockbot.requests?.flush();
    const used = await version("used");
    expect(used.lastRequestAt).toBeDefined();
    expect(Math.abs(Date.parse(used.lastRequestAt ?? "") - now())).toBeLessThan(MINUTE);

    offset = 70 * MINUTE;
    const outcomes = await dockbot.idleStop.check();
    const why = new Map(
      outcomes.map((o) => [o.version.name, o.verdict.stop ? "stop" : o.verdict.why]),
    );
    expect(why.get("used")).toBe("in-use");
    expect(why.get("main")).toBe("default-branch");
    expect(why.get("v1")).toBe("tag");

    const down = await stoppedForIdle("unused");
    expect(down.status).toBe("succeeded");
    expect(down.log).toContain(
      "[dockbot] started by dockbot itself: nobody used it (no deploy and no preview request)",
    );
    const unused = await version("unused");
    expect(unused.state).toBe("off");
    expect(unused.lastOperation?.trigger).toEqual({ source: "policy", reason: "idle" });
    const left = await dockerObjects(unused.composeProject);
    expect(left.containers).toEqual([]);
    expect(left.volumes).toHaveLength(1);
    for (const name of ["main", "used", "v1"]) {
      expect((await version(name)).state, name).toBe("running");
      expect(await idleDowns(name), name).toEqual([]);
    }
  });

  it("queues one down only, however often it looks", async () => {
    await Promise.all([dockbot.idleStop.check(), dockbot.idleStop.check()]);
    expect(await idleDowns("unused")).toHaveLength(1);
  });

  it("stops the GitLab environment of the version it turned off, and only that one", async () => {
    await waitUntil("the stopped environment", () =>
      environment("unused")?.state === "stopped" ? true : undefined,
    );
    for (const name of ["main", "used", "v1"]) {
      expect(environment(name)?.state, name).toBe("available");
    }
  });

  it("tells the merge request in its note that dockbot stopped its version", async () => {
    expect((await stoppedForIdle(MR)).status).toBe("succeeded");
    const note = await waitUntil("the note saying stopped", () =>
      gitlab
        .notes(GITLAB_PROJECT, IID)
        .find((n) => n.body.includes("stopped by dockbot: nobody used it for a while")),
    );
    expect(gitlab.notes(GITLAB_PROJECT, IID)).toHaveLength(1);
    expect(note.body).toContain(`${MR}--${project}.localhost:${previewPort}`);
  });

  it("shows the stopped version's preview URL a 503 page that says why and when, with a Turn on button", async () => {
    const page = await preview("unused");
    expect(page.status).toBe(503);
    expect(page.body).toContain(`Version unused of ${project} is not running`);
    expect(page.body).toContain("no deploy and no visit for 1 hour");
    const finished = (await version("unused")).lastOperation?.finishedAt ?? "";
    expect(page.body).toContain(`${finished.slice(0, 16).replace("T", " ")} UTC`);
    expect(page.body).toContain(
      `href="${PUBLIC_URL}/projects/${project}/versions/unused/turn-on">Turn on</a>`,
    );
  });

  it("never stops anything with idleHours 0", async () => {
    const patched = await h.api("PATCH", `/api/projects/${project}`, {
      autoStop: { idleHours: 0 },
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    offset = 1000 * 60 * MINUTE;
    expect(await dockbot.idleStop.check()).toEqual([]);
    for (const name of ["main", "used", "v1"]) {
      expect((await version(name)).state, name).toBe("running");
      expect(await idleDowns(name), name).toEqual([]);
    }
  });

  it("turns off the default branch and tags too when the project does not exempt them", async () => {
    const patched = await h.api("PATCH", `/api/projects/${project}`, {
      autoStop: { idleHours: 1, exemptDefaultBranch: false, exemptTags: false },
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    await dockbot.idleStop.check();
    for (const name of ["main", "used", "v1"]) {
      expect((await stoppedForIdle(name)).status, name).toBe("succeeded");
      expect((await version(name)).state, name).toBe("off");
    }
  });

  it("turns the stopped version on again from the dashboard page its Turn on button opens", async () => {
    // Back to real time: a version turned on now is not idle the moment it runs.
    offset = 0;
    const base = h.baseUrl;
    const page = await preview("unused");
    const href = /href="([^"]+\/turn-on)"/.exec(page.body)?.[1] ?? "";
    const turnOnPath = new URL(href).pathname;

    // Not signed in: to the sign-in page, coming back here afterwards.
    const anonymous = await fetch(`${base}${turnOnPath}`, { redirect: "manual" });
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.get("location")).toBe(`/login?next=${encodeURIComponent(turnOnPath)}`);
    const login = await fetch(`${base}/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: base },
      body: new URLSearchParams({ token: ADMIN_TOKEN, next: turnOnPath }),
    });
    expect(login.status).toBe(303);
    expect(login.headers.get("location")).toBe(turnOnPath);
    const cookieName = sessionCookieName(false);
    const cookie = (
      login.headers.getSetCookie().find((c) => c.startsWith(`${cookieName}=`)) ?? ""
    ).split(";")[0];
    expect(cookie).toMatch(new RegExp(`^${cookieName}=.+`));

    const confirm = await fetch(`${base}${turnOnPath}`, { headers: { cookie: cookie ?? "" } });
    expect(confirm.status).toBe(200);
    const html = await confirm.text();
    expect(html).toContain("dockbot stopped it");
    const action = `/projects/${project}/versions/unused/on`;
    expect(html).toContain(`action="${action}"`);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";

    // One POST from the dashboard's own origin; from another site it is refused.
    const foreign = await fetch(`${base}${action}`, {
      method: "POST",
      redirect: "manual",
      headers: {
        cookie: cookie ?? "",
        origin: `http://unused--${project}.localhost:${previewPort}`,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({ _csrf: csrf }),
    });
    expect(foreign.status).toBe(403);
    const turned = await fetch(`${base}${action}`, {
      method: "POST",
      redirect: "manual",
      headers: {
        cookie: cookie ?? "",
        origin: base,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({ _csrf: csrf }),
    });
    expect(turned.status).toBe(303);
    const opId = decodeURIComponent(
      /^\/operations\/([^/?]+)$/.exec(turned.headers.get("location") ?? "")?.[1] ?? "",
    );
    const up = await h.waitForOperation(opId);
    expect(up.kind).toBe("up");
    expect(up.status, up.log ?? up.error).toBe("succeeded");
    expect((await untilStatus(() => preview("unused"), 200)).body).toBe("idle app\n");
    // A successful deployment makes the stopped environment available again.
    await waitUntil("the environment available again", () =>
      environment("unused")?.state === "available" ? true : undefined,
    );
  });
});
