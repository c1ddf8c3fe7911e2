// The pure rules of src/auth: GitLab access levels and token scopes to rights, the same-origin
// rule, the failure counter behind 429, where a sign-in may send the browser, and the config.
import { describe, expect, it } from "vitest";
import { rateLimiter } from "../../src/auth/rate-limit.js";
import {
  atLeast,
  capOfScopes,
  lower,
  rightNeededForScope,
  rightOfAccessLevel,
} from "../../src/auth/rights.js";
import { safeNext } from "../../src/auth/safe-next.js";
import { originAllowed, sameOriginRequest } from "../../src/auth/same-origin.js";
import { parseConfig } from "../../src/config.js";

describe("rights", () => {
  it.each([
    [0, undefined],
    [10, undefined],
    [20, "read"],
    [30, "deploy"],
    [40, "maintain"],
    [50, "maintain"],
  ] as const)("gives GitLab access level %i the right %s", (level, right) => {
    expect(rightOfAccessLevel(level)).toBe(right);
  });

  it("caps a token by its highest scope and never above its maker", () => {
    expect(capOfScopes(["read"])).toBe("read");
    expect(capOfScopes(["read", "deploy"])).toBe("deploy");
    expect(capOfScopes(["admin"])).toBe("admin");
    expect(lower("maintain", capOfScopes(["deploy"]))).toBe("deploy");
    expect(lower("read", capOfScopes(["admin"]))).toBe("read");
    expect(lower(undefined, "admin")).toBeUndefined();
  });

  it("needs deploy for a deploy token and maintain for an admin token", () => {
    expect(rightNeededForScope("read")).toBe("read");
    expect(rightNeededForScope("deploy")).toBe("deploy");
    expect(rightNeededForScope("admin")).toBe("maintain");
    expect(atLeast("read", "deploy")).toBe(false);
    expect(atLeast("admin", "maintain")).toBe(true);
    expect(atLeast(undefined, "read")).toBe(false);
  });
});

describe("same origin", () => {
  const PUBLIC = "https://dockbot.example.com";
  it("allows dockbot's own origin (host or public URL, default port spelled or not)", () => {
    expect(originAllowed("https://dockbot.example.com", "10.0.0.1:3000", PUBLIC)).toBe(true);
    expect(originAllowed("https://dockbot.example.com:443", undefined, PUBLIC)).toBe(true);
    expect(originAllowed("http://10.0.0.1:3000", "10.0.0.1:3000", PUBLIC)).toBe(true);
    expect(originAllowed("https://evil.example", "dockbot.example.com", PUBLIC)).toBe(false);
    expect(originAllowed("null", "dockbot.example.com", PUBLIC)).toBe(false);
  });

  it("takes a cookie request only with dockbot's Origin or Sec-Fetch-Site same-origin or none", () => {
    expect(sameOriginRequest({ origin: PUBLIC }, PUBLIC)).toBe(true);
    expect(sameOriginRequest({ origin: "https://evil.example" }, PUBLIC)).toBe(false);
    expect(sameOriginRequest({ secFetchSite: "same-origin" }, PUBLIC)).toBe(true);
    expect(sameOriginRequest({ secFetchSite: "none" }, PUBLIC)).toBe(true);
    expect(sameOriginRequest({ secFetchSite: "same-site" }, PUBLIC)).toBe(false);
    expect(sameOriginRequest({ secFetchSite: "cross-site" }, PUBLIC)).toBe(false);
    expect(sameOriginRequest({}, PUBLIC)).toBe(false);
  });
});

describe("rate limit", () => {
  it("blocks an address after its failures in the window and lets it try again after", () => {
    let now = 0;
    const limiter = rateLimiter({ maxFailures: 3, windowMs: 1000, now: () => now });
    for (let i = 0; i < 3; i++) {
      expect(limiter.blocked("a")).toBe(false);
      limiter.fail("a");
    }
    expect(limiter.blocked("a")).toBe(true);
    expect(limiter.blocked("b")).toBe(false);
    expect(limiter.retryAfter("a")).toBe(1);
    now = 1001;
    expect(limiter.blocked("a")).toBe(false);
  });
});

describe("after signing in", () => {
  it.each([
    ["/projects/shop", "/projects/shop"],
    ["//evil.example/x", "/"],
    ["/\\evil.example", "/"],
    ["https://evil.example", "/"],
    [undefined, "/"],
  ])("sends %s to %s", (next, to) => {
    expect(safeNext(next)).toBe(to);
  });
});

describe("sign-in configuration", () => {
  it("reads the GitLab application and the admins", () => {
    const parsed = parseConfig({
      DOCKBOT_GITLAB_URL: "https://gitlab.example.com",
      DOCKBOT_GITLAB_OAUTH_ID: "app-id",
      DOCKBOT_GITLAB_OAUTH_SECRET: "app-secret",
      DOCKBOT_ADMINS: "alice, bob",
    });
    expect(parsed.ok && parsed.config.gitlabOauth).toEqual({
      clientId: "app-id",
      clientSecret: "app-secret",
    });
    expect(parsed.ok && parsed.config.admins).toEqual(["alice", "bob"]);
  });

  it("stops with one line naming the variable when half the application is given or GitLab is unknown", () => {
    const half = parseConfig({
      DOCKBOT_GITLAB_URL: "https://gitlab.example.com",
      DOCKBOT_GITLAB_OAUTH_ID: "app-id",
    });
    expect(half.ok ? [] : half.errors).toEqual([
      expect.stringContaining("DOCKBOT_GITLAB_OAUTH_ID and DOCKBOT_GITLAB_OAUTH_SECRET"),
    ]);
    const noUrl = parseConfig({ DOCKBOT_GITLAB_OAUTH_ID: "a", DOCKBOT_GITLAB_OAUTH_SECRET: "b" });
    expect(noUrl.ok ? [] : noUrl.errors).toEqual([expect.stringContaining("DOCKBOT_GITLAB_URL")]);
    const bad = parseConfig({ DOCKBOT_ADMINS: "alice, bad name" });
    expect(bad.ok ? [] : bad.errors).toEqual([expect.stringContaining("DOCKBOT_ADMINS")]);
  });
});
