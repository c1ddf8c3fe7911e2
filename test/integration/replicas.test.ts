// Two real dockbot processes sharing one MongoDB-compatible server (FerretDB): no operation runs
// twice, a version's operations run one at a time and in order, and when one replica dies in
// the middle of an operation the other takes it over once the lease has run out.
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  dockerObjects,
  fetchText,
  webApp,
  type OperationJson,
  type VersionJson,
} from "../support/dockbot-harness.js";
import { dockbotProcess, waitUntil, type DockbotProcess } from "../support/dockbot-process.js";
import { createTestRepo, type TestRepo } from "../support/git-server.js";
import { checkMongo, testDatabase } from "../support/mongo.js";
import { checkDeployServices, describeWithServices } from "../support/services.js";
import { openMongoStore } from "../../src/store/mongo-store.js";
import type { Store } from "../../src/store/store.js";
import type { OperationRecord } from "../../src/store/types.js";
import { cleanUpAll, removeComposeProjects } from "../support/compose-cleanup.js";

const TOKEN = "replica-admin-token-0123456789abcdef";
const FINISHED = ["succeeded", "failed", "canceled", "superseded"];

describeWithServices(
  [...(await checkDeployServices()), await checkMongo()],
  "several replicas on one MongoDB",
  () => {
    const database = testDatabase();
    const url = database.url;
    let a: DockbotProcess;
    let b: DockbotProcess;
    let store: Store;
    let repo: TestRepo;

    beforeAll(async () => {
      repo = await createTestRepo("replicas", webApp("replicated"));
      await repo.commit(webApp("slow", { dockerfileRun: "sleep 12" }), "slow", "slow");
      const env = {
        DOCKBOT_MONGODB_URL: url,
        // Short, so the takeover test waits little; long enough that renewals every 2 s still
        // land on a loaded machine (files run in parallel), where FerretDB's writes are slow.
        DOCKBOT_LEASE_SECONDS: "6",
        DOCKBOT_CONCURRENCY: "2",
      };
      a = await dockbotProcess(TOKEN, env);
      b = await dockbotProcess(TOKEN, env);
      await a.start();
      await b.start();
      store = await openMongoStore(url);
      expect(
        (await a.api("POST", "/api/projects", { name: "rep", repoUrl: repo.sshUrl })).status,
      ).toBe(201);
      // The project made through one replica is there for the other.
      expect((await b.api("GET", "/api/projects/rep")).status).toBe(200);
    });

    afterAll(async () => {
      await cleanUpAll([
        a && (() => a.close()),
        b && (() => b.close()),
        store && (() => store.close()),
        () => database.drop(),
        repo && (() => repo.remove()),
        () => removeComposeProjects("dockbot-rep-"),
      ]);
    });

    it("runs every operation once, one at a time per version and in order, spread over both replicas", async () => {
      const versions = ["v1", "v2", "v3"];
      for (const v of versions)
        await a.api("POST", "/api/projects/rep/versions", { ref: "main", name: v });
      const requested: string[] = [];
      for (let round = 0; round < 4; round++) {
        for (const [i, v] of versions.entries()) {
          const via = (round + i) % 2 === 0 ? a : b;
          const action = round % 2 === 0 ? "on" : "off";
          const res = await via.api<OperationJson>(
            "POST",
            `/api/projects/rep/versions/${v}/${action}`,
          );
          expect(res.status).toBe(202);
          requested.push(res.body.id);
        }
        await new Promise((r) => setTimeout(r, 1500));
      }
      const ops = await waitUntil(
        "every operation to finish",
        async () => {
          const all = await Promise.all(requested.map((id) => store.getOperation(id)));
          return all.every((o) => o && FINISHED.includes(o.status))
            ? (all as OperationRecord[])
            : undefined;
        },
        180_000,
      );
      const ran = ops.filter((o) => o.status !== "superseded");
      expect(ran.filter((o) => o.status !== "succeeded").map((o) => [o.kind, o.error])).toEqual([]);
      expect(ran.length).toBeGreaterThanOrEqual(versions.length);
      expect(new Set(ran.map((o) => o.owner)).size).toBe(2);
      for (const op of ran) {
        const log = await store.getLogLines(op.id, 0, 100_000);
        expect(log.filter((l) => /\[dockbot\] (up|down) succeeded/.test(l.text))).toHaveLength(1);
      }
      // Per version: each operation started after the one queued before it had finished.
      for (const versionId of new Set(ran.map((o) => o.versionId))) {
        const sorted = ran
          .filter((o) => o.versionId === versionId)
          .sort((x, y) => x.queuedAt.localeCompare(y.queuedAt));
        for (let i = 1; i < sorted.length; i++) {
          expect(sorted[i - 1]?.finishedAt ?? "").not.toBe("");
          expect((sorted[i - 1]?.finishedAt ?? "") <= (sorted[i]?.startedAt ?? "")).toBe(true);
        }
      }
    });

    it("takes over an operation whose replica was killed, once the lease runs out", async () => {
      await a.api("POST", "/api/projects/rep/versions", { ref: "slow" });
      // Only replica a takes work while the slow deploy starts.
      await b.kill("SIGKILL");
      const res = await a.api<OperationJson>("POST", "/api/projects/rep/versions/slow/on");
      await waitUntil("the slow build to start", async () => {
        const op = (await a.api<OperationJson>("GET", `/api/operations/${res.body.id}`)).body;
        return op.log?.includes("sleep 12") ? true : undefined;
      });
      const ownerA = (await store.getOperation(res.body.id))?.owner;
      await b.start();
      await a.kill("SIGKILL");
      const done = await waitUntil(
        "the other replica to finish it",
        async () => {
          const op = (await b.api<OperationJson>("GET", `/api/operations/${res.body.id}`)).body;
          return FINISHED.includes(op.status) ? op : undefined;
        },
        120_000,
      );
      expect(done.status).toBe("succeeded");
      expect(done.log).toContain("taken over by");
      const record = await store.getOperation(res.body.id);
      expect(record?.owner).not.toBe(ownerA);
      expect(record?.options?.takeovers).toBe(1);
      const version = (await b.api<VersionJson>("GET", "/api/projects/rep/versions/slow")).body;
      expect(version.state).toBe("running");
      expect(await fetchText(version.urls[0] ?? "")).toBe("slow\n");
      await b.api("DELETE", "/api/projects/rep/versions/slow");
      await waitUntil("the slow version to be deleted", async () =>
        (await b.api("GET", "/api/projects/rep/versions/slow")).status === 404 ? true : undefined,
      );
      expect((await dockerObjects(version.composeProject)).containers).toEqual([]);
    });
  },
);
