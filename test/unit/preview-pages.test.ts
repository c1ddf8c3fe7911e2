import { describe, expect, it } from "vitest";
import { pageHtml, rawResponse } from "../../src/preview/preview-pages.js";
import type { VersionRecord } from "../../src/store/types.js";
import {
  PAGE_AT as at,
  projectPageNode,
  SHOP_PROJECT as project,
} from "../support/project-page.js";

describe("the preview router's pages", () => {
  it("names what was asked for and links to the dashboard, with HTML escaped", () => {
    const html = pageHtml({
      status: 404,
      message: 'No version is called <script>alert("x")</script>.localhost',
      link: "http://dockbot.test/projects/a&b",
    });
    expect(html).toContain("<title>404 Not Found · dockbot preview</title>");
    expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    expect(html).not.toContain("<script>");
    expect(html).toContain('href="http://dockbot.test/projects/a&amp;b"');
  });

  it("writes a refused upgrade as a complete HTTP/1.1 answer that closes the connection", () => {
    const raw = rawResponse({ status: 503, message: "off", link: "http://dockbot.test" });
    const [head = "", body = ""] = raw.split("\r\n\r\n");
    expect(head.split("\r\n")[0]).toBe("HTTP/1.1 503 Service Unavailable");
    expect(head).toContain("connection: close");
    expect(head).toContain("content-type: text/html; charset=utf-8");
    expect(head).toContain(`content-length: ${Buffer.byteLength(body)}`);
    expect(body).toContain("<p>off</p>");
  });
});

describe("the dashboard's preview links", () => {
  const version = (name: string, ports: VersionRecord["ports"]): VersionRecord => ({
    id: `v-${name}`,
    projectId: "p1",
    name,
    ref: { type: "branch", name },
    state: "running",
    composeProject: `dockbot-shop-${name}`,
    urls: [],
    ports,
    createdAt: at,
    updatedAt: at,
  });
  // As the dashboard renders a page (src/ui/ui-routes.tsx): the JSX node is an HtmlEscapedString.
  const render = async (preview?: { port: number; url: string }) => {
    const node = projectPageNode({
      project,
      versions: [
        {
          version: version("main", [
            { service: "web", target: 80, protocol: "tcp", hostPort: 20001 },
          ]),
        },
        { version: version("worker-only", []) },
      ],
      preview,
    });
    return String(await node);
  };

  it("links each version with a published TCP port to its preview URL", async () => {
    const html = await render({ port: 3001, url: "https://*.preview.example.com" });
    expect(html).toContain('href="https://main--shop.preview.example.com"');
    expect(html).not.toContain("worker-only--shop");
  });

  it("shows no preview link while the router is off", async () => {
    expect(await render(undefined)).not.toContain("preview-link");
    expect(await render({ port: 0, url: "http://*.localhost:0" })).not.toContain("preview-link");
  });
});
