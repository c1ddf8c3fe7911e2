// The preview router (docs/api.md, "Preview router"; docs/architecture.md): its own HTTP server
// on DOCKBOT_PREVIEW_PORT that routes by Host header to a version's service, HTTP and WebSocket,
// through http-proxy-3. It has no route of dockbot's own: the API, the dashboard and Socket.io
// are never served here, whatever the Host says.
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { createProxyServer } from "http-proxy-3";
import type { Logger } from "pino";
import {
  parsePreviewHost,
  previewDomain,
  previewScheme,
  type PreviewSettings,
} from "./preview-host.js";
import {
  notRunningPage,
  pageHeaders,
  pageHtml,
  rawResponse,
  type NotRunningFacts,
  type PreviewPage,
} from "./preview-pages.js";
import type { PreviewLookup, PreviewTargets } from "./preview-targets.js";
import type { RequestTracker } from "./request-tracker.js";
import type { VersionRecord } from "../store/types.js";
import { keepConnectionsAlive } from "../http/keep-alive.js";

export interface PreviewRouterDeps {
  settings: PreviewSettings;
  /** Bind address (DOCKBOT_HOST, like the API). */
  host: string;
  /** DOCKBOT_PUBLIC_URL: the dashboard the pages link to. */
  publicUrl: string;
  targets: PreviewTargets;
  logger: Logger;
  /** Records each request routed to a version, HTTP and WebSocket (request-tracker.ts). */
  requests?: Pick<RequestTracker, "record" | "opened">;
  /** Why a version is not running, for its 503 page: its newest operation, its idle hours. */
  notRunning?: (version: VersionRecord) => Promise<Pick<NotRunningFacts, "last" | "idleHours">>;
}

export interface PreviewRouter {
  /** Listens on settings.port (0 in tests: any free port); resolves with the bound port. */
  listen(port?: number): Promise<number>;
  close(): Promise<void>;
}

type Decision = { page: PreviewPage } | { target: Extract<PreviewLookup, { kind: "target" }> };

export function createPreviewRouter(deps: PreviewRouterDeps): PreviewRouter {
  const domain = previewDomain(deps.settings.url);
  const proto = previewScheme(deps.settings.url);
  const dashboard = deps.publicUrl.replace(/\/+$/, "");
  const log = deps.logger.child({ component: "preview-router" });
  // Keep-alive to the services: a new TCP connection per request would be most of its cost.
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: 256,
    maxFreeSockets: 64,
    scheduling: "lifo",
  });
  const proxy = createProxyServer({ xfwd: false, ws: true });
  const upgraded = new Set<Duplex>();

  const projectLink = (project: string) => `${dashboard}/projects/${encodeURIComponent(project)}`;
  // The dashboard's confirm page (src/ui/turn-on-page.tsx): one signed-in POST from there.
  const turnOnLink = (project: string, version: string) =>
    `${projectLink(project)}/versions/${encodeURIComponent(version)}/turn-on`;

  async function notRunning(project: string, version: VersionRecord): Promise<PreviewPage> {
    let facts: Pick<NotRunningFacts, "last" | "idleHours"> = { idleHours: 0 };
    try {
      if (deps.notRunning) facts = await deps.notRunning(version);
    } catch (error) {
      // The page still says the version is not running, only not why.
      log.warn({ err: error, version: version.name }, "could not read why a version is off");
    }
    return notRunningPage({
      ...facts,
      project,
      version,
      link: projectLink(project),
      turnOn: turnOnLink(project, version.name),
    });
  }

  async function decide(host: string | undefined): Promise<Decision> {
    const parsed = parsePreviewHost(host, domain);
    if (parsed.kind === "malformed") {
      return {
        page: {
          status: 400,
          message: `This is dockbot's preview router, and the request's Host (${host ?? "none"}) is not a host name it can route: ${parsed.reason}.`,
          link: dashboard,
        },
      };
    }
    if (parsed.kind === "foreign") {
      return {
        page: {
          status: 404,
          message: `No preview lives at ${parsed.host}: previews are at <version>--<project>.${domain}.`,
          link: dashboard,
        },
      };
    }
    const found = await deps.targets.lookup(parsed.label);
    switch (found.kind) {
      case "unknown":
        return {
          page: {
            status: 404,
            message: `No version is called ${parsed.label}.${domain}: it may have been deleted, or the link is mistyped.`,
            link: dashboard,
          },
        };
      case "off":
        return { page: await notRunning(found.project, found.version) };
      case "unreachable":
        return {
          page: {
            status: 503,
            message: found.service
              ? `Version ${found.version.name} of ${found.project} is running, but its service ${found.service} does not answer on a published TCP port.`
              : `Version ${found.version.name} of ${found.project} publishes no TCP port to route to.`,
            link: projectLink(found.project),
          },
        };
      case "target":
        return { target: found };
    }
  }

  function forwardedHeaders(req: http.IncomingMessage): void {
    const remote = req.socket.remoteAddress ?? "";
    const prior = req.headers["x-forwarded-for"];
    req.headers["x-forwarded-for"] = prior ? `${String(prior)}, ${remote}` : remote;
    req.headers["x-forwarded-proto"] = proto;
    req.headers["x-forwarded-host"] = req.headers.host ?? "";
  }

  function sendPage(res: http.ServerResponse, page: PreviewPage): void {
    const body = pageHtml(page);
    res.writeHead(page.status, pageHeaders(body));
    // HEAD gets the page's headers only.
    res.end(res.req.method === "HEAD" ? undefined : body);
  }

  const badGateway = (found: Extract<PreviewLookup, { kind: "target" }>): PreviewPage => ({
    status: 502,
    message: `Version ${found.version.name} of ${found.project} is running, but its service ${found.service} did not answer.`,
    link: projectLink(found.project),
  });

  const server = http.createServer((req, res) => {
    decide(req.headers.host).then(
      (decision) => {
        if ("page" in decision) {
          sendPage(res, decision.page);
          return;
        }
        const found = decision.target;
        deps.requests?.record(found.version.id);
        forwardedHeaders(req);
        proxy.web(req, res, { target: found.address, agent }, (error) => {
          deps.targets.forget(found.key);
          log.warn(
            { err: error, version: found.version.name, service: found.service },
            "service did not answer",
          );
          if (!res.headersSent) sendPage(res, badGateway(found));
          else res.destroy();
        });
      },
      (error: unknown) => {
        log.error({ err: error }, "preview lookup failed");
        sendPage(res, {
          status: 503,
          message: "dockbot could not look the version up; try again in a moment.",
          link: dashboard,
        });
      },
    );
  });
  keepConnectionsAlive(server);

  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    upgraded.add(socket);
    socket.once("close", () => upgraded.delete(socket));
    socket.on("error", (error) => log.debug({ err: error }, "client socket error"));
    const refuse = (page: PreviewPage) => {
      // A clean refusal: the page as an HTTP answer, then the connection closes.
      if (socket.writable) socket.end(rawResponse(page));
      else socket.destroy();
    };
    decide(req.headers.host).then(
      (decision) => {
        if ("page" in decision) {
          refuse(decision.page);
          return;
        }
        const found = decision.target;
        // Open WebSockets keep the version in use (request-tracker.ts) until they close.
        if (deps.requests) socket.once("close", deps.requests.opened(found.version.id));
        forwardedHeaders(req);
        proxy.ws(req, socket, head, { target: found.address }, (error) => {
          deps.targets.forget(found.key);
          log.warn(
            { err: error, version: found.version.name, service: found.service },
            "service refused the WebSocket",
          );
          refuse(badGateway(found));
        });
      },
      (error: unknown) => {
        log.error({ err: error }, "preview lookup failed");
        refuse({
          status: 503,
          message: "dockbot could not look the version up; try again in a moment.",
          link: dashboard,
        });
      },
    );
  });

  // A client that goes away mid-request is no error of ours.
  server.on("clientError", (_error, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    else socket.destroy();
  });

  return {
    listen(port = deps.settings.port) {
      return new Promise<number>((resolve, reject) => {
        const fail = (error: NodeJS.ErrnoException) =>
          reject(
            error.code === "EADDRINUSE"
              ? new Error(
                  `DOCKBOT_PREVIEW_PORT ${port} is already in use on ${deps.host}: choose another port, or 0 to turn the preview router off`,
                  { cause: error },
                )
              : error,
          );
        server.once("error", fail);
        server.listen(port, deps.host, () => {
          server.off("error", fail);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of upgraded) socket.destroy();
      agent.destroy();
      await closed;
    },
  };
}
