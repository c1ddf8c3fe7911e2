// Each version's disk use on the project page (docs/api.md, "Disk use per version").
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { VersionDiskUse } from "../../src/deploy/disk-usage.js";
import type { VersionRecord } from "../../src/store/types.js";
import { PAGE_AT, projectPageNode, SHOP_PROJECT as project } from "../support/project-page.js";

const version: VersionRecord = {
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

async function diskCell(disk?: VersionDiskUse): Promise<{ text: string; title: string }> {
  const page = projectPageNode({ project, versions: [{ version, disk }] });
  const html = await (await new Hono().get("/", (c) => c.html(page)).request("/")).text();
  const m = /<div class="muted small disk-use"(?: title="([^"]*)")?>([^<]*)<\/div>/.exec(html);
  return { title: m?.[1] ?? "", text: m?.[2] ?? "(none)" };
}

describe("disk use on the project page", () => {
  it("says a version's disk use is not measured yet until it is", async () => {
    expect((await diskCell()).text).toBe("disk: not measured yet");
  });

  it.each([
    [512, "disk: 512 B"],
    [12_345, "disk: 12.3 kB"],
    [98_765_432, "disk: 98.8 MB"],
    [4_200_000_000, "disk: 4.2 GB"],
  ])("shows %d bytes as %s, with what they are made of", async (total, text) => {
    const cell = await diskCell({
      imagesBytes: total - 2,
      volumesBytes: 1,
      checkoutBytes: 1,
      totalBytes: total,
      measuredAt: PAGE_AT,
    });
    expect(cell.text).toBe(text);
    expect(cell.title).toContain("volumes 1 B, checkout 1 B");
    expect(cell.title).toContain(`measured ${PAGE_AT}`);
  });
});
