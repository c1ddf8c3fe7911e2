// The running limit's choice (src/deploy/running-limit.ts, docs/api.md "Idle stop and limits"):
// what counts, which version goes first, and when an up is refused.
import { describe, expect, it } from "vitest";
import {
  chooseRunningLimit,
  countsAsRunning,
  type LimitFacts,
  type LimitInput,
} from "../../src/deploy/running-limit.js";

const self = { id: "new", projectId: "p1", projectName: "shop" };

function v(name: string, overrides: Partial<LimitFacts> = {}): LimitFacts {
  return {
    id: name,
    name,
    projectId: "p1",
    projectName: "shop",
    state: "running",
    dockerRunning: true,
    active: [],
    lastUsedAt: 1000,
    ...overrides,
  };
}

const choose = (versions: LimitFacts[], limits: Partial<LimitInput> = {}) =>
  chooseRunningLimit({ self, versions, instanceMax: 0, ...limits });

describe("what takes a place under the limits", () => {
  it.each<[string, Partial<LimitFacts>, boolean]>([
    ["a version Docker runs", {}, true],
    [
      "a running version with a redeploy queued (state queued)",
      {
        state: "queued",
        active: [{ kind: "up", status: "queued" }],
      },
      true,
    ],
    [
      "a version being deployed, before Docker runs anything",
      {
        state: "deploying",
        dockerRunning: false,
      },
      true,
    ],
    [
      "a version whose up was claimed but not marked deploying yet",
      {
        state: "queued",
        dockerRunning: false,
        active: [{ kind: "up", status: "running" }],
      },
      true,
    ],
    [
      "a version being turned off",
      {
        state: "stopping",
        active: [{ kind: "down", status: "running" }],
      },
      false,
    ],
    [
      "a version being deleted",
      {
        state: "deleting",
        active: [{ kind: "delete", status: "running" }],
      },
      false,
    ],
    ["a version that is off", { state: "off", dockerRunning: false }, false],
    ["a failed version with nothing running", { state: "failed", dockerRunning: false }, false],
  ])("%s: %s", (_, overrides, expected) => {
    expect(countsAsRunning(v("x", overrides))).toBe(expected);
  });
});

describe("choosing what goes", () => {
  it("starts when no limit is set, however many run", () => {
    expect(choose([v("a"), v("b"), v("c")])).toStrictEqual({ action: "start" });
  });

  it("starts while the instance has a free place, the version itself not counted", () => {
    expect(choose([v("a"), v("new")], { instanceMax: 2 })).toStrictEqual({ action: "start" });
  });

  it("turns off the least recently used version when the instance limit is reached", () => {
    const decision = choose(
      [
        v("a", { lastUsedAt: 3000 }),
        v("b", { lastUsedAt: 1000, projectId: "p2", projectName: "blog" }),
        v("c", { lastUsedAt: 2000 }),
      ],
      { instanceMax: 3 },
    );
    expect(decision).toMatchObject({
      action: "stop",
      victim: { id: "b" },
      because: "limit: 3 versions running (DOCKBOT_MAX_RUNNING=3)",
    });
  });

  it("breaks a tie in last use by project and version name", () => {
    const decision = choose([v("b"), v("a")], { instanceMax: 2 });
    expect(decision).toMatchObject({ action: "stop", victim: { id: "a" } });
  });

  it.each<[string, Partial<LimitFacts>]>([
    ["an exempt default branch", { exempt: "default-branch" }],
    ["an exempt tag", { exempt: "tag" }],
    ["one with a queued operation", { active: [{ kind: "up", status: "queued" }] }],
    ["one being deployed", { state: "deploying", active: [{ kind: "up", status: "running" }] }],
  ])("never picks %s, however old", (_, overrides) => {
    const decision = choose(
      [v("old", { lastUsedAt: 1, ...overrides }), v("recent", { lastUsedAt: 9000 })],
      { instanceMax: 2 },
    );
    expect(decision).toMatchObject({ action: "stop", victim: { id: "recent" } });
  });

  it("does not count a version on its way out, so it makes room without another stop", () => {
    const decision = choose(
      [v("going", { state: "stopping", active: [{ kind: "down", status: "running" }] }), v("a")],
      { instanceMax: 2 },
    );
    expect(decision).toStrictEqual({ action: "start" });
  });

  it("refuses with the limit and why each running version stays when none can go", () => {
    const decision = choose(
      [
        v("main", { exempt: "default-branch" }),
        v("v1", { exempt: "tag", projectId: "p2", projectName: "blog" }),
        v("busy", { state: "queued", active: [{ kind: "up", status: "queued" }] }),
      ],
      { instanceMax: 3 },
    );
    expect(decision).toStrictEqual({
      action: "refuse",
      message:
        "limit: 3 versions running (DOCKBOT_MAX_RUNNING=3) and none can be turned off: " +
        "shop/main (the default branch), blog/v1 (a tag), " +
        "shop/busy (an operation of it is queued or running)",
    });
  });

  it("looks at the project's maxRunning among its own versions only", () => {
    const other = { projectId: "p2", projectName: "blog" };
    const versions = [
      v("a", { lastUsedAt: 5000 }),
      v("b", { lastUsedAt: 4000 }),
      v("x", { ...other, lastUsedAt: 1 }),
    ];
    expect(choose(versions, { projectMax: 3 })).toStrictEqual({ action: "start" });
    expect(choose(versions, { projectMax: 2 })).toMatchObject({
      action: "stop",
      victim: { id: "b" },
      because: "limit: 2 versions of project 'shop' running (its maxRunning is 2)",
    });
  });

  it("refuses naming the project limit when the project's versions are all exempt", () => {
    const decision = choose([v("main", { exempt: "default-branch" })], { projectMax: 1 });
    expect(decision).toStrictEqual({
      action: "refuse",
      message:
        "limit: 1 version of project 'shop' running (its maxRunning is 1) and none can be turned off: shop/main (the default branch)",
    });
  });

  it("takes the instance limit after the project's, from any project", () => {
    const decision = choose(
      [
        v("a", { lastUsedAt: 5000 }),
        v("x", { projectId: "p2", projectName: "blog", lastUsedAt: 1 }),
      ],
      { projectMax: 5, instanceMax: 2 },
    );
    expect(decision).toMatchObject({ action: "stop", victim: { id: "x" } });
  });

  it("names five versions at most in a refusal", () => {
    const many = Array.from({ length: 7 }, (_, i) => v(`t${i}`, { exempt: "tag" }));
    const decision = choose(many, { instanceMax: 7 });
    expect(decision.action).toBe("refuse");
    if (decision.action === "refuse") {
      expect(decision.message).toMatch(/shop\/t4 \(a tag\) and 2 more$/);
      expect(decision.message).not.toContain("t5");
    }
  });
});
