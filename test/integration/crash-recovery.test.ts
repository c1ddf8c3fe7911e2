// dockbot killed with SIGKILL in the middle of a build, then started again: every operation and
// version must be in a true state (nothing left "running" forever, queued work still runs,
// states match what Docker runs, and the interrupted build does not come back to life).
import { execa } from "execa";
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
import { checkDeployServices, describeWithServices } from "../support/services.js";
import { cleanUpAll, removeComposeProjects } from "../support/compose-cleanup.js";

const TOKEN = "crash-admin-token-0123456789abcdef";

describeWithServices(
  await checkDeployServices(),
  "recovery after dockbot is killed during a build",
  () => {
    let repo: TestRepo;
    let dockbot: DockbotProcess;
    const api = <T>(method: string, url: string, body?: unknown) =>
      dockbot.api<T>(method, url, body);

    beforeAll(async () => {
      repo = await createTestRepo("crash", webApp("steady"));
      await repo.commit(webApp("slow", { dockerfileRun: "sleep 15" }), "slow build", "slow");
      dockbot = await dockbotProcess(TOKEN, { DOCKBOT_CONCURRENCY: "1" });
      await dockbot.start();
      await api("POST", "/api/projects", { name: "crash", repoUrl: repo.sshUrl });
    });

    afterAll(async () => {
      await cleanUpAll([
        dockbot && (() => dockbot.close()),
        repo && (() => repo.remove()),
        () => removeComposeProjects("dockbot-crash-"),
      ]);
    });

    it("fails the interrupted operation, runs the queued one, and settles every version", async () => {
      // A version that runs before the crash.
      await api("POST", "/api/projects/crash/versions", { ref: "main" });
      const up = await api<OperationJson>("POST", "/api/projects/crash/versions/main/on");
      await waitUntil("main to run", async () => {
        const op = (await api<OperationJson>("GET", `/api/operations/${up.body.id}`)).body;
        return op.status === "succeeded" ? op : undefined;
      });
      // A slow build in flight, and an operation queued behind it (concurrency 1).
      await api("POST", "/api/projects/crash/versions", { ref: "slow" });
      const slow = await api<OperationJson>("POST", "/api/projects/crash/versions/slow/on");
      await waitUntil("the slow build to start", async () => {
        const op = (await api<OperationJson>("GET", `/api/operations/${slow.body.id}`)).body;
        return op.log?.includes("sleep 15") ? true : undefined;
      });
      const off = await api<OperationJson>("POST", "/api/projects/crash/versions/main/off");
      expect((await api<OperationJson>("GET", `/api/operations/${off.body.id}`)).body.status).toBe(
        "queued",
      );

      await dockbot.kill("SIGKILL");
      await dockbot.start();

      const interrupted = (await api<OperationJson>("GET", `/api/operations/${slow.body.id}`)).body;
      expect(interrupted.status).toBe("failed");
      expect(interrupted.error).toBe("interrupted by restart");
      const offDone = await waitUntil("the queued operation to run", async () => {
        const op = (await api<OperationJson>("GET", `/api/operations/${off.body.id}`)).body;
        return ["succeeded", "failed"].includes(op.status) ? op : undefined;
      });
      expect(offDone.status).toBe("succeeded");
      const slowVersion = (await api<VersionJson>("GET", "/api/projects/crash/versions/slow")).body;
      expect(slowVersion.state).toBe("failed");
      const mainVersion = (await api<VersionJson>("GET", "/api/projects/crash/versions/main")).body;
      expect(mainVersion.state).toBe("off");
      expect((await dockerObjects(mainVersion.composeProject)).running).toEqual([]);
      // The interrupted build was killed: 20 s later (past its 15 s sleep) it has not started a container.
      await new Promise((r) => setTimeout(r, 20_000));
      expect((await dockerObjects(slowVersion.composeProject)).running).toEqual([]);
      const operations = await Promise.all(
        [up.body.id, slow.body.id, off.body.id].map(
          async (id) => (await api<OperationJson>("GET", `/api/operations/${id}`)).body.status,
        ),
      );
      expect(operations).toEqual(["succeeded", "failed", "succeeded"]);
    });

    it("reconciles a version whose containers were removed while dockbot was down", async () => {
      const up = await api<OperationJson>("POST", "/api/projects/crash/versions/main/on");
      const done = await waitUntil("main to run again", async () => {
        const op = (await api<OperationJson>("GET", `/api/operations/${up.body.id}`)).body;
        return ["succeeded", "failed"].includes(op.status) ? op : undefined;
      });
      expect(done.status).toBe("succeeded");
      const version = (await api<VersionJson>("GET", "/api/projects/crash/versions/main")).body;
      expect(await fetchText(version.urls[0] ?? "")).toBe("steady\n");
      await dockbot.kill("SIGKILL");
      const ids = (await dockerObjects(version.composeProject)).containers;
      await execa("docker", ["rm", "-f", ...ids]);
      await dockbot.start();
      const after = (await api<VersionJson>("GET", "/api/projects/crash/versions/main")).body;
      expect(after.state).toBe("off");
      expect(after.urls).toEqual([]);
    });
  },
);
