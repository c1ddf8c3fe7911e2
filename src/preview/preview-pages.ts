// The preview router's own answers (docs/api.md, "Preview router"): a short HTML page that says
// what was asked for and links to the dashboard, for HTTP and for a refused WebSocket upgrade.
import { STATUS_CODES } from "node:http";

export interface PreviewPage {
  status: 400 | 404 | 502 | 503;
  /** One sentence for the person who opened the link. */
  message: string;
  /** The dashboard page that helps (the version's project, else the dashboard). */
  link: string;
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c,
  );
}

export function pageHtml(page: PreviewPage): string {
  const title = `${page.status} ${STATUS_CODES[page.status] ?? ""}`.trim();
  return [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)} · dockbot preview</title>`,
    "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}",
    "h1{font-size:1.4rem}a{color:#0b5cad}</style></head><body>",
    `<h1>${escapeHtml(title)}</h1>`,
    `<p>${escapeHtml(page.message)}</p>`,
    `<p><a href="${escapeHtml(page.link)}">Open the dockbot dashboard</a></p>`,
    "</body></html>",
    "",
  ].join("\n");
}

/** The headers every router page is sent with (no caching: the version may be up a moment later). */
export function pageHeaders(body: string): Record<string, string> {
  return {
    "content-type": "text/html; charset=utf-8",
    "content-length": String(Buffer.byteLength(body)),
    "cache-control": "no-store",
  };
}

/** The page as a raw HTTP/1.1 response, for a WebSocket upgrade the router refuses. */
export function rawResponse(page: PreviewPage): string {
  const body = pageHtml(page);
  const head = Object.entries({ ...pageHeaders(body), connection: "close" })
    .map(([k, v]) => `${k}: ${v}`)
    .join("\r\n");
  return `HTTP/1.1 ${page.status} ${STATUS_CODES[page.status] ?? ""}\r\n${head}\r\n\r\n${body}`;
}
