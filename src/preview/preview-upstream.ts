// Where the preview router sends a request for one service of a version: asked of Docker once per
// (version, service) and cached by preview-targets.ts. docs/deploying.md ("Preview router") says
// which mode fits which way of running dockbot:
// - `published`: the service's published host port, at the declared host_ip (all interfaces:
//   127.0.0.1), or at a fixed address (e.g. a Kubernetes node's IP). dockbot on the host.
// - `network`: dockbot's own container and each routed service container are attached to one
//   network, `dockbot-preview`, and the router connects to the service's address there at its
//   target port. dockbot in a container of the engine it drives, where 127.0.0.1 is the
//   container itself. Only what the router routes to joins it, and it is `--internal`, so it
//   gives no container a new way out.
// - `auto`: `network` when dockbot runs in a bridged container of this engine, else `published`.
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import type { PreviewUpstream } from "../config.js";
import { CommandError, runCommand } from "../deploy/run-command.js";

/** The network routed services and dockbot's container share in `network` mode. */
export const PREVIEW_NETWORK = "dockbot-preview";

export interface UpstreamAddress {
  host: string;
  port: number;
}

export interface ServiceLocator {
  /** The mode `auto` resolved to on this machine. */
  mode(): Promise<"published" | "network">;
  /** Undefined when no container of that service runs or it does not publish that port. */
  locate(
    composeProject: string,
    service: string,
    target: number,
  ): Promise<UpstreamAddress | undefined>;
}

/** How dockbot asks Docker: the one command runner (argv arrays), stdout as text. */
export type DockerCli = (args: string[]) => Promise<string>;

export const dockerCli: DockerCli = async (args) =>
  (await runCommand("docker", args, { captureStdout: true })).stdout;

interface ContainerJson {
  Id: string;
  HostConfig?: { NetworkMode?: string };
  NetworkSettings?: {
    Ports?: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | null;
    Networks?: Record<string, { IPAddress?: string; GlobalIPv6Address?: string }> | null;
  };
}

/** The id of the Docker container this process runs in, read from its bind-mounted files. */
export async function ownContainerId(
  mountinfo = "/proc/self/mountinfo",
): Promise<string | undefined> {
  const text = await readFile(mountinfo, "utf8").catch(() => "");
  return /\/containers\/([0-9a-f]{64})\/(?:hostname|hosts|resolv\.conf)\b/.exec(text)?.[1];
}

const ANY_ADDRESS = new Set(["", "0.0.0.0", "::"]);

/** The published address of `target/tcp`, IPv4 binding first (see compose.ts publishedPorts). */
export function publishedAddress(
  container: ContainerJson,
  target: number,
  address?: string,
): UpstreamAddress | undefined {
  const bindings = [...(container.NetworkSettings?.Ports?.[`${target}/tcp`] ?? [])].sort(
    (a, b) => Number((a.HostIp ?? "").includes(":")) - Number((b.HostIp ?? "").includes(":")),
  );
  const binding = bindings.find((b) => Number(b.HostPort) > 0);
  if (!binding) return undefined;
  const hostIp = binding.HostIp ?? "";
  return {
    host: address ?? (ANY_ADDRESS.has(hostIp) ? "127.0.0.1" : hostIp),
    port: Number(binding.HostPort),
  };
}

export function createServiceLocator(opts: {
  upstream: PreviewUpstream;
  logger: Logger;
  docker?: DockerCli;
  /** Overrides the container detection (tests). */
  ownContainer?: () => Promise<string | undefined>;
}): ServiceLocator {
  const docker = opts.docker ?? dockerCli;
  const inspect = async (id: string): Promise<ContainerJson | undefined> => {
    try {
      return (JSON.parse(await docker(["container", "inspect", id])) as ContainerJson[])[0];
    } catch (error) {
      if (error instanceof CommandError) return undefined;
      throw error;
    }
  };

  // What this process is: resolved once, on first use.
  let self: Promise<{ mode: "published" | "network"; container?: ContainerJson }> | undefined;
  const whoAmI = () =>
    (self ??= (async () => {
      const id = await (opts.ownContainer ?? ownContainerId)();
      const container = id === undefined ? undefined : await inspect(id);
      const bridged = container !== undefined && container.HostConfig?.NetworkMode !== "host";
      const mode =
        opts.upstream.mode === "auto" ? (bridged ? "network" : "published") : opts.upstream.mode;
      opts.logger.info(
        { mode, container: container?.Id.slice(0, 12) },
        "preview router reaches services by " +
          (mode === "network" ? `the ${PREVIEW_NETWORK} network` : "their published ports"),
      );
      return bridged ? { mode, container } : { mode };
    })());

  // network mode: the network exists and dockbot's own (bridged) container is on it.
  let joined: Promise<void> | undefined;
  const joinNetwork = () =>
    (joined ??= (async () => {
      const exists = await docker(["network", "inspect", PREVIEW_NETWORK]).then(
        () => true,
        (error: unknown) => {
          if (error instanceof CommandError) return false;
          throw error;
        },
      );
      if (!exists) {
        await docker([
          "network",
          "create",
          "--internal",
          "--label",
          "dockbot.preview=true",
          PREVIEW_NETWORK,
        ]).catch((error: unknown) => {
          // Another replica made it a moment ago.
          if (!(error instanceof CommandError && /already exists/.test(error.message))) throw error;
        });
      }
      const me = (await whoAmI()).container;
      if (me && !(PREVIEW_NETWORK in (me.NetworkSettings?.Networks ?? {}))) {
        await connect(me.Id);
      }
    })().catch((error: unknown) => {
      joined = undefined;
      throw error;
    }));

  const connect = (id: string) =>
    docker(["network", "connect", PREVIEW_NETWORK, id]).then(
      () => undefined,
      (error: unknown) => {
        if (!(error instanceof CommandError && /already exists/.test(error.message))) throw error;
      },
    );

  return {
    mode: async () => (await whoAmI()).mode,
    async locate(composeProject, service, target) {
      const ids = (
        await docker([
          "ps",
          "-q",
          "--no-trunc",
          "--filter",
          `label=com.docker.compose.project=${composeProject}`,
          "--filter",
          `label=com.docker.compose.service=${service}`,
          "--filter",
          "status=running",
        ])
      )
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean)
        .sort();
      const id = ids[0];
      if (id === undefined) return undefined;
      const mode = (await whoAmI()).mode;
      let container = await inspect(id);
      if (!container) return undefined;
      if (mode === "published") {
        const address = opts.upstream.mode === "published" ? opts.upstream.address : undefined;
        return publishedAddress(container, target, address);
      }
      await joinNetwork();
      if (!(PREVIEW_NETWORK in (container.NetworkSettings?.Networks ?? {}))) {
        await connect(id);
        container = await inspect(id);
      }
      const ip = container?.NetworkSettings?.Networks?.[PREVIEW_NETWORK]?.IPAddress;
      return ip ? { host: ip, port: target } : undefined;
    },
  };
}
