// The preview router for real: versions deployed by dockbot (real git over the test sshd, real
// Docker and Compose v2) answer through DOCKBOT_PREVIEW_PORT by Host header, HTTP and WebSocket,
// with X-Forwarded-* set, and the router's own 400 / 404 / 503 pages where nothing can answer.
import { randomBytes } from "node:crypto";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  startDockbot,
  type DockbotHarness,
  type OperationJson,
  type VersionJson,
} from "../support/dockbot-harness.js";
import { freePort } from "../support/dockbot-process.js";
import { createTestRepo, type TestRepo } from "../support/git-server.js";
import {
  buildUpstreamImage,
  checkGo,
  requestWithHost,
  untilStatus,
  websocketEcho,
} from "../support/preview-upstream.js";
import { checkDeployServices, describeWithServices } from "../support/services.js";

const suffix = randomBytes(3).toString("hex");
const UPSTREAM_IMAGE = `dockbot-pvr-upstream:${suffix}`;
const project = `pvr-${suffix}`;

/** Two routed services (web first in the file: the primary) and one without a port. */
function appFiles(tag: string): Record<string, string> {
  return {
    Dockerfile: `FROM ${UPSTREAM_IMAGE}\n`,
    "compose.yaml": [
      "services:",
      "  web:",
      "    build: .",
      `    environment: {BODY: "web of ${tag}"}`,
      '    ports: ["8080"]',
      "  api:",
      "    build: .",
      `    environment: {BODY: "api of ${tag}", PORT: "9090"}`,
      '    ports: ["9090"]',
      "  worker:",
      "    build: .",
      `    environment: {BODY: "worker of ${tag}"}`,
      "",
    ].join("\n"),
  };
}

describeWithServices(
  [...(await checkDeployServices()), await checkGo()],
  "the preview router in front of running versions",
  () => {
    let h: DockbotHarness;
    let repo: TestRepo;
    let port: number;
    let removeImage: (() => Promise<void>) | undefined;
    const composeProjects = new Set<string>();

    const host = (label: string) => `${label}.localhost:${port}`;
    const get = (label: string, urlPath = "/", headers: Record<string, string> = {}) =>
      requestWithHost(port, host(label), urlPath, headers);

    async function turn(version: string, how: "on" | "off"): Promise<OperationJson> {
      const res = await h.api<OperationJson>(
        "POST",
        `/api/projects/${project}/versions/${version}/${how}`,
      );
      expect(res.status).toBe(202);
      return h.waitForOperation(res.body.id);
    }

    async function version(name: string): Promise<VersionJson & { previewUrl: string | null }> {
      const res = await h.api<VersionJson & { previewUrl: string | null }>(
        "GET",
        `/api/projects/${project}/versions/${name}`,
      );
      composeProjects.add(res.body.composeProject);
      return res.body;
    }

    beforeAll(async () => {
      removeImage = await buildUpstreamImage(UPSTREAM_IMAGE);
      port = await freePort();
      h = await startDockbot({
        DOCKBOT_PREVIEW_PORT: String(port),
        DOCKBOT_PUBLIC_URL: "http://dockbot.test:3000",
      });
      repo = await createTestRepo("preview", appFiles("main"));
      await repo.commit(appFiles("feature"), "feature", "feature");
      expect(
        (await h.api("POST", "/api/projects", { name: project, repoUrl: repo.sshUrl })).status,
      ).toBe(201);
      for (const ref of ["main", "feature"]) {
        expect((await h.api("POST", `/api/projects/${project}/versions`, { ref })).status).toBe(
          201,
        );
        const op = await turn(ref, "on");
        expect(op.status, op.log ?? op.error).toBe("succeeded");
        await version(ref);
      }
    }, 600_000);

    afterAll(async () => {
      for (const name of ["main", "feature"]) {
        const res = await h
          ?.api<OperationJson>("DELETE", `/api/projects/${project}/versions/${name}`)
          .catch(() => undefined);
        if (res?.status === 202) await h.waitForOperation(res.body.id).catch(() => undefined);
      }
      await h?.close();
      await repo?.remove();
      // Whatever a failed test left: the versions' containers, networks, volumes and images.
      for (const cp of composeProjects) {
        const label = `label=com.docker.compose.project=${cp}`;
        const ids = (
          await execa("docker", ["ps", "-aq", "--filter", label], { reject: false })
        ).stdout
          .split("\n")
          .filter(Boolean);
        if (ids.length > 0) await execa("docker", ["rm", "-f", "-v", ...ids], { reject: false });
        const nets = (
          await execa("docker", ["network", "ls", "-q", "--filter", label], { reject: false })
        ).stdout
          .split("\n")
          .filter(Boolean);
        if (nets.length > 0) await execa("docker", ["network", "rm", ...nets], { reject: false });
        const images = (
          await execa("docker", ["image", "ls", "--format", "{{.Repository}}"], { reject: false })
        ).stdout
          .split("\n")
          .filter((r) => r.startsWith(`${cp}-`) || r.startsWith(`${cp}_`));
        if (images.length > 0)
          await execa("docker", ["image", "rm", "-f", ...images], { reject: false });
      }
      await removeImage?.();
    }, 300_000);

    it("gives each running version its previewUrl, <version>--<project> on the preview port", async () => {
      expect((await version("main")).previewUrl).toBe(`http://main--${project}.localhost:${port}`);
      expect((await version("feature")).previewUrl).toBe(
        `http://feature--${project}.localhost:${port}`,
      );
    });

    it("routes <version>--<project> to the version's primary service, each version to its own", async () => {
      const main = await untilStatus(() => get(`main--${project}`), 200);
      expect(main.body).toBe("web of main\n");
      const feature = await untilStatus(() => get(`feature--${project}`), 200);
      expect(feature.body).toBe("web of feature\n");
    });

    it("routes <service>--<version>--<project> to that service", async () => {
      const api = await untilStatus(() => get(`api--feature--${project}`), 200);
      expect(api.body).toBe("api of feature\n");
      expect((await get(`web--main--${project}`)).body).toBe("web of main\n");
    });

    it("passes X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host, and the Host itself", async () => {
      const res = await get(`main--${project}`, "/headers", { "x-forwarded-for": "203.0.113.9" });
      expect(res.status).toBe(200);
      const seen = JSON.parse(res.body) as Record<string, string>;
      expect(seen["x-forwarded-for"]).toBe("203.0.113.9, 127.0.0.1");
      expect(seen["x-forwarded-proto"]).toBe("http");
      expect(seen["x-forwarded-host"]).toBe(host(`main--${project}`));
      expect(seen.host).toBe(host(`main--${project}`));
    });

    it("passes a WebSocket upgrade through: a message comes back from the version's echo", async () => {
      const answer = await websocketEcho(
        port,
        host(`main--${project}`),
        "hello through the router",
      );
      expect(answer.status).toBe(101);
      expect(answer.echoed).toBe("hello through the router");
      const api = await websocketEcho(port, host(`api--feature--${project}`), "to the api");
      expect(api.echoed).toBe("to the api");
    });

    it("answers 404 with a page linking to the dashboard for a host no version has", async () => {
      const res = await get(`nope--${project}`);
      expect(res.status).toBe(404);
      expect(res.headers["content-type"]).toContain("text/html");
      expect(res.body).toContain(`nope--${project}.localhost`);
      expect(res.body).toContain('href="http://dockbot.test:3000"');
      // A service the version does not route (no published port) is no host either.
      expect((await get(`worker--main--${project}`)).status).toBe(404);
    });

    it("never serves dockbot's API, dashboard or Socket.io on the preview port", async () => {
      for (const p of ["/api/health", "/", "/socket.io/?EIO=4&transport=polling"]) {
        const res = await requestWithHost(port, `localhost:${port}`, p);
        expect(res.status).toBe(404);
        expect(res.headers["content-type"]).toContain("text/html");
        expect(res.body).not.toContain('"status"');
      }
    });

    it("answers 400 for a malformed Host", async () => {
      for (const bad of ["main_shop.localhost", `-x--${project}.localhost`, "a..localhost"]) {
        const res = await requestWithHost(port, bad);
        expect(res.status, bad).toBe(400);
        expect(res.body).toContain("not a host name it can route");
      }
    });

    it("answers 503 naming the version when it is off, and refuses a WebSocket to it cleanly", async () => {
      const op = await turn("feature", "off");
      expect(op.status).toBe("succeeded");
      // At once: the off event drops the cached route, no stale answer from a gone container.
      const res = await get(`feature--${project}`);
      expect(res.status).toBe(503);
      expect(res.body).toContain(`Version feature of ${project} is not running`);
      expect(res.body).toContain(`href="http://dockbot.test:3000/projects/${project}"`);
      expect((await get(`api--feature--${project}`)).status).toBe(503);
      const ws = await websocketEcho(port, host(`feature--${project}`), "anyone?");
      expect(ws.status).toBe(503);
      expect(ws.closed).toBe(true);
      expect(ws.body).toContain("is not running");
      // The other version is untouched.
      expect((await get(`main--${project}`)).body).toBe("web of main\n");
      // Turned on again, it answers again.
      expect((await turn("feature", "on")).status).toBe("succeeded");
      expect((await untilStatus(() => get(`feature--${project}`), 200)).body).toBe(
        "web of feature\n",
      );
    });
  },
);
