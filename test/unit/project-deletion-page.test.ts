// The dashboard's project page says when the project is being deleted, and why a deletion
// stopped (docs/api.md, "Deleting a project").
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { ProjectDeletion, ProjectRecord } from "../../src/store/types.js";
import {
  PAGE_AT as at,
  projectPageNode,
  SHOP_PROJECT as project,
} from "../support/project-page.js";

async function render(deletion?: ProjectDeletion): Promise<string> {
  const shown: ProjectRecord = deletion ? { ...project, deletion } : project;
  const page = projectPageNode({ project: shown });
  // Through hono's c.html, as the dashboard serves it.
  const app = new Hono().get("/", (c) => c.html(page));
  return (await app.request("/")).text();
}

describe("the project page during a deletion", () => {
  it("says nothing about deletion for a project nobody deletes", async () => {
    expect(await render()).not.toMatch(/deleted|Deleting/);
  });

  it("shows a deletion under way as a status", async () => {
    const html = await render({ requestedAt: at, state: "deleting" });
    expect(html).toContain(
      `<p class="notice" role="status">Being deleted (asked for at ${at}): every version is deleted, then the project.</p>`,
    );
  });

  it("shows why a deletion failed, HTML escaped, and that another DELETE retries", async () => {
    const html = await render({
      requestedAt: at,
      state: "failed",
      error: "the delete of version 'main' failed: <volume in use> (operation o1)",
    });
    expect(html).toContain('<p class="error" role="alert">Deleting this project failed: ');
    expect(html).toContain("&lt;volume in use&gt;");
    expect(html).not.toContain("<volume in use>");
    expect(html).toContain("Another DELETE of the project (API) retries.");
  });
});
