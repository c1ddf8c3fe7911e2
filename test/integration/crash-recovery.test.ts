// dockbot killed with SIGKILL in the middle of a build, then started again: every operation and
// version must be in a true state (nothing left "running" forever, queued work still runs,
// states match what Docker runs, and the interrupted build does not come back to life).
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { dockerObjects, fetchText, webApp, type OperationJson, type VersionJson } from "../support/dockbot-harness.js";
import { authorizeKey, createTestRepo, type TestRepo } from "../support/git-server.js";
import {
  checkComposeV2,
  checkDocker,
  checkGitServer,
  checkTestBaseImage,
  describeWithServices,
} from "../support/services.js";

const TOKEN = "crash-admin-token-0123456789abcdef";
const root = path.resolve(import.meta.dirname, "../..");

function spawnDockbot(dataDir: string, port: number) {
  return execa("node", ["--import", "tsx", "src/main.ts"], {
    cwd: root,
    reject: false,
    env: {
      DOCKBOT_DATA_DIR: dataDir,
      DOCKBOT_PORT: String(port),
      DOCKBOT_HOST: "127.0.0.1",
      DOCKBOT_ADMIN_TOKEN: TOKEN,
      DOCKBOT_CONCURRENCY: "1",
      DOCKBOT_LOG_LEVEL: "warn",
    },
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
    server.once("error", reject);
  });
}

describeWithServices(
  [await checkDocker(), await checkComposeV2(), await checkTestBaseImage(), await checkGitServer()],
  "recovery after dockbot is killed during a build",
  () => {
    let dataDir: string;
    let port: number;
    let repo: TestRepo;
    let proc: ReturnType<typeof spawnDockbot> | undefined;

    const base = () => `http://127.0.0.1:${port}`;
    async function api<T>(method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> {
      const res = await fetch(`${base()}${url}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { "content-type": "application/json" } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
    }

    async function waitUntil<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
      const until = Date.now() + ms;
      for (;;) {
        const v = await probe().catch(() => undefined);
        if (v !== undefined) return v;
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }

    async function startProcess(): Promise<void> {
      proc = spawnDockbot(dataDir, port);
      await waitUntil("dockbot to answer", async () => ((await fetch(`${base()}/api/health`)).ok ? true : undefined));
    }

    beforeAll(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), "dockbot-crash-"));
      port = await freePort();
      repo = await createTestRepo("crash", webApp("steady"));
      await repo.commit(webApp("slow", { dockerfileRun: "sleep 40" }), "slow build", "slow");
      await startProcess();
      const key = (await (await fetch(`${base()}/api/ssh-key`)).json()) as { publicKey: string };
      await authorizeKey(key.publicKey);
      await api("POST", "/api/projects", { name: "crash", repoUrl: repo.sshUrl });
    });

    afterAll(async () => {
      proc?.kill("SIGKILL");
      await proc;
      await rm(dataDir, { recursive: true, force: true });
      await repo?.remove();
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
        return op.log?.includes("sleep 40") ? true : undefined;
      });
      const off = await api<OperationJson>("POST", "/api/projects/crash/versions/main/off");
      expect((await api<OperationJson>("GET", `/api/operations/${off.body.id}`)).body.status).toBe("queued");

      proc?.kill("SIGKILL");
      await proc;
      await startProcess();

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
      // The interrupted build was killed: 45 s later it has not started a container.
      await new Promise((r) => setTimeout(r, 45_000));
      expect((await dockerObjects(slowVersion.composeProject)).running).toEqual([]);
      const operations = await Promise.all(
        [up.body.id, slow.body.id, off.body.id].map(async (id) => (await api<OperationJson>("GET", `/api/operations/${id}`)).body.status),
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
      proc?.kill("SIGKILL");
      await proc;
      const ids = (await dockerObjects(version.composeProject)).containers;
      await execa("docker", ["rm", "-f", ...ids]);
      await startProcess();
      const after = (await api<VersionJson>("GET", "/api/projects/crash/versions/main")).body;
      expect(after.state).toBe("off");
      expect(after.urls).toEqual([]);
    });
  },
);
