// What tests' compose projects leave on the Docker engine, and its removal. Every test file that
// makes dockbot (or compose) create containers calls `removeComposeProjects(prefix)` in an
// afterAll/afterEach, so nothing is left running on the machine of whoever ran the tests, also
// when a test failed or timed out half-way; test/support/global-setup.ts checks at the end of
// the run that nothing of the run is left.
import { execa } from "execa";

/** The label Compose (v1 and v2) puts on every container, network and volume it creates. */
export const COMPOSE_PROJECT_LABEL = "com.docker.compose.project";
/** The directory compose ran in (dockbot: the version's checkout), on containers only. */
export const COMPOSE_WORKING_DIR_LABEL = "com.docker.compose.project.working_dir";

/** Images scripts/test-services.sh makes for every run: never a test's leftover. */
const SHARED_IMAGES = new Set(["dockbot-test-base", "dockbot-image-base"]);

export interface ComposeProjectObjects {
  project: string;
  /** Container ids, with the working dirs their compose ran in. */
  containers: string[];
  workingDirs: string[];
  networks: string[];
  volumes: string[];
  /** `repository:tag` of images named after the project (`<project>-<service>`, v1 `_`). */
  images: string[];
}

async function docker(args: string[]): Promise<string[]> {
  const { stdout } = await execa("docker", args, { stdin: "ignore", timeout: 60_000 });
  return stdout.split("\n").filter((line) => line.trim() !== "");
}

/** Splits `a\tb\tc` rows; a label a row lacks is the empty string. */
function rows(lines: string[]): string[][] {
  return lines.map((line) => line.split("\t"));
}

/**
 * Every compose project on the engine whose name `match` accepts, with what Docker holds for
 * it. Images carry no compose label (the classic builder and v1 add none), so they are found by
 * the names compose gives them.
 */
export async function composeObjects(
  match: (project: string) => boolean,
): Promise<Map<string, ComposeProjectObjects>> {
  const filter = `label=${COMPOSE_PROJECT_LABEL}`;
  const label = (name: string) => `{{.Label "${name}"}}`;
  const [containers, networks, volumes, images] = await Promise.all([
    docker([
      "ps",
      "-a",
      "--filter",
      filter,
      "--format",
      `{{.ID}}\t${label(COMPOSE_PROJECT_LABEL)}\t${label(COMPOSE_WORKING_DIR_LABEL)}`,
    ]),
    docker([
      "network",
      "ls",
      "--filter",
      filter,
      "--format",
      `{{.ID}}\t${label(COMPOSE_PROJECT_LABEL)}`,
    ]),
    docker([
      "volume",
      "ls",
      "--filter",
      filter,
      "--format",
      `{{.Name}}\t${label(COMPOSE_PROJECT_LABEL)}`,
    ]),
    docker(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]),
  ]);
  const found = new Map<string, ComposeProjectObjects>();
  const entry = (project: string): ComposeProjectObjects => {
    let e = found.get(project);
    if (!e) {
      e = { project, containers: [], workingDirs: [], networks: [], volumes: [], images: [] };
      found.set(project, e);
    }
    return e;
  };
  for (const [id = "", project = "", dir = ""] of rows(containers)) {
    if (!match(project)) continue;
    const e = entry(project);
    e.containers.push(id);
    if (dir !== "" && !e.workingDirs.includes(dir)) e.workingDirs.push(dir);
  }
  for (const [id = "", project = ""] of rows(networks))
    if (match(project)) entry(project).networks.push(id);
  for (const [name = "", project = ""] of rows(volumes))
    if (match(project)) entry(project).volumes.push(name);
  for (const image of images) {
    if (image.startsWith("<none>")) continue;
    const repository = image.slice(0, image.lastIndexOf(":"));
    if (SHARED_IMAGES.has(repository)) continue;
    // `<project>-<service>` (v2) or `<project>_<service>` (v1): the longest known project wins,
    // else the name up to its last separator is taken as the project.
    const owner =
      [...found.keys()]
        .filter((p) => repository.startsWith(`${p}-`) || repository.startsWith(`${p}_`))
        .sort((a, b) => b.length - a.length)[0] ??
      repository.slice(0, Math.max(repository.lastIndexOf("-"), repository.lastIndexOf("_")));
    if (owner !== "" && match(owner)) entry(owner).images.push(image);
  }
  return found;
}

/**
 * `docker rm -f -v`, where another remover may be at the same containers (the dockbot being
 * closed runs its own down): one already gone or "already in progress" is waited for, not an
 * error; the first error stands if any is still there after 30 s.
 */
async function removeContainers(ids: string[]): Promise<void> {
  try {
    await docker(["rm", "-f", "-v", ...ids]);
  } catch (error) {
    const until = Date.now() + 30_000;
    for (;;) {
      const left = await docker([
        "ps",
        "-a",
        "-q",
        ...ids.flatMap((id) => ["--filter", `id=${id}`]),
      ]);
      if (left.length === 0) return;
      if (Date.now() > until) throw error;
      await new Promise((r) => setTimeout(r, 500));
      await docker(["rm", "-f", "-v", ...left]).catch(() => undefined);
    }
  }
}

/** Removes everything Docker holds for these compose projects (containers first). */
export async function removeComposeObjects(
  projects: Iterable<ComposeProjectObjects>,
): Promise<void> {
  const all = [...projects];
  const containers = all.flatMap((p) => p.containers);
  if (containers.length > 0) await removeContainers(containers);
  const networks = all.flatMap((p) => p.networks);
  if (networks.length > 0) await docker(["network", "rm", ...networks]);
  const volumes = all.flatMap((p) => p.volumes);
  if (volumes.length > 0) await docker(["volume", "rm", "-f", ...volumes]);
  const images = all.flatMap((p) => p.images);
  if (images.length > 0) await docker(["image", "rm", "-f", ...images]);
}

/**
 * Removes every compose project whose name starts with `prefix` (containers, networks, volumes
 * and the images built for it) and returns their names. A test file passes the prefix only its
 * projects use (`dockbot-<its project name>-`), so a parallel run of another file keeps its own.
 */
export async function removeComposeProjects(prefix: string): Promise<string[]> {
  if (!prefix.startsWith("dockbot-") || prefix.length < "dockbot-x".length) {
    throw new Error(`refusing to remove compose projects by the broad prefix '${prefix}'`);
  }
  const found = await composeObjects((project) => project.startsWith(prefix));
  await removeComposeObjects(found.values());
  return [...found.keys()].sort();
}

/**
 * Removes every compose project that ran (has a container) in a working dir under `dir`: a
 * dockbot data dir, whose checkouts are where dockbot runs compose. Exact: another run's or
 * another dockbot's projects never ran there.
 */
export async function removeComposeProjectsUnder(dir: string): Promise<string[]> {
  const root = dir.endsWith("/") ? dir : `${dir}/`;
  const all = await composeObjects((project) => project !== "");
  const under = [...all.values()].filter((p) => p.workingDirs.some((d) => d.startsWith(root)));
  await removeComposeObjects(under);
  return under.map((p) => p.project).sort();
}

/** How long one cleanup step may take before the next ones run anyway. */
const STEP_LIMIT_MS = 45_000;

/**
 * Runs every cleanup step even when one fails or hangs (a test that failed half-way leaves some
 * of them nothing to do, or a server that cannot close: a dockbot whose database is gone waits
 * minutes for it), then throws the first failure. A step still running after STEP_LIMIT_MS is
 * left behind so the removal of Docker objects after it still happens within vitest's hook
 * timeout.
 */
export async function cleanUpAll(
  steps: Array<(() => Promise<unknown>) | undefined | false>,
): Promise<void> {
  const failures: unknown[] = [];
  for (const step of steps) {
    if (!step) continue;
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`a cleanup step did not finish within ${STEP_LIMIT_MS} ms`)),
        STEP_LIMIT_MS,
      );
    });
    try {
      await Promise.race([step(), limit]);
    } catch (error) {
      failures.push(error);
    } finally {
      clearTimeout(timer);
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, "cleanup steps failed");
}
