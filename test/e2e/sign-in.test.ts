// Signing in with GitLab in a real browser (Debian's Chromium, playwright-core) against a real
// dockbot (buildDockbot, real SQLite store, its own HTTP server and Socket.io) and the fake
// GitLab's OAuth provider: a Reporter, a Developer, a Maintainer and an admin each sign in the
// whole way round, and every API route and dashboard button is checked against the table of
// docs/api.md, "Who may do what". No operation runs (DOCKBOT_CONCURRENCY=0): what is checked is
// who may ask for what.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";
import { buildDockbot, type Dockbot } from "../../src/main.js";
import { apiClient, type ApiCall } from "../support/api-client.js";
import { startFakeGitlab, type FakeGitlab } from "../support/fake-gitlab.js";
import { fakeGitlabOauth, type FakeGitlabOauth } from "../support/fake-gitlab-oauth.js";
import { describeWithServices, type ServiceCheck } from "../support/services.js";
import { freePort } from "../support/dockbot-process.js";

const CHROMIUM = "/usr/bin/chromium";
const chromiumCheck: ServiceCheck = existsSync(CHROMIUM)
  ? { ok: true, reason: "" }
  : { ok: false, reason: `no ${CHROMIUM} (scripts/services/chromium.sh installs it)` };

const ADMIN_TOKEN = "sign-in-e2e-admin-token-0123456789";
const GITLAB_TOKEN = "glpat-sign-in-e2e-dockbot";
const GITLAB_PROJECT = 701;
const PEOPLE = {
  rita: { id: 31, username: "rita", name: "Rita Reporter", level: 20, rank: 1 },
  dave: { id: 32, username: "dave", name: "Dave Developer", level: 30, rank: 2 },
  mia: { id: 33, username: "mia", name: "Mia Maintainer", level: 40, rank: 3 },
  root: { id: 34, username: "root", name: "Root Admin", level: 0, rank: 4 },
} as const;
type Person = keyof typeof PEOPLE;
const RANK = { "signed-in": 0, read: 1, deploy: 2, maintain: 3, admin: 4 } as const;

/** A dashboard form's POST (not Socket.io's polling, which POSTs too). */
const isFormPost = (r: { url(): string; request(): { method(): string } }) =>
  r.request().method() === "POST" && !r.url().includes("/socket.io/");

/** The page a form sent by postForm was answered with. */
let lastFormAnswer: string | undefined;

/**
 * A button the page leaves out (the person may not use it): its form sent anyway, with the
 * page's CSRF token, as a script would. Answers the status.
 */
async function postForm(page: Page, action: string, fields: Record<string, string>) {
  const csrf = (await page.locator("input[name=_csrf]").first().getAttribute("value")) ?? "";
  const [status, text] = await page.evaluate(
    async ([url, body]) => {
      const res = await fetch(url, { method: "POST", body: new URLSearchParams(body) });
      return [res.status, await res.text()] as const;
    },
    [action, { ...fields, _csrf: csrf }] as const,
  );
  lastFormAnswer = text;
  return status;
}

describeWithServices([chromiumCheck], "GitLab sign-in and rights in a browser", () => {
  let dockbot: Dockbot;
  let gitlab: FakeGitlab;
  let oauth: FakeGitlabOauth;
  let browser: Browser;
  let dataDir = "";
  let base = "";
  let api: ApiCall;
  let opId = "";
  const contexts: BrowserContext[] = [];
  const pages: Partial<Record<Person, Page>> = {};

  beforeAll(async () => {
    oauth = fakeGitlabOauth({ privateToken: GITLAB_TOKEN });
    gitlab = await startFakeGitlab({ token: GITLAB_TOKEN, plugins: [oauth.plugin] });
    for (const p of Object.values(PEOPLE)) {
      oauth.addUser({ id: p.id, username: p.username, name: p.name });
      if (p.level > 0) oauth.setAccessLevel(GITLAB_PROJECT, p.id, p.level);
    }
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    oauth.redirectUri = `${base}/auth/gitlab/callback`;
    dataDir = await mkdtemp(path.join(os.tmpdir(), "dockbot-sign-in-"));
    const parsed = parseConfig({
      DOCKBOT_DATA_DIR: dataDir,
      DOCKBOT_PORT: String(port),
      DOCKBOT_HOST: "127.0.0.1",
      DOCKBOT_PUBLIC_URL: base,
      DOCKBOT_PREVIEW_PORT: "0",
      DOCKBOT_CONCURRENCY: "0",
      DOCKBOT_ADMIN_TOKEN: ADMIN_TOKEN,
      DOCKBOT_LOG_LEVEL: "silent",
      DOCKBOT_GITLAB_URL: gitlab.url,
      DOCKBOT_GITLAB_TOKEN: GITLAB_TOKEN,
      DOCKBOT_GITLAB_OAUTH_ID: oauth.clientId,
      DOCKBOT_GITLAB_OAUTH_SECRET: oauth.clientSecret,
      DOCKBOT_ADMINS: "root",
    });
    if (!parsed.ok) throw new Error(parsed.errors.join("; "));
    dockbot = await buildDockbot(parsed.config, pino({ level: "silent" }));
    await dockbot.listen();
    api = apiClient(base, ADMIN_TOKEN);
    const repoUrl = "git@gitlab.example.com:team/signin.git";
    expect(
      (
        await api("POST", "/api/projects", {
          name: "alpha",
          repoUrl,
          gitlab: { projectId: GITLAB_PROJECT },
        })
      ).status,
    ).toBe(201);
    expect((await api("POST", "/api/projects", { name: "gamma", repoUrl })).status).toBe(201);
    expect((await api("POST", "/api/projects/alpha/versions", { ref: "main" })).status).toBe(201);
    expect((await api("POST", "/api/projects/gamma/versions", { ref: "main" })).status).toBe(201);
    opId = (await api<{ id: string }>("POST", "/api/projects/alpha/versions/main/off")).body.id;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
  });

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await dockbot?.close(1000);
    await gitlab?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function signIn(person: Person): Promise<Page> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    await page.goto(`${base}/`);
    expect(new URL(page.url()).pathname).toBe("/login");
    oauth.signInAs(person);
    await Promise.all([page.waitForURL(`${base}/`), page.click("#sign-in-gitlab")]);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "dockbot_session");
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Lax" });
    pages[person] = page;
    return page;
  }

  it("signs each person in with GitLab; the dashboard lists only what they may read", async () => {
    for (const person of Object.keys(PEOPLE) as Person[]) {
      const page = await signIn(person);
      const text = (await page.locator("main").textContent()) ?? "";
      expect(text, person).toContain("alpha");
      if (person === "root") expect(text).toContain("gamma");
      else expect(text, person).not.toContain("gamma");
      const me = await page.evaluate(async () => (await fetch("/api/me")).json());
      expect(me, person).toMatchObject({ user: { username: person }, via: "session" });
    }
  });

  it("answers every API route from each person's browser as the table says", async () => {
    const routes: Array<[string, string, keyof typeof RANK]> = [
      ["GET", "/api/projects/alpha", "read"],
      ["GET", "/api/projects/alpha/versions", "read"],
      ["GET", "/api/projects/alpha/versions/main", "read"],
      ["GET", "/api/projects/alpha/versions/main/view", "read"],
      ["GET", "/api/projects/alpha/deliveries", "read"],
      ["GET", `/api/operations/${opId}`, "read"],
      ["GET", `/api/operations/${opId}/log`, "read"],
      ["GET", "/api/projects/alpha/gitlab", "read"],
      ["POST", "/api/projects/alpha/versions", "deploy"],
      ["POST", "/api/projects/alpha/versions/nope/on", "deploy"],
      ["POST", "/api/projects/alpha/versions/nope/off", "deploy"],
      ["POST", "/api/projects/alpha/versions/nope/rollback", "deploy"],
      ["POST", `/api/operations/${opId}/cancel`, "deploy"],
      ["PATCH", "/api/projects/alpha", "maintain"],
      ["DELETE", "/api/projects/alpha/versions/nope", "maintain"],
      ["GET", "/api/projects/alpha/webhook-secret", "maintain"],
      ["POST", "/api/projects/alpha/gitlab/sync", "maintain"],
      ["GET", "/api/audit?project=alpha", "maintain"],
      ["POST", "/api/projects", "admin"],
      ["GET", "/api/gitlab/projects", "admin"],
      ["GET", "/api/audit", "admin"],
      ["GET", "/api/projects/gamma", "admin"],
      ["GET", "/api/tokens", "signed-in"],
    ];
    for (const person of Object.keys(PEOPLE) as Person[]) {
      const page = pages[person] ?? (await signIn(person));
      const statuses = await page.evaluate(
        async (list: string[][]) =>
          Promise.all(
            list.map(async ([method = "GET", url = "/"]) => {
              const init: RequestInit = { method };
              if (method !== "GET" && method !== "DELETE") {
                init.headers = { "content-type": "application/json" };
                init.body = "{}";
              }
              return (await fetch(url, init)).status;
            }),
          ),
        routes.map(([method, url]) => [method, url]),
      );
      routes.forEach(([method, url, need], i) => {
        const status = statuses[i];
        const allowed = RANK[need] <= PEOPLE[person].rank;
        if (allowed)
          expect([401, 403], `${person} ${method} ${url}: ${status}`).not.toContain(status);
        else expect(status, `${person} ${method} ${url}`).toBe(403);
      });
    }
  });

  it("lets each dashboard button do what the table allows and refuses the rest with 403", async () => {
    // [what, least right, how to press it]
    const buttons: Array<[string, keyof typeof RANK, (page: Page) => Promise<number>]> = [
      [
        "open the project",
        "read",
        async (p) => (await p.goto(`${base}/projects/alpha`))?.status() ?? 0,
      ],
      [
        "open the operation",
        "read",
        async (p) => (await p.goto(`${base}/operations/${opId}`))?.status() ?? 0,
      ],
      [
        "add a version",
        "deploy",
        async (p) => {
          await p.goto(`${base}/projects/alpha`);
          const ref = `feature/${Math.random().toString(36).slice(2, 8)}`;
          if ((await p.locator("button:has-text('Add version')").count()) === 0) {
            return postForm(p, "/projects/alpha/versions", { ref });
          }
          await p.fill("input[name=ref]", ref);
          const [res] = await Promise.all([
            p.waitForResponse(isFormPost),
            p.click("button:has-text('Add version')"),
          ]);
          return res.status();
        },
      ],
      [
        "turn main on",
        "deploy",
        async (p) => {
          await p.goto(`${base}/projects/alpha`);
          const button = p
            .locator("tr[data-version-row]", { hasText: "main" })
            .getByRole("button", { name: "Turn on", exact: true });
          if ((await button.count()) === 0) {
            return postForm(p, "/projects/alpha/versions/main/on", {});
          }
          const [res] = await Promise.all([p.waitForResponse(isFormPost), button.click()]);
          return res.status();
        },
      ],
      [
        "edit the project",
        "maintain",
        async (p) => (await p.goto(`${base}/projects/alpha/edit`))?.status() ?? 0,
      ],
      [
        "ask to delete main",
        "maintain",
        async (p) => (await p.goto(`${base}/projects/alpha/versions/main/delete`))?.status() ?? 0,
      ],
      [
        "read the audit log",
        "maintain",
        async (p) => (await p.goto(`${base}/projects/alpha/audit`))?.status() ?? 0,
      ],
      ["add a project", "admin", async (p) => (await p.goto(`${base}/new-project`))?.status() ?? 0],
      ["see API tokens", "signed-in", async (p) => (await p.goto(`${base}/tokens`))?.status() ?? 0],
    ];
    for (const person of Object.keys(PEOPLE) as Person[]) {
      const page = pages[person] ?? (await signIn(person));
      for (const [what, need, press] of buttons) {
        lastFormAnswer = undefined;
        const status = await press(page);
        const allowed = RANK[need] <= PEOPLE[person].rank;
        if (allowed) expect(status, `${person}: ${what}`).toBeLessThan(400);
        else {
          expect(status, `${person}: ${what}`).toBe(403);
          const answer = lastFormAnswer ?? (await page.locator("main").textContent());
          expect(answer, `${person}: ${what}`).toMatch(/may not|only dockbot admins/);
        }
      }
    }
  });

  it("shows each person only the buttons they may use, and the webhook secret to Maintainers", async () => {
    const visible = async (person: Person) => {
      const page = pages[person] ?? (await signIn(person));
      await page.goto(`${base}/projects/alpha`);
      const count = (selector: string) => page.locator(selector).count();
      return {
        turnOn: (await count("button:has-text('Turn on')")) > 0,
        addVersion: (await count("button:has-text('Add version')")) > 0,
        edit: (await count("a:has-text('Edit project')")) > 0,
        secret: (await count("#webhook-secret")) > 0,
      };
    };
    const none = { turnOn: false, addVersion: false, edit: false, secret: false };
    expect(await visible("rita")).toEqual(none);
    expect(await visible("dave")).toEqual({ ...none, turnOn: true, addVersion: true });
    expect(await visible("mia")).toEqual({
      turnOn: true,
      addVersion: true,
      edit: true,
      secret: true,
    });
    const cancel = async (person: Person) => {
      const page = pages[person] ?? (await signIn(person));
      await page.goto(`${base}/operations/${opId}`);
      return page.locator("#cancel-form").count();
    };
    expect(await cancel("rita")).toBe(0);
    expect(await cancel("dave")).toBe(1);
    const dashboard = pages.dave ?? (await signIn("dave"));
    await dashboard.goto(`${base}/`);
    expect(await dashboard.locator(".heading a:has-text('New project')").count()).toBe(0);
    // The navigation of every page offers it to admins only.
    const navOffers = async (person: Person, path: string) => {
      const page = pages[person] ?? (await signIn(person));
      await page.goto(`${base}${path}`);
      return (await page.locator("header nav a:has-text('New project')").count()) > 0;
    };
    for (const path of ["/", "/projects/alpha", "/tokens"]) {
      expect(await navOffers("mia", path), `mia ${path}`).toBe(false);
      expect(await navOffers("root", path), `root ${path}`).toBe(true);
    }
  });

  it("names the person in the project's audit log for each change", async () => {
    const page = pages.mia ?? (await signIn("mia"));
    await page.goto(`${base}/projects/alpha/audit`);
    const rows = await page.locator("#audit tbody tr").allTextContents();
    expect(rows.some((r) => r.includes("@dave") && r.includes("version.on"))).toBe(true);
    expect(rows.some((r) => r.includes("@mia") && r.includes("version.create"))).toBe(true);
    expect(rows.every((r) => !r.includes("@rita"))).toBe(true);
  });

  it("makes and revokes a token on the tokens page; the token works, then is refused", async () => {
    const page = pages.dave ?? (await signIn("dave"));
    await page.goto(`${base}/tokens`);
    await page.fill("#token-name", "laptop");
    await page.selectOption("#token-scope", "deploy");
    await page.click("button:has-text('Make token')");
    const token = (await page.locator("#new-token-value").textContent()) ?? "";
    expect(token).toMatch(/^dbt_/);
    const asToken = apiClient(base, token);
    expect((await asToken("GET", "/api/me")).body).toMatchObject({
      via: "token",
      scopes: ["deploy"],
    });
    await page.goto(`${base}/tokens`);
    expect(await page.content()).not.toContain(token);
    await Promise.all([
      page.waitForURL(/done=token-revoked/),
      page
        .locator("tr[data-token-row]", { hasText: "laptop" })
        .getByRole("button", { name: "Revoke" })
        .click(),
    ]);
    expect((await asToken("GET", "/api/me")).status).toBe(401);
    // A Reporter may not make a deploy token.
    const rita = pages.rita ?? (await signIn("rita"));
    await rita.goto(`${base}/tokens`);
    await rita.fill("#token-name", "too much");
    await rita.selectOption("#token-scope", "deploy");
    const [res] = await Promise.all([
      rita.waitForResponse(isFormPost),
      rita.click("button:has-text('Make token')"),
    ]);
    expect(res.status()).toBe(403);
  });

  it("never puts the admin token in a page or script, also for a session signed in with it", async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    const bodies: string[] = [];
    page.on("response", (res) => {
      void res.text().then(
        (t) => bodies.push(t),
        () => undefined,
      );
    });
    await page.goto(`${base}/login`);
    await page.fill("#token", ADMIN_TOKEN);
    await Promise.all([page.waitForURL(`${base}/`), page.click("button[type=submit]")]);
    for (const url of [
      "/",
      "/projects/alpha",
      `/operations/${opId}`,
      "/tokens",
      "/projects/alpha/audit",
    ]) {
      await page.goto(`${base}${url}`);
      expect(await page.content(), url).not.toContain(ADMIN_TOKEN);
      expect(page.url()).not.toContain(ADMIN_TOKEN);
    }
    await expect.poll(() => bodies.length).toBeGreaterThan(5);
    expect(bodies.some((b) => b.includes(ADMIN_TOKEN))).toBe(false);
    // The page's live socket signed in with the cookie.
    await page.goto(`${base}/projects/alpha`);
    const connected = await page.evaluate(
      () =>
        new Promise<boolean>((resolve) => {
          const w = globalThis as unknown as { io: () => { on(e: string, f: () => void): void } };
          const s = w.io();
          s.on("connect", () => resolve(true));
          s.on("connect_error", () => resolve(false));
        }),
    );
    expect(connected).toBe(true);
  });

  it("gives a Reporter's page socket no event of a project they may not read", async () => {
    const page = pages.rita ?? (await signIn("rita"));
    await page.goto(`${base}/`);
    await page.evaluate(() => {
      const w = globalThis as unknown as {
        io: () => {
          emit(e: string, r: object): void;
          on(e: string, f: (v: { name: string }) => void): void;
        };
        heard: string[];
      };
      w.heard = [];
      const s = w.io();
      s.emit("subscribe", {});
      s.on("version.updated", (v) => w.heard.push(v.name));
    });
    await new Promise((r) => setTimeout(r, 500));
    expect((await api("POST", "/api/projects/gamma/versions", { ref: "hidden" })).status).toBe(201);
    expect((await api("POST", "/api/projects/alpha/versions", { ref: "visible" })).status).toBe(
      201,
    );
    await expect
      .poll(() => page.evaluate(() => (globalThis as unknown as { heard: string[] }).heard))
      .toEqual(["visible"]);
  });

  it("answers 429 after repeated failed sign-ins from one address", async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${base}/login`);
    const statuses = await page.evaluate(async () => {
      const out: number[] = [];
      for (let i = 0; i < 21; i++) {
        const body = new URLSearchParams({ token: `wrong-${i}`, next: "/" });
        out.push((await fetch("/login", { method: "POST", body })).status);
      }
      return out;
    });
    // Earlier tests' failed checks from this address (a revoked token) count too.
    const first = statuses.indexOf(429);
    expect(first).toBeGreaterThan(15);
    expect(statuses.slice(0, first).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(first).every((s) => s === 429)).toBe(true);
    expect((await api("GET", "/api/me")).status).toBe(429);
  });
});
