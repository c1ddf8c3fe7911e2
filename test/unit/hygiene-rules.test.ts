import { describe, expect, it } from "vitest";
import type { ImageInfo } from "../../src/deploy/disk.js";
import { imagesToRemove, type ImageRemovalInput } from "../../src/deploy/hygiene-rules.js";

const NOW = Date.UTC(2026, 0, 10);
const HOUR = 3_600_000;

let n = 0;
function image(repoTags: string[], extra: Partial<ImageInfo> = {}): ImageInfo {
  n += 1;
  return {
    id: `sha256:${n.toString(16).padStart(64, "0")}`,
    repoTags,
    sizeBytes: 1000,
    createdAt: NOW - 2 * HOUR,
    ...extra,
  };
}

function decide(images: ImageInfo[], over: Partial<ImageRemovalInput> = {}): string[][] {
  return imagesToRemove({
    images,
    inUse: new Set(),
    versions: [
      { composeProject: "dockbot-shop-main", state: "running" },
      {
        composeProject: "dockbot-shop-old",
        state: "off",
        goodDeploys: [
          {
            sha: "a".repeat(40),
            deployedAt: new Date(NOW).toISOString(),
            images: { web: "dockbot-shop-old-web:good-aaaaaaaaaaaa" },
          },
        ],
      },
      { composeProject: "dockbot-shop-busy", state: "deploying" },
    ],
    prefix: "dockbot-",
    now: NOW,
    graceMs: HOUR,
    ...over,
  }).map((r) => r.refs);
}

describe("which images disk hygiene removes", () => {
  it.each([
    ["a dangling build labelled with a dockbot project", [], "dockbot-gone-v", true],
    [
      "a Compose v2 build of a deleted version, by its label",
      ["dockbot-gone-v-web:latest"],
      "dockbot-gone-v",
      true,
    ],
    [
      "a Compose v1 build of a deleted version, by its <project>_<service> name",
      ["dockbot-gone-v_web:latest"],
      undefined,
      true,
    ],
    [
      "a stored version's image that no container uses and no deploy keeps",
      ["dockbot-shop-main-api:latest"],
      undefined,
      true,
    ],
    [
      "a kept deploy's image (its good- tag is recorded)",
      ["dockbot-shop-old-web:latest", "dockbot-shop-old-web:good-aaaaaaaaaaaa"],
      "dockbot-shop-old",
      false,
    ],
    [
      "an image of a version with an operation under way",
      ["dockbot-shop-busy-web:latest"],
      "dockbot-shop-busy",
      false,
    ],
    [
      "the test base image, whose name only looks like dockbot's",
      ["dockbot-test-base:latest"],
      undefined,
      false,
    ],
    ["a dangling image with no label", [], undefined, false],
    ["a pulled image", ["nginx:1.25"], undefined, false],
    [
      "a dockbot build the user also tagged for themselves",
      ["dockbot-gone-v-web:latest", "registry.example.com/app:1"],
      "dockbot-gone-v",
      false,
    ],
    ["a build labelled with another compose project", ["other-web:latest"], "other", false],
  ] as const)("%s: removed %#", (_what, tags, project, removed) => {
    const img = image([...tags], project === undefined ? {} : { composeProject: project });
    const refs = decide([img]);
    expect(refs).toStrictEqual(removed ? [tags.length > 0 ? [...tags] : [img.id]] : []);
  });

  it("keeps an image a container uses, running or not", () => {
    const img = image(["dockbot-gone-v-web:latest"], { composeProject: "dockbot-gone-v" });
    expect(decide([img], { inUse: new Set([img.id]) })).toStrictEqual([]);
  });

  it("keeps an image built within the grace period, so a build that has no container yet stays", () => {
    const fresh = image(["dockbot-gone-v-web:latest"], {
      composeProject: "dockbot-gone-v",
      createdAt: NOW - HOUR / 2,
    });
    expect(decide([fresh])).toStrictEqual([]);
    expect(decide([fresh], { graceMs: 0 })).toStrictEqual([["dockbot-gone-v-web:latest"]]);
  });

  it("with a narrower prefix, leaves the rest of dockbot's projects alone", () => {
    const mine = image(["dockbot-t1-a-web:latest"], { composeProject: "dockbot-t1-a" });
    const theirs = image(["dockbot-t2-a-web:latest"], { composeProject: "dockbot-t2-a" });
    expect(decide([mine, theirs], { prefix: "dockbot-t1-" })).toStrictEqual([
      ["dockbot-t1-a-web:latest"],
    ]);
  });
});
