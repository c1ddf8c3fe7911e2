// The preview router's own answers (docs/api.md, "Preview router"): a short HTML page that says
// what was asked for and links to the dashboard, for HTTP and for a refused WebSocket upgrade.
// A version that is off or failed gets a page saying why and since when, with a "Turn on" button
// to the dashboard (docs/api.md, "Idle stop and limits"): the preview host never sees the
// dashboard's cookie, so the turning on itself is a signed-in POST on dockbot's own origin.
import { STATUS_CODES } from "node:http";
import type { OperationRecord, VersionRecord } from "../store/types.js";

export interface PreviewPage {
  status: 400 | 404 | 502 | 503;
  /** One sentence for the person who opened the link. */
  message: string;
  /** The dashboard page that helps (the version's project, else the dashboard). */
  link: string;
  /** The dashboard's page that turns the version on (for a version that is off or failed). */
  turnOn?: string;
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
    "h1{font-size:1.4rem}a{color:#0b5cad}",
    "a.button{display:inline-block;padding:.5rem 1.2rem;border-radius:.3rem;background:#0b5cad;color:#fff;text-decoration:none;font-weight:600}",
    "</style></head><body>",
    `<h1>${escapeHtml(title)}</h1>`,
    `<p>${escapeHtml(page.message)}</p>`,
    ...(page.turnOn === undefined
      ? []
      : [
          `<p><a class="button" href="${escapeHtml(page.turnOn)}">Turn on</a></p>`,
          "<p><small>Turning it on takes you to the dockbot dashboard: sign in there with the right to deploy this project.</small></p>",
        ]),
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

/** What the page of a version that is not running says (all from the store, nothing secret). */
export interface NotRunningFacts {
  project: string;
  version: Pick<VersionRecord, "name" | "state">;
  /** The version's newest operation. */
  last?: Pick<OperationRecord, "kind" | "status" | "trigger" | "finishedAt" | "queuedAt">;
  /** The project's `autoStop.idleHours` (with the instance default), for an idle stop. */
  idleHours: number;
  /** The project's page and the version's turn-on page on the dashboard. */
  link: string;
  turnOn: string;
}

/** `2026-12-01 14:05 UTC`: when, readable, with no time zone guessing. */
function readableTime(iso: string | undefined): string | undefined {
  if (iso === undefined || Number.isNaN(Date.parse(iso))) return undefined;
  return `${new Date(iso).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function hours(h: number): string {
  const rounded = Math.round(h * 100) / 100;
  return `${rounded} hour${rounded === 1 ? "" : "s"}`;
}

/**
 * The 503 page of a version that is not running: why (stopped for being idle, turned off by
 * someone, its deploy failed, or on its way up or down) and since when; a "Turn on" button while
 * it is off or failed. Never an operation's error text: this page is public.
 */
export function notRunningPage(f: NotRunningFacts): PreviewPage {
  const who = `Version ${f.version.name} of ${f.project}`;
  const base = { status: 503 as const, link: f.link };
  const last = f.last;
  const when = readableTime(last?.finishedAt ?? last?.queuedAt);
  switch (f.version.state) {
    case "queued":
    case "deploying":
      return {
        ...base,
        message: `${who} is not running yet: it is starting (${f.version.state}); reload in a moment.`,
      };
    case "stopping":
      return { ...base, message: `${who} is not running: it is being turned off.` };
    case "deleting":
      return { ...base, message: `${who} is not running: it is being deleted.` };
    case "failed":
      return {
        ...base,
        turnOn: f.turnOn,
        message: `${who} is not running: its last ${last?.kind ?? "operation"} failed${when ? ` (${when})` : ""}. Turn it on to deploy it again.`,
      };
    default:
      break;
  }
  const byDown = last?.kind === "down" && last.status === "succeeded";
  let message: string;
  if (byDown && last.trigger.source === "policy" && last.trigger.reason === "idle") {
    message = `${who} is not running: dockbot stopped it${when ? ` on ${when}` : ""} because it had no deploy and no visit for ${hours(f.idleHours)}. Its data is kept: turn it on to start it again.`;
  } else if (byDown && last.trigger.source === "policy") {
    message = `${who} is not running: dockbot stopped it${when ? ` on ${when}` : ""} (${last.trigger.reason ?? "policy"}). Its data is kept: turn it on to start it again.`;
  } else if (byDown) {
    message = `${who} is not running: it was turned off${when ? ` on ${when}` : ""}. Its data is kept: turn it on to start it again.`;
  } else {
    message = `${who} is not running (it is ${f.version.state}). Turn it on to start it.`;
  }
  return { ...base, turnOn: f.turnOn, message };
}
