// dockbot's HTTP servers keep an idle keep-alive connection open far past Node's default 5 s
// (src/http/keep-alive.ts), so a browser or a proxy reusing it never meets a connection the
// server closed under it. A real dockbot, a real keep-alive agent, and the idle time between.
import http from "node:http";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startDockbot, type DockbotHarness } from "../support/dockbot-harness.js";
import { freePort } from "../support/dockbot-process.js";
import { checkGitServer, describeWithServices } from "../support/services.js";

/** Longer than Node's default keepAliveTimeout of 5 s. */
const IDLE_MS = 6_500;

/** GET through `agent`; whether the request went out on a socket the agent already had. */
function get(
  agent: http.Agent,
  port: number,
  path: string,
): Promise<{ status: number; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
    });
    req.on("error", reject);
  });
}

describeWithServices([await checkGitServer()], "idle keep-alive connections", () => {
  let h: DockbotHarness;
  let previewPort: number;
  beforeAll(async () => {
    previewPort = await freePort();
    h = await startDockbot({ DOCKBOT_PREVIEW_PORT: String(previewPort) });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("stay open on the API port and the preview port after several seconds of idleness", async () => {
    const apiPort = Number(new URL(h.baseUrl).port);
    const agents = [new http.Agent({ keepAlive: true }), new http.Agent({ keepAlive: true })];
    const [api, preview] = agents as [http.Agent, http.Agent];
    try {
      expect(await get(api, apiPort, "/api/health")).toStrictEqual({ status: 200, reused: false });
      // The preview router answers an unknown host with its 404 page.
      expect(await get(preview, previewPort, "/")).toMatchObject({ reused: false });
      await new Promise((r) => setTimeout(r, IDLE_MS));
      expect(await get(api, apiPort, "/api/health")).toStrictEqual({ status: 200, reused: true });
      expect(await get(preview, previewPort, "/")).toMatchObject({ reused: true });
    } finally {
      for (const agent of agents) agent.destroy();
    }
  });
});
