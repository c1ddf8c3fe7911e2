// Disk for real (docs/api.md, "Configuration" and "Routes"): /api/health's free space against
// `df`, each version's disk use on the project page after a real deploy, and disk hygiene with
// DOCKBOT_DISK_MIN_FREE at 100% (so it always acts) on the real engine. Every compose project and
// image of this file starts with `dockbot-hygd…-` (or is the one foreign tag it makes), and
// hygiene here is confined to that prefix, so parallel test files keep their images.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { execa } from "execa";
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createDiskProbe, createDockerDisk } from "../../src/deploy/disk.js";
import { createHygiene } from "../../src/deploy/hygiene.js";
import { cleanUpAll, removeComposeProjects } from "../support/compose-cleanup.js";
import {
  ADMIN_TOKEN,
  startDockbot,
  type DockbotHarness,
  type OperationJson,
  type VersionJson,
} from "../support/dockbot-harness.js";
import { createTestRepo, type TestRepo } from "../support/git-server.js";
import {
  checkComposeV1,
  checkComposeV2,
  checkDocker,
  checkGitServer,
  checkTestBaseImage,
  describeWithServices,
  TEST_BASE_IMAGE,
} from "../support/services.js";

const checks = [
  await checkDocker(),
  await checkComposeV2(),
  await checkComposeV1(),
  await checkTestBaseImage(),
  await checkGitServer(),
];

const DOCKERFILE = `FROM ${TEST_BASE_IMAGE}\nRUN echo hygiene > /marker.txt\n`;
const COMPOSE = `services:
  web:
    build: .
    init: true
    command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && head -c 300000 /dev/zero > /data/blob && exec httpd -f -p 8080 -h /www"]
    ports: ["8080"]
    volumes: ["data:/data"]
volumes:
  data: {}
`;

async function docker(args: string[], env: Record<string, string> = {}): Promise<string[]> {
  const { stdout } = await execa("docker", args, { env, stdin: "ignore", timeout: 120_000 });
  return stdout.split("\n").filter((l) => l.trim() !== "");
}

async function imageExists(ref: string): Promise<boolean> {
  const r = await execa("docker", ["image", "inspect", ref], { reject: false, stdin: "ignore" });
  return r.exitCode === 0;
}

/** `df`'s available bytes of the file system holding `dir`. */
async function dfAvail(dir: string): Promise<number> {
  const { stdout } = await execa("df", ["-B1", "--output=avail", dir]);
  return Number(stdout.trim().split("\n").at(-1));
}

describeWithServices(checks, "disk: health figures, disk use per version, hygiene", () => {
  let h: DockbotHarness;
  let repo: TestRepo;
  let buildDir: string;
  const project = `hygd${randomBytes(3).toString("hex")}`;
  const prefix = `dockbot-${project}-`;
  const foreign = `hygd-foreign-${randomBytes(3).toString("hex")}:1`;
  const lookalike = `${prefix}lookalike:1`;
  let version: VersionJson & { projectId: string };

  beforeAll(async () => {
    h = await startDockbot({ DOCKBOT_COMPOSE: "v2" });
    repo = await createTestRepo("hygd", { Dockerfile: DOCKERFILE, "compose.yaml": COMPOSE });
    buildDir = await mkdtemp(path.join(os.tmpdir(), "dockbot-hygd-build-"));
    await writeFile(path.join(buildDir, "Dockerfile"), DOCKERFILE);
    await writeFile(
      path.join(buildDir, "compose.yaml"),
      "services:\n  web:\n    build: .\n    command: ['sleep', '1']\n",
    );
    const created = await h.api("POST", "/api/projects", { name: project, repoUrl: repo.sshUrl });
    expect(created.status).toBe(201);
    expect((await h.api("POST", `/api/projects/${project}/versions`, { ref: "main" })).status).toBe(
      201,
    );
    const on = await h.api<OperationJson>("POST", `/api/projects/${project}/versions/main/on`);
    expect(on.status).toBe(202);
    const op = await h.waitForOperation(on.body.id);
    expect(op.status, op.log).toBe("succeeded");
    version = (
      await h.api<VersionJson & { projectId: string }>(
        "GET",
        `/api/projects/${project}/versions/main`,
      )
    ).body;
  }, 300_000);

  afterAll(async () => {
    await cleanUpAll([
      h && (() => h.close()),
      repo && (() => repo.remove()),
      () => removeComposeProjects(prefix),
      () => execa("docker", ["rmi", "-f", foreign, lookalike], { reject: false }),
      () => (buildDir ? rm(buildDir, { recursive: true, force: true }) : Promise.resolve()),
    ]);
  });

  it("answers /api/health with the free bytes of the Docker data root and of the data dir, as df counts them", async () => {
    const res = await fetch(`${h.baseUrl}/api/health`);
    const body = (await res.json()) as {
      disk: { dockerFreeBytes: number | null; dataFreeBytes: number | null };
    };
    const [root = ""] = await docker(["info", "--format", "{{.DockerRootDir}}"]);
    const [dockerDf, dataDf] = await Promise.all([dfAvail(root), dfAvail(h.dataDir)]);
    // Other test files write to the same disks meanwhile: within 256 MB.
    const tolerance = 256 * 1024 * 1024;
    expect(body.disk.dockerFreeBytes).not.toBeNull();
    expect(body.disk.dataFreeBytes).not.toBeNull();
    expect(Math.abs((body.disk.dockerFreeBytes ?? 0) - dockerDf)).toBeLessThan(tolerance);
    expect(Math.abs((body.disk.dataFreeBytes ?? 0) - dataDf)).toBeLessThan(tolerance);
  });

  it("shows a disk figure for a deployed version on the project page, measured in the background from its image, volume and checkout", async () => {
    const login = await h.dockbot.app.request("/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: ADMIN_TOKEN, next: "/" }),
    });
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    const diskCell = async () => {
      const page = await h.dockbot.app.request(`/projects/${project}`, { headers: { cookie } });
      expect(page.status).toBe(200);
      const html = await page.text();
      const row = html.slice(html.indexOf(`data-version-row="${version.id}"`));
      return /class="muted small disk-use"[^>]*>([^<]*)</.exec(row)?.[1];
    };

    // The first look does not wait for Docker: it says so and has the project measured.
    expect(await diskCell()).toBe("disk: not measured yet");
    await h.dockbot.diskUsage.refresh(version.projectId);
    const use = h.dockbot.diskUsage.forProject(version.projectId)(version.id);
    expect(use?.checkoutBytes).toBeGreaterThan(0);
    // The build's own layer and the 300 kB the service wrote into its volume.
    expect(use?.imagesBytes).toBeGreaterThan(0);
    expect(use?.volumesBytes).toBeGreaterThanOrEqual(300_000);
    expect(use?.totalBytes).toBe(
      (use?.imagesBytes ?? 0) + (use?.volumesBytes ?? 0) + (use?.checkoutBytes ?? 0),
    );
    expect(await diskCell()).toMatch(/^disk: \d+(\.\d)? (kB|MB|GB)$/);
  });

  it("below DOCKBOT_DISK_MIN_FREE removes the images dockbot built that no version needs, and keeps a running version's, a kept deploy's and images that are not dockbot's", async () => {
    // Leftovers of versions no longer in the store, built as dockbot's compose does: Compose v2
    // labels its builds with the project, Compose v1 names them `<project>_<service>`.
    const goneV2 = `${prefix}gone`;
    const goneV1 = `${prefix}gonev1`;
    await execa("docker", ["compose", "-p", goneV2, "-f", "compose.yaml", "build"], {
      cwd: buildDir,
      stdin: "ignore",
    });
    await execa("docker-compose", ["-p", goneV1, "-f", "compose.yaml", "build"], {
      cwd: buildDir,
      env: { DOCKER_BUILDKIT: "0", COMPOSE_DOCKER_CLI_BUILD: "1" },
      stdin: "ignore",
    });
    const goneV2Ref = `${goneV2}-web:latest`;
    const goneV1Ref = `${goneV1}_web:latest`;
    expect(await imageExists(goneV2Ref)).toBe(true);
    expect(await imageExists(goneV1Ref)).toBe(true);

    // A version that is off, whose last verified deploy keeps its image under a good- tag.
    const keptProject = `${prefix}kept`;
    await execa("docker", ["compose", "-p", keptProject, "-f", "compose.yaml", "build"], {
      cwd: buildDir,
      stdin: "ignore",
    });
    const keptTag = `${keptProject}-web:good-0123456789ab`;
    await docker(["tag", `${keptProject}-web:latest`, keptTag]);
    const projectRecord = await h.dockbot.store.getProjectByName(project);
    const now = new Date().toISOString();
    await h.dockbot.store.createVersion({
      id: `hygd-kept-${randomBytes(4).toString("hex")}`,
      projectId: projectRecord?.id ?? "",
      name: "kept",
      ref: { type: "branch", name: "kept" },
      state: "off",
      composeProject: keptProject,
      urls: [],
      ports: [],
      goodDeploys: [
        { sha: "0123456789ab".padEnd(40, "0"), deployedAt: now, images: { web: keptTag } },
      ],
      createdAt: now,
      updatedAt: now,
    });

    // Not dockbot's: a tag of someone else, and a name that only looks like dockbot's.
    await docker(["tag", TEST_BASE_IMAGE, foreign]);
    await execa(
      "docker",
      ["build", "--label", `hygd=${randomBytes(4).toString("hex")}`, "-t", lookalike, "."],
      {
        cwd: buildDir,
        stdin: "ignore",
      },
    );

    const [runningImage = ""] = await docker([
      "ps",
      "-q",
      "--no-trunc",
      "--filter",
      `label=com.docker.compose.project=${version.composeProject}`,
    ]).then((ids) => docker(["inspect", "--format", "{{.Image}}", ...ids]));
    expect(runningImage).toMatch(/^sha256:/);

    const logged: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: "info" },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const line of chunk.toString().split("\n").filter(Boolean)) {
            logged.push(JSON.parse(line) as Record<string, unknown>);
          }
          done();
        },
      }),
    );
    const dockerDisk = createDockerDisk();
    const hygiene = createHygiene({
      store: h.dockbot.store,
      docker: dockerDisk,
      probe: createDiskProbe({ docker: dockerDisk, dataDir: h.dataDir, engineLocal: true }),
      minFree: { percent: 100 },
      logger,
      prefix,
      graceMs: 0,
    });
    const report = await hygiene.check();

    expect(report.acted).toBe(true);
    expect(report.failed).toStrictEqual([]);
    expect(report.removed.flat().sort()).toStrictEqual([goneV1Ref, goneV2Ref].sort());
    expect(await imageExists(goneV2Ref)).toBe(false);
    expect(await imageExists(goneV1Ref)).toBe(false);
    expect(await imageExists(runningImage)).toBe(true);
    expect(await imageExists(keptTag)).toBe(true);
    expect(await imageExists(foreign)).toBe(true);
    expect(await imageExists(lookalike)).toBe(true);
    expect(await imageExists(TEST_BASE_IMAGE)).toBe(true);
    const line = logged.find((l) => String(l.msg).startsWith("disk hygiene:"));
    expect(line?.removedImages).toEqual(expect.arrayContaining([goneV1Ref, goneV2Ref]));
    expect(line?.imageBytes).toBeGreaterThan(0);
    expect(typeof line?.dockerFreeAfter).toBe("number");
    // The version is still served: nothing of a running container went.
    const [state] = await docker([
      "ps",
      "--filter",
      `label=com.docker.compose.project=${version.composeProject}`,
      "--format",
      "{{.State}}",
    ]);
    expect(state).toBe("running");
  }, 300_000);
});
