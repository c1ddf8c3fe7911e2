import { describe, expect, it } from "vitest";
import {
  composeProjectName,
  isSlug,
  isValidRefName,
  slugify,
  versionNameForRef,
} from "../../src/deploy/names.js";

describe("version names", () => {
  it.each([
    ["feature/Login_2", "feature-login-2"],
    ["main", "main"],
    ["Release--1.2", "release-1-2"],
    ["__x__", "x"],
  ])("slugifies the branch %s as %s", (branch, slug) => {
    expect(versionNameForRef({ type: "branch", name: branch })).toBe(slug);
    expect(isSlug(slug)).toBe(true);
  });

  it("names a merge request mr-<iid>", () => {
    expect(versionNameForRef({ type: "mergeRequest", name: "42" })).toBe("mr-42");
  });

  it("adds a short hash when the slug is taken by another ref", () => {
    const taken = new Set(["feature-a"]);
    const name = versionNameForRef({ type: "branch", name: "feature_a" }, (n) => taken.has(n));
    expect(name).toMatch(/^feature-a-[0-9a-f]{7}$/);
    expect(isSlug(name)).toBe(true);
  });

  it("gives two colliding refs different names", () => {
    const a = versionNameForRef({ type: "branch", name: "Feature/A" }, () => true);
    const b = versionNameForRef({ type: "branch", name: "feature-a" }, () => true);
    expect(a).not.toBe(b);
  });

  it("cuts a too long slug and keeps it unique and valid", () => {
    const long = `feature/${"x".repeat(100)}`;
    const name = versionNameForRef({ type: "branch", name: long });
    expect(name.length).toBeLessThanOrEqual(63);
    expect(isSlug(name)).toBe(true);
    expect(name).not.toBe(versionNameForRef({ type: "branch", name: `${long}y` }));
  });

  it("names a ref with no usable character by its hash", () => {
    const name = versionNameForRef({ type: "branch", name: "___" });
    expect(name).toMatch(/^v-[0-9a-f]{7}$/);
  });

  it("slugify lowercases and folds runs of other characters into one dash", () => {
    expect(slugify("A  B//C")).toBe("a-b-c");
  });
});

describe("compose project names", () => {
  it("are dockbot-<project>-<version>", () => {
    expect(composeProjectName("shop", "main")).toBe("dockbot-shop-main");
  });

  it("stay within 63 characters and distinct when long", () => {
    const a = composeProjectName("p".repeat(40), "v".repeat(40));
    const b = composeProjectName("p".repeat(40), `${"v".repeat(39)}w`);
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[a-z0-9][a-z0-9-]*$/);
  });
});

describe("ref name validation", () => {
  it.each(["main", "feature/login", "v1.2.3", "release/2024-01"])("accepts %s", (ref) => {
    expect(isValidRefName(ref)).toBe(true);
  });

  it.each([
    "--upload-pack=touch /tmp/x",
    "-x",
    "$(touch /tmp/x)",
    "a..b",
    "a b",
    "a~1",
    "a^",
    "a:b",
    "a\\b",
    "x.lock",
    "/x",
    "x/",
    ".hidden",
    "a/.b",
    "",
    "a@{1}",
    "tab\tname",
  ])("rejects %j", (ref) => {
    expect(isValidRefName(ref)).toBe(false);
  });
});
