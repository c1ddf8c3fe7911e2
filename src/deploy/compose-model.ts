// The compose model a version runs (docs/api.md, "Versions side by side"): what
// `docker compose config` (v2, JSON) or `docker-compose config` (v1, YAML) printed for the
// checkout, rewritten so that nothing of it is global. Pure functions, model in, model out; the
// commands that render and run it are in compose.ts, the steps in between in prepare-model.ts.
//
// The rewrite, per docs/api.md:
// - every `ports` entry gets the host port allocated to (service, target, protocol); its
//   `host_ip` stays;
// - `container_name` goes; the old name becomes an alias of the service on each of the
//   version's own networks (never on an external one, which other versions share);
// - networks and volumes with an explicit `name:` get `<composeProject>_<key>`, the name compose
//   gives unnamed ones; `external` ones stay as they are and are reported;
// - a built service's `image:` becomes `<composeProject>-<service>`;
// - every service gets the labels `dockbot.project` and `dockbot.version`;
// - a top-level `name:` becomes the compose project name (v1 knows no top-level `name:`);
// - the project's `limits` go on every service that sets none of that kind itself
//   (applyServiceLimits, docs/api.md "Resources").
//
// Both flavours' shapes are read: v2 prints long syntax only; v1 prints short strings where the
// file had them (`127.0.0.1:8080:80/udp`, `data:/data:rw`, `networks: [a, b]`, label lists).
import { parse as parseYaml } from "yaml";
import type { ServiceLimits, VersionPort } from "../store/types.js";
import { parseByteSize } from "./byte-sizes.js";

export type ComposeFlavor = "v2" | "v1";

/** A service of the rendered model; fields are compose's own. */
export type ServiceModel = Record<string, unknown>;

export interface ComposeModel {
  services: Record<string, ServiceModel>;
  networks?: Record<string, unknown>;
  volumes?: Record<string, unknown>;
  [key: string]: unknown;
}

/** A published port a version asks for; the host port comes from the allocation. */
export interface PortRequest {
  service: string;
  target: number;
  protocol: "tcp" | "udp";
}

/** One `ports` entry, read from either syntax. */
export interface ParsedPort {
  target: number;
  protocol: string;
  hostIp?: string;
  published?: string;
  mode?: string;
}

export const PROJECT_LABEL = "dockbot.project";
export const VERSION_LABEL = "dockbot.version";
export const PRIMARY_LABEL = "dockbot.primary";

export class ComposeModelError extends Error {
  override readonly name = "ComposeModelError";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The output of `config` as a model: JSON (v2) or YAML (v1), with a `services` map. */
export function parseComposeModel(text: string, flavor: ComposeFlavor): ComposeModel {
  let data: unknown;
  try {
    data = flavor === "v2" ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ComposeModelError(
      `the rendered compose model is not ${flavor === "v2" ? "JSON" : "YAML"}`,
      { cause: error },
    );
  }
  if (!isRecord(data) || !isRecord(data.services)) {
    throw new ComposeModelError("the rendered compose model has no services");
  }
  for (const [name, service] of Object.entries(data.services)) {
    if (!isRecord(service)) throw new ComposeModelError(`service '${name}' is not a mapping`);
  }
  return data as ComposeModel;
}

/** Service names in the order the compose file lists them (`config` sorts them). */
export function serviceOrder(fileText: string): string[] {
  let data: unknown;
  try {
    data = parseYaml(fileText);
  } catch {
    // The rendering already accepted the file; an order we cannot read falls back to the
    // model's own order (see primaryService).
    return [];
  }
  return isRecord(data) && isRecord(data.services) ? Object.keys(data.services) : [];
}

/** `env_file` entries of each service as the compose file writes them (before rendering). */
export function envFileEntries(fileText: string): Array<{ service: string; path: string }> {
  let data: unknown;
  try {
    data = parseYaml(fileText);
  } catch {
    return [];
  }
  if (!isRecord(data) || !isRecord(data.services)) return [];
  const out: Array<{ service: string; path: string }> = [];
  for (const [service, def] of Object.entries(data.services)) {
    if (!isRecord(def)) continue;
    const raw = def.env_file;
    const list: unknown[] = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
    for (const entry of list) {
      const file = typeof entry === "string" ? entry : isRecord(entry) ? entry.path : undefined;
      if (typeof file === "string" && file !== "") out.push({ service, path: file });
    }
  }
  return out;
}

function protocolOf(value: unknown): string {
  return typeof value === "string" && value !== "" ? value.toLowerCase() : "tcp";
}

function range(text: string): number[] | undefined {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) return undefined;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (to < from) return undefined;
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/**
 * One `ports` entry as a list of ports: long syntax (`{target, published, host_ip, protocol}`),
 * a number, or short syntax `[host_ip:][published:]target[/protocol]` with ranges
 * (`8000-8001:80-81`).
 */
export function parsePortEntry(entry: unknown): ParsedPort[] {
  if (typeof entry === "number") return [{ target: entry, protocol: "tcp" }];
  if (isRecord(entry)) {
    const target = Number(entry.target);
    if (!Number.isInteger(target)) throw new ComposeModelError("a port has no target");
    const port: ParsedPort = { target, protocol: protocolOf(entry.protocol) };
    if (typeof entry.host_ip === "string" && entry.host_ip !== "") port.hostIp = entry.host_ip;
    const published = entry.published;
    if (typeof published === "number" || (typeof published === "string" && published !== ""))
      port.published = String(published);
    if (typeof entry.mode === "string") port.mode = entry.mode;
    return [port];
  }
  if (typeof entry !== "string") throw new ComposeModelError("a port entry is not understood");
  let text = entry.trim();
  let protocol = "tcp";
  const slash = text.lastIndexOf("/");
  if (slash >= 0) {
    protocol = protocolOf(text.slice(slash + 1));
    text = text.slice(0, slash);
  }
  let hostIp: string | undefined;
  if (text.startsWith("[")) {
    const end = text.indexOf("]");
    hostIp = text.slice(1, end);
    text = text.slice(end + 2);
  }
  const parts = text.split(":");
  if (hostIp === undefined && parts.length === 3) hostIp = parts.shift();
  const targetText = parts.pop() ?? "";
  const publishedText = parts.pop() ?? "";
  const targets = range(targetText);
  if (!targets) throw new ComposeModelError(`port '${entry}' is not understood`);
  const published = publishedText === "" ? undefined : range(publishedText);
  return targets.map((target, i) => {
    const port: ParsedPort = { target, protocol };
    if (hostIp !== undefined && hostIp !== "") port.hostIp = hostIp;
    const p = published?.[i] ?? published?.[0];
    if (p !== undefined) port.published = String(p);
    return port;
  });
}

function portsOf(service: ServiceModel): ParsedPort[] {
  const raw = service.ports;
  if (!Array.isArray(raw)) return [];
  return raw.flatMap(parsePortEntry);
}

function isAllocatable(protocol: string): protocol is "tcp" | "udp" {
  return protocol === "tcp" || protocol === "udp";
}

export function portKey(p: { service: string; target: number; protocol: string }): string {
  return `${p.service}/${p.target}/${p.protocol}`;
}

/** Every published (service, target, protocol) of the model, each once, in model order. */
export function requestedPorts(model: ComposeModel): PortRequest[] {
  const seen = new Set<string>();
  const out: PortRequest[] = [];
  for (const [service, def] of Object.entries(model.services)) {
    for (const port of portsOf(def)) {
      if (!isAllocatable(port.protocol)) continue;
      const request: PortRequest = { service, target: port.target, protocol: port.protocol };
      const key = portKey(request);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(request);
    }
  }
  return out;
}

/** Labels as a map, whichever way the file wrote them (`{a: b}` or `["a=b"]`). */
export function labelsOf(value: unknown): Record<string, string> {
  if (Array.isArray(value)) {
    const out: Record<string, string> = {};
    for (const item of value) {
      if (typeof item !== "string") continue;
      const eq = item.indexOf("=");
      if (eq < 0) out[item] = "";
      else out[item.slice(0, eq)] = item.slice(eq + 1);
    }
    return out;
  }
  if (!isRecord(value)) return {};
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      typeof v === "string" || typeof v === "number" || typeof v === "boolean" ? String(v) : "",
    ]),
  );
}

/**
 * The version's primary service (docs/api.md, "Preview router"): the one labelled
 * `dockbot.primary: "true"`, else the first service of the file with a published TCP port.
 */
export function primaryService(model: ComposeModel, fileOrder: string[]): string | undefined {
  const names = Object.keys(model.services);
  const ordered = [
    ...fileOrder.filter((n) => names.includes(n)),
    ...names.filter((n) => !fileOrder.includes(n)),
  ];
  const labelled = ordered.find(
    (n) => labelsOf(model.services[n]?.labels)[PRIMARY_LABEL]?.toLowerCase() === "true",
  );
  if (labelled !== undefined) return labelled;
  const tcp = new Set(
    requestedPorts(model)
      .filter((p) => p.protocol === "tcp")
      .map((p) => p.service),
  );
  return ordered.find((n) => tcp.has(n));
}

export interface RewriteContext {
  flavor: ComposeFlavor;
  composeProject: string;
  /** Names of the dockbot project and version, for the labels. */
  project: string;
  version: string;
  /** Host port per portKey(service, target, protocol), from the allocation. */
  hostPorts: ReadonlyMap<string, number>;
}

export interface RewriteResult {
  model: ComposeModel;
  /** The version's published ports with their host ports, in model order. */
  ports: VersionPort[];
  /** Built services and the image each now builds (`<composeProject>-<service>`). */
  builtImages: Array<{ service: string; image: string }>;
  /** External networks and volumes the model uses as they are (their Docker names). */
  external: { networks: string[]; volumes: string[] };
}

function isExternal(def: unknown): boolean {
  if (!isRecord(def)) return false;
  return def.external === true || isRecord(def.external);
}

function externalName(key: string, def: unknown): string {
  if (!isRecord(def)) return key;
  if (typeof def.name === "string") return def.name;
  // Old syntax: `external: {name: x}`.
  if (isRecord(def.external) && typeof def.external.name === "string") return def.external.name;
  return key;
}

/** Top-level networks or volumes: explicit names become the version's, external ones stay. */
function rewriteTopLevel(
  section: unknown,
  composeProject: string,
  external: string[],
): Record<string, unknown> | undefined {
  if (!isRecord(section)) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(section)) {
    if (isExternal(def)) {
      external.push(externalName(key, def));
      out[key] = def;
    } else if (isRecord(def) && typeof def.name === "string") {
      out[key] = { ...def, name: `${composeProject}_${key}` };
    } else {
      out[key] = def;
    }
  }
  return out;
}

function rewritePorts(
  service: string,
  def: ServiceModel,
  ctx: RewriteContext,
  ports: VersionPort[],
): unknown[] | undefined {
  if (!Array.isArray(def.ports)) return undefined;
  const out: unknown[] = [];
  for (const port of def.ports.flatMap(parsePortEntry)) {
    if (!isAllocatable(port.protocol)) {
      // No host port dockbot could hand out (sctp): Docker picks a free one, never a fixed one.
      out.push(
        ctx.flavor === "v2"
          ? { target: port.target, protocol: port.protocol }
          : `${port.target}/${port.protocol}`,
      );
      continue;
    }
    const key = portKey({ service, target: port.target, protocol: port.protocol });
    const hostPort = ctx.hostPorts.get(key);
    if (hostPort === undefined) {
      throw new ComposeModelError(`no host port allocated for ${service} ${port.target}`);
    }
    if (!ports.some((p) => portKey(p) === key))
      ports.push({ service, target: port.target, protocol: port.protocol, hostPort });
    if (ctx.flavor === "v2") {
      const entry: Record<string, unknown> = {
        target: port.target,
        published: String(hostPort),
        protocol: port.protocol,
      };
      if (port.hostIp !== undefined) entry.host_ip = port.hostIp;
      if (port.mode !== undefined) entry.mode = port.mode;
      out.push(entry);
    } else {
      // v1's long syntax has no host_ip: the short one says everything.
      const ip = port.hostIp === undefined ? "" : `${port.hostIp}:`;
      out.push(`${ip}${hostPort}:${port.target}/${port.protocol}`);
    }
  }
  return out;
}

/** The service's networks with `alias` added on each of the version's own networks. */
function withAlias(
  def: ServiceModel,
  alias: string,
  externalNetworks: ReadonlySet<string>,
): Record<string, unknown> {
  const raw = def.networks;
  const networks: Record<string, unknown> = Array.isArray(raw)
    ? Object.fromEntries(raw.filter((n) => typeof n === "string").map((n) => [n, null]))
    : isRecord(raw)
      ? { ...raw }
      : { default: null };
  for (const [key, value] of Object.entries(networks)) {
    if (externalNetworks.has(key)) continue;
    const entry = isRecord(value) ? { ...value } : {};
    const aliases = Array.isArray(entry.aliases) ? entry.aliases.map(String) : [];
    if (!aliases.includes(alias)) aliases.push(alias);
    entry.aliases = aliases;
    networks[key] = entry;
  }
  return networks;
}

/** The rewrite described at the top of this file. The input model is not changed. */
export function rewriteComposeModel(model: ComposeModel, ctx: RewriteContext): RewriteResult {
  const external = { networks: [] as string[], volumes: [] as string[] };
  const externalNetworkKeys = new Set(
    Object.entries(isRecord(model.networks) ? model.networks : {})
      .filter(([, def]) => isExternal(def))
      .map(([key]) => key),
  );
  // Old container names, so `network_mode: container:<old name>` can follow the service.
  const serviceByContainerName = new Map<string, string>();
  for (const [name, def] of Object.entries(model.services)) {
    if (typeof def.container_name === "string")
      serviceByContainerName.set(def.container_name, name);
  }
  const ports: VersionPort[] = [];
  const builtImages: Array<{ service: string; image: string }> = [];
  const services: Record<string, ServiceModel> = {};
  for (const [name, original] of Object.entries(model.services)) {
    const def: ServiceModel = { ...original };
    const rewrittenPorts = rewritePorts(name, def, ctx, ports);
    if (rewrittenPorts !== undefined) def.ports = rewrittenPorts;
    if (typeof def.network_mode === "string" && def.network_mode.startsWith("container:")) {
      const target = serviceByContainerName.get(def.network_mode.slice("container:".length));
      if (target !== undefined) def.network_mode = `service:${target}`;
    }
    if (typeof def.container_name === "string") {
      const alias = def.container_name;
      delete def.container_name;
      // A service in another's network namespace (or none, or the host's) has no networks.
      if (def.network_mode === undefined) def.networks = withAlias(def, alias, externalNetworkKeys);
    }
    if (def.build !== undefined && def.build !== null) {
      const image = `${ctx.composeProject}-${name}`;
      def.image = image;
      builtImages.push({ service: name, image });
    }
    def.labels = {
      ...labelsOf(def.labels),
      [PROJECT_LABEL]: ctx.project,
      [VERSION_LABEL]: ctx.version,
    };
    services[name] = def;
  }
  const out: ComposeModel = { ...model, services };
  const networks = rewriteTopLevel(model.networks, ctx.composeProject, external.networks);
  if (networks !== undefined) out.networks = networks;
  const volumes = rewriteTopLevel(model.volumes, ctx.composeProject, external.volumes);
  if (volumes !== undefined) out.volumes = volumes;
  if (ctx.flavor === "v2") out.name = ctx.composeProject;
  else delete out.name;
  return { model: out, ports, builtImages, external };
}

/** Built services' images as a rendered model written by dockbot names them. */
export function builtImagesOf(model: ComposeModel): string[] {
  return Object.values(model.services)
    .filter((def) => def.build !== undefined && def.build !== null)
    .map((def) => def.image)
    .filter((image): image is string => typeof image === "string");
}

/** A project's limit written on one service of the model (docs/api.md, "Resources"). */
export interface AppliedLimits {
  service: string;
  cpus?: number;
  /** As the project wrote it ("512m"); the model holds its bytes. */
  memory?: string;
}

export interface LimitsResult {
  model: ComposeModel;
  /** Services that got one or both of the project's limits, in model order. */
  applied: AppliedLimits[];
  /** Services that set both limits themselves, so the project's apply to none of it. */
  own: string[];
}

function present(value: unknown): boolean {
  return value !== undefined && value !== null && value !== "";
}

/**
 * The project's `limits: {cpus, memory}` on every service that sets no limit of that kind itself
 * (docs/api.md, "Resources"): a service's own CPU limit (`cpus`, `cpu_quota`/`cpu_period`, which
 * Docker refuses next to `cpus`, `deploy.resources.limits.cpus`) or memory limit (`mem_limit`,
 * `deploy.resources.limits.memory`) wins, each kind on its own.
 *
 * Where they are written, measured with Compose 2.26 and 1.29 on a rendered file: a service with
 * a `deploy.resources.limits` block gets the missing ones there (v2 refuses a service-level `cpus`
 * or `mem_limit` next to it as "distinct values", v1 lets that block replace `mem_limit`);
 * others get the service-level `cpus` and `mem_limit` both flavours run. Memory is written in
 * bytes, as a string (v2 requires a string in `deploy`; both read it), so no unit is left to either
 * flavour's own parser. The input model is not changed.
 */
export function applyServiceLimits(
  model: ComposeModel,
  limits: ServiceLimits | undefined,
): LimitsResult {
  const cpus = limits?.cpus;
  const memory = limits?.memory;
  const memoryBytes = memory === undefined ? undefined : parseByteSize(memory);
  if (memory !== undefined && memoryBytes === undefined) {
    throw new ComposeModelError(`the project's memory limit '${memory}' is not a size`);
  }
  if (cpus === undefined && memoryBytes === undefined) return { model, applied: [], own: [] };
  const applied: AppliedLimits[] = [];
  const own: string[] = [];
  const services: Record<string, ServiceModel> = {};
  for (const [name, original] of Object.entries(model.services)) {
    const deploy = isRecord(original.deploy) ? original.deploy : undefined;
    const resources = isRecord(deploy?.resources) ? deploy.resources : undefined;
    const deployLimits = isRecord(resources?.limits) ? resources.limits : undefined;
    const ownCpus =
      present(original.cpus) ||
      present(original.cpu_quota) ||
      present(original.cpu_period) ||
      present(deployLimits?.cpus);
    const ownMemory = present(original.mem_limit) || present(deployLimits?.memory);
    const add: Record<string, unknown> = {};
    const entry: AppliedLimits = { service: name };
    if (cpus !== undefined && !ownCpus) {
      add.cpus = cpus;
      entry.cpus = cpus;
    }
    if (memory !== undefined && memoryBytes !== undefined && !ownMemory) {
      add.memory = String(memoryBytes);
      entry.memory = memory;
    }
    if (Object.keys(add).length === 0) {
      if (ownCpus && ownMemory) own.push(name);
      services[name] = original;
      continue;
    }
    applied.push(entry);
    if (deployLimits !== undefined && deploy !== undefined && resources !== undefined) {
      services[name] = {
        ...original,
        deploy: { ...deploy, resources: { ...resources, limits: { ...deployLimits, ...add } } },
      };
    } else {
      const def: ServiceModel = { ...original };
      if (add.cpus !== undefined) def.cpus = add.cpus;
      if (add.memory !== undefined) def.mem_limit = add.memory;
      services[name] = def;
    }
  }
  return { model: { ...model, services }, applied, own };
}
