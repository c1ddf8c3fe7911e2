// The only code that runs `docker compose` (v2 plugin), `docker-compose` (v1) or `docker` for a
// project; the engine-wide disk queries of hygiene and disk use (images, `system df`, build cache)
// are in disk.ts.
//
// What holds here:
// - every call is an argv array through runCommand, `-p <project> -f <file>` always, cwd = the
//   checkout; the compose file name is validated (relative, inside the checkout, no leading `-`);
// - a project's env reaches compose only through the process environment (so `${VAR}` in the
//   compose file works): never on a command line, never in a log line or error message here;
// - output is plain lines (no ANSI, no TTY progress), whichever version runs;
// - removal by label touches only objects labelled `com.docker.compose.project=<that project>`
//   (and images compose named after that project), never another project's
//   (docs/architecture.md, invariant 5).
//
// Labels: compose already puts `com.docker.compose.project` on every container, network and
// volume (and Compose v2 with BuildKit on built images). A version runs from its rendered model
// (`render`, then `rendered` on the target: docs/architecture.md), which also carries dockbot's
// own `dockbot.project` / `dockbot.version` labels on every service (compose-model.ts).
import { access, constants, realpath, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { AppError, type ErrorCode } from "../errors.js";
import { parseComposeModel, type ComposeFlavor } from "./compose-model.js";
import type { ContainerState } from "./health.js";
import type { ComposePort, ComposeTarget, RenderedCompose, RunIo } from "./ports.js";
import { CommandError, runCommand, type OutputStream } from "./run-command.js";

export type ComposeMode = "auto" | "v2" | "v1";
export type { ComposeFlavor } from "./compose-model.js";

/** Names compose looks for, in compose's own order of preference. */
export const COMPOSE_FILE_NAMES = [
  "compose.yaml",
  "compose.yml",
  "docker-compose.yaml",
  "docker-compose.yml",
] as const;

const PROJECT_LABEL = "com.docker.compose.project";
const SERVICE_LABEL = "com.docker.compose.service";

/** A compose or docker command that failed, in one readable line. */
export class ComposeError extends AppError {
  override readonly name = "ComposeError";
  constructor(
    message: string,
    code: ErrorCode = "unprocessable",
    readonly exitCode?: number,
    /** Last stderr lines of the command (ANSI stripped), for the operation log. */
    readonly stderrTail: readonly string[] = [],
    readonly canceled = false,
    options?: { cause?: unknown },
  ) {
    super(code, message, undefined, options);
  }
}

export interface CreateComposeOptions {
  mode: ComposeMode;
  /**
   * Host variables a compose file must not be able to read through `${VAR}` interpolation
   * (compose inherits dockbot's environment). They are set to "" for compose commands.
   * Default: dockbot's own secret-bearing settings.
   */
  hiddenEnv?: readonly string[];
  /** Seconds allowed for the short `docker` queries (info, ps, inspect). Default 20. */
  queryTimeoutSeconds?: number;
}

export interface PublishedPort {
  service: string;
  /** Port on the host. */
  port: number;
  containerPort: number;
  protocol: string;
}

export interface Compose extends ComposePort {
  detect(): Promise<ComposeFlavor | "missing">;
  publishedPorts(projectName: string): Promise<PublishedPort[]>;
}

const DEFAULT_HIDDEN_ENV = ["DOCKBOT_ADMIN_TOKEN", "DOCKBOT_GITLAB_TOKEN", "DOCKBOT_MONGODB_URL"];

/**
 * Variables of a project's env that would redirect compose to another engine or another file
 * set, so `-p`/`-f` and the engine dockbot checked stay the ones used. They are dropped.
 */
const RESERVED_ENV = new Set([
  "DOCKER_HOST",
  "DOCKER_CONTEXT",
  "DOCKER_CONFIG",
  "DOCKER_CERT_PATH",
  "DOCKER_TLS_VERIFY",
  "COMPOSE_FILE",
  "COMPOSE_PROJECT_NAME",
  "COMPOSE_PATH_SEPARATOR",
  "COMPOSE_ANSI",
  "COMPOSE_PROGRESS",
]);

const PROJECT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** `name[:tag]` as Docker accepts it, without a registry port (none of dockbot's own has one). */
const IMAGE_REF = /^[a-z0-9][a-z0-9._/-]{0,254}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$/;

/** Where the docker CLI looks for the Compose v2 plugin on Linux, in its own order. */
const PLUGIN_DIRS = [
  path.join(os.homedir(), ".docker", "cli-plugins"),
  "/usr/local/lib/docker/cli-plugins",
  "/usr/local/libexec/docker/cli-plugins",
  "/usr/lib/docker/cli-plugins",
  "/usr/libexec/docker/cli-plugins",
];

/** The Compose v2 plugin binary, when it is where the docker CLI would find it. */
async function findComposePlugin(): Promise<string | undefined> {
  for (const dir of PLUGIN_DIRS) {
    const file = path.join(dir, "docker-compose");
    try {
      await access(file, constants.X_OK);
      return file;
    } catch {
      // Not in this directory: the next one.
    }
  }
  return undefined;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]/g;

/** A line as a person reads it: no colour codes, and of `\r`-rewritten text only the last state. */
export function cleanLine(raw: string): string {
  // The common case (a plain build line) allocates nothing: builds print a million of these.
  if (!raw.includes("\x1b") && !raw.includes("\r")) {
    const last = raw.charCodeAt(raw.length - 1);
    return last === 32 || last === 9 ? raw.trimEnd() : raw;
  }
  const text = raw.replace(ANSI, "");
  const parts = text.split("\r").filter((p) => p.trim() !== "");
  return (parts.at(-1) ?? "").trimEnd();
}

// Lines compose prints on stderr that say nothing about why a command failed.
const NOISE = [
  /^\s*(Network|Volume|Container|Image)\s.*\s(Creating|Created|Starting|Started|Stopping|Stopped|Removing|Removed|Waiting|Healthy|Running|Recreate|Recreated|Pulling|Pulled|Built|Building)$/,
  /^(Creating|Starting|Stopping|Removing|Recreating)\s.*\.\.\.\s*(done)?$/,
  /^(Creating|Removing) (network|volume)\s/,
  /^Building \S+$/,
  /^DEPRECATED:/,
  /^\s{4,}/, // continuation of a multi-line notice
  /level=warning/,
  /^WARNING:/,
];

/**
 * The line of a failed command's stderr that says why: a line naming an exit code first (a
 * failing RUN step: v2 "failed to solve: ... exit code: 3", v1 "... returned a non-zero code: 3",
 * which v1 follows with a generic "Service 'x' failed to build"), else the last line that is not
 * progress noise.
 */
export function meaningfulLine(tail: readonly string[]): string {
  const lines = tail.map(cleanLine).filter((l) => l.trim() !== "");
  const withCode = lines.findLast((l) => /exit code:?\s*\d+|non-zero code:?\s*\d+/i.test(l));
  if (withCode) return withCode.trim();
  const meaningful = lines.findLast((l) => !NOISE.some((re) => re.test(l)));
  return (meaningful ?? lines.at(-1) ?? "").trim();
}

function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    // Very short values would mask ordinary words; they are masked in the log by the runner.
    if (secret.length >= 3) out = out.split(secret).join("***");
  }
  return out;
}

/** A compose file name as the user configured it: relative, inside the checkout, not an option. */
function isSafeRelativeFile(file: string): boolean {
  if (file.length === 0 || file.length > 255 || file.startsWith("-") || file.includes("\0"))
    return false;
  if (path.isAbsolute(file) || file.includes("\\")) return false;
  return !file.split("/").some((part) => part === "..");
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    // Not there (or unreadable): compose could not use it either.
    return false;
  }
}

/** True when `file` (resolved through symlinks) is inside `dir`. */
async function staysInside(dir: string, file: string): Promise<boolean> {
  const [root, target] = await Promise.all([realpath(dir), realpath(path.join(dir, file))]);
  return target.startsWith(root + path.sep);
}

// Compose only warns about a variable with no value ("The X variable is not set. Defaulting to
// a blank string."): v2 as a logrus line with the text in msg="...", v1 as plain text.
// The name is quoted in v2 (`\"X\"` inside msg="..."), bare in v1.
const UNSET_VARIABLE = /The \\?"?([A-Za-z_][A-Za-z0-9_]*)\\?"? variable is not set/;

function warningText(line: string): string {
  const msg = /msg="((?:[^"\\]|\\.)*)"/.exec(line);
  return (msg?.[1]?.replace(/\\(.)/g, "$1") ?? line.replace(/^WARNING:\s*/, "")).trim();
}

/** Why `config` failed: its first meaningful lines (v1 explains over two). */
function configFailure(tail: readonly string[]): string {
  const meaningful = tail
    .map(cleanLine)
    .filter((l) => l.trim() !== "" && !/level=warning|^WARNING:/.test(l))
    .map((l) => l.trim());
  return meaningful.slice(0, 2).join(" ");
}

function lines(stdout: string): string[] {
  return stdout.split("\n").filter((l) => l.trim() !== "");
}

function isIpv6(hostIp: string | undefined): boolean {
  return hostIp?.includes(":") ?? false;
}

interface InspectedContainer {
  Id: string;
  Name?: string;
  RestartCount?: number;
  Config?: { Labels?: Record<string, string> | null };
  State?: {
    Status?: string;
    ExitCode?: number;
    StartedAt?: string;
    Health?: { Status?: string } | null;
  };
}

function containerState(c: InspectedContainer): ContainerState {
  const started = Date.parse(c.State?.StartedAt ?? "");
  const state: ContainerState = {
    id: c.Id,
    name: (c.Name ?? c.Id.slice(0, 12)).replace(/^\//, ""),
    service: c.Config?.Labels?.[SERVICE_LABEL] ?? "",
    status: c.State?.Status ?? "unknown",
    exitCode: c.State?.ExitCode ?? 0,
    restartCount: c.RestartCount ?? 0,
    // Docker writes 0001-01-01T00:00:00Z for a container that never started.
    startedAt: Number.isFinite(started) && started > 0 ? started : 0,
  };
  const health = c.State?.Health?.Status;
  if (health !== undefined && health !== "") state.health = health;
  return state;
}

export function createCompose(opts: CreateComposeOptions): Compose {
  const hiddenEnv = opts.hiddenEnv ?? DEFAULT_HIDDEN_ENV;
  const queryMs = (opts.queryTimeoutSeconds ?? 20) * 1000;
  let detected: Promise<ComposeFlavor | "missing"> | undefined;
  let buildxPresent: Promise<boolean> | undefined;
  let plugin: Promise<string | undefined> | undefined;

  async function works(command: string, args: string[]): Promise<boolean> {
    try {
      await runCommand(command, args, {
        signal: AbortSignal.timeout(queryMs),
        captureStdout: false,
      });
      return true;
    } catch (error) {
      if (error instanceof CommandError) return false;
      throw error;
    }
  }

  async function detectOnce(): Promise<ComposeFlavor | "missing"> {
    if (opts.mode !== "v1" && (await works("docker", ["compose", "version"]))) return "v2";
    if (opts.mode !== "v2" && (await works("docker-compose", ["version", "--short"]))) return "v1";
    return "missing";
  }

  function detect(): Promise<ComposeFlavor | "missing"> {
    // Cached once found; "missing" is asked again next time (compose may be installed meanwhile).
    detected ??= detectOnce().then((found) => {
      if (found === "missing") detected = undefined;
      return found;
    });
    return detected;
  }

  async function flavor(): Promise<ComposeFlavor> {
    const found = await detect();
    if (found === "missing") {
      throw new ComposeError(
        opts.mode === "auto"
          ? "Docker Compose is missing: neither `docker compose` (v2) nor `docker-compose` (v1) works"
          : `Docker Compose ${opts.mode} is missing (DOCKBOT_COMPOSE=${opts.mode})`,
        "unavailable",
      );
    }
    return found;
  }

  function commandOf(f: ComposeFlavor): { command: string; label: string; globals: string[] } {
    return f === "v2"
      ? {
          command: "docker",
          label: "docker compose",
          globals: ["compose", "--ansi", "never", "--progress", "plain"],
        }
      : // v1 1.29: `--no-ansi` is deprecated in favour of `--ansi never`; it has no --progress.
        { command: "docker-compose", label: "docker-compose", globals: ["--ansi", "never"] };
  }

  async function envFor(
    f: ComposeFlavor,
    projectEnv: Record<string, string>,
  ): Promise<Record<string, string>> {
    const env: Record<string, string> = {};
    for (const name of hiddenEnv) env[name] = "";
    for (const [name, value] of Object.entries(projectEnv)) {
      if (!RESERVED_ENV.has(name)) env[name] = value;
    }
    Object.assign(env, {
      COMPOSE_ANSI: "never",
      COMPOSE_PROGRESS: "plain",
      BUILDKIT_PROGRESS: "plain",
      NO_COLOR: "1",
      COMPOSE_INTERACTIVE_NO_CLI: "1",
    });
    if (f === "v1") {
      // v1 builds through the docker CLI (COMPOSE_DOCKER_CLI_BUILD=1, its default since 1.28). With
      // BuildKit on, that CLI needs the buildx plugin ("BuildKit is enabled but the buildx component
      // is missing"), so without buildx v1 uses the classic builder. v2 needs no plugin: it
      // carries buildx as a library and talks BuildKit to the engine itself.
      env.COMPOSE_DOCKER_CLI_BUILD = "1";
      buildxPresent ??= works("docker", ["buildx", "version"]);
      if (!(await buildxPresent)) env.DOCKER_BUILDKIT = "0";
    }
    return env;
  }

  function checkTarget(t: ComposeTarget): void {
    if (!PROJECT_NAME.test(t.projectName)) {
      throw new ComposeError(
        `'${t.projectName}' is not a valid compose project name`,
        "invalid_request",
      );
    }
    if (!isSafeRelativeFile(t.file)) {
      throw new ComposeError(
        `compose file '${t.file}' must be a relative path inside the checkout`,
        "invalid_request",
      );
    }
  }

  /** `-p`, `-f` and the project directory: the rendered model when there is one. */
  function fileArgs(t: ComposeTarget): string[] {
    if (t.rendered === undefined) return ["-p", t.projectName, "-f", t.file];
    if (!path.isAbsolute(t.rendered) || t.rendered.includes("\0")) {
      throw new ComposeError(
        "the rendered compose model must be an absolute path",
        "invalid_request",
      );
    }
    return ["--project-directory", t.dir, "-p", t.projectName, "-f", t.rendered];
  }

  async function compose(sub: string, args: string[], t: ComposeTarget): Promise<void> {
    checkTarget(t);
    const f = await flavor();
    const { command, label, globals } = commandOf(f);
    const onLine = t.onLine;
    try {
      await runCommand(command, [...globals, ...fileArgs(t), sub, ...args], {
        cwd: t.dir,
        env: await envFor(f, t.env),
        ...(t.signal === undefined ? {} : { signal: t.signal }),
        captureStdout: false,
        ...(onLine === undefined
          ? {}
          : {
              onLine: (stream: OutputStream, text: string) => {
                const line = cleanLine(text);
                if (line !== "") onLine(stream, line);
              },
            }),
      });
    } catch (error) {
      throw toComposeError(`${label} ${sub}`, error, Object.values(t.env));
    }
  }

  function toComposeError(what: string, error: unknown, secrets: readonly string[] = []): Error {
    if (!(error instanceof CommandError))
      return error instanceof Error ? error : new Error(String(error));
    const tail = error.stderrTail
      .map((l) => maskSecrets(cleanLine(l), secrets))
      .filter((l) => l !== "");
    if (error.canceled)
      return new ComposeError(`${what} was stopped`, "unavailable", error.exitCode, tail, true, {
        cause: error,
      });
    if (error.exitCode === undefined) {
      return new ComposeError(
        `${what} could not start: ${tail.at(-1) ?? "unknown reason"}`,
        "unavailable",
        undefined,
        tail,
        false,
        {
          cause: error,
        },
      );
    }
    const line = meaningfulLine(tail);
    return new ComposeError(
      `${what} failed (exit code ${error.exitCode})${line ? `: ${line}` : ""}`,
      "unprocessable",
      error.exitCode,
      tail,
      false,
      {
        cause: error,
      },
    );
  }

  /** A short `docker` query or cleanup command; its stdout lines. */
  async function docker(args: string[], io: RunIo = {}): Promise<string[]> {
    try {
      const signal = io.signal
        ? AbortSignal.any([io.signal, AbortSignal.timeout(queryMs)])
        : AbortSignal.timeout(queryMs);
      const result = await runCommand("docker", args, {
        signal,
        ...(io.onLine === undefined
          ? {}
          : {
              onLine: (s: OutputStream, l: string) => {
                if (s === "stderr") io.onLine?.(s, cleanLine(l));
              },
            }),
      });
      return lines(result.stdout);
    } catch (error) {
      throw toComposeError(`docker ${args.slice(0, 2).join(" ")}`, error);
    }
  }

  function checkProjectName(projectName: string): void {
    if (!PROJECT_NAME.test(projectName)) {
      throw new ComposeError(
        `'${projectName}' is not a valid compose project name`,
        "invalid_request",
      );
    }
  }

  /** An image reference dockbot names itself: lower-case name, optional tag, never an option. */
  function checkImageRef(ref: string): void {
    if (!IMAGE_REF.test(ref)) {
      throw new ComposeError(`'${ref}' is not an image reference`, "invalid_request");
    }
  }

  async function removeImages(
    projectName: string,
    services: ReadonlySet<string>,
    io: RunIo,
  ): Promise<void> {
    const refs = new Set<string>();
    // Images compose built for the project: v2 with BuildKit labels them (also the older builds
    // that a rebuild left untagged); only untagged ones or ones named after the project go, so an
    // image the user tagged for sharing (`image: registry/app:1`) stays, as with `--rmi local`.
    const labelled = await docker(
      [
        "images",
        "--filter",
        `label=${PROJECT_LABEL}=${projectName}`,
        "--format",
        "{{.ID}}\t{{.Repository}}\t{{.Tag}}",
      ],
      io,
    );
    for (const row of labelled) {
      const [id = "", repo = "", tag = ""] = row.split("\t");
      if (repo === "<none>") refs.add(id);
      else if (repo.startsWith(`${projectName}-`) || repo.startsWith(`${projectName}_`))
        refs.add(`${repo}:${tag}`);
    }
    // Images without labels (v1, classic builder) are known by name: `<project>-<service>` (v2),
    // `<project>_<service>` (v1). A v1 name is unambiguous because dockbot's project names have
    // no `_`; a v2 name only for services seen on the project's containers or labelled images.
    const all = await docker(["images", "--format", "{{.Repository}}\t{{.Tag}}"], io);
    for (const row of all) {
      const [repo = "", tag = ""] = row.split("\t");
      const v1 = !projectName.includes("_") && repo.startsWith(`${projectName}_`);
      const v2 = [...services].some(
        (s) => repo === `${projectName}-${s}` || repo === `${projectName}_${s}`,
      );
      if (v1 || v2) refs.add(`${repo}:${tag}`);
    }
    // No -f: an image still used by a container (of anyone) is kept, and the command fails.
    if (refs.size > 0) await docker(["rmi", ...refs], io);
  }

  const api: Compose = {
    detect,

    async dockerReachable() {
      return works("docker", ["info", "--format", "{{.ServerVersion}}"]);
    },

    async findComposeFile(dir, configured) {
      if (configured !== undefined && configured !== "") {
        if (!isSafeRelativeFile(configured)) {
          throw new ComposeError(
            `compose file '${configured}' must be a relative path inside the repository`,
            "invalid_request",
          );
        }
        if (!(await isFile(path.join(dir, configured)))) {
          throw new ComposeError(`compose file '${configured}' not found in the checkout`);
        }
        if (!(await staysInside(dir, configured))) {
          throw new ComposeError(`compose file '${configured}' points outside the checkout`);
        }
        return configured;
      }
      for (const name of COMPOSE_FILE_NAMES) {
        if ((await isFile(path.join(dir, name))) && (await staysInside(dir, name))) return name;
      }
      throw new ComposeError(
        `no compose file in the checkout: looked for ${COMPOSE_FILE_NAMES.join(", ")}`,
      );
    },

    async render(t) {
      checkTarget(t);
      const f = await flavor();
      const { label, ...how } = commandOf(f);
      let { command, globals } = how;
      // `config` is a read-only query: the plugin binary answers it without the docker CLI's
      // plugin dispatch in front, which takes about as long again (bench/render.ts). Found in
      // the CLI's own plugin directories; elsewhere it goes through the CLI.
      plugin ??= findComposePlugin();
      const direct = f === "v2" ? await plugin : undefined;
      if (direct !== undefined) {
        command = direct;
        globals = globals.slice(1);
      }
      const warnings: string[] = [];
      let stdout: string;
      try {
        const result = await runCommand(
          command,
          [
            ...globals,
            "-p",
            t.projectName,
            "-f",
            t.file,
            "config",
            ...(f === "v2" ? ["--format", "json"] : []),
          ],
          {
            cwd: t.dir,
            env: await envFor(f, t.env),
            ...(t.signal === undefined ? {} : { signal: t.signal }),
            // stdout is the model, with the env's values in it: kept here, never logged.
            onLine: (stream, text) => {
              if (stream !== "stderr") return;
              const line = cleanLine(text);
              if (line === "") return;
              warnings.push(line);
              t.onLine?.(stream, line);
            },
          },
        );
        stdout = result.stdout;
      } catch (error) {
        if (error instanceof CommandError && !error.canceled && error.exitCode !== undefined) {
          const why = maskSecrets(configFailure(error.stderrTail), Object.values(t.env));
          throw new ComposeError(
            `compose file '${t.file}' does not render (${label} config, exit code ${error.exitCode})${why ? `: ${why}` : ""}`,
            "unprocessable",
            error.exitCode,
            error.stderrTail.map(cleanLine),
            false,
            { cause: error },
          );
        }
        throw toComposeError(`${label} config`, error, Object.values(t.env));
      }
      const unset = warnings.filter((w) => UNSET_VARIABLE.test(w));
      const first = unset[0];
      if (first !== undefined) {
        const names = unset.map((w) => UNSET_VARIABLE.exec(w)?.[1] ?? "").filter((n) => n !== "");
        const more = names.length > 1 ? ` (not set either: ${names.slice(1).join(", ")})` : "";
        throw new ComposeError(
          `compose file '${t.file}' does not render: ${warningText(first)}${more}; set it in the project's env or the repository's .env`,
        );
      }
      let model: RenderedCompose["model"];
      try {
        model = parseComposeModel(stdout, f);
      } catch (error) {
        throw new ComposeError(
          `compose file '${t.file}' does not render: ${(error as Error).message}`,
          "unprocessable",
          undefined,
          [],
          false,
          { cause: error },
        );
      }
      return { flavor: f, model } satisfies RenderedCompose;
    },

    async up(t, o = {}) {
      if (o.build === false) {
        await compose("up", ["-d", "--no-build", "--remove-orphans"], t);
        return;
      }
      if ((await flavor()) === "v1") {
        // v1 builds with the docker CLI's classic builder here, which keeps the container of a
        // failed RUN step unless told otherwise; `up --build` has no --force-rm, `build` has.
        await compose("build", ["--force-rm"], t);
        await compose("up", ["-d", "--remove-orphans"], t);
      } else {
        await compose("up", ["-d", "--build", "--remove-orphans"], t);
      }
    },

    async down(t) {
      await compose("down", ["--remove-orphans"], t);
    },

    async remove(t) {
      await compose(
        "down",
        ["--rmi", "local", ...(t.keepVolumes ? [] : ["--volumes"]), "--remove-orphans"],
        t,
      );
      // Sweep what `down` does not know about: services no longer in the file, earlier builds
      // of the project's images that a rebuild left untagged, and the `<project>-<service>`
      // images a rendered model names (`--rmi local` keeps images with an `image:` name).
      await api.removeByLabel(t.projectName, {
        keepVolumes: t.keepVolumes,
        images: true,
        ...(t.services === undefined ? {} : { services: t.services }),
        ...(t.signal === undefined ? {} : { signal: t.signal }),
        ...(t.onLine === undefined ? {} : { onLine: t.onLine }),
      });
    },

    async removeByLabel(projectName, o) {
      checkProjectName(projectName);
      const io: RunIo = {
        ...(o.signal === undefined ? {} : { signal: o.signal }),
        ...(o.onLine === undefined ? {} : { onLine: o.onLine }),
      };
      const filter = `label=${PROJECT_LABEL}=${projectName}`;
      const containers = await docker(
        ["ps", "-a", "--filter", filter, "--format", `{{.ID}}\t{{.Label "${SERVICE_LABEL}"}}`],
        io,
      );
      const services = new Set<string>(o.services ?? []);
      const ids: string[] = [];
      for (const row of containers) {
        const [id = "", service = ""] = row.split("\t");
        ids.push(id);
        if (service) services.add(service);
      }
      // -v: also the anonymous volumes of those containers, as `compose down` does.
      if (ids.length > 0) await docker(["rm", "-f", "-v", ...ids], io);
      const networks = await docker(["network", "ls", "-q", "--filter", filter], io);
      if (networks.length > 0) await docker(["network", "rm", ...networks], io);
      if (!o.keepVolumes) {
        const volumes = await docker(["volume", "ls", "-q", "--filter", filter], io);
        if (volumes.length > 0) await docker(["volume", "rm", ...volumes], io);
      }
      if (o.images) {
        const labelled = await docker(["images", "-q", "--filter", filter], io);
        if (labelled.length > 0) {
          const format = `{{index .Config.Labels "${SERVICE_LABEL}"}}`;
          for (const service of await docker(
            ["image", "inspect", "--format", format, ...new Set(labelled)],
            io,
          )) {
            services.add(service);
          }
        }
        await removeImages(projectName, services, io);
      }
    },

    async runningProjects(prefix = "dockbot-") {
      const rows = await docker([
        "ps",
        "-a",
        "--filter",
        `label=${PROJECT_LABEL}`,
        "--format",
        `{{.Label "${PROJECT_LABEL}"}}\t{{.State}}`,
      ]);
      const projects = new Map<string, { running: number; total: number }>();
      for (const row of rows) {
        const [name = "", state = ""] = row.split("\t");
        if (!name.startsWith(prefix)) continue;
        const entry = projects.get(name) ?? { running: 0, total: 0 };
        entry.total += 1;
        if (state === "running") entry.running += 1;
        projects.set(name, entry);
      }
      return projects;
    },

    async publishedPorts(projectName) {
      checkProjectName(projectName);
      const ids = await docker(["ps", "-q", "--filter", `label=${PROJECT_LABEL}=${projectName}`]);
      if (ids.length === 0) return [];
      const json = (await docker(["inspect", ...ids])).join("\n");
      const containers = JSON.parse(json) as Array<{
        Config?: { Labels?: Record<string, string> | null };
        NetworkSettings?: {
          Ports?: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | null;
        };
      }>;
      const seen = new Set<string>();
      const ports: PublishedPort[] = [];
      for (const c of containers) {
        const service = c.Config?.Labels?.[SERVICE_LABEL] ?? "";
        for (const [spec, bindings] of Object.entries(c.NetworkSettings?.Ports ?? {})) {
          const [containerPort = "", protocol = "tcp"] = spec.split("/");
          // One host port per container port. A binding is listed once for IPv4 and once for
          // IPv6, and with a random host port Docker 20.10 may give the two *different* ports:
          // the IPv4 one is the one `localhost` and most clients reach, so it goes first.
          const ordered = [...(bindings ?? [])].sort(
            (x, y) => Number(isIpv6(x.HostIp)) - Number(isIpv6(y.HostIp)),
          );
          for (const b of ordered) {
            const port = Number(b.HostPort);
            const key = `${service}/${containerPort}/${protocol}`;
            if (!Number.isInteger(port) || port <= 0 || seen.has(key)) continue;
            seen.add(key);
            ports.push({ service, port, containerPort: Number(containerPort), protocol });
          }
        }
      }
      return ports.sort((a, b) => a.service.localeCompare(b.service) || a.port - b.port);
    },

    async inspectContainers(projectName, io = {}) {
      checkProjectName(projectName);
      // By the compose label, not `compose ps`: the same for v1 and v2, and it also shows
      // containers that exited (one-shot services) or are between restarts.
      const ids = await docker(
        ["ps", "-a", "-q", "--no-trunc", "--filter", `label=${PROJECT_LABEL}=${projectName}`],
        io,
      );
      if (ids.length === 0) return [];
      const json = (await docker(["inspect", "--type", "container", ...ids], io)).join("\n");
      return (JSON.parse(json) as InspectedContainer[]).map(containerState);
    },

    async containerLogs(containerId, tail, io = {}) {
      if (!/^[0-9a-f]{12,64}$/.test(containerId)) {
        throw new ComposeError(`'${containerId}' is not a container id`, "invalid_request");
      }
      const out: string[] = [];
      const signal = io.signal
        ? AbortSignal.any([io.signal, AbortSignal.timeout(queryMs)])
        : AbortSignal.timeout(queryMs);
      try {
        // The container's own stdout and stderr both come as the process's: keep both, in order.
        await runCommand("docker", ["logs", "--tail", String(tail), containerId], {
          signal,
          captureStdout: false,
          onLine: (_stream, text) => {
            const line = cleanLine(text);
            if (line !== "") out.push(line);
          },
        });
      } catch (error) {
        throw toComposeError("docker logs", error);
      }
      return out.slice(-tail);
    },

    async tagImage(source, target, io = {}) {
      checkImageRef(source);
      checkImageRef(target);
      await docker(["tag", source, target], io);
    },

    async imageTags(repos, io = {}) {
      if (repos.length === 0) return [];
      for (const repo of repos) checkImageRef(repo);
      const rows = await docker(
        [
          "image",
          "ls",
          "--format",
          "{{.Repository}}:{{.Tag}}",
          ...repos.flatMap((r) => ["--filter", `reference=${r}`]),
        ],
        io,
      );
      // `reference=<repo>` also matches `<repo>/more` paths; only the repositories asked for.
      const wanted = new Set(repos);
      return rows.filter((r) => wanted.has(r.slice(0, r.lastIndexOf(":"))));
    },

    async removeImageTags(refs, io = {}) {
      if (refs.length === 0) return;
      for (const ref of refs) checkImageRef(ref);
      await docker(["rmi", ...refs], io);
    },
  };
  return api;
}
