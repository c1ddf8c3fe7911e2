// MongoDB lost while dockbot runs a deploy: health and the API answer 503, nothing crashes, and
// the running operation keeps its log lines and writes them when the database is back.
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  startDockbot,
  webApp,
  type DockbotHarness,
  type OperationJson,
} from "../support/dockbot-harness.js";
import { waitUntil } from "../support/dockbot-process.js";
import { createTestRepo, type TestRepo } from "../support/git-server.js";
import { checkMongo, mongoTestUrl, withDatabase, testDatabase } from "../support/mongo.js";
import { checkDeployServices, describeWithServices } from "../support/services.js";
import { startTcpRelay, type TcpRelay } from "../support/tcp-relay.js";
import { cleanUpAll, removeComposeProjects } from "../support/compose-cleanup.js";

const TICKS = 40;

describeWithServices(
  [...(await checkDeployServices()), await checkMongo()],
  "MongoDB lost during a deploy",
  () => {
    const database = testDatabase();
    let relay: TcpRelay;
    let h: DockbotHarness;
    let repo: TestRepo;

    beforeAll(async () => {
      const target = new URL(mongoTestUrl.replace(/^mongodb:\/\/(?:[^@/]*@)?/, "http://"));
      relay = await startTcpRelay(target.hostname, Number(target.port || 27017));
      const url = withDatabase(
        `mongodb://127.0.0.1:${relay.port}/?directConnection=true`,
        database.name,
      );
      h = await startDockbot({ DOCKBOT_MONGODB_URL: url });
      repo = await createTestRepo(
        "outage",
        webApp("survived", {
          dockerfileRun: `for i in $(seq 1 ${TICKS}); do echo "tick $i"; sleep 0.25; done`,
        }),
      );
      await h.api("POST", "/api/projects", { name: "outage", repoUrl: repo.sshUrl });
      await h.api("POST", "/api/projects/outage/versions", { ref: "main" });
    });

    afterAll(async () => {
      relay?.resume();
      await cleanUpAll([
        h && (() => h.close()),
        relay && (() => relay.close()),
        () => database.drop(),
        repo && (() => repo.remove()),
        // The version it turned on is never deleted by the test.
        () => removeComposeProjects("dockbot-outage-"),
      ]);
    });

    it("answers 503 while the database is away and loses no log line of the running deploy", async () => {
      const res = await h.api<OperationJson>("POST", "/api/projects/outage/versions/main/on");
      expect(res.status).toBe(202);
      await waitUntil("the build to print", async () => {
        const op = (await h.api<OperationJson>("GET", `/api/operations/${res.body.id}`)).body;
        return op.log?.includes("tick 3") ? true : undefined;
      });

      relay.pause();
      const health = await fetch(`${h.baseUrl}/api/health`);
      expect(health.status).toBe(503);
      expect(((await health.json()) as { status: string }).status).toBe("unavailable");
      const api = await h.api<{ error: { code: string } }>("GET", "/api/projects");
      expect(api.status).toBe(503);
      expect(api.body.error.code).toBe("unavailable");
      await new Promise((r) => setTimeout(r, 3000));
      relay.resume();

      const op = await h.waitForOperation(res.body.id, 120_000);
      expect(op.status).toBe("succeeded");
      for (let i = 1; i <= TICKS; i++) {
        expect(op.log?.match(new RegExp(`tick ${i}\\b`, "g"))?.length ?? 0).toBeGreaterThanOrEqual(
          1,
        );
      }
      const lines = await h.dockbot.store.getLogLines(res.body.id, 0, 100_000);
      expect(lines.map((l) => l.seq)).toEqual(lines.map((_, i) => i + 1));
      expect((await fetch(`${h.baseUrl}/api/health`)).status).toBe(200);
    });
  },
);
