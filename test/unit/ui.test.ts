// The dashboard through app.request(): the real API app with the UI mounted at "/", a real SQLite
// store in a temp dir and a DeployService without a runner (operations stay queued).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { adminToken } from "../../src/http/admin-token.js";
import { uiRoutes, type UiDeps } from "../../src/ui/ui-routes.js";
import { startApiHarness, TEST_TOKEN, type ApiHarness } from "../support/api-harness.js";
import { pino } from "pino";

const SSH_KEY = {
  publicKey: "ssh-ed25519 AAAAC3NzaUiTestKey dockbot",
  fingerprint: "SHA256:uitestfingerprint",
};
const ENV_SECRET = "s3cr3t-env-value-that-must-never-render";

let h: ApiHarness;

async function mountUi(harness: ApiHarness, token = TEST_TOKEN, publicUrl = "http://dockbot.test") {
  const deps: UiDeps = {
    service: harness.service,
    store: harness.store,
    token: await adminToken(harness.store, token),
    sshKey: SSH_KEY,
    publicUrl,
    logger: pino({ level: "silent" }),
  };
  return uiRoutes(deps);
}

beforeEach(async () => {
  h = await startApiHarness("sqlite");
  h.app.route("/", await mountUi(h));
});

afterEach(async () => {
  await h.close();
});

function form(fields: Record<string, string | string[]>): URLSearchParams {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(fields))
    for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
  return body;
}

const FORM = { "content-type": "application/x-www-form-urlencoded" };

async function signIn(token = TEST_TOKEN): Promise<Response> {
  return h.app.request("/login", {
    method: "POST",
    headers: FORM,
    body: form({ token, next: "/" }),
  });
}

/** A signed-in browser: keeps the session cookie, reads the CSRF token off pages. */
async function browser() {
  const res = await signIn();
  expect(res.status).toBe(303);
  const setCookie = res.headers.get("set-cookie") ?? "";
  const cookie = setCookie.split(";")[0] ?? "";
  expect(cookie).toMatch(/^dockbot_session=./);
  const get = (url: string) => h.app.request(url, { headers: { cookie } });
  const csrf = async () => {
    const html = await (await get("/")).text();
    const match = /name="_csrf" value="([^"]+)"/.exec(html);
    if (!match?.[1]) throw new Error("no CSRF token on the dashboard");
    return match[1];
  };
  const token = await csrf();
  const post = (url: string, fields: Record<string, string | string[]>, withCsrf = true) =>
    h.app.request(url, {
      method: "POST",
      headers: { ...FORM, cookie },
      body: form(withCsrf ? { _csrf: token, ...fields } : fields),
    });
  return { cookie, setCookie, csrf: token, get, post };
}

const PROJECT = {
  name: "shop",
  repoUrl: "git@gitlab.example.com:team/shop.git",
  composeFile: "",
  branches: "*, release/*",
  tags: "on",
  gitlabProjectId: "42",
  gitlabUrl: "https://gitlab.example.com/team/shop",
  env: `DATABASE_URL=${ENV_SECRET}\nSECRET_TOKEN=${ENV_SECRET}-2`,
};

describe("dashboard sign-in", () => {
  it("answers 401 with a message and sets no cookie when the token is wrong", async () => {
    const res = await signIn("not-the-token");
    expect(res.status).toBe(401);
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(await res.text()).toContain("That is not dockbot&#39;s admin token.");
  });

  it("redirects every page to /login, remembering the page, without a session", async () => {
    for (const path of ["/", "/new-project", "/projects/shop", "/operations/abc?x=1"]) {
      const res = await h.app.request(path);
      expect(res.status, path).toBe(303);
      expect(res.headers.get("location"), path).toBe(`/login?next=${encodeURIComponent(path)}`);
    }
    const forged = await h.app.request("/", {
      headers: { cookie: "dockbot_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
    });
    expect(forged.status).toBe(303);
  });

  it("refuses actions without a session and creates nothing", async () => {
    const res = await h.app.request("/projects", {
      method: "POST",
      headers: FORM,
      body: form(PROJECT),
    });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toMatch(/^\/login/);
    expect(await h.store.listProjects()).toEqual([]);
  });

  it("signs in and goes back to the page asked for, never to another site", async () => {
    const back = await h.app.request("/login", {
      method: "POST",
      headers: FORM,
      body: form({ token: TEST_TOKEN, next: "/operations/abc" }),
    });
    expect(back.headers.get("location")).toBe("/operations/abc");
    const offsite = await h.app.request("/login", {
      method: "POST",
      headers: FORM,
      body: form({ token: TEST_TOKEN, next: "//evil.example/x" }),
    });
    expect(offsite.headers.get("location")).toBe("/");
  });

  it("sends an arrival from another site through one reload from dockbot, where the Strict cookie is sent", async () => {
    const crossSite = await h.app.request("/login?next=%2Foperations%2Fabc", {
      headers: { "sec-fetch-site": "cross-site" },
    });
    expect(crossSite.status).toBe(200);
    expect(await crossSite.text()).toContain(
      'http-equiv="refresh" content="0;url=/login?next=%2Foperations%2Fabc&amp;hop=1"',
    );
    const b = await browser();
    const hop = await h.app.request("/login?next=%2Foperations%2Fabc&hop=1", {
      headers: { "sec-fetch-site": "same-origin", cookie: b.cookie },
    });
    expect(hop.status).toBe(303);
    expect(hop.headers.get("location")).toBe("/operations/abc");
    const signedOut = await h.app.request("/login?next=%2F&hop=1", {
      headers: { "sec-fetch-site": "cross-site" },
    });
    expect(await signedOut.text()).toContain('name="token"');
  });

  it("keeps the token out of the cookie, which is HttpOnly and SameSite=Lax", async () => {
    const { setCookie } = await browser();
    expect(setCookie).not.toContain(TEST_TOKEN);
    expect(setCookie).not.toContain(Buffer.from(TEST_TOKEN).toString("base64url"));
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Lax/);
    expect(setCookie).not.toMatch(/Secure/);
  });

  it("marks the cookie Secure (__Host-) when the public URL is https", async () => {
    const app = await mountUi(h, TEST_TOKEN, "https://dockbot.example");
    const res = await app.request("/login", {
      method: "POST",
      headers: FORM,
      body: form({ token: TEST_TOKEN }),
    });
    expect(res.headers.get("set-cookie")).toMatch(/^__Host-dockbot_session=.*; Secure/);
  });

  it("ends the session on sign-out, also for a copy of its cookie", async () => {
    const b = await browser();
    expect((await b.get("/")).status).toBe(200);
    const out = await b.post("/logout", {});
    expect(out.status).toBe(303);
    expect(out.headers.get("location")).toBe("/login");
    expect((await b.get("/")).status).toBe(303);
  });

  it("ends every session when the admin token changes", async () => {
    const b = await browser();
    const other = new (await import("hono")).Hono();
    other.route("/", await mountUi(h, "a-new-admin-token-0123456789"));
    const res = await other.request("/", { headers: { cookie: b.cookie } });
    expect(res.status).toBe(303);
  });
});

describe("dashboard forms", () => {
  it("refuses a POST without the CSRF token (403) and changes nothing", async () => {
    const b = await browser();
    const missing = await b.post("/projects", PROJECT, false);
    expect(missing.status).toBe(403);
    const wrong = await b.post("/projects", { ...PROJECT, _csrf: "wrong" }, false);
    expect(wrong.status).toBe(403);
    expect(await h.store.listProjects()).toEqual([]);
  });

  it("refuses a POST sent from another origin even with the CSRF token", async () => {
    const b = await browser();
    const res = await h.app.request("/projects", {
      method: "POST",
      headers: { ...FORM, cookie: b.cookie, origin: "https://evil.example" },
      body: form({ _csrf: b.csrf, ...PROJECT }),
    });
    expect(res.status).toBe(403);
    expect(await h.store.listProjects()).toEqual([]);
  });

  it("creates a project from the form and shows it in the list", async () => {
    const b = await browser();
    const res = await b.post("/projects", PROJECT);
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/projects/shop?done=created");
    const [stored] = await h.store.listProjects();
    expect(stored).toMatchObject({
      name: "shop",
      repoUrl: PROJECT.repoUrl,
      autoDeploy: { branches: ["*", "release/*"], tags: true, mergeRequests: false },
      gitlab: { projectId: 42, url: "https://gitlab.example.com/team/shop" },
      env: { DATABASE_URL: ENV_SECRET, SECRET_TOKEN: `${ENV_SECRET}-2` },
    });
    const list = await (await b.get("/")).text();
    expect(list).toContain('href="/projects/shop"');
    expect(list).toContain(SSH_KEY.publicKey);
    expect(list).toContain(SSH_KEY.fingerprint);
  });

  it("re-renders the form with a human message when the name is taken", async () => {
    const b = await browser();
    expect((await b.post("/projects", PROJECT)).status).toBe(303);
    const again = await b.post("/projects", {
      ...PROJECT,
      repoUrl: "git@gitlab.example.com:team/other.git",
    });
    expect(again.status).toBe(409);
    const html = await again.text();
    expect(html).toContain("a project named &#39;shop&#39; exists already");
    expect(html).toContain('value="git@gitlab.example.com:team/other.git"');
    expect(html).not.toContain(ENV_SECRET);
  });

  it("never renders env values, and shows the webhook secret only on the project's page", async () => {
    const b = await browser();
    await b.post("/projects", PROJECT);
    const [project] = await h.store.listProjects();
    if (!project) throw new Error("project not created");
    const pages = {
      dashboard: await (await b.get("/")).text(),
      project: await (await b.get("/projects/shop")).text(),
      edit: await (await b.get("/projects/shop/edit")).text(),
      badEdit: await (
        await b.post("/projects/shop", { ...PROJECT, env: "not a line", repoUrl: "nope" })
      ).text(),
    };
    for (const [name, html] of Object.entries(pages)) {
      expect(html, name).not.toContain(ENV_SECRET);
    }
    expect(pages.project).toContain("DATABASE_URL");
    expect(pages.edit).toContain("DATABASE_URL");
    expect(pages.project).toContain(project.webhookSecret);
    expect(pages.project).toContain("http://dockbot.test/webhooks/gitlab");
    expect(pages.dashboard).not.toContain(project.webhookSecret);
    expect(pages.edit).not.toContain(project.webhookSecret);
  });

  it("keeps env values it was not given on edit, replaces typed ones and removes ticked names", async () => {
    const b = await browser();
    await b.post("/projects", PROJECT);
    const res = await b.post("/projects/shop", {
      ...PROJECT,
      env: "DATABASE_URL=new-value\nEXTRA=1",
      removeEnv: "SECRET_TOKEN",
    });
    expect(res.status).toBe(303);
    const [stored] = await h.store.listProjects();
    expect(stored?.env).toEqual({ DATABASE_URL: "new-value", EXTRA: "1" });
  });

  it("adds a version, turns it on from the form and shows the queued operation with a cancel button", async () => {
    const b = await browser();
    await b.post("/projects", PROJECT);
    const added = await b.post("/projects/shop/versions", { ref: "main" });
    expect(added.status).toBe(303);
    const projectHtml = await (await b.get("/projects/shop")).text();
    expect(projectHtml).toContain("<strong>main</strong>");
    expect(projectHtml).toContain('action="/projects/shop/versions/main/on"');

    const on = await b.post("/projects/shop/versions/main/on", {});
    expect(on.status).toBe(303);
    const opPath = on.headers.get("location") ?? "";
    expect(opPath).toMatch(/^\/operations\/[0-9a-f-]{36}$/);
    const [op] = await h.store.listOperations({});
    expect(op).toMatchObject({ kind: "up", status: "queued", trigger: { source: "ui" } });

    const opPage = await b.get(opPath);
    expect(opPage.status).toBe(200);
    const opHtml = await opPage.text();
    expect(opHtml).toContain('id="cancel-form"');
    expect(opHtml).not.toMatch(/id="cancel-form"[^>]*hidden/);
    expect(opHtml).toContain(">queued<");

    const cancel = await b.post(`${opPath}/cancel`, {});
    expect(cancel.headers.get("location")).toBe(`${opPath}?done=cancel-requested`);
    expect((await h.store.getOperation(opPath.split("/")[2] ?? ""))?.status).toBe("canceled");
  });

  it("asks before deleting a version, naming what goes, and queues the delete keeping volumes when ticked", async () => {
    const b = await browser();
    await b.post("/projects", PROJECT);
    await b.post("/projects/shop/versions", { ref: "main" });
    const confirm = await (await b.get("/projects/shop/versions/main/delete")).text();
    for (const thing of ["containers", "images built for it", "networks", "volumes", "checkout"]) {
      expect(confirm).toContain(thing);
    }
    const res = await b.post("/projects/shop/versions/main/delete", { keepVolumes: "on" });
    expect(res.status).toBe(303);
    const [op] = await h.store.listOperations({});
    expect(op).toMatchObject({ kind: "delete", options: { keepVolumes: true } });
  });

  it("shows a human 404 page for a project that does not exist", async () => {
    const b = await browser();
    const res = await b.get("/projects/nope");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    expect(await res.text()).toContain("project &#39;nope&#39; not found");
  });
});

describe("dashboard headers and mounting", () => {
  it("serves live pages without the admin token, with no-store, a CSP and no framing", async () => {
    const b = await browser();
    await b.post("/projects", PROJECT);
    for (const path of ["/", "/projects/shop"]) {
      const res = await b.get(path);
      const html = await res.text();
      expect(html, path).toContain('data-live="on"');
      expect(html, path).not.toContain(TEST_TOKEN);
      expect(res.headers.get("cache-control"), path).toBe("no-store");
      expect(res.headers.get("content-security-policy"), path).toContain("script-src 'self'");
      expect(res.headers.get("content-security-policy"), path).toContain("frame-ancestors 'none'");
      expect(res.headers.get("x-frame-options"), path).toBe("DENY");
      expect(res.headers.get("x-content-type-options"), path).toBe("nosniff");
    }
    const login = await h.app.request("/login");
    expect(await login.text()).not.toContain(TEST_TOKEN);
  });

  it("serves the script and stylesheet itself, without external URLs", async () => {
    const js = await h.app.request("/assets/app.js");
    expect(js.headers.get("content-type")).toMatch(/javascript/);
    const css = await h.app.request("/assets/app.css");
    expect(css.headers.get("content-type")).toMatch(/text\/css/);
    const b = await browser();
    const html = await (await b.get("/")).text();
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it("leaves the API and its JSON 404 as they were", async () => {
    const api = await h.app.request("/api/projects");
    expect(api.status).toBe(401);
    expect(await api.json()).toMatchObject({ error: { code: "unauthorized" } });
    const missing = await h.app.request("/no-such-page");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: "not_found" } });
    expect(missing.headers.get("content-security-policy")).toBeNull();
  });
});
