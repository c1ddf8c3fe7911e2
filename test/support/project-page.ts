// Shared set-up of the unit tests that render the dashboard's project page
// (src/ui/pages.tsx, `ProjectPage`).
import type { HtmlEscapedString } from "hono/utils/html";
import { ProjectPage } from "../../src/ui/pages.js";
import type { ProjectRecord } from "../../src/store/types.js";

export const PAGE_AT = "2026-01-01T00:00:00.000Z";

/** A project called "shop", created and updated at PAGE_AT. */
export const SHOP_PROJECT: ProjectRecord = {
  id: "p1",
  name: "shop",
  repoUrl: "git@gitlab.example.com:team/shop.git",
  autoDeploy: { branches: ["*"], tags: true, mergeRequests: true },
  env: {},
  webhookSecret: "secret",
  createdAt: PAGE_AT,
  updatedAt: PAGE_AT,
};

type ProjectPageProps = Parameters<typeof ProjectPage>[0];

/**
 * What `<ProjectPage />` is in a .tsx file (JSX.Element): an escaped HTML string, maybe a
 * promise of one. Fills in the props every test gives the same way.
 */
export function projectPageNode(
  props: Partial<ProjectPageProps> & Pick<ProjectPageProps, "project">,
): HtmlEscapedString | Promise<HtmlEscapedString> {
  return ProjectPage({
    csrf: "c",
    webhookUrl: "http://dockbot.test/webhooks/gitlab",
    versions: [],
    deliveries: [],
    ...props,
  }) as HtmlEscapedString | Promise<HtmlEscapedString>;
}
