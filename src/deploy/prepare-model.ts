// The steps between a checkout and a running version (docs/architecture.md, "compose model"):
// render the checkout's compose model, check it against the project's policy, allocate its host
// ports, rewrite it so nothing of it is global, and write it beside the checkout for compose to
// run. Everything that can refuse a version (render, policy, ports) runs before anything is
// built or created in Docker.
import { randomBytes } from "node:crypto";
import { readFile, realpath, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { AppError } from "../errors.js";
import type { Store } from "../store/store.js";
import type { ProjectRecord, VersionPort, VersionRecord } from "../store/types.js";
import {
  applyServiceLimits,
  builtImagesOf,
  envFileEntries,
  parseComposeModel,
  portKey,
  primaryService,
  requestedPorts,
  rewriteComposeModel,
  serviceOrder,
} from "./compose-model.js";
import {
  checkComposePolicy,
  describeViolation,
  hostPathUses,
  type HostPathUse,
} from "./compose-policy.js";
import { allocatePorts, type PortProbe, type PortRange } from "./port-allocator.js";
import type { ComposePort, ComposeTarget } from "./ports.js";

/** A version the project's compose policy refuses (docs/api.md, "Compose policy"). */
export class PolicyRefusedError extends AppError {
  override readonly name = "PolicyRefusedError";
  constructor(message: string) {
    super("unprocessable", message);
  }
}

/** Where a version's rendered model lives: beside its checkout, so git never sees it. */
export function renderedModelPath(checkoutDir: string): string {
  return `${checkoutDir}.compose.json`;
}

export interface PrepareModelDeps {
  compose: ComposePort;
  store: Store;
  portRange: PortRange;
  probePort?: PortProbe;
}

export interface PreparedModel {
  rendered: string;
  ports: VersionPort[];
  primaryService?: string;
}

/** `~` and relative paths as compose reads them, then through every symlink that exists. */
async function resolveHostPath(p: string, base: string): Promise<string> {
  const expanded = p === "~" || p.startsWith("~/") ? path.join(os.homedir(), p.slice(1)) : p;
  let current = path.resolve(base, expanded);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(await realpath(current), ...rest.reverse());
    } catch {
      // Not there (compose would create it): resolve the part that exists.
      const parent = path.dirname(current);
      if (parent === current) return path.join(current, ...rest.reverse());
      rest.push(path.basename(current));
      current = parent;
    }
  }
}

export async function prepareModel(
  deps: PrepareModelDeps,
  project: ProjectRecord,
  version: VersionRecord,
  target: ComposeTarget,
  log: (line: string) => void,
): Promise<PreparedModel> {
  const { flavor, model } = await deps.compose.render(target);
  const fileText = await readFile(path.join(target.dir, target.file), "utf8");
  const fileDir = path.dirname(path.join(target.dir, target.file));

  // Policy, on what the containers and builds would touch of this host.
  const checkoutDir = await realpath(target.dir);
  const uses: HostPathUse[] = [
    ...hostPathUses(model),
    ...envFileEntries(fileText).map((e) => ({
      service: e.service,
      setting: `env_file: ${e.path}`,
      path: path.resolve(fileDir, e.path),
    })),
  ];
  const resolved = new Map<string, string>();
  for (const use of uses) resolved.set(use.path, await resolveHostPath(use.path, target.dir));
  const refused = checkComposePolicy(model, {
    allow: project.policy?.allow ?? [],
    checkoutDir,
    hostPaths: uses,
    resolved,
  });
  const first = refused[0];
  if (first !== undefined) {
    for (const v of refused) log(`[dockbot] ${describeViolation(v)}`);
    const more = refused.length > 1 ? ` (and ${refused.length - 1} more, see the log)` : "";
    throw new PolicyRefusedError(`${describeViolation(first)}${more}`);
  }

  const ports = await allocatePorts(
    {
      store: deps.store,
      range: deps.portRange,
      ...(deps.probePort === undefined ? {} : { probe: deps.probePort }),
    },
    version.id,
    requestedPorts(model),
  );
  const hostPorts = new Map(ports.map((p) => [portKey(p), p.hostPort]));
  const result = rewriteComposeModel(model, {
    flavor,
    composeProject: version.composeProject,
    project: project.name,
    version: version.name,
    hostPorts,
  });
  for (const name of result.external.networks)
    log(`[dockbot] uses the external network '${name}' as it is (shared, not the version's own)`);
  for (const name of result.external.volumes)
    log(`[dockbot] uses the external volume '${name}' as it is (shared, not the version's own)`);
  for (const p of result.ports)
    log(`[dockbot] ${p.service} ${p.target}/${p.protocol} is published on host port ${p.hostPort}`);
  const limited = applyServiceLimits(result.model, project.limits);
  for (const a of limited.applied) {
    const what = [
      ...(a.cpus === undefined ? [] : [`cpus ${a.cpus}`]),
      ...(a.memory === undefined ? [] : [`memory ${a.memory}`]),
    ];
    log(`[dockbot] ${a.service} runs with the project's limits: ${what.join(", ")}`);
  }
  for (const service of limited.own)
    log(`[dockbot] ${service} keeps its own cpus and memory limits`);

  // It holds the env's values: readable by dockbot only, written whole or not at all.
  const rendered = renderedModelPath(target.dir);
  const temp = `${rendered}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(temp, `${JSON.stringify(limited.model, null, 2)}\n`, { mode: 0o600 });
    await rename(temp, rendered);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  const primary = primaryService(model, serviceOrder(fileText));
  return {
    rendered,
    ports: result.ports,
    ...(primary === undefined ? {} : { primaryService: primary }),
  };
}

/** The rendered model a version last ran from, with its built services, if it is there. */
export async function readRenderedModel(
  checkoutDir: string,
): Promise<{ rendered: string; builtServices: string[]; images: string[] } | undefined> {
  const rendered = renderedModelPath(checkoutDir);
  let text: string;
  try {
    text = await readFile(rendered, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const model = parseComposeModel(text, "v2");
  const builtServices = Object.entries(model.services)
    .filter(([, def]) => def.build !== undefined && def.build !== null)
    .map(([name]) => name);
  return { rendered, builtServices, images: builtImagesOf(model) };
}
