// The dashboard's project page says when the project is being deleted, and why a deletion
// stopped (docs/api.md, "Deleting a project").
import { Hono } from "hono";
import type { HtmlEscapedString } from "hono/utils/html";
import { describe, expect, it } from "vitest";
import { ProjectPage } from "../../src/ui/pages.js";
import type { ProjectDeletion, ProjectRecord } from "../../src/store/types.js";

const at = "2026-01-01T00:00:00.000Z";
const project: ProjectRecord = {
  id: "p1",
  name: "shop",
  repoUrl: "git@gitlab.example.com:team/shop.git",
  autoDeploy: { branches: ["*"], tags: true, mergeRequests: true },
  env: {},
  webhookSecret: "secret",
  createdAt: at,
  updatedAt: at,
};

async function render(deletion?: ProjectDeletion): Promise<string> {
  const shown: ProjectRecord = deletion ? { ...project, deletion } : project;
  // What `<ProjectPage />` is in a .tsx file (JSX.Element): an escaped HTML string.
  const page = ProjectPage({
    csrf: "c",
    project: shown,
    webhookUrl: "http://dockbot.test/webhooks/gitlab",
    versions: [],
    deliveries: [],
  }) as HtmlEscapedString | Promise<HtmlEscapedString>;
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
