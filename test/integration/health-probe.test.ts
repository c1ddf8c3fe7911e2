// The healthPath probe asks the primary service where the preview router reaches it
// (docs/api.md, "Health"; preview-upstream.ts), not at 127.0.0.1 and the host port: a service
// published on 127.0.0.2 only answers there, and DOCKBOT_PREVIEW_UPSTREAM=published:<address>
// sends the probe to that address. Compose v2 on the real engine; every compose project here
// starts with `dockbot-hprb`, removed in afterAll whatever failed.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  startDockbot,
  type DockbotHarness,
  type OperationJson,
} from "../support/dockbot-harness.js";
import { cleanUpAll, removeComposeProjects } from "../support/compose-cleanup.js";
import { createTestRepo, type RepoFiles, type TestRepo } from "../support/git-server.js";
import {
  checkComposeV2,
  checkDocker,
  checkGitServer,
  checkTestBaseImage,
  describeWithServices,
  TEST_BASE_IMAGE,
} from "../support/services.js";

const checks = [
  await checkDocker(),
  await checkTestBaseImage(),
  await checkGitServer(),
  await checkComposeV2(),
];

/** One web service answering `/healthz`, published as `port` says. */
function webFile(port: string): RepoFiles {
  const cmd = "mkdir -p /www && echo ok > /www/healthz && exec httpd -f -p 8080 -h /www";
  return {
    "compose.yaml": [
      "services:",
      "  web:",
      `    image: ${TEST_BASE_IMAGE}`,
      "    init: true",
      `    command: ["sh", "-c", ${JSON.stringify(cmd)}]`,
      `    ports: [${JSON.stringify(port)}]`,
      "",
    ].join("\n"),
  };
}

const cases = [
  {
    upstream: "published",
    port: "127.0.0.2::8080",
    name: "asks a service published on 127.0.0.2 there, where 127.0.0.1 has nothing",
    asked: /\[dockbot\] http:\/\/127\.0\.0\.2:\d+\/healthz answered 200/,
  },
  {
    upstream: "published:127.0.0.3",
    port: "8080",
    name: "asks at the address DOCKBOT_PREVIEW_UPSTREAM=published:<address> names",
    asked: /\[dockbot\] http:\/\/127\.0\.0\.3:\d+\/healthz answered 200/,
  },
] as const;

for (const c of cases) {
  describeWithServices(
    checks,
    `the healthPath probe with DOCKBOT_PREVIEW_UPSTREAM=${c.upstream}`,
    () => {
      let h: DockbotHarness;
      let repo: TestRepo;
      const project = `hprb-${randomBytes(3).toString("hex")}`;

      beforeAll(async () => {
        h = await startDockbot({
          DOCKBOT_COMPOSE: "v2",
          DOCKBOT_HEALTH_TIMEOUT: "15",
          DOCKBOT_PREVIEW_UPSTREAM: c.upstream,
        });
        repo = await createTestRepo("hprb", webFile(c.port));
        const created = await h.api("POST", "/api/projects", {
          name: project,
          repoUrl: repo.sshUrl,
          healthPath: "/healthz",
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

      it(c.name, async () => {
        const created = await h.api("POST", `/api/projects/${project}/versions`, { ref: "main" });
        expect(created.status).toBe(201);
        const res = await h.api<OperationJson>("POST", `/api/projects/${project}/versions/main/on`);
        expect(res.status).toBe(202);
        const op = await h.waitForOperation(res.body.id);
        expect(op.error).toBeUndefined();
        expect(op.status).toBe("succeeded");
        expect(op.log).toMatch(c.asked);
      });
    },
  );
}
