import { describe, expect, it } from "vitest";
import {
  historyOf,
  imageRepoOf,
  KEPT_DEPLOYS,
  keptImageTag,
  planRollback,
  previousDeploy,
  recordGoodDeploy,
  removableTags,
  versionImageRepos,
} from "../../src/deploy/deploy-history.js";
import type { GoodDeploy } from "../../src/store/types.js";

const CP = "dockbot-shop-main";
const sha = (c: string) => c.repeat(40);

function deploy(c: string, services: string[] = ["web"]): GoodDeploy {
  return {
    sha: sha(c),
    deployedAt: `2026-01-0${c === "a" ? 1 : c === "b" ? 2 : c === "c" ? 3 : 4}T00:00:00.000Z`,
    operationId: `op-${c}`,
    images: Object.fromEntries(services.map((s) => [s, `${CP}-${s}:good-${sha(c).slice(0, 12)}`])),
  };
}

describe("image tags", () => {
  it.each([
    ["dockbot-shop-main-web", "dockbot-shop-main-web"],
    ["dockbot-shop-main-web:latest", "dockbot-shop-main-web"],
    ["registry.example.com:5000/group/app", "registry.example.com:5000/group/app"],
    ["registry.example.com:5000/group/app:1.2", "registry.example.com:5000/group/app"],
  ])("takes the repository of %s as %s", (ref, repo) => {
    expect(imageRepoOf(ref)).toBe(repo);
  });

  it("keeps a built image under good-<first 12 of the sha> of its own repository", () => {
    expect(keptImageTag(`${CP}-web`, sha("a"))).toBe(`${CP}-web:good-aaaaaaaaaaaa`);
    expect(keptImageTag(`${CP}-web:latest`, sha("b"))).toBe(`${CP}-web:good-bbbbbbbbbbbb`);
  });
});

describe("historyOf", () => {
  it("is the version's goodDeploys when it has them", () => {
    const list = [deploy("b"), deploy("a")];
    expect(historyOf({ goodDeploys: list, lastGood: { sha: sha("b"), deployedAt: "x" } })).toBe(
      list,
    );
  });

  it("is the lastGood alone for a version verified before deploys were kept", () => {
    expect(historyOf({ lastGood: { sha: sha("a"), deployedAt: "t" } })).toEqual([
      { sha: sha("a"), deployedAt: "t" },
    ]);
  });

  it("is empty for a version never verified", () => {
    expect(historyOf({})).toEqual([]);
  });
});

describe("recordGoodDeploy", () => {
  const cases: Array<{
    name: string;
    history: GoodDeploy[];
    add: GoodDeploy;
    keep?: number;
    kept: string[];
    dropped: string[];
  }> = [
    {
      name: "starts the history with the first verified deploy",
      history: [],
      add: deploy("a"),
      kept: ["a"],
      dropped: [],
    },
    {
      name: "keeps the deploy before the current one",
      history: [deploy("a")],
      add: deploy("b"),
      kept: ["b", "a"],
      dropped: [],
    },
    {
      name: "drops the oldest once more than KEPT_DEPLOYS are verified",
      history: [deploy("b"), deploy("a")],
      add: deploy("c"),
      kept: ["c", "b"],
      dropped: ["a"],
    },
    {
      name: "replaces the entry of a commit deployed again and drops nothing of it",
      history: [deploy("b"), deploy("a")],
      add: deploy("a"),
      kept: ["a", "b"],
      dropped: [],
    },
    {
      name: "drops everything beyond a larger keep",
      history: [deploy("c"), deploy("b"), deploy("a")],
      add: deploy("d"),
      keep: 3,
      kept: ["d", "c", "b"],
      dropped: ["a"],
    },
    {
      name: "always keeps the current deploy, whatever keep says",
      history: [deploy("a")],
      add: deploy("b"),
      keep: 0,
      kept: ["b"],
      dropped: ["a"],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const out = recordGoodDeploy(c.history, c.add, c.keep);
      expect(out.kept.map((d) => d.sha[0])).toEqual(c.kept);
      expect(out.dropped.map((d) => d.sha[0])).toEqual(c.dropped);
      expect(out.kept[0]).toBe(c.add);
    });
  }

  it("keeps the current deploy and at least one before it", () => {
    expect(KEPT_DEPLOYS).toBeGreaterThanOrEqual(2);
  });
});

describe("planRollback", () => {
  const history = [deploy("c"), deploy("b"), deploy("a")];

  it("goes to the deploy before the current one and drops the current one", () => {
    expect(previousDeploy(history)?.sha).toBe(sha("b"));
    const plan = planRollback(history, sha("b"));
    expect(plan).toMatchObject({ ok: true, target: history[1] });
    if (!plan.ok) return;
    expect(plan.kept.map((d) => d.sha[0])).toEqual(["b", "a"]);
    expect(plan.dropped.map((d) => d.sha[0])).toEqual(["c"]);
  });

  it("goes to the deploy before the current one when no commit is named", () => {
    const plan = planRollback(history, undefined);
    expect(plan.ok && plan.target.sha).toBe(sha("b"));
  });

  it("goes to the commit asked for when newer deploys came since, dropping them", () => {
    const plan = planRollback(history, sha("a"));
    expect(plan.ok && plan.kept.map((d) => d.sha[0])).toEqual(["a"]);
    expect(plan.ok && plan.dropped.map((d) => d.sha[0])).toEqual(["c", "b"]);
  });

  const refusals: Array<[string, GoodDeploy[], string | undefined, string]> = [
    [
      "no verified deploy at all",
      [],
      undefined,
      "there is no verified deploy before the current one",
    ],
    [
      "only the current deploy",
      [deploy("a")],
      undefined,
      "there is no verified deploy before the current one",
    ],
    [
      "a commit that is the current deploy",
      history,
      sha("c"),
      "cccccccc is the current verified deploy already",
    ],
    [
      "a commit no longer kept",
      history,
      sha("d"),
      "the verified deploy dddddddd is no longer kept",
    ],
  ];
  it.each(refusals)("refuses %s", (_name, list, wanted, reason) => {
    expect(planRollback(list, wanted)).toEqual({ ok: false, reason });
  });
});

describe("removableTags", () => {
  const all = [deploy("c", ["web", "worker"]), deploy("b"), deploy("a", ["web", "worker"])];
  const repos = versionImageRepos(all, CP);

  it("knows only the version's own built repositories", () => {
    expect(repos).toEqual([`${CP}-web`, `${CP}-worker`]);
    // A tag recorded under another project's name is never the version's.
    expect(
      versionImageRepos(
        [{ sha: sha("a"), deployedAt: "t", images: { web: "nginx:good-aaaa" } }],
        CP,
      ),
    ).toEqual([]);
  });

  it("removes kept tags of dropped deploys and keeps those of kept deploys and the running tags", () => {
    const kept = all.slice(0, 2);
    const existing = [
      `${CP}-web:latest`,
      `${CP}-web:good-cccccccccccc`,
      `${CP}-web:good-bbbbbbbbbbbb`,
      `${CP}-web:good-aaaaaaaaaaaa`,
      `${CP}-worker:latest`,
      `${CP}-worker:good-cccccccccccc`,
      `${CP}-worker:good-aaaaaaaaaaaa`,
    ];
    expect(removableTags(existing, kept, repos)).toEqual([
      `${CP}-web:good-aaaaaaaaaaaa`,
      `${CP}-worker:good-aaaaaaaaaaaa`,
    ]);
  });

  it("removes a kept tag left behind by no deploy of the list (an interrupted run)", () => {
    expect(removableTags([`${CP}-web:good-0123456789ab`], all, repos)).toEqual([
      `${CP}-web:good-0123456789ab`,
    ]);
  });

  it("never removes another version's images, pulled images or tags that are not kept tags", () => {
    const existing = [
      `${CP}-2-web:good-aaaaaaaaaaaa`,
      "dockbot-shop-other-web:good-aaaaaaaaaaaa",
      "dockbot-test-base:latest",
      "redis:good-aaaaaaaaaaaa",
      `${CP}-web:v1`,
      `${CP}-web:good-release`,
    ];
    expect(removableTags(existing, [], repos)).toEqual([]);
  });
});
