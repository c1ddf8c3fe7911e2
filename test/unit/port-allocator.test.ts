// Host port allocation (src/deploy/port-allocator.ts) over a real SQLite store and real sockets
// on this host, and the DOCKBOT_PORT_RANGE setting it draws from.
import net from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";
import type { PortRequest } from "../../src/deploy/compose-model.js";
import {
  allocatePorts,
  probePort,
  PortRangeExhaustedError,
  type PortRange,
} from "../../src/deploy/port-allocator.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import type { Store } from "../../src/store/store.js";

const web: PortRequest = { service: "web", target: 8080, protocol: "tcp" };
const api: PortRequest = { service: "api", target: 8081, protocol: "tcp" };
const dns: PortRequest = { service: "dns", target: 53, protocol: "udp" };

/** A free block of host ports: the OS's pick of one free port, and the ones after it. */
async function freeRange(size: number): Promise<PortRange> {
  for (;;) {
    const server = net.createServer();
    const port = await new Promise<number>((resolve) =>
      server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)),
    );
    await new Promise((resolve) => server.close(resolve));
    const from = Math.min(port, 65535 - size);
    const free = await Promise.all(
      Array.from({ length: size }, (_, i) => probePort(from + i, "tcp")),
    );
    if (free.every(Boolean)) return { from, to: from + size - 1 };
  }
}

describe("allocating host ports", () => {
  let store: Store;
  const servers: net.Server[] = [];

  beforeEach(async () => {
    store = await openSqliteStore(":memory:");
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
    await store.close();
  });

  it("gives each request its own port and the same ports again on a redeploy", async () => {
    const range = await freeRange(10);
    const first = await allocatePorts({ store, range }, "v1", [web, api, dns]);
    expect(first.map((p) => p.hostPort)).toStrictEqual([
      range.from,
      range.from + 1,
      range.from + 2,
    ]);
    expect(first[2]).toStrictEqual({ ...dns, hostPort: range.from + 2 });
    const again = await allocatePorts({ store, range }, "v1", [dns, web, api]);
    expect(again.map((p) => p.hostPort)).toStrictEqual([
      range.from + 2,
      range.from,
      range.from + 1,
    ]);
    const other = await allocatePorts({ store, range }, "v2", [web]);
    expect(other[0]?.hostPort).toBe(range.from + 3);
  });

  it("skips a port another process listens on", async () => {
    const range = await freeRange(5);
    const squatter = net.createServer();
    servers.push(squatter);
    await new Promise<void>((resolve) => squatter.listen(range.from, "127.0.0.1", resolve));
    expect(await probePort(range.from, "tcp")).toBe(false);
    const [got] = await allocatePorts({ store, range }, "v1", [web]);
    expect(got?.hostPort).toBe(range.from + 1);
  });

  it("gives back ports a redeploy no longer asks for, for others to take", async () => {
    const range = await freeRange(5);
    await allocatePorts({ store, range }, "v1", [web, api]);
    await allocatePorts({ store, range }, "v1", [api]);
    expect((await store.listPortAllocations("v1")).map((a) => a.service)).toStrictEqual(["api"]);
    const [got] = await allocatePorts({ store, range }, "v2", [web]);
    expect(got?.hostPort).toBe(range.from);
  });

  it("never hands one port to two versions allocating at once", async () => {
    const range = await freeRange(20);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => allocatePorts({ store, range }, `v${i}`, [web, api])),
    );
    const ports = results.flat().map((p) => p.hostPort);
    expect(new Set(ports).size).toBe(20);
  });

  it("fails naming the range when it runs out, holding none of the ports it took", async () => {
    const range = await freeRange(3);
    await allocatePorts({ store, range }, "v1", [web, api]);
    const error = await allocatePorts({ store, range }, "v2", [web, api]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PortRangeExhaustedError);
    expect((error as Error).message).toMatch(
      new RegExp(`DOCKBOT_PORT_RANGE ${range.from}-${range.to} for api 8081/tcp`),
    );
    expect(await store.listPortAllocations("v2")).toStrictEqual([]);
    expect(await store.listPortAllocations("v1")).toHaveLength(2);
  });
});

describe("DOCKBOT_PORT_RANGE", () => {
  it("defaults to 20000-29999 and reads low-high", () => {
    const parse = (env: Record<string, string>) => parseConfig(env, "/");
    const d = parse({});
    expect(d.ok && d.config.portRange).toStrictEqual({ from: 20000, to: 29999 });
    const r = parse({ DOCKBOT_PORT_RANGE: "30000-30009" });
    expect(r.ok && r.config.portRange).toStrictEqual({ from: 30000, to: 30009 });
  });

  it.each(["30000", "30009-30000", "0-10", "1-70000", "a-b"])(
    "stops at start with one line naming the variable for %j",
    (value) => {
      const r = parseConfig({ DOCKBOT_PORT_RANGE: value }, "/");
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.errors).toStrictEqual([expect.stringMatching(/^DOCKBOT_PORT_RANGE /)]);
    },
  );
});
