// Deploy benchmark: on a small compose project served by the local test sshd,
//  (a) dockbot turning a version on, from the API call to the operation succeeded (a new project
//      each run, so every run clones: a first deploy);
//  (b) the same steps by hand: git clone over SSH, checkout, docker compose up -d --build;
//  (c) dockbot redeploying a new commit of a version already deployed (mirror fetched).
// Runs are interleaved so Docker's build cache and the page cache favour neither side.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { median, ms, print, time } from "./stats.js";
import {
  ADMIN_TOKEN,
  startDockbot,
  webApp,
  type DockbotHarness,
  type OperationJson,
} from "../test/support/dockbot-harness.js";
import { createTestRepo } from "../test/support/git-server.js";
import type { OperationRecord } from "../src/store/types.js";

const RUNS = 5;

async function byHand(h: DockbotHarness, sshUrl: string, project: string): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-bench-hand-"));
  const key = path.join(h.dataDir, "ssh", "id_ed25519");
  const known = path.join(h.dataDir, "known_hosts");
  const env = {
    GIT_SSH_COMMAND: `ssh -i '${key}' -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile='${known}' -o StrictHostKeyChecking=accept-new`,
  };
  try {
    return await time(async () => {
      await execa("git", ["clone", "--quiet", "--", sshUrl, dir], { env });
      const sha = (await execa("git", ["-C", dir, "rev-parse", "HEAD"])).stdout.trim();
      await execa("git", ["-C", dir, "checkout", "--quiet", "--detach", sha]);
      await execa("docker", ["compose", "-p", project, "up", "-d", "--build", "--remove-orphans"], {
        cwd: dir,
      });
    });
  } finally {
    await execa("docker", ["compose", "-p", project, "down", "--rmi", "local", "--volumes"], {
      cwd: dir,
      reject: false,
    });
    await rm(dir, { recursive: true, force: true });
  }
}

/** POST .../on, resolved by the operation.finished event (no polling delay in the figure). */
async function turnOn(h: DockbotHarness, project: string): Promise<void> {
  // Every finished operation is kept until the id is known: the event may come first.
  const seen = new Map<string, OperationRecord>();
  const wanted: { id?: string; resolve?: (op: OperationRecord) => void } = {};
  const onFinished = (op: OperationRecord) => {
    seen.set(op.id, op);
    if (op.id === wanted.id) wanted.resolve?.(op);
  };
  h.dockbot.bus.on("operation.finished", onFinished);
  try {
    const res = await h.api<OperationJson>("POST", `/api/projects/${project}/versions/main/on`);
    const op =
      seen.get(res.body.id) ??
      (await new Promise<OperationRecord>((resolve) =>
        Object.assign(wanted, { id: res.body.id, resolve }),
      ));
    if (op.status !== "succeeded") throw new Error(`deploy ${op.status}: ${op.error ?? ""}`);
  } finally {
    h.dockbot.bus.off("operation.finished", onFinished);
  }
}

async function dockbotFirstDeploy(
  h: DockbotHarness,
  sshUrl: string,
  name: string,
): Promise<number> {
  await h.api("POST", "/api/projects", { name, repoUrl: sshUrl });
  await h.api("POST", `/api/projects/${name}/versions`, { ref: "main" });
  const took = await time(async () => {
    await turnOn(h, name);
  });
  const del = await h.api<{ operations: OperationJson[] }>("DELETE", `/api/projects/${name}`);
  for (const op of del.body.operations) await h.waitForOperation(op.id);
  return took;
}

export async function benchDeploy(): Promise<void> {
  const h = await startDockbot({ DOCKBOT_COMPOSE: "v2" });
  void ADMIN_TOKEN;
  const repo = await createTestRepo("bench-deploy", webApp("bench"));
  try {
    // Warm-up of both paths (image layers, ssh host key, page cache): not counted.
    await byHand(h, repo.sshUrl, "bench-hand-warmup");
    await dockbotFirstDeploy(h, repo.sshUrl, "bench-warmup");

    const hand: number[] = [];
    const bot: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      hand.push(await byHand(h, repo.sshUrl, `bench-hand-${i}`));
      bot.push(await dockbotFirstDeploy(h, repo.sshUrl, `bench-first-${i}`));
    }

    // Redeploys of new commits on one version.
    await h.api("POST", "/api/projects", { name: "bench-redeploy", repoUrl: repo.sshUrl });
    await h.api("POST", "/api/projects/bench-redeploy/versions", { ref: "main" });
    const first = await h.api<OperationJson>(
      "POST",
      "/api/projects/bench-redeploy/versions/main/on",
    );
    await h.waitForOperation(first.body.id);
    const redeploy: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await repo.commit({ "index.html": `bench ${i}\n` }, `bench ${i}`);
      redeploy.push(
        await time(async () => {
          await turnOn(h, "bench-redeploy");
        }),
      );
    }
    const del = await h.api<{ operations: OperationJson[] }>(
      "DELETE",
      "/api/projects/bench-redeploy",
    );
    for (const op of del.body.operations) await h.waitForOperation(op.id);

    const mHand = median(hand);
    const mBot = median(bot);
    const mRe = median(redeploy);
    print(
      `runs: ${RUNS} each (median), Compose v2, local sshd, Docker ${(await execa("docker", ["version", "--format", "{{.Server.Version}}"])).stdout}`,
    );
    print(
      `by hand (clone, checkout, compose up -d --build): ${ms(mHand)}   [${hand.map((v) => v.toFixed(0)).join(", ")}]`,
    );
    print(
      `dockbot first deploy (API call -> succeeded):     ${ms(mBot)}   [${bot.map((v) => v.toFixed(0)).join(", ")}]`,
    );
    print(
      `dockbot redeploy of a new commit:                 ${ms(mRe)}   [${redeploy.map((v) => v.toFixed(0)).join(", ")}]`,
    );
    print(`ratio first deploy / by hand: ${(mBot / mHand).toFixed(2)}x (goal <= 1.10x)`);
    print(`ratio redeploy / by-hand fresh clone: ${(mRe / mHand).toFixed(2)}x (goal < 1.00x)`);
  } finally {
    await h.close();
    await repo.remove();
  }
}
