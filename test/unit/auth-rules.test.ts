// The rule table (src/auth/rules.ts) covers every route the app registers: a route added
// without a rule makes this fail, so nobody can add an endpoint that skips the authorization.
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_RULES, ruleMatcher, UI_RULES } from "../../src/auth/rules.js";
import { adminToken } from "../../src/http/admin-token.js";
import { uiRoutes } from "../../src/ui/ui-routes.js";
import { startApiHarness, TEST_TOKEN, type ApiHarness } from "../support/api-harness.js";

/** Dashboard routes anyone may open: sign-in, its assets, GitLab's return. */
const UI_PUBLIC = new Set([
  "GET /login",
  "POST /login",
  "GET /assets/app.css",
  "GET /assets/app.js",
]);

let h: ApiHarness;
let routes: Array<{ method: string; path: string }>;

beforeAll(async () => {
  h = await startApiHarness("sqlite");
  h.app.route(
    "/",
    uiRoutes({
      service: h.service,
      store: h.store,
      token: await adminToken(h.store, TEST_TOKEN),
      sshKey: { publicKey: "ssh-ed25519 AAAA dockbot", fingerprint: "SHA256:x" },
      publicUrl: "http://dockbot.test",
      logger: pino({ level: "silent" }),
    }),
  );
  // Handlers, not middleware: `use()` registers method ALL.
  routes = h.app.routes
    .filter((r) => r.method !== "ALL")
    .map((r) => ({ method: r.method, path: r.path }));
});

afterAll(async () => {
  await h?.close();
});

describe("authorization rules", () => {
  it("has a rule for every /api route the app registers", () => {
    const api = routes.filter((r) => r.path.startsWith("/api/"));
    expect(api.length).toBeGreaterThan(20);
    const missing = api
      .map((r) => `${r.method} ${r.path}`)
      .filter((key) => API_RULES[key] === undefined);
    expect(missing).toEqual([]);
  });

  it("has a rule for every dashboard route, except sign-in and its assets", () => {
    const ui = routes.filter(
      (r) =>
        !r.path.startsWith("/api/") &&
        !r.path.startsWith("/webhooks") &&
        !r.path.startsWith("/auth/") &&
        r.path !== "/openapi.json",
    );
    const missing = ui
      .map((r) => `${r.method} ${r.path}`)
      .filter((key) => UI_RULES[key] === undefined && !UI_PUBLIC.has(key));
    expect(missing).toEqual([]);
  });

  it("finds the rule of a request by its path, with decoded parameters, and none for unknown paths", () => {
    const match = ruleMatcher(API_RULES);
    expect(match("POST", "/api/projects/shop/versions/feature%2Fx/on")).toMatchObject({
      key: "POST /api/projects/:project/versions/:version/on",
      params: { project: "shop", version: "feature/x" },
    });
    expect(match("HEAD", "/api/projects")?.key).toBe("GET /api/projects");
    expect(match("GET", "/api/projects/shop/versions/main/on")).toBeUndefined();
    expect(match("GET", "/api/nothing")).toBeUndefined();
    expect(match("GET", "/api/projects/%E0%A4%A")).toBeUndefined();
  });

  it("records every change and no read in the audit log", () => {
    for (const [key, rule] of Object.entries({ ...API_RULES, ...UI_RULES })) {
      const method = key.split(" ")[0];
      if (method === "GET") expect(rule.action, key).toBeUndefined();
      else if (key !== "POST /logout") expect(rule.action, key).toBeDefined();
    }
  });
});
