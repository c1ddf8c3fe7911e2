// Health-verified success for real (docs/api.md, "Health"): after `up`, dockbot waits for the
// version's containers on the real engine, with Compose v2 and v1, and an up succeeds only when
// its services are healthy, running or (one-shot) done. Every compose project here starts with
// `dockbot-hlth`, removed in afterAll whatever failed.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  startDockbot,
  type DockbotHarness,
  type OperationJson,
  type VersionJson,
} from "../support/dockbot-harness.js";
import { cleanUpAll, removeComposeProjects } from "../support/compose-cleanup.js";
import { createTestRepo, type RepoFiles, type TestRepo } from "../support/git-server.js";
import {
  checkComposeV1,
  checkComposeV2,
  checkDocker,
  checkGitServer,
  checkTestBaseImage,
  describeWithServices,
  TEST_BASE_IMAGE,
} from "../support/services.js";

const common = [await checkDocker(), await checkTestBaseImage(), await checkGitServer()];
const modes = [
  { mode: "v2", checks: [await checkComposeV2()] },
  { mode: "v1", checks: [await checkComposeV1()] },
] as const;

/** Seconds an up waits here: short, so a never-healthy service fails quickly. */
const HEALTH_TIMEOUT = 8;

/** An httpd serving `/www` (with `index.html` and what `files` add), started by `sh -c`. */
function httpd(before = "", files: string[] = []): string {
  const make = ["index.html", ...files].map((f) => `echo ok > /www/${f}`).join(" && ");
  return `${before}mkdir -p /www && ${make} && exec httpd -f -p 8080 -h /www`;
}

/** A compose file of the test base image (nothing to build), one entry per service. */
function composeFile(services: Record<string, string[]>): RepoFiles {
  const lines = ["services:"];
  for (const [name, body] of Object.entries(services)) {
    lines.push(`  ${name}:`, `    image: ${TEST_BASE_IMAGE}`, "    init: true");
    for (const l of body) lines.push(`    ${l}`);
  }
  return { "compose.yaml": `${lines.join("\n")}\n` };
}

const web = (extra: string[] = [], cmd = httpd()) => [
  `command: ["sh", "-c", ${JSON.stringify(cmd)}]`,
  'ports: ["8080"]',
  ...extra,
];

for (const { mode, checks } of modes) {
  describeWithServices([...common, ...checks], `health-verified ups with Compose ${mode}`, () => {
    let h: DockbotHarness;
    let repo: TestRepo;
    const project = `hlth${mode}-${randomBytes(3).toString("hex")}`;

    beforeAll(async () => {
      h = await startDockbot({
        DOCKBOT_COMPOSE: mode,
        DOCKBOT_HEALTH_TIMEOUT: String(HEALTH_TIMEOUT),
      });
      repo = await createTestRepo(`hlth-${mode}`, composeFile({ web: web() }));
      const created = await h.api("POST", "/api/projects", {
        name: project,
        repoUrl: repo.sshUrl,
      });
      expect(created.status).toBe(201);
    });

    afterAll(async () => {
      await cleanUpAll([
        h && (() => h.close()),
        repo && (() => repo.remove()),
        () => removeComposeProjects(`dockbot-${project}-`),
      ]);
    });

    /** Commits `files` on a branch, makes its version and turns it on. */
    async function deploy(branch: string, files: RepoFiles): Promise<OperationJson> {
      await repo.commit(files, branch, branch);
      const created = await h.api("POST", `/api/projects/${project}/versions`, { ref: branch });
      expect(created.status).toBe(201);
      const res = await h.api<OperationJson>(
        "POST",
        `/api/projects/${project}/versions/${branch}/on`,
      );
      expect(res.status).toBe(202);
      return h.waitForOperation(res.body.id);
    }

    async function state(version: string): Promise<string> {
      const res = await h.api<VersionJson>("GET", `/api/projects/${project}/versions/${version}`);
      return res.body.state;
    }

    it("fails the up of a crash-looping service with its name, its state and its last log lines", async () => {
      const op = await deploy(
        "crash",
        composeFile({
          web: web(["restart: always"], "echo crash-marker-7f3a; echo config missing >&2; exit 3"),
        }),
      );
      expect(op.status).toBe("failed");
      expect(op.error).toMatch(
        /^health check failed: web \(keeps restarting: \d+ restarts during the health check/,
      );
      expect(op.log).toContain("[web] crash-marker-7f3a");
      expect(op.log).toContain("[web] config missing");
      expect(await state("crash")).toBe("failed");
    });

    it("fails the up of a service that exits at once with a non-zero code", async () => {
      const started = Date.now();
      const op = await deploy("exits", composeFile({ web: web([], "echo bye-now; exit 7") }));
      expect(op.status).toBe("failed");
      expect(op.error).toBe("health check failed: web (exited with code 7)");
      expect(op.log).toContain("[web] bye-now");
      // Known at once: no waiting for the timeout.
      expect(Date.now() - started).toBeLessThan(HEALTH_TIMEOUT * 1000 + 60_000);
      expect(op.log).not.toContain(`after ${HEALTH_TIMEOUT} s`);
    });

    it("fails a never-healthy healthcheck once DOCKBOT_HEALTH_TIMEOUT has passed", async () => {
      const op = await deploy(
        "unhealthy",
        composeFile({
          web: web([
            "healthcheck:",
            '  test: ["CMD-SHELL", "echo probe-said-no; exit 1"]',
            "  interval: 1s",
            "  timeout: 1s",
            "  retries: 1",
          ]),
        }),
      );
      expect(op.status).toBe("failed");
      expect(op.error).toBe(`health check failed after ${HEALTH_TIMEOUT} s: web (unhealthy)`);
      expect(op.log).toContain("waiting for web (");
      expect(await state("unhealthy")).toBe("failed");
    });

    it("succeeds with a one-shot migration that exits 0 and a service that waits for it", async () => {
      const op = await deploy(
        "migrate",
        composeFile({
          migrate: ['command: ["sh", "-c", "echo migrating; sleep 1; echo migrated"]'],
          web: web(["depends_on:", "  migrate:", "    condition: service_completed_successfully"]),
        }),
      );
      expect(op.error).toBeUndefined();
      expect(op.status).toBe("succeeded");
      expect(op.log).toContain("services are healthy");
      expect(await state("migrate")).toBe("running");
    });

    it("waits for a slow healthcheck and succeeds once it passes", async () => {
      const op = await deploy(
        "slow",
        composeFile({
          web: web(
            [
              "healthcheck:",
              '  test: ["CMD-SHELL", "cat /tmp/ready"]',
              "  interval: 1s",
              "  timeout: 1s",
              "  retries: 30",
            ],
            httpd("sleep 3 && echo yes > /tmp/ready && "),
          ),
        }),
      );
      expect(op.error).toBeUndefined();
      expect(op.status).toBe("succeeded");
      expect(op.log).toContain("waiting for web (starting)");
      expect(await state("slow")).toBe("running");
    });

    it("fails the up when the project's healthPath does not answer 2xx/3xx, and passes when it does", async () => {
      const patched = await h.api("PATCH", `/api/projects/${project}`, { healthPath: "/healthz" });
      expect(patched.status).toBe(200);
      expect((patched.body as { healthPath?: string }).healthPath).toBe("/healthz");
      try {
        const failed = await deploy("nohealthz", composeFile({ web: web() }));
        expect(failed.status).toBe("failed");
        expect(failed.error).toMatch(
          new RegExp(
            `^health check failed after ${HEALTH_TIMEOUT} s: http://127\\.0\\.0\\.1:\\d+/healthz answered 404$`,
          ),
        );
        const passed = await deploy(
          "healthz",
          composeFile({ web: web([], httpd("", ["healthz"])) }),
        );
        expect(passed.error).toBeUndefined();
        expect(passed.status).toBe("succeeded");
        expect(passed.log).toMatch(/\/healthz answered 200/);
      } finally {
        const cleared = await h.api("PATCH", `/api/projects/${project}`, { healthPath: null });
        expect(cleared.status).toBe(200);
        expect((cleared.body as { healthPath?: string }).healthPath).toBeUndefined();
      }
    });

    it("brings the last good commit back when a new up fails, and leaves it down with rollback off", async () => {
      const good = await deploy("roll", composeFile({ web: web([], httpd("", ["good.txt"])) }));
      expect(good.status).toBe("succeeded");
      const goodSha = good.sha ?? "";
      const first = await h.api<VersionJson & { lastGood?: { sha: string } }>(
        "GET",
        `/api/projects/${project}/versions/roll`,
      );
      expect(first.body.lastGood?.sha).toBe(goodSha);

      const badSha = await repo.commit(
        composeFile({ web: web([], "echo broken-build-9c1; exit 4") }),
        "broken",
        "roll",
      );
      const turnOn = async () => {
        const res = await h.api<OperationJson>("POST", `/api/projects/${project}/versions/roll/on`);
        expect(res.status).toBe(202);
        return h.waitForOperation(res.body.id);
      };
      const failed = (await turnOn()) as OperationJson & { rolledBackTo?: string };
      expect(failed.status).toBe("failed");
      expect(failed.sha).toBe(badSha);
      expect(failed.rolledBackTo).toBe(goodSha);
      expect(failed.error).toBe(
        `health check failed: web (exited with code 4); rolled back to ${goodSha.slice(0, 8)}`,
      );
      expect(failed.log).toContain("[web] broken-build-9c1");
      const after = await h.api<VersionJson & { lastGood?: { sha: string } }>(
        "GET",
        `/api/projects/${project}/versions/roll`,
      );
      expect(after.body.state).toBe("running");
      expect(after.body.deployedSha).toBe(goodSha);
      expect(after.body.lastGood?.sha).toBe(goodSha);
      // The good commit's file is served again.
      const url = (after.body.urls[0] ?? "").replace("//localhost:", "//127.0.0.1:");
      expect((await fetch(`${url}/good.txt`)).status).toBe(200);

      const off = await h.api("PATCH", `/api/projects/${project}`, { rollback: "off" });
      expect((off.body as { rollback?: string }).rollback).toBe("off");
      try {
        const down = (await turnOn()) as OperationJson & { rolledBackTo?: string };
        expect(down.status).toBe("failed");
        expect(down.rolledBackTo).toBeUndefined();
        expect(down.error).toBe("health check failed: web (exited with code 4)");
        expect(await state("roll")).toBe("failed");
      } finally {
        await h.api("PATCH", `/api/projects/${project}`, { rollback: "auto" });
      }
    });

    it("refuses a healthPath that is not a path", async () => {
      const res = await h.api("PATCH", `/api/projects/${project}`, {
        healthPath: "http://evil/",
      });
      expect(res.status).toBe(400);
    });
  });
}
