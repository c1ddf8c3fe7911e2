// Who may do what over the API (docs/api.md, "Who may do what"): GitLab sign-in with PKCE,
// rights from GitLab access levels, scoped tokens, the audit log and the rate limit, against a
// real SQLite store and a fake GitLab that checks the OAuth round trip as GitLab does.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_RULES } from "../../src/auth/rules.js";
import {
  AUTH_ADMIN_TOKEN,
  cookieOf,
  startAuthHarness,
  type AuthHarness,
} from "../support/auth-harness.js";

const GITLAB_ALPHA = 101;
const GITLAB_BETA = 102;
const USERS = {
  rita: { id: 11, username: "rita", name: "Rita Reporter" },
  dave: { id: 12, username: "dave", name: "Dave Developer" },
  mia: { id: 13, username: "mia", name: "Mia Maintainer" },
  root: { id: 14, username: "root", name: "Root Admin" },
  otto: { id: 15, username: "otto", name: "Otto Outsider" },
};

let h: AuthHarness;
const cookies: Record<string, string> = {};
let opId = "";

beforeAll(async () => {
  h = await startAuthHarness();
  for (const u of Object.values(USERS)) h.oauth.addUser(u);
  h.oauth.setAccessLevel(GITLAB_ALPHA, USERS.rita.id, 20);
  h.oauth.setAccessLevel(GITLAB_ALPHA, USERS.dave.id, 30);
  h.oauth.setAccessLevel(GITLAB_ALPHA, USERS.mia.id, 40);
  h.oauth.setAccessLevel(GITLAB_BETA, USERS.dave.id, 20);
  const admin = { bearer: AUTH_ADMIN_TOKEN };
  const repoUrl = "git@gitlab.example.com:team/app.git";
  for (const [name, gitlab] of [
    ["alpha", { projectId: GITLAB_ALPHA }],
    ["beta", { projectId: GITLAB_BETA }],
    ["delta", { projectId: GITLAB_ALPHA }],
    ["gamma", undefined],
  ] as const) {
    const res = await h.request("POST", "/api/projects", {
      ...admin,
      body: { name, repoUrl, ...(gitlab ? { gitlab } : {}) },
    });
    expect(res.status, name).toBe(201);
  }
  await h.request("POST", "/api/projects/alpha/versions", { ...admin, body: { ref: "main" } });
  const op = await h.request("POST", "/api/projects/alpha/versions/main/off", admin);
  opId = ((await op.json()) as { id: string }).id;
  for (const name of ["rita", "dave", "mia", "root", "otto"]) cookies[name] = await h.signIn(name);
});

afterAll(async () => {
  await h?.close();
});

const asUser = (name: string, method: string, url: string, body?: unknown) =>
  h.request(method, url, { cookie: cookies[name] ?? "", ...(body === undefined ? {} : { body }) });

describe("GitLab sign-in", () => {
  it("starts with a state and an S256 code challenge in a Lax, HttpOnly sign-in cookie", async () => {
    const res = await h.request("GET", "/auth/gitlab");
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get("location") ?? "");
    expect(location.pathname).toBe("/oauth/authorize");
    expect(location.searchParams.get("code_challenge_method")).toBe("S256");
    expect(location.searchParams.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(location.searchParams.get("state")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(location.searchParams.get("scope")).toBe("read_user read_api");
    const cookie = res.headers.getSetCookie().join("\n");
    expect(cookie).toMatch(/dockbot_sign_in=[^;]+; Max-Age=600; Path=\/; HttpOnly; SameSite=Lax/);
  });

  it("makes a new HttpOnly, SameSite=Lax session and /api/me names the GitLab user", async () => {
    const me = await asUser("dave", "GET", "/api/me");
    expect(me.status).toBe(200);
    expect(await me.json()).toEqual({ user: USERS.dave, admin: false, via: "session" });
    const root = await asUser("root", "GET", "/api/me");
    expect(await root.json()).toMatchObject({ user: { username: "root" }, admin: true });
    // Each sign-in is a session of its own, never the cookie of another.
    const again = await h.signIn("dave");
    expect(again).not.toBe(cookies.dave);
  });

  it("refuses a callback whose state is not the one of this browser, and creates no session", async () => {
    const start = await h.request("GET", "/auth/gitlab");
    const signInCookie = cookieOf(start, "dockbot_sign_in") ?? "";
    h.oauth.signInAs("dave");
    const back = await fetch(start.headers.get("location") ?? "", { redirect: "manual" });
    const callback = new URL(back.headers.get("location") ?? "");
    callback.searchParams.set("state", "forged-state-from-an-attacker");
    const res = await h.request("GET", `${callback.pathname}${callback.search}`, {
      headers: { cookie: signInCookie },
      address: "10.9.0.1",
    });
    expect(res.status).toBe(400);
    expect(cookieOf(res, "dockbot_session")).toBeUndefined();
    // Without the browser's sign-in cookie the right state does not help either.
    const original = new URL(back.headers.get("location") ?? "");
    const noCookie = await h.request("GET", `${original.pathname}${original.search}`, {
      address: "10.9.0.1",
    });
    expect(noCookie.status).toBe(400);
  });

  it("refuses a replayed code: GitLab takes a code once, and the sign-in is over after one use", async () => {
    const start = await h.request("GET", "/auth/gitlab");
    const signInCookie = cookieOf(start, "dockbot_sign_in") ?? "";
    h.oauth.signInAs("mia");
    const back = await fetch(start.headers.get("location") ?? "", { redirect: "manual" });
    const callback = new URL(back.headers.get("location") ?? "");
    const path = `${callback.pathname}${callback.search}`;
    const first = await h.request("GET", path, { headers: { cookie: signInCookie } });
    expect(first.status).toBe(302);
    const replay = await h.request("GET", path, {
      headers: { cookie: signInCookie },
      address: "10.9.0.2",
    });
    expect(replay.status).toBe(400);
    expect(cookieOf(replay, "dockbot_session")).toBeUndefined();
    // The code itself, sent to GitLab again with the right verifier's challenge, is refused.
    const code = callback.searchParams.get("code") ?? "";
    const token = await fetch(`${h.gitlab.url}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code,
        client_id: h.oauth.clientId,
        client_secret: h.oauth.clientSecret,
        redirect_uri: h.oauth.redirectUri,
        code_verifier: "x".repeat(43),
      }),
    });
    expect(token.status).toBe(400);
  });

  it("ends the session on sign-out and after its expiry", async () => {
    const cookie = await h.signIn("rita");
    expect((await h.request("GET", "/api/me", { cookie })).status).toBe(200);
    const out = await h.request("POST", "/auth/sign-out", { cookie });
    expect(out.status).toBe(303);
    expect((await h.request("GET", "/api/me", { cookie })).status).toBe(401);
    const expiring = await h.signIn("rita");
    h.advance(2 * 60 * 60 * 1000 + 1000); // GitLab's access token lives 2 h: so does the session
    expect((await h.request("GET", "/api/me", { cookie: expiring })).status).toBe(401);
    for (const name of ["rita", "dave", "mia", "root", "otto"])
      cookies[name] = await h.signIn(name);
  });

  it("refuses the session cookie from another site or without Origin and Sec-Fetch-Site (403)", async () => {
    const foreign = await h.request("GET", "/api/me", {
      cookie: cookies.dave ?? "",
      headers: { origin: "https://evil.example" },
    });
    expect(foreign.status).toBe(403);
    const crossSite = await h.request("GET", "/api/me", {
      cookie: cookies.dave ?? "",
      headers: { "sec-fetch-site": "cross-site" },
    });
    expect(crossSite.status).toBe(403);
    const own = await h.request("GET", "/api/me", {
      cookie: cookies.dave ?? "",
      headers: { origin: "http://dockbot.test" },
    });
    expect(own.status).toBe(200);
  });
});

/** The contract's table (docs/api.md), written out on its own: the least right each route needs. */
const CONTRACT: Record<string, "public" | "signed-in" | "read" | "deploy" | "maintain" | "admin"> =
  {
    "GET /api/health": "public",
    "GET /api/ssh-key": "public",
    "POST /api/projects": "admin",
    "GET /api/projects": "signed-in",
    "GET /api/projects/:project": "read",
    "PATCH /api/projects/:project": "maintain",
    "DELETE /api/projects/:project": "maintain",
    "GET /api/projects/:project/webhook-secret": "maintain",
    "GET /api/projects/:project/deliveries": "read",
    "POST /api/projects/:project/versions": "deploy",
    "GET /api/projects/:project/versions": "read",
    "GET /api/projects/:project/versions/:version": "read",
    "POST /api/projects/:project/versions/:version/on": "deploy",
    "POST /api/projects/:project/versions/:version/off": "deploy",
    "POST /api/projects/:project/versions/:version/rollback": "deploy",
    "GET /api/projects/:project/versions/:version/view": "read",
    "DELETE /api/projects/:project/versions/:version": "maintain",
    "GET /api/operations/:id": "read",
    "GET /api/operations/:id/log": "read",
    "POST /api/operations/:id/cancel": "deploy",
    "GET /api/projects/:project/gitlab": "read",
    "POST /api/projects/:project/gitlab/sync": "maintain",
    "GET /api/gitlab/projects": "admin",
    "GET /api/me": "signed-in",
    "POST /api/tokens": "signed-in",
    "GET /api/tokens": "signed-in",
    "DELETE /api/tokens/:id": "signed-in",
    "GET /api/audit": "maintain",
  };

const RANK = { "signed-in": 0, read: 1, deploy: 2, maintain: 3, admin: 4 } as const;
const ROLE_RANK: Record<string, number> = { otto: 0, rita: 1, dave: 2, mia: 3, root: 4 };

describe("every route against the table", () => {
  it("has the contract's right for every route in the rule table", () => {
    for (const [key, need] of Object.entries(CONTRACT)) {
      expect(API_RULES[key]?.need, key).toBe(need);
    }
  });

  // Each person on project alpha (Reporter, Developer, Maintainer, admin, no member): a route
  // above their right answers 403, one within it anything but 401 or 403.
  for (const person of ["otto", "rita", "dave", "mia", "root"]) {
    it(`lets ${person} do exactly what the table allows on a GitLab-linked project`, async () => {
      for (const [key, need] of Object.entries(CONTRACT)) {
        if (need === "public") continue;
        const [method = "", pattern = ""] = key.split(" ");
        const project = key === "DELETE /api/projects/:project" ? "delta" : "alpha";
        const url = pattern
          .replace(":project", project)
          .replace(":version", "no-such-version")
          .replace(":id", key.includes("/api/operations/") ? opId : "no-such-token")
          .concat(key === "GET /api/audit" ? "?project=alpha" : "");
        const body = method === "POST" || method === "PATCH" ? {} : undefined;
        const res = await asUser(person, method, url, body);
        const allowed = RANK[need] <= (ROLE_RANK[person] ?? 0);
        if (allowed)
          expect([401, 403], `${person}: ${key} -> ${res.status}`).not.toContain(res.status);
        else expect(res.status, `${person}: ${key}`).toBe(403);
        if (res.status === 403) {
          expect(await res.json()).toMatchObject({ error: { code: "forbidden" } });
        }
      }
    });
  }

  it("lists only the projects a person may read; a project without GitLab is admins' only", async () => {
    const names = async (person: string) =>
      ((await (await asUser(person, "GET", "/api/projects")).json()) as Array<{ name: string }>)
        .map((p) => p.name)
        .sort();
    expect(await names("otto")).toEqual([]);
    expect(await names("rita")).toEqual(["alpha"]);
    expect(await names("dave")).toEqual(["alpha", "beta"]);
    expect(await names("root")).toEqual(["alpha", "beta", "gamma"]);
    expect((await asUser("mia", "GET", "/api/projects/gamma")).status).toBe(403);
  });
});

describe("roles from GitLab", () => {
  it("keeps an access level at most 60 s, and a GitLab that cannot be reached gives no rights", async () => {
    const cookie = await h.signIn("rita");
    expect((await h.request("GET", "/api/projects/alpha", { cookie })).status).toBe(200);
    h.oauth.membershipDown = true;
    // Within the minute the known level holds; after it, no answer means no rights.
    expect((await h.request("GET", "/api/projects/alpha", { cookie })).status).toBe(200);
    h.advance(61_000);
    expect((await h.request("GET", "/api/projects/alpha", { cookie })).status).toBe(403);
    h.oauth.membershipDown = false;
    expect((await h.request("GET", "/api/projects/alpha", { cookie })).status).toBe(200);
  });

  it("follows a role changed on GitLab within a minute", async () => {
    const cookie = await h.signIn("dave");
    const add = () =>
      h.request("POST", "/api/projects/alpha/versions", { cookie, body: { ref: "feature/x" } });
    expect((await add()).status).not.toBe(403);
    h.oauth.setAccessLevel(GITLAB_ALPHA, USERS.dave.id, 20);
    h.advance(61_000);
    expect((await add()).status).toBe(403);
    h.oauth.setAccessLevel(GITLAB_ALPHA, USERS.dave.id, 30);
    h.advance(61_000);
  });
});

describe("API tokens", () => {
  const makeToken = async (person: string, body: unknown) => {
    const res = await asUser(person, "POST", "/api/tokens", body);
    return { status: res.status, body: (await res.json()) as { id: string; token: string } };
  };

  it("shows a token once, keeps only its hash and lists it without the token", async () => {
    const made = await makeToken("dave", { name: "ci", scopes: ["deploy"] });
    expect(made.status).toBe(201);
    expect(made.body.token).toMatch(/^dbt_/);
    const stored = await h.store.getApiToken(made.body.id);
    expect(JSON.stringify(stored)).not.toContain(made.body.token);
    const list = await (await asUser("dave", "GET", "/api/tokens")).text();
    expect(list).toContain(made.body.id);
    expect(list).not.toContain(made.body.token);
    expect(list).not.toContain("hash");
    // Another person does not see it.
    expect(await (await asUser("rita", "GET", "/api/tokens")).text()).not.toContain(made.body.id);
  });

  it("gives a token no more than its scope and its maker's rights at the moment of use", async () => {
    const { body } = await makeToken("dave", { name: "deployer", scopes: ["deploy"] });
    const me = await h.request("GET", "/api/me", { bearer: body.token });
    expect(await me.json()).toEqual({
      user: USERS.dave,
      admin: false,
      via: "token",
      scopes: ["deploy"],
    });
    const on = () =>
      h.request("POST", "/api/projects/alpha/versions/main/on", { bearer: body.token });
    expect((await on()).status).toBe(202);
    expect(
      (await h.request("PATCH", "/api/projects/alpha", { bearer: body.token, body: {} })).status,
    ).toBe(403);
    const readOnly = await makeToken("mia", { name: "reader", scopes: ["read"] });
    expect(
      (
        await h.request("POST", "/api/projects/alpha/versions/main/off", {
          bearer: readOnly.body.token,
        })
      ).status,
    ).toBe(403);
    // The maker's role lowered on GitLab lowers the token.
    h.oauth.setAccessLevel(GITLAB_ALPHA, USERS.dave.id, 20);
    h.advance(61_000);
    expect((await on()).status).toBe(403);
    h.oauth.setAccessLevel(GITLAB_ALPHA, USERS.dave.id, 30);
    h.advance(61_000);
    expect((await on()).status).toBe(202);
  });

  it("limits a token to its projects", async () => {
    const { body } = await makeToken("dave", {
      name: "beta only",
      scopes: ["read"],
      projects: ["beta"],
    });
    expect((await h.request("GET", "/api/projects/beta", { bearer: body.token })).status).toBe(200);
    expect((await h.request("GET", "/api/projects/alpha", { bearer: body.token })).status).toBe(
      403,
    );
    const listed = (await (
      await h.request("GET", "/api/projects", { bearer: body.token })
    ).json()) as Array<{
      name: string;
    }>;
    expect(listed.map((p) => p.name)).toEqual(["beta"]);
  });

  it("refuses a scope above the maker's highest right (403), and tokens making tokens", async () => {
    expect((await makeToken("rita", { name: "x", scopes: ["deploy"] })).status).toBe(403);
    expect((await makeToken("dave", { name: "x", scopes: ["admin"] })).status).toBe(403);
    expect((await makeToken("otto", { name: "x", scopes: ["read"] })).status).toBe(403);
    expect((await makeToken("mia", { name: "x", scopes: ["admin"] })).status).toBe(201);
    const { body } = await makeToken("root", { name: "root", scopes: ["admin"] });
    const again = await h.request("POST", "/api/tokens", {
      bearer: body.token,
      body: { name: "y", scopes: ["read"] },
    });
    expect(again.status).toBe(403);
    // An admin's admin token may create projects; a maintainer's may not.
    const create = await h.request("POST", "/api/projects", {
      bearer: body.token,
      body: { name: "from-token", repoUrl: "git@gitlab.example.com:team/t.git" },
    });
    expect(create.status).toBe(201);
  });

  it("refuses a revoked token at once and an expired one", async () => {
    const { body } = await makeToken("dave", { name: "short", scopes: ["read"] });
    expect((await h.request("GET", "/api/me", { bearer: body.token })).status).toBe(200);
    const revoked = await asUser("dave", "DELETE", `/api/tokens/${body.id}`);
    expect(revoked.status).toBe(200);
    expect(
      (await h.request("GET", "/api/me", { bearer: body.token, address: "10.3.0.1" })).status,
    ).toBe(401);
    const expiring = await makeToken("dave", {
      name: "hour",
      scopes: ["read"],
      expiresAt: new Date(Date.now() + 30 * 24 * 3600_000).toISOString(),
    });
    expect((await h.request("GET", "/api/me", { bearer: expiring.body.token })).status).toBe(200);
    h.advance(31 * 24 * 3600_000);
    expect(
      (await h.request("GET", "/api/me", { bearer: expiring.body.token, address: "10.3.0.2" }))
        .status,
    ).toBe(401);
    // Sessions made before the jump are over too (12 h at most): sign in again for what follows.
    for (const name of ["rita", "dave", "mia", "root", "otto"])
      cookies[name] = await h.signIn(name);
  });
});

describe("audit", () => {
  it("names the person or token for each change, with the version and the address", async () => {
    const cookie = cookies.dave ?? "";
    await h.request("POST", "/api/projects/alpha/versions/main/on", {
      cookie,
      address: "10.7.0.7",
    });
    const res = await asUser("mia", "GET", "/api/audit?project=alpha");
    expect(res.status).toBe(200);
    const entries = (await res.json()) as Array<{
      action: string;
      actor: { user?: { username: string }; via: string; tokenName?: string };
      versionId?: string;
      address?: string;
      at: string;
    }>;
    const on = entries.find((e) => e.action === "version.on" && e.address === "10.7.0.7");
    expect(on).toMatchObject({ actor: { via: "session", user: { username: "dave" } } });
    expect(on?.versionId).toBeDefined();
    expect(entries.some((e) => e.action === "version.on" && e.actor.tokenName === "deployer")).toBe(
      true,
    );
    expect(entries.every((e) => e.action !== "GET")).toBe(true);
    const since = await asUser(
      "mia",
      "GET",
      `/api/audit?project=alpha&since=${encodeURIComponent(on?.at ?? "")}`,
    );
    expect(((await since.json()) as unknown[]).length).toBeLessThanOrEqual(entries.length);
    // Reporters and Developers may not read it; without a project it is admins' only.
    expect((await asUser("dave", "GET", "/api/audit?project=alpha")).status).toBe(403);
    expect((await asUser("mia", "GET", "/api/audit")).status).toBe(403);
    const all = (await (await asUser("root", "GET", "/api/audit")).json()) as Array<{
      action: string;
    }>;
    expect(all.some((e) => e.action === "project.create")).toBe(true);
  });
});

describe("brute force", () => {
  it("answers 429 rate_limited after repeated failed token checks from one address, others unaffected", async () => {
    const address = "10.66.0.1";
    for (let i = 0; i < 5; i++) {
      expect((await h.request("GET", "/api/me", { bearer: `dbt_guess${i}`, address })).status).toBe(
        401,
      );
    }
    const blocked = await h.request("GET", "/api/me", { bearer: AUTH_ADMIN_TOKEN, address });
    expect(blocked.status).toBe(429);
    expect(await blocked.json()).toMatchObject({ error: { code: "rate_limited" } });
    expect(
      (await h.request("GET", "/api/me", { bearer: AUTH_ADMIN_TOKEN, address: "10.66.0.2" }))
        .status,
    ).toBe(200);
    h.advance(11 * 60 * 1000);
    expect((await h.request("GET", "/api/me", { bearer: AUTH_ADMIN_TOKEN, address })).status).toBe(
      200,
    );
  });
});
