// Host ports for versions' published ports (docs/api.md, "Versions side by side").
//
// What holds here:
// - a (version, service, target, protocol) keeps its host port across redeploys until the
//   version is deleted (the store drops a version's ports with the version);
// - no host port is held twice: the store's unique key decides, so two operations (or two
//   replicas on one MongoDB) asking at once get different ports, the loser trying the next one;
// - a port some other process already listens on is skipped (checked on this host);
// - an allocation is all or nothing: when the range runs out, the ports this call took are
//   given back, so a failed first `up` holds nothing. Once a version holds its ports it keeps
//   them, also when a later step of the `up` (build, start) fails: the next `up` gets the same.
import dgram from "node:dgram";
import net from "node:net";
import { AppError } from "../errors.js";
import type { Store } from "../store/store.js";
import type { VersionPort } from "../store/types.js";
import { portKey, type PortRequest } from "./compose-model.js";

export interface PortRange {
  from: number;
  to: number;
}

/** True when nothing on this host listens on the port (for that protocol). */
export type PortProbe = (port: number, protocol: "tcp" | "udp") => Promise<boolean>;

export class PortRangeExhaustedError extends AppError {
  override readonly name = "PortRangeExhaustedError";
  constructor(range: PortRange, request: PortRequest, held: number, busy: number) {
    super(
      "unprocessable",
      `no free host port in DOCKBOT_PORT_RANGE ${range.from}-${range.to} for ${request.service} ` +
        `${request.target}/${request.protocol}: ${held} held by versions, ${busy} in use by other ` +
        "processes; widen DOCKBOT_PORT_RANGE or delete versions",
    );
  }
}

function bindFree(port: number, protocol: "tcp" | "udp", host: string): Promise<boolean> {
  return new Promise((resolve) => {
    // Only "address in use" means taken; an address family this host lacks (no IPv6) says
    // nothing about the port.
    const settle = (error: NodeJS.ErrnoException) => resolve(error.code !== "EADDRINUSE");
    if (protocol === "udp") {
      const socket = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
      socket.once("error", (error) => {
        socket.close();
        settle(error);
      });
      socket.bind({ port, address: host, exclusive: true }, () =>
        socket.close(() => resolve(true)),
      );
      return;
    }
    const server = net.createServer();
    server.once("error", settle);
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Probes by binding the port on every IPv4 and IPv6 address for a moment. */
export const probePort: PortProbe = async (port, protocol) =>
  (await bindFree(port, protocol, "0.0.0.0")) && (await bindFree(port, protocol, "::"));

export interface AllocatePortsOptions {
  store: Store;
  range: PortRange;
  probe?: PortProbe;
}

/**
 * The host port of each request for the version: the one it holds, else a new one from the
 * range. Ports the version holds for requests it no longer makes are given back.
 */
export async function allocatePorts(
  opts: AllocatePortsOptions,
  versionId: string,
  requests: readonly PortRequest[],
): Promise<VersionPort[]> {
  const { store, range } = opts;
  const probe = opts.probe ?? probePort;
  const held = new Map((await store.listPortAllocations(versionId)).map((a) => [portKey(a), a]));
  const missing = requests.filter((r) => !held.has(portKey(r)));
  const taken: number[] = [];
  if (missing.length > 0) {
    const used = new Set((await store.listPortAllocations()).map((a) => a.hostPort));
    let busy = 0;
    let next = range.from;
    for (const request of missing) {
      for (;;) {
        while (next <= range.to && used.has(next)) next++;
        if (next > range.to) {
          if (taken.length > 0) await store.releasePorts(versionId, taken);
          throw new PortRangeExhaustedError(range, request, used.size, busy);
        }
        const port = next++;
        used.add(port);
        if (!(await probe(port, request.protocol))) {
          busy++;
          continue;
        }
        if (await store.reservePort({ versionId, ...request, hostPort: port })) {
          taken.push(port);
          held.set(portKey(request), { versionId, ...request, hostPort: port });
          break;
        }
        // Someone else took the port in the meantime, or (an operation taken over from a dead
        // replica) this very request got one: look before trying the next port.
        const mine = (await store.listPortAllocations(versionId)).find(
          (a) => portKey(a) === portKey(request),
        );
        if (mine) {
          held.set(portKey(request), mine);
          break;
        }
      }
    }
  }
  const wanted = new Set(requests.map(portKey));
  const stale = [...held.values()].filter((a) => !wanted.has(portKey(a))).map((a) => a.hostPort);
  if (stale.length > 0) await store.releasePorts(versionId, stale);
  return requests.map((r) => {
    const hostPort = held.get(portKey(r))?.hostPort ?? 0;
    return { service: r.service, target: r.target, protocol: r.protocol, hostPort };
  });
}
