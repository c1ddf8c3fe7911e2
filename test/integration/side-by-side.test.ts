// Versions side by side for real (docs/api.md, "Versions side by side" and "Compose policy"):
// dockbot fetches test/fixtures/compose/shop over the test sshd, a compose file shaped like the
// ones teams commit (fixed host ports from a tracked .env, container_name on each service, a
// network and a volume with an explicit name, a built image with a fixed tag, a service reaching
// another by its container_name), and runs several versions of it at once on the real engine,
// with Compose v2 and v1. Every compose project here is `dockbot-sbs...`, removed in afterAll.
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createCompose } from "../../src/deploy/compose.js";
import {
  dockerObjects,
  fetchText,
  portBlock,
  startDockbot,
  type DockbotHarness,
  type OperationJson,
  type VersionJson,
} from "../support/dockbot-harness.js";
import { createTestRepo, type RepoFiles, type TestRepo } from "../support/git-server.js";
import {
  checkComposeV1,
  checkComposeV2,
  checkDocker,
  checkGitServer,
  checkTestBaseImage,
  describeWithServices,
} from "../support/services.js";

interface Version extends VersionJson {
  ports: Array<{ service: string; target: number; protocol: string; hostPort: number }>;
}

const common = [await checkDocker(), await checkTestBaseImage(), await checkGitServer()];
const v2 = await checkComposeV2();
const v1 = await checkComposeV1();

const FIXTURE = path.join(import.meta.dirname, "..", "fixtures", "compose");

/** A fixture directory as repository files. */
function fixtureFiles(name: string): RepoFiles {
  const root = path.join(FIXTURE, name);
  const files: RepoFiles = {};
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const full = path.join(dir, entry);
      if (statSync(full).isDirectory()) walk(full);
      else files[path.relative(root, full)] = readFileSync(full, "utf8");
    }
  };
  walk(root);
  return files;
}

/** v1 knows no top-level `name:`; everything else of the file stays. */
function forV1(files: RepoFiles): RepoFiles {
  return { ...files, "compose.yaml": (files["compose.yaml"] ?? "").replace(/^name: .*\n/m, "") };
}

const here = (url: string) => url.replace("//localhost:", "//127.0.0.1:");

async function dockerLines(args: string[]): Promise<string[]> {
  const { stdout } = await execa("docker", args, { stdin: "ignore" });
  return stdout.split("\n").filter((l) => l.trim() !== "");
}

/** The shop's dockbot: a project, helpers to make and turn on versions, and the cleanup. */
function shopSuite(mode: "v2" | "v1", portRange?: string) {
  const state = {
    h: undefined as unknown as DockbotHarness,
    repo: undefined as unknown as TestRepo,
    project: `sbs${mode}-${randomBytes(3).toString("hex")}`,
    composeProjects: new Set<string>(),
  };
  beforeAll(async () => {
    state.h = await startDockbot({
      DOCKBOT_COMPOSE: mode,
      ...(portRange === undefined ? {} : { DOCKBOT_PORT_RANGE: portRange }),
    });
    const files = fixtureFiles("shop");
    state.repo = await createTestRepo(`sbs-${mode}`, mode === "v1" ? forV1(files) : files);
    const created = await state.h.api("POST", "/api/projects", {
      name: state.project,
      repoUrl: state.repo.sshUrl,
    });
    expect(created.status).toBe(201);
  });
  afterAll(async () => {
    await state.h?.close();
    const compose = createCompose({ mode });
    for (const p of state.composeProjects)
      await compose.removeByLabel(p, { keepVolumes: false, images: true, services: ["web"] });
    await state.repo?.remove();
  });

  /** A branch of the shop whose web and api say `name`, and a version for it. */
  async function branchVersion(name: string, files: RepoFiles = {}): Promise<Version> {
    await state.repo.commit(
      { "web/index.html": `web ${name}\n`, "api/index.html": `api ${name}\n`, ...files },
      `shop ${name}`,
      name,
    );
    const res = await state.h.api<Version>("POST", `/api/projects/${state.project}/versions`, {
      ref: name,
    });
    expect(res.status).toBe(201);
    state.composeProjects.add(res.body.composeProject);
    return res.body;
  }

  async function turnOn(version: string): Promise<OperationJson> {
    const res = await state.h.api<OperationJson>(
      "POST",
      `/api/projects/${state.project}/versions/${version}/on`,
    );
    expect(res.status).toBe(202);
    return state.h.waitForOperation(res.body.id);
  }

  async function get(version: string): Promise<Version> {
    return (await state.h.api<Version>("GET", `/api/projects/${state.project}/versions/${version}`))
      .body;
  }

  /** Turns the versions on at once; each must succeed. */
  async function turnOnAll(names: string[]): Promise<Version[]> {
    const ops = await Promise.all(names.map(turnOn));
    for (const op of ops) expect(op.error).toBeUndefined();
    return Promise.all(names.map(get));
  }

  return { state, branchVersion, turnOn, get, turnOnAll };
}

/** Asserts the version answers with its own content on its own URLs, also via container_name. */
async function expectServes(version: Version, name: string, web = `web ${name}`): Promise<void> {
  const port = (service: string) => version.ports.find((p) => p.service === service)?.hostPort;
  const url = (service: string) => version.urls.find((u) => u.endsWith(`:${port(service)}`));
  expect(version.state).toBe("running");
  expect(await fetchText(here(url("web") ?? ""))).toBe(`${web}\n`);
  expect(await fetchText(here(url("api") ?? ""))).toBe(`api ${name}\n`);
  // web asks http://shop-api:8081 (its old container_name): its own version's api answers.
  expect(await fetchText(`${here(url("web") ?? "")}/cgi-bin/api`)).toBe(`api ${name}\n`);
}

for (const { mode, check, count } of [
  { mode: "v2", check: v2, count: 5 },
  { mode: "v1", check: v1, count: 2 },
] as const) {
  describeWithServices([...common, check], `versions side by side (Compose ${mode})`, () => {
    const { state, branchVersion, turnOn, get, turnOnAll } = shopSuite(mode);
    const names = Array.from({ length: count }, (_, i) => `b${i}`);
    let first: Version[] = [];

    it("runs two versions of an unchanged real-world compose file at once, each serving its own commit", async () => {
      for (const name of names.slice(0, 2)) await branchVersion(name);
      first = await turnOnAll(names.slice(0, 2));
      for (const [i, v] of first.entries()) await expectServes(v, names[i] ?? "");
      const hostPorts = first.flatMap((v) => v.ports.map((p) => p.hostPort));
      expect(new Set(hostPorts).size).toBe(4);
      expect(first[0]?.ports.map((p) => [p.service, p.target, p.protocol]).sort()).toStrictEqual([
        ["api", 8081, "tcp"],
        ["web", 8080, "tcp"],
      ]);
      // Nothing of the file's global names exists: they became each version's own.
      expect(await dockerLines(["ps", "-a", "-q", "--filter", "name=^shop-(web|api)$"])).toEqual(
        [],
      );
    });

    if (count > 2) {
      it(`runs ${count} versions at once, each on its own URLs with its own content`, async () => {
        for (const name of names.slice(2)) await branchVersion(name);
        const all = [...first, ...(await turnOnAll(names.slice(2)))];
        const urls = all.flatMap((v) => v.urls);
        expect(new Set(urls).size).toBe(count * 2);
        for (const [i, v] of all.entries()) await expectServes(await get(v.name), names[i] ?? "");
      });
    }

    it("gives each version its own named network and volume, holding only its own data", async () => {
      for (const name of names) {
        const v = await get(name);
        const volume = `${v.composeProject}_data`;
        const { stdout } = await execa("docker", [
          "run",
          "--rm",
          "-v",
          `${volume}:/d:ro`,
          "dockbot-test-base:latest",
          "cat",
          "/d/seen",
        ]);
        expect(stdout).toBe(`api ${name}`);
        expect(
          await dockerLines(["network", "ls", "-q", "--filter", `name=^${v.composeProject}_back$`]),
        ).toHaveLength(1);
      }
    });

    it("keeps a version's URLs across a redeploy of a new commit", async () => {
      const before = await get("b0");
      await state.repo.commit({ "web/index.html": "web b0 again\n" }, "b0 again", "b0");
      const op = await turnOn("b0");
      expect(op.status).toBe("succeeded");
      const after = await get("b0");
      expect(after.urls).toStrictEqual(before.urls);
      expect(after.ports).toStrictEqual(before.ports);
      const web = after.urls.find((u) =>
        u.endsWith(`:${after.ports.find((p) => p.service === "web")?.hostPort}`),
      );
      expect(await fetchText(here(web ?? ""))).toBe("web b0 again\n");
    });

    it("deletes one version: only its containers, image, network and volume go, the others keep running", async () => {
      const gone = await get("b1");
      const kept = await Promise.all(names.filter((n) => n !== "b1").map(get));
      const keptObjects = await Promise.all(kept.map((v) => dockerObjects(v.composeProject)));
      expect((await dockerObjects(gone.composeProject)).images).toStrictEqual([
        `${gone.composeProject}-web`,
      ]);
      const res = await state.h.api<OperationJson>(
        "DELETE",
        `/api/projects/${state.project}/versions/b1`,
      );
      expect((await state.h.waitForOperation(res.body.id)).status).toBe("succeeded");
      expect(await dockerObjects(gone.composeProject)).toStrictEqual({
        containers: [],
        running: [],
        volumes: [],
        networks: [],
        images: [],
      });
      const checkout = path.join(state.h.dataDir, "checkouts", state.project, "b1");
      expect(existsSync(`${checkout}.compose.json`)).toBe(false);
      expect(await state.h.dockbot.store.listPortAllocations(gone.id)).toStrictEqual([]);
      for (const [i, v] of kept.entries()) {
        expect(await dockerObjects(v.composeProject)).toStrictEqual(keptObjects[i]);
        await expectServes(await get(v.name), v.name, v.name === "b0" ? "web b0 again" : undefined);
      }
    });
  });
}

describeWithServices([...common, v2], "compose policy (Compose v2)", () => {
  let h: DockbotHarness;
  let repo: TestRepo;
  const project = `sbspol-${randomBytes(3).toString("hex")}`;
  let composeProject = "";

  beforeAll(async () => {
    h = await startDockbot({ DOCKBOT_COMPOSE: "v2" });
    repo = await createTestRepo("sbs-policy", fixtureFiles("risky"));
    expect(
      (await h.api("POST", "/api/projects", { name: project, repoUrl: repo.sshUrl })).status,
    ).toBe(201);
    const v = await h.api<Version>("POST", `/api/projects/${project}/versions`, { ref: "main" });
    composeProject = v.body.composeProject;
  });
  afterAll(async () => {
    await h?.close();
    if (composeProject)
      await createCompose({ mode: "v2" }).removeByLabel(composeProject, {
        keepVolumes: false,
        images: true,
      });
    await repo?.remove();
  });

  async function turnOn(): Promise<OperationJson> {
    const res = await h.api<OperationJson>("POST", `/api/projects/${project}/versions/main/on`);
    return h.waitForOperation(res.body.id);
  }

  it("refuses every rule by default and runs once each word is allowed, one word at a time", async () => {
    const shown = await h.api<{ policy: { allow: string[] } }>("GET", `/api/projects/${project}`);
    expect(shown.body.policy).toStrictEqual({ allow: [] });
    const allowed: string[] = [];
    for (;;) {
      const op = await turnOn();
      if (op.status === "succeeded") break;
      expect(op.status).toBe("failed");
      expect(op.error).not.toContain("\n");
      const word = /policy\.allow "([a-z-]+)"/.exec(op.error ?? "")?.[1] ?? "";
      expect(op.error).toMatch(/^service '[a-z.]+': .+ is refused by the compose policy/);
      expect(allowed).not.toContain(word);
      // Nothing of the version was created: no container, network, volume or image.
      expect(await dockerObjects(composeProject)).toStrictEqual({
        containers: [],
        running: [],
        volumes: [],
        networks: [],
        images: [],
      });
      allowed.push(word);
      const patched = await h.api<{ policy: { allow: string[] } }>(
        "PATCH",
        `/api/projects/${project}`,
        { policy: { allow: allowed } },
      );
      expect(patched.status).toBe(200);
      expect(patched.body.policy.allow).toStrictEqual(allowed);
    }
    expect([...allowed].sort()).toStrictEqual([
      "capabilities",
      "devices",
      "docker-socket",
      "host-namespaces",
      "host-paths",
      "privileged",
      "unconfined",
    ]);
    // Every service but `priv` (replicas: 0, see the fixture) runs, with `fine` (a relative
    // bind mount inside the checkout and a named volume: allowed all along) among them.
    expect((await dockerObjects(composeProject)).running).toHaveLength(7);
    const services = await dockerLines([
      "ps",
      "--filter",
      `label=com.docker.compose.project=${composeProject}`,
      "--format",
      '{{.Label "com.docker.compose.service"}}',
    ]);
    expect(services.sort()).toStrictEqual(
      ["caps", "dev", "fine", "hostpath", "hostpid", "sock", "unconf"].sort(),
    );
  });

  it("lists every refused setting in the log of a refused version", async () => {
    await h.api("PATCH", `/api/projects/${project}`, { policy: { allow: [] } });
    const op = await turnOn();
    expect(op.status).toBe("failed");
    expect(op.error).toMatch(/\(and 6 more, see the log\)$/);
    for (const word of [
      "capabilities",
      "devices",
      "docker-socket",
      "host-namespaces",
      "host-paths",
      "privileged",
      "unconfined",
    ])
      expect(op.log).toContain(`policy.allow "${word}"`);
  });

  it("answers 400 for a word that is not a policy word", async () => {
    const res = await h.api("PATCH", `/api/projects/${project}`, { policy: { allow: ["root"] } });
    expect(res.status).toBe(400);
  });
});

describeWithServices([...common, v2], "compose files that cannot run (Compose v2)", () => {
  const { state, branchVersion, turnOn, get } = shopSuite("v2", portBlock(3));
  const base = fixtureFiles("shop");

  async function expectNothingOf(version: Version): Promise<void> {
    expect(await dockerObjects(version.composeProject)).toStrictEqual({
      containers: [],
      running: [],
      volumes: [],
      networks: [],
      images: [],
    });
    expect(await state.h.dockbot.store.listPortAllocations(version.id)).toStrictEqual([]);
  }

  it("fails with compose's own message when a variable has no value, before anything is built", async () => {
    const v = await branchVersion("unset", { ".env": "WEB_PORT=8080\n" });
    const op = await turnOn(v.name);
    expect(op.status).toBe("failed");
    expect(op.error).toMatch(/does not render: The "API_PORT" variable is not set/);
    await expectNothingOf(v);
  });

  it("fails naming the env_file that is not in the checkout", async () => {
    const compose = (base["compose.yaml"] ?? "").replace(
      "    build: ./web\n",
      "    build: ./web\n    env_file: ./web.env\n",
    );
    const v = await branchVersion("envfile", { "compose.yaml": compose });
    const op = await turnOn(v.name);
    expect(op.status).toBe("failed");
    expect(op.error).toMatch(/does not render.*web\.env/);
    await expectNothingOf(v);
  });

  it("fails with the parser's line for a compose file that is not YAML", async () => {
    const v = await branchVersion("broken", { "compose.yaml": "services:\n  web: [\n" });
    const op = await turnOn(v.name);
    expect(op.status).toBe("failed");
    expect(op.error).toMatch(/^compose file 'compose.yaml' does not render/);
    expect(op.error).not.toContain("\n");
    await expectNothingOf(v);
  });

  it("fails a version the port range has no room for, holding nothing and touching no other", async () => {
    const a = await branchVersion("room");
    expect((await turnOn(a.name)).status).toBe("succeeded");
    const b = await branchVersion("noroom");
    const op = await turnOn(b.name);
    expect(op.status).toBe("failed");
    expect(op.error).toMatch(/no free host port in DOCKBOT_PORT_RANGE \d+-\d+ for \w+ \d+\/tcp/);
    await expectNothingOf(b);
    expect((await get(b.name)).state).toBe("failed");
    await expectServes(await get(a.name), "room");
  });
});
