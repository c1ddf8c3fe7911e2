import { describe, expect, it } from "vitest";
import { idleVerdict, lastActivityAt, type IdleFacts } from "../../src/deploy/idle-stop.js";
import { notRunningPage } from "../../src/preview/preview-pages.js";

const HOUR = 3_600_000;
const T0 = Date.parse("2026-12-01T00:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();

function facts(
  over: Omit<Partial<IdleFacts>, "version"> & { version?: Partial<IdleFacts["version"]> } = {},
) {
  const { version, ...rest } = over;
  const base: IdleFacts = {
    version: {
      state: "running",
      ref: { type: "branch", name: "feature" },
      lastGood: { sha: "a".repeat(40), deployedAt: iso(T0) },
      updatedAt: iso(T0),
      ...version,
    },
    autoStop: { idleHours: 72, exemptDefaultBranch: true, exemptTags: true },
    defaultBranch: "main",
    lastUpFinishedAt: undefined,
    recentRequestAt: undefined,
    busy: false,
    now: T0 + 73 * HOUR,
    ...rest,
  };
  return base;
}

describe("idleVerdict", () => {
  const cases: Array<{ name: string; facts: IdleFacts; stop: boolean; why?: string }> = [
    {
      name: "stops a running branch version deployed longer ago than idleHours, never visited",
      facts: facts(),
      stop: true,
    },
    {
      name: "keeps it one millisecond before idleHours have passed",
      facts: facts({ now: T0 + 72 * HOUR - 1 }),
      stop: false,
      why: "in-use",
    },
    {
      name: "stops it exactly when idleHours have passed",
      facts: facts({ now: T0 + 72 * HOUR }),
      stop: true,
    },
    {
      name: "keeps a version with a stored preview request within idleHours",
      facts: facts({ version: { lastRequestAt: iso(T0 + 2 * HOUR) } }),
      stop: false,
      why: "in-use",
    },
    {
      name: "keeps a version with a request seen by this replica and not stored yet",
      facts: facts({ recentRequestAt: T0 + 72 * HOUR }),
      stop: false,
      why: "in-use",
    },
    {
      name: "keeps a version whose last up finished within idleHours (a failed deploy counts)",
      facts: facts({ lastUpFinishedAt: iso(T0 + 10 * HOUR) }),
      stop: false,
      why: "in-use",
    },
    {
      name: "stops when every sign of use is older than idleHours",
      facts: facts({
        version: { lastRequestAt: iso(T0 - HOUR) },
        lastUpFinishedAt: iso(T0 - 2 * HOUR),
        recentRequestAt: T0 - 3 * HOUR,
      }),
      stop: true,
    },
    {
      name: "honours fractions of an hour",
      facts: facts({
        autoStop: { idleHours: 0.5, exemptDefaultBranch: true, exemptTags: true },
        now: T0 + 31 * 60_000,
      }),
      stop: true,
    },
    {
      name: "never stops with idleHours 0",
      facts: facts({
        autoStop: { idleHours: 0, exemptDefaultBranch: true, exemptTags: true },
        now: T0 + 10_000 * HOUR,
      }),
      stop: false,
      why: "never",
    },
    {
      name: "exempts the default branch",
      facts: facts({ version: { ref: { type: "branch", name: "main" } } }),
      stop: false,
      why: "default-branch",
    },
    {
      name: "stops the default branch when the project does not exempt it",
      facts: facts({
        version: { ref: { type: "branch", name: "main" } },
        autoStop: { idleHours: 72, exemptDefaultBranch: false, exemptTags: true },
      }),
      stop: true,
    },
    {
      name: "exempts no branch as the default one when the default branch is unknown",
      facts: facts({
        version: { ref: { type: "branch", name: "main" } },
        defaultBranch: undefined,
      }),
      stop: true,
    },
    {
      name: "does not exempt a merge request whose name is the default branch's",
      facts: facts({ version: { ref: { type: "mergeRequest", name: "main" } } }),
      stop: true,
    },
    {
      name: "exempts tags",
      facts: facts({ version: { ref: { type: "tag", name: "v1.0" } } }),
      stop: false,
      why: "tag",
    },
    {
      name: "stops a tag when the project does not exempt tags",
      facts: facts({
        version: { ref: { type: "tag", name: "v1.0" } },
        autoStop: { idleHours: 72, exemptDefaultBranch: true, exemptTags: false },
      }),
      stop: true,
    },
    {
      name: "stops a commit version",
      facts: facts({ version: { ref: { type: "commit", name: "b".repeat(40) } } }),
      stop: true,
    },
    {
      name: "leaves a version with an operation queued or running (a down on its way)",
      facts: facts({ busy: true }),
      stop: false,
      why: "busy",
    },
    ...(["off", "queued", "deploying", "stopping", "failed", "deleting"] as const).map((state) => ({
      name: `leaves a version that is ${state}`,
      facts: facts({ version: { state } }),
      stop: false,
      why: "not-running",
    })),
  ];

  for (const c of cases) {
    it(c.name, () => {
      const verdict = idleVerdict(c.facts);
      expect(verdict.stop).toBe(c.stop);
      if (!verdict.stop) expect(verdict.why).toBe(c.why);
    });
  }

  it("says when an in-use version becomes idle", () => {
    const verdict = idleVerdict(
      facts({ version: { lastRequestAt: iso(T0 + HOUR) }, now: T0 + 72 * HOUR }),
    );
    expect(verdict).toEqual({ stop: false, why: "in-use", idleAt: T0 + 73 * HOUR });
  });

  it("says since when a stopped version was idle", () => {
    const verdict = idleVerdict(facts({ lastUpFinishedAt: iso(T0 - HOUR) }));
    expect(verdict).toEqual({ stop: true, idleSince: T0 });
  });
});

describe("lastActivityAt", () => {
  it("takes the newest of the last good deploy, the last up, and both request times", () => {
    const f = facts({
      version: { lastRequestAt: iso(T0 + 3 * HOUR) },
      lastUpFinishedAt: iso(T0 + HOUR),
      recentRequestAt: T0 + 2 * HOUR,
    });
    expect(lastActivityAt(f)).toBe(T0 + 3 * HOUR);
    expect(lastActivityAt({ ...f, recentRequestAt: T0 + 4 * HOUR })).toBe(T0 + 4 * HOUR);
  });

  it("counts from the version's last change when it has no deploy, up or request on record", () => {
    const f = facts({ version: { updatedAt: iso(T0 + 5 * HOUR) } });
    const { lastGood: _lastGood, ...version } = f.version;
    expect(lastActivityAt({ ...f, version })).toBe(T0 + 5 * HOUR);
  });

  it("ignores a time it cannot read", () => {
    const f = facts({ version: { lastRequestAt: "not a time" } });
    expect(lastActivityAt(f)).toBe(T0);
  });
});

describe("the preview page of a version that is not running", () => {
  const base = {
    project: "shop",
    idleHours: 72,
    link: "http://dockbot.test/projects/shop",
    turnOn: "http://dockbot.test/projects/shop/versions/feature/turn-on",
  };
  const idleDown = {
    kind: "down" as const,
    status: "succeeded" as const,
    trigger: { source: "policy" as const, reason: "idle" },
    queuedAt: "2026-12-01T09:59:00.000Z",
    finishedAt: "2026-12-01T10:00:12.000Z",
  };

  it("says an idle stop stopped it, when, after how long, and offers to turn it on", () => {
    const page = notRunningPage({
      ...base,
      version: { name: "feature", state: "off" },
      last: idleDown,
    });
    expect(page.status).toBe(503);
    expect(page.message).toContain("Version feature of shop is not running");
    expect(page.message).toContain("2026-12-01 10:00 UTC");
    expect(page.message).toContain("no deploy and no visit for 72 hours");
    expect(page.turnOn).toBe(base.turnOn);
  });

  it("says a person turned it off, with no idle wording", () => {
    const page = notRunningPage({
      ...base,
      version: { name: "feature", state: "off" },
      last: { ...idleDown, trigger: { source: "ui" } },
    });
    expect(page.message).toContain("it was turned off on 2026-12-01 10:00 UTC");
    expect(page.message).not.toContain("visit");
    expect(page.turnOn).toBe(base.turnOn);
  });

  it("offers to turn on a failed version without showing the operation's error", () => {
    const page = notRunningPage({
      ...base,
      version: { name: "feature", state: "failed" },
      last: { ...idleDown, kind: "up", status: "failed", trigger: { source: "webhook" } },
    });
    expect(page.message).toContain("its last up failed");
    expect(page.turnOn).toBe(base.turnOn);
  });

  it("offers no button while the version is on its way up or down", () => {
    for (const state of ["queued", "deploying", "stopping", "deleting"] as const) {
      const page = notRunningPage({ ...base, version: { name: "feature", state } });
      expect(page.status, state).toBe(503);
      expect(page.turnOn, state).toBeUndefined();
      expect(page.message, state).toContain("is not running");
    }
  });
});
