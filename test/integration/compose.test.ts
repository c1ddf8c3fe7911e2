// compose.ts against the real Docker engine, once with Compose v2 and once with v1. Every
// project name carries a random suffix and everything is removed in afterAll: the engine is
// shared with other suites.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  ComposeError,
  COMPOSE_FILE_NAMES,
  createCompose,
  type Compose,
} from "../../src/deploy/compose.js";
import type { ComposeTarget } from "../../src/deploy/ports.js";
import type { OutputStream } from "../../src/deploy/run-command.js";
import {
  checkComposeV1,
  checkComposeV2,
  checkDocker,
  checkTestBaseImage,
  describeWithServices,
  TEST_BASE_IMAGE,
} from "../support/services.js";

const docker = await checkDocker();
const base = await checkTestBaseImage();
const modes = [
  { mode: "v2", check: await checkComposeV2() },
  { mode: "v1", check: await checkComposeV1() },
] as const;

const COMPOSE_YAML = `services:
  web:
    build:
      context: .
      args:
        GREETING: \${GREETING}\${DOCKBOT_GITLAB_TOKEN}
    ports:
      - "0:8080"
    volumes:
      - data:/data
    stop_grace_period: 1s
volumes:
  data:
`;

const WEB_DOCKERFILE = `FROM ${TEST_BASE_IMAGE}
ARG GREETING=unset
RUN mkdir -p /www && echo "hello \${GREETING}" > /www/index.html
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
`;

async function dockerLines(args: string[]): Promise<string[]> {
  const r = await execa("docker", args, { stdin: "ignore" });
  return r.stdout.split("\n").filter((l) => l.trim() !== "");
}

const byProject = (name: string) => ["--filter", `label=com.docker.compose.project=${name}`];
const containersOf = (name: string) => dockerLines(["ps", "-a", "-q", ...byProject(name)]);
const networksOf = (name: string) => dockerLines(["network", "ls", "-q", ...byProject(name)]);
const volumesOf = (name: string) => dockerLines(["volume", "ls", "-q", ...byProject(name)]);
/** Images compose built for the project: named `<project>-<service>` (v2) or `<project>_<service>` (v1). */
async function imagesOf(name: string): Promise<string[]> {
  const repos = await dockerLines(["images", "--format", "{{.Repository}}"]);
  return repos.filter((r) => r.startsWith(`${name}-`) || r.startsWith(`${name}_`));
}

async function fetchText(url: string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return await res.text();
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function writeApp(dir: string, files: Record<string, string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
}

for (const { mode, check } of modes) {
  describeWithServices([docker, check, base], `compose (${mode})`, () => {
    const compose: Compose = createCompose({ mode });
    const suffix = randomBytes(3).toString("hex");
    const name = (what: string) => `dockbot-ct${mode}-${what}-${suffix}`;
    const projects: string[] = [];
    let root = "";

    const target = async (
      what: string,
      files: Record<string, string>,
      env: Record<string, string> = {},
    ) => {
      const dir = path.join(root, what);
      await writeApp(dir, files);
      const projectName = name(what);
      projects.push(projectName);
      return {
        dir,
        file: await compose.findComposeFile(dir),
        projectName,
        env,
      } satisfies ComposeTarget;
    };

    let app: ComposeTarget;
    let other: ComposeTarget;
    const greeting = `greeting-${randomBytes(4).toString("hex")}`;
    const appLines: Array<{ stream: OutputStream; text: string }> = [];

    const hostToken = process.env.DOCKBOT_GITLAB_TOKEN;
    beforeAll(async () => {
      // dockbot's own secrets are in its environment, which compose inherits: a compose file
      // interpolating them must get "".
      process.env.DOCKBOT_GITLAB_TOKEN = "host-secret-token";
      root = await mkdtemp(path.join(os.tmpdir(), `dockbot-compose-${mode}-`));
      app = await target(
        "app",
        { "compose.yaml": COMPOSE_YAML, Dockerfile: WEB_DOCKERFILE },
        { GREETING: greeting },
      );
      other = await target(
        "other",
        { "docker-compose.yml": COMPOSE_YAML, Dockerfile: WEB_DOCKERFILE },
        { GREETING: "other" },
      );
    });

    afterAll(async () => {
      if (hostToken === undefined) delete process.env.DOCKBOT_GITLAB_TOKEN;
      else process.env.DOCKBOT_GITLAB_TOKEN = hostToken;
      for (const p of projects)
        await compose.removeByLabel(p, { keepVolumes: false, images: true });
      if (root) await rm(root, { recursive: true, force: true });
    });

    it(`detects Compose ${mode} and a reachable engine`, async () => {
      expect(await compose.detect()).toBe(mode);
      expect(await compose.dockerReachable()).toBe(true);
    });

    it("builds and starts the app, which answers HTTP with the project env interpolated and dockbot's token not", async () => {
      await compose.up({ ...app, onLine: (stream, text) => appLines.push({ stream, text }) });
      await compose.up(other);

      const ports = await compose.publishedPorts(app.projectName);
      expect(ports).toEqual([
        {
          service: "web",
          port: expect.any(Number) as number,
          containerPort: 8080,
          protocol: "tcp",
        },
      ]);
      const body = await fetchText(`http://127.0.0.1:${ports[0]?.port}/`);
      expect(body.trim()).toBe(`hello ${greeting}`);
    });

    it("streams the build and start as plain lines without colour codes", () => {
      expect(appLines.length).toBeGreaterThan(3);
      // eslint-disable-next-line no-control-regex
      expect(appLines.filter((l) => /\x1b\[|\r/.test(l.text))).toEqual([]);
      expect(appLines.some((l) => l.text.includes("RUN mkdir -p /www"))).toBe(true);
      expect(appLines.some((l) => l.text.includes(app.projectName))).toBe(true);
    });

    it("reports the running projects with their container counts", async () => {
      const running = await compose.runningProjects(`dockbot-ct${mode}-`);
      expect(running.get(app.projectName)).toEqual({ running: 1, total: 1 });
      expect(running.get(other.projectName)).toEqual({ running: 1, total: 1 });
      expect([...(await compose.runningProjects("no-such-prefix-")).keys()]).toEqual([]);
    });

    it("turns the app off: no container left, its image and volume stay", async () => {
      await compose.down(app);
      expect(await containersOf(app.projectName)).toEqual([]);
      expect(await imagesOf(app.projectName)).toHaveLength(1);
      expect(await volumesOf(app.projectName)).toHaveLength(1);
      expect(await compose.publishedPorts(app.projectName)).toEqual([]);
      expect((await compose.runningProjects()).get(app.projectName)).toBeUndefined();
    });

    it("removes the app keeping its volume when asked to, and leaves the other project running", async () => {
      await compose.up(app);
      await compose.remove({ ...app, keepVolumes: true });
      expect(await containersOf(app.projectName)).toEqual([]);
      expect(await imagesOf(app.projectName)).toEqual([]);
      expect(await networksOf(app.projectName)).toEqual([]);
      expect(await volumesOf(app.projectName)).toHaveLength(1);

      expect((await compose.runningProjects()).get(other.projectName)).toEqual({
        running: 1,
        total: 1,
      });
      expect(await imagesOf(other.projectName)).toHaveLength(1);
      expect(await volumesOf(other.projectName)).toHaveLength(1);
      const [port] = await compose.publishedPorts(other.projectName);
      expect((await fetchText(`http://127.0.0.1:${port?.port}/`)).trim()).toBe("hello other");
    });

    it("removes a running project entirely: containers, built images, volumes and networks", async () => {
      await compose.up(app);
      await compose.remove({ ...app, keepVolumes: false });
      expect(await containersOf(app.projectName)).toEqual([]);
      expect(await imagesOf(app.projectName)).toEqual([]);
      expect(await volumesOf(app.projectName)).toEqual([]);
      expect(await networksOf(app.projectName)).toEqual([]);
      expect((await compose.runningProjects()).get(other.projectName)).toEqual({
        running: 1,
        total: 1,
      });
    });

    it("removes a project by its label when its checkout is gone", async () => {
      await rm(other.dir, { recursive: true, force: true });
      await compose.removeByLabel(other.projectName, { keepVolumes: false, images: true });
      expect(await containersOf(other.projectName)).toEqual([]);
      expect(await imagesOf(other.projectName)).toEqual([]);
      expect(await volumesOf(other.projectName)).toEqual([]);
      expect(await networksOf(other.projectName)).toEqual([]);
    });

    it("fails with one line naming the four file names when the checkout has no compose file", async () => {
      const dir = path.join(root, "empty");
      await mkdir(dir, { recursive: true });
      const error = await compose.findComposeFile(dir).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ComposeError);
      expect((error as ComposeError).code).toBe("unprocessable");
      const message = (error as ComposeError).message;
      expect(message).not.toContain("\n");
      for (const file of COMPOSE_FILE_NAMES) expect(message).toContain(file);
    });

    it("uses a configured compose file only when it exists inside the checkout", async () => {
      const dir = path.join(root, "configured");
      await writeApp(dir, { "deploy.yml": COMPOSE_YAML, "compose.yaml": COMPOSE_YAML });
      expect(await compose.findComposeFile(dir, "deploy.yml")).toBe("deploy.yml");
      expect(await compose.findComposeFile(dir)).toBe("compose.yaml");
      await expect(compose.findComposeFile(dir, "missing.yml")).rejects.toThrow(
        /missing\.yml.*not found/,
      );
      await expect(compose.findComposeFile(dir, "../app/compose.yaml")).rejects.toThrow(
        /relative path inside/,
      );
      await expect(compose.findComposeFile(dir, "-fevil.yml")).rejects.toThrow(
        /relative path inside/,
      );
      await expect(compose.findComposeFile(dir, "/etc/hostname")).rejects.toThrow(
        /relative path inside/,
      );
    });

    it("fails a broken build with the exit code and the line that says why", async () => {
      const broken = await target("broken", {
        "compose.yaml": "services:\n  web:\n    build: .\n",
        Dockerfile: `FROM ${TEST_BASE_IMAGE}\nRUN echo step-ok\nRUN echo boom >&2 && exit 3\n`,
      });
      const error = await compose.up(broken).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ComposeError);
      const e = error as ComposeError;
      expect(e.canceled).toBe(false);
      expect(e.exitCode).toEqual(expect.any(Number));
      expect(e.exitCode).not.toBe(0);
      expect(e.message).not.toContain("\n");
      expect(e.message).toMatch(
        new RegExp(
          `^${mode === "v2" ? "docker compose" : "docker-compose"} (up|build) failed \\(exit code ${e.exitCode}\\): `,
        ),
      );
      expect(e.message).toMatch(/(exit code|non-zero code):? 3\b/);
      expect(await containersOf(broken.projectName)).toEqual([]);
    });

    it("stops a slow build within seconds when canceled, leaving no container behind", async () => {
      const marker = randomBytes(4).toString("hex");
      const slow = await target("slow", {
        "compose.yaml": "services:\n  web:\n    build: .\n",
        Dockerfile: `FROM ${TEST_BASE_IMAGE}\nRUN sleep 30 && echo ${marker}\nCMD ["sleep", "60"]\n`,
      });
      const controller = new AbortController();
      let abortedAt = 0;
      const result = compose
        .up({
          ...slow,
          signal: controller.signal,
          onLine: (_stream, text) => {
            // Cancel once the slow step is running.
            if (text.includes("sleep 30") && abortedAt === 0) {
              setTimeout(() => {
                abortedAt = Date.now();
                controller.abort();
              }, 1500);
            }
          },
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      const error = await result;
      expect(abortedAt).toBeGreaterThan(0);
      expect(Date.now() - abortedAt).toBeLessThan(8000);
      expect(error).toBeInstanceOf(ComposeError);
      expect((error as ComposeError).canceled).toBe(true);

      expect(await containersOf(slow.projectName)).toEqual([]);
      // The classic builder's intermediate container of the step goes too (BuildKit has none).
      const deadline = Date.now() + 10_000;
      let leftovers: string[];
      do {
        leftovers = (
          await dockerLines(["ps", "-a", "--no-trunc", "--format", "{{.Command}}"])
        ).filter((c) => c.includes(marker));
        if (leftovers.length === 0) break;
        await new Promise((r) => setTimeout(r, 500));
      } while (Date.now() < deadline);
      expect(leftovers).toEqual([]);
      expect(await imagesOf(slow.projectName)).toEqual([]);
    });
  });
}
