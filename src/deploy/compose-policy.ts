// The compose policy (docs/api.md, "Compose policy"): a branch's compose file runs on this host,
// so a rendered model that would reach outside its containers is refused before anything is
// built, unless the project's `policy.allow` has the word for it. Pure: the host paths the model
// names are resolved (symlinks followed) by the caller and handed in.
import path from "node:path";
import type { ComposeModel, ServiceModel } from "./compose-model.js";

/** The words of `policy.allow`, each naming what it permits. Defined here only. */
export const POLICY_WORDS = [
  "privileged",
  "host-namespaces",
  "capabilities",
  "devices",
  "docker-socket",
  "host-paths",
  "unconfined",
] as const;

export type PolicyWord = (typeof POLICY_WORDS)[number];

export function isPolicyWord(value: string): value is PolicyWord {
  return (POLICY_WORDS as readonly string[]).includes(value);
}

export interface PolicyViolation {
  /** The service, or `volumes.<key>` / `secrets.<key>` for top-level entries. */
  service: string;
  /** The setting as the compose file writes it, e.g. `privileged: true`. */
  setting: string;
  word: PolicyWord;
}

/** A host path the model makes a container (or a build) read or write. */
export interface HostPathUse {
  service: string;
  setting: string;
  path: string;
}

const NAMESPACES = ["network_mode", "pid", "ipc", "userns_mode", "cgroup", "uts"] as const;
const DOCKER_SOCKETS = ["/var/run/docker.sock", "/run/docker.sock"];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function nonEmptyList(value: unknown): boolean {
  return Array.isArray(value) ? value.length > 0 : isRecord(value) && Object.keys(value).length > 0;
}

/** A host path as compose writes one: absolute, relative, or under `~`. */
function isHostPath(source: string): boolean {
  return source.startsWith("/") || source.startsWith(".") || source.startsWith("~");
}

/** The host source of a short volume string `src:dst[:mode]`, when it is a path. */
function shortBindSource(entry: string): string | undefined {
  const colon = entry.indexOf(":");
  if (colon <= 0) return undefined;
  const source = entry.slice(0, colon);
  return isHostPath(source) ? source : undefined;
}

function serviceHostPaths(name: string, def: ServiceModel): HostPathUse[] {
  const out: HostPathUse[] = [];
  for (const volume of Array.isArray(def.volumes) ? def.volumes : []) {
    if (typeof volume === "string") {
      const source = shortBindSource(volume);
      if (source !== undefined)
        out.push({ service: name, setting: `volumes: ${volume}`, path: source });
    } else if (isRecord(volume) && volume.type === "bind" && typeof volume.source === "string") {
      out.push({
        service: name,
        setting: `volumes: ${volume.source}:${String(volume.target)}`,
        path: volume.source,
      });
    }
  }
  const build = def.build;
  const context = typeof build === "string" ? build : isRecord(build) ? build.context : undefined;
  // A remote context (a git or https URL) reads nothing of this host.
  if (typeof context === "string" && isHostPath(context)) {
    out.push({ service: name, setting: `build.context: ${context}`, path: context });
    if (isRecord(build) && typeof build.dockerfile === "string" && isHostPath(build.dockerfile)) {
      const dockerfile = path.resolve(context, build.dockerfile);
      out.push({
        service: name,
        setting: `build.dockerfile: ${build.dockerfile}`,
        path: dockerfile,
      });
    }
  }
  if (isRecord(build) && isRecord(build.additional_contexts)) {
    for (const [key, value] of Object.entries(build.additional_contexts)) {
      if (typeof value === "string" && isHostPath(value))
        out.push({ service: name, setting: `build.additional_contexts.${key}`, path: value });
    }
  }
  return out;
}

/**
 * Every host path the rendered model uses: bind mounts, build contexts, volumes that are bind
 * mounts in disguise (`driver_opts: {o: bind, device: /path}`), file-backed secrets and configs.
 * Paths as the model writes them (rendering made them absolute).
 */
export function hostPathUses(model: ComposeModel): HostPathUse[] {
  const out: HostPathUse[] = [];
  for (const [name, def] of Object.entries(model.services))
    out.push(...serviceHostPaths(name, def));
  for (const [key, def] of Object.entries(isRecord(model.volumes) ? model.volumes : {})) {
    if (!isRecord(def) || !isRecord(def.driver_opts)) continue;
    const device = def.driver_opts.device;
    const o = def.driver_opts.o;
    if (typeof device === "string" && typeof o === "string" && /\bbind\b/.test(o)) {
      out.push({
        service: `volumes.${key}`,
        setting: `driver_opts.device: ${device}`,
        path: device,
      });
    }
  }
  for (const section of ["secrets", "configs"] as const) {
    const defs = model[section];
    for (const [key, def] of Object.entries(isRecord(defs) ? defs : {})) {
      if (isRecord(def) && typeof def.file === "string") {
        out.push({ service: `${section}.${key}`, setting: `file: ${def.file}`, path: def.file });
      }
    }
  }
  return out;
}

export interface PolicyInput {
  allow: readonly string[];
  /** The checkout, symlinks resolved. */
  checkoutDir: string;
  /** The host paths the model uses (hostPathUses, plus the file's env_file entries). */
  hostPaths: readonly HostPathUse[];
  /** Each of those paths with its symlinks resolved; a path missing here is taken as written. */
  resolved: ReadonlyMap<string, string>;
}

function inside(dir: string, target: string): boolean {
  return target === dir || target.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
}

function serviceViolations(name: string, def: ServiceModel): PolicyViolation[] {
  const out: PolicyViolation[] = [];
  if (def.privileged === true || def.privileged === "true")
    out.push({ service: name, setting: "privileged: true", word: "privileged" });
  for (const key of NAMESPACES) {
    if (def[key] === "host")
      out.push({ service: name, setting: `${key}: host`, word: "host-namespaces" });
  }
  if (nonEmptyList(def.cap_add)) {
    const caps = Array.isArray(def.cap_add) ? def.cap_add.map(String).join(", ") : "";
    out.push({ service: name, setting: `cap_add: [${caps}]`, word: "capabilities" });
  }
  if (nonEmptyList(def.devices)) out.push({ service: name, setting: "devices", word: "devices" });
  const deploy = def.deploy;
  if (isRecord(deploy) && isRecord(deploy.resources) && isRecord(deploy.resources.reservations)) {
    if (nonEmptyList(deploy.resources.reservations.devices))
      out.push({
        service: name,
        setting: "deploy.resources.reservations.devices",
        word: "devices",
      });
  }
  for (const opt of Array.isArray(def.security_opt) ? def.security_opt : []) {
    if (typeof opt === "string" && /unconfined/i.test(opt))
      out.push({ service: name, setting: `security_opt: ${opt}`, word: "unconfined" });
  }
  return out;
}

/** What of the model the project's policy refuses; empty when it may run. */
export function checkComposePolicy(model: ComposeModel, input: PolicyInput): PolicyViolation[] {
  const found: PolicyViolation[] = [];
  for (const [name, def] of Object.entries(model.services))
    found.push(...serviceViolations(name, def));
  const root = input.checkoutDir;
  for (const use of input.hostPaths) {
    // Unresolved, `~/x` is the user's home: never inside the checkout.
    const real =
      input.resolved.get(use.path) ??
      (use.path.startsWith("~") ? path.sep + use.path : path.resolve(root, use.path));
    if (DOCKER_SOCKETS.includes(real) || path.basename(real) === "docker.sock") {
      found.push({ service: use.service, setting: use.setting, word: "docker-socket" });
    } else if (!inside(root, real)) {
      found.push({ service: use.service, setting: use.setting, word: "host-paths" });
    }
  }
  return found.filter((v) => !input.allow.includes(v.word));
}

/** One line: the service, the setting and the word that would permit it. */
export function describeViolation(v: PolicyViolation): string {
  return `service '${v.service}': ${v.setting} is refused by the compose policy (allow it with policy.allow "${v.word}")`;
}
