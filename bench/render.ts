// Render benchmark: what running a version from its rendered model costs over running compose
// on the checkout as it is (docs/architecture.md, "compose model"), on a checkout of
// test/fixtures/compose/shop (two services, a build, a named network and volume):
//  (a) plain: `docker compose -p <p> up -d --build` in the checkout (its .env set to free ports,
//      so the fixed host ports do not get in the way);
//  (b) dockbot: render (`docker compose config --format json`), policy, host ports from a store,
//      rewrite, write the model, then `docker compose up -d --build` from it: prepareModel and
//      compose.up, exactly what an `up` operation runs after the checkout.
// Both start with no container and a warm build cache (a redeploy); rounds alternate which goes
// first. Compose v2.
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { createCompose } from "../src/deploy/compose.js";
import { probePort } from "../src/deploy/port-allocator.js";
import { prepareModel } from "../src/deploy/prepare-model.js";
import { openSqliteStore } from "../src/store/sqlite-store.js";
import type { ProjectRecord, VersionRecord } from "../src/store/types.js";
import { median, ms, print, time } from "./stats.js";

const RUNS = 9;
const FIXTURE = path.join(import.meta.dirname, "..", "test", "fixtures", "compose", "shop");

async function freePorts(from: number, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let p = from; out.length < count && p < 65535; p++)
    if (await probePort(p, "tcp")) out.push(p);
  return out;
}

export async function benchRender(): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), "dockbot-bench-render-"));
  const dir = path.join(root, "main");
  await cp(FIXTURE, dir, { recursive: true });
  const [webPort, apiPort] = await freePorts(38000, 2);
  await writeFile(path.join(dir, ".env"), `WEB_PORT=${webPort}\nAPI_PORT=${apiPort}\n`);
  const store = await openSqliteStore(":memory:");
  const compose = createCompose({ mode: "v2" });
  const plainProject = "dockbot-benchrender-plain";
  const at = new Date().toISOString();
  const project: ProjectRecord = {
    id: "bench-project",
    name: "benchrender",
    repoUrl: "git@example.com:bench/shop.git",
    autoDeploy: { branches: [], tags: false, mergeRequests: false },
    env: {},
    webhookSecret: "bench",
    createdAt: at,
    updatedAt: at,
  };
  const version: VersionRecord = {
    id: "bench-version",
    projectId: project.id,
    name: "main",
    ref: { type: "branch", name: "main" },
    state: "off",
    composeProject: "dockbot-benchrender-main",
    urls: [],
    ports: [],
    createdAt: at,
    updatedAt: at,
  };
  const target = { dir, file: "compose.yaml", projectName: version.composeProject, env: {} };
  const down = async (p: string, file?: string) => {
    await execa(
      "docker",
      ["compose", "-p", p, ...(file ? ["-f", file] : []), "down", "--remove-orphans"],
      { cwd: dir, reject: false },
    );
  };

  const plain = () =>
    time(() =>
      execa("docker", ["compose", "-p", plainProject, "up", "-d", "--build", "--remove-orphans"], {
        cwd: dir,
      }),
    );
  // dockbot's own `up` of the checkout as it is, as it ran before rendering (its flags: no ANSI,
  // plain progress; output read line by line).
  const unrendered = () => time(() => compose.up({ ...target, projectName: plainProject }));
  let rendered = "";
  const prepareTimes: number[] = [];
  const dockbot = () =>
    time(async () => {
      const started = performance.now();
      const prepared = await prepareModel(
        { compose, store, portRange: { from: 38100, to: 38199 } },
        project,
        version,
        target,
        () => undefined,
      );
      prepareTimes.push(performance.now() - started);
      rendered = prepared.rendered;
      await compose.up({ ...target, rendered });
    });

  const plainTimes: number[] = [];
  const unrenderedTimes: number[] = [];
  const dockbotTimes: number[] = [];
  try {
    // Warm-up: builds both images once, so every measured round is a cached rebuild.
    await plain();
    await down(plainProject);
    await dockbot();
    await down(version.composeProject, rendered);
    for (let i = 0; i < RUNS; i++) {
      const order =
        [
          ["plain", "unrendered", "dockbot"],
          ["dockbot", "plain", "unrendered"],
          ["unrendered", "dockbot", "plain"],
        ][i % 3] ?? [];
      for (const which of order) {
        if (which === "plain") {
          plainTimes.push(await plain());
          await down(plainProject);
        } else if (which === "unrendered") {
          unrenderedTimes.push(await unrendered());
          await down(plainProject);
        } else {
          dockbotTimes.push(await dockbot());
          await down(version.composeProject, rendered);
        }
      }
    }
  } finally {
    await execa(
      "docker",
      ["compose", "-p", plainProject, "down", "--rmi", "local", "--volumes", "--remove-orphans"],
      { cwd: dir, reject: false },
    );
    await compose.removeByLabel(plainProject, {
      keepVolumes: false,
      images: true,
      services: ["web"],
    });
    await compose.removeByLabel(version.composeProject, {
      keepVolumes: false,
      images: true,
      services: ["web"],
    });
    await execa("docker", ["image", "rm", "shop/web:1.0"], { reject: false });
    await store.close();
    await rm(root, { recursive: true, force: true });
    await rm(`${dir}.compose.json`, { force: true });
  }
  const a = median(plainTimes);
  const b = median(dockbotTimes);
  // Rounds run back to back, so the machine's load drifts less within a round than across the
  // run: the median of each round's own difference is the steadier figure.
  const paired = median(dockbotTimes.map((t, i) => t - (plainTimes[i] ?? 0)));
  const c = median(unrenderedTimes);
  const pairedC = median(dockbotTimes.map((t, i) => t - (unrenderedTimes[i] ?? 0)));
  print(`runs: ${RUNS} each, alternating, warm build cache, no container at the start`);
  print(`(a) docker compose up -d --build in the checkout:          median ${ms(a)}`);
  print(`(c) dockbot's compose.up of the checkout as it is:          median ${ms(c)}`);
  print(`(b) dockbot: render, policy, ports, rewrite, then up -d --build: median ${ms(b)}`);
  print(
    `    of which render, policy, ports, rewrite, write:         median ${ms(median(prepareTimes))}`,
  );
  print(`paired difference per round (b - a):                      median ${ms(paired)}`);
  print(`paired difference per round (b - c):                      median ${ms(pairedC)}`);
  print(
    `added by rendering: ${ms(b - a)} (${(((b - a) / a) * 100).toFixed(1)}%), ratio b/a ${(b / a).toFixed(3)}`,
  );
}
