// The project page's "Roll back" button (docs/api.md, "Rollback"): shown for a version that
// keeps a verified deploy before the current one, to people who may deploy, and posting to the
// dashboard's rollback route.
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { GoodDeploy, VersionRecord } from "../../src/store/types.js";
import { PAGE_AT, projectPageNode, SHOP_PROJECT as project } from "../support/project-page.js";

const good = (c: string): GoodDeploy => ({ sha: c.repeat(40), deployedAt: PAGE_AT });

function version(goodDeploys?: GoodDeploy[]): VersionRecord {
  const v: VersionRecord = {
    id: "v1",
    projectId: project.id,
    name: "main",
    ref: { type: "branch", name: "main" },
    state: "running",
    composeProject: "dockbot-shop-main",
    urls: [],
    ports: [],
    createdAt: PAGE_AT,
    updatedAt: PAGE_AT,
  };
  if (goodDeploys !== undefined) v.goodDeploys = goodDeploys;
  return v;
}

async function render(v: VersionRecord, deploy = true): Promise<string> {
  const page = projectPageNode({
    project,
    versions: [{ version: v, last: undefined }],
    may: { deploy, maintain: false },
  });
  const app = new Hono().get("/", (c) => c.html(page));
  return (await app.request("/")).text();
}

describe("the rollback button on the project page", () => {
  it("posts to the version's rollback route, naming the commit it goes back to", async () => {
    const html = await render(version([good("b"), good("a")]));
    expect(html).toContain('action="/projects/shop/versions/main/rollback"');
    expect(html).toContain("Roll back to aaaaaaaa");
  });

  it.each([
    ["a version never verified", undefined],
    ["a version with only its current deploy", [good("a")]],
  ])("is not shown for %s", async (_name, deploys) => {
    expect(await render(version(deploys))).not.toContain("/rollback");
  });

  it("is not shown to someone who may not deploy", async () => {
    expect(await render(version([good("b"), good("a")]), false)).not.toContain("/rollback");
  });
});
