// The suite's own check that it leaves nothing on the Docker engine (registered as vitest's
// globalSetup in vitest.config.ts): after the last test file, every `dockbot-` compose project
// this run created and that is still there (containers, networks, volumes, images) is removed,
// and the run fails naming them, so a leak is fixed in the test that caused it instead of piling
// up on the machine of whoever runs the tests.
//
// "Of this run", exactly, while other runs use the same engine (other checkouts' test runs, a
// dockbot a user runs): the run gets an id (DOCKBOT_TEST_RUN) and a temp dir of its own, and
// TMPDIR points into it for every test worker and every process they start. Every test makes
// its dockbot data dir (and so every checkout, where dockbot runs compose) with mkdtemp under
// os.tmpdir(), so every container this run makes carries a working dir under that temp dir
// (Compose's `com.docker.compose.project.working_dir` label). Projects are attributed by it:
// those whose containers were created during the run with such a working dir (watched through
// `docker events`, so a container removed later still counts) and those that have one now.
// Networks, volumes and images carry no working dir; they are judged with their project. What
// this cannot see: a project of this run that never got a container (its build failed before
// compose created one); each test file's afterAll removes those by its own prefix
// (test/support/compose-cleanup.ts).
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { execa } from "execa";
import {
  COMPOSE_PROJECT_LABEL,
  COMPOSE_WORKING_DIR_LABEL,
  composeObjects,
  removeComposeObjects,
  type ComposeProjectObjects,
} from "./compose-cleanup.js";

const PREFIX = "dockbot-";

async function dockerAnswers(): Promise<boolean> {
  const r = await execa("docker", ["info", "--format", "{{.ServerVersion}}"], {
    reject: false,
    timeout: 20_000,
    stdin: "ignore",
  });
  return r.exitCode === 0;
}

function describeLeftover(p: ComposeProjectObjects): string {
  const parts = [
    p.containers.length > 0 && `${p.containers.length} container(s)`,
    p.networks.length > 0 && `networks ${p.networks.length}`,
    p.volumes.length > 0 && `volumes ${p.volumes.join(", ")}`,
    p.images.length > 0 && `images ${p.images.join(", ")}`,
  ].filter(Boolean);
  return `${p.project} (${parts.join("; ")})`;
}

export default async function setup(): Promise<() => Promise<void>> {
  const runId = randomBytes(6).toString("hex");
  const runDir = await mkdtemp(path.join(os.tmpdir(), `dockbot-test-run-${runId}-`));
  // mkdtemp makes it 0700; services that drop root (nginx's workers writing request bodies to a
  // test's temp dir) must still reach the folders under it, as they do under /tmp.
  await chmod(runDir, 0o755);
  const previousTmp = process.env.TMPDIR;
  // Set before vitest starts its workers, which inherit the environment.
  process.env.DOCKBOT_TEST_RUN = runId;
  process.env.TMPDIR = runDir;
  const under = (dir: string) => dir.startsWith(`${runDir}/`);

  const docker = await dockerAnswers();
  const seen = new Set<string>();
  const unreadable: string[] = [];
  const events = docker
    ? execa(
        "docker",
        [
          "events",
          "--filter",
          "type=container",
          "--filter",
          "event=create",
          "--filter",
          `label=${COMPOSE_PROJECT_LABEL}`,
          "--format",
          "{{json .Actor.Attributes}}",
        ],
        { reject: false, stdin: "ignore", buffer: false, env: { TMPDIR: previousTmp ?? "/tmp" } },
      )
    : undefined;
  if (events?.stdout) {
    createInterface({ input: events.stdout }).on("line", (line) => {
      try {
        const attributes = JSON.parse(line) as Record<string, string | undefined>;
        const project = attributes[COMPOSE_PROJECT_LABEL] ?? "";
        if (project.startsWith(PREFIX) && under(attributes[COMPOSE_WORKING_DIR_LABEL] ?? "")) {
          seen.add(project);
        }
      } catch (error) {
        // Reported at the end: a check that missed events cannot say the run left nothing.
        unreadable.push(`${line} (${error instanceof Error ? error.message : String(error)})`);
      }
    });
  }

  return async () => {
    try {
      if (!docker) return;
      // Events arrive within milliseconds; give the last ones a moment before stopping.
      await new Promise((r) => setTimeout(r, 500));
      events?.kill();
      await events;
      if (unreadable.length > 0) {
        process.exitCode = 1;
        throw new Error(`docker events printed lines that are not JSON: ${unreadable.join("; ")}`);
      }
      const found = await composeObjects((project) => project.startsWith(PREFIX));
      const ours = [...found.values()].filter(
        (p) => seen.has(p.project) || p.workingDirs.some(under),
      );
      if (ours.length === 0) return;
      await removeComposeObjects(ours);
      // vitest prints a teardown's error ("error during close") but keeps the exit code the
      // tests gave: the run fails through the exit code, the error says why.
      process.exitCode = 1;
      throw new Error(
        `this test run (DOCKBOT_TEST_RUN=${runId}) left ${ours.length} compose project(s) on ` +
          `the Docker engine, removed now; the tests that made them must remove them ` +
          `(test/support/compose-cleanup.ts): ${ours.map(describeLeftover).join("; ")}`,
      );
    } finally {
      // Temp dirs tests did not remove are named, not judged: they hold no running process.
      const left = await readdir(runDir).catch(() => []);
      if (left.length > 0) {
        process.stderr.write(
          `[dockbot tests] temp dirs left by tests (removed now): ${left.join(", ")}\n`,
        );
      }
      await rm(runDir, { recursive: true, force: true });
      if (previousTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previousTmp;
    }
  };
}
