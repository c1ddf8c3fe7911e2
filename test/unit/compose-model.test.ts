// The rewrite of a rendered compose model (src/deploy/compose-model.ts), on files that Compose
// v2 (`docker compose config --format json`) and v1 (`docker-compose config`) really printed for
// test/fixtures/compose/shop, checked out at /tmp/dockbot/checkouts/shop/main.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  applyServiceLimits,
  builtImagesOf,
  envFileEntries,
  parseComposeModel,
  parsePortEntry,
  portKey,
  primaryService,
  requestedPorts,
  rewriteComposeModel,
  serviceOrder,
  type ComposeFlavor,
  type ComposeModel,
} from "../../src/deploy/compose-model.js";

const fixtures = path.join(import.meta.dirname, "..", "fixtures", "compose");
const read = (name: string) => readFileSync(path.join(fixtures, name), "utf8");
const rendered: Record<ComposeFlavor, ComposeModel> = {
  v2: parseComposeModel(read("shop.rendered-v2.json"), "v2"),
  v1: parseComposeModel(read("shop.rendered-v1.yaml"), "v1"),
};
const shopFile = read("shop/compose.yaml");

const hostPorts = new Map([
  ["web/8080/tcp", 20001],
  ["api/8081/tcp", 20002],
]);
const ctx = (flavor: ComposeFlavor) => ({
  flavor,
  composeProject: "dockbot-shop-feature",
  project: "shop",
  version: "feature",
  hostPorts,
});

describe("reading ports", () => {
  it.each([
    ["8080", [{ target: 8080, protocol: "tcp" }]],
    [8080, [{ target: 8080, protocol: "tcp" }]],
    ["80:8080", [{ target: 8080, protocol: "tcp", published: "80" }]],
    [
      "127.0.0.1:80:8080/udp",
      [{ target: 8080, protocol: "udp", published: "80", hostIp: "127.0.0.1" }],
    ],
    ["127.0.0.1::8080", [{ target: 8080, protocol: "tcp", hostIp: "127.0.0.1" }]],
    ["[::1]:80:8080", [{ target: 8080, protocol: "tcp", published: "80", hostIp: "::1" }]],
    [
      "8000-8001:9000-9001",
      [
        { target: 9000, protocol: "tcp", published: "8000" },
        { target: 9001, protocol: "tcp", published: "8001" },
      ],
    ],
    [
      { target: 80, published: "8080", host_ip: "127.0.0.1", protocol: "tcp", mode: "ingress" },
      [{ target: 80, protocol: "tcp", published: "8080", hostIp: "127.0.0.1", mode: "ingress" }],
    ],
    [{ target: 80, published: 8080 }, [{ target: 80, protocol: "tcp", published: "8080" }]],
  ])("reads %j", (entry, expected) => {
    expect(parsePortEntry(entry)).toStrictEqual(expected);
  });

  it("refuses a port it cannot read rather than guessing", () => {
    expect(() => parsePortEntry("web:abc")).toThrow(/not understood/);
    expect(() => parsePortEntry({ published: 80 })).toThrow(/no target/);
  });
});

describe.each(["v2", "v1"] as const)("the shop app rendered by Compose %s", (flavor) => {
  const model = rendered[flavor];
  const { model: out, ports, builtImages, external } = rewriteComposeModel(model, ctx(flavor));
  const web = out.services.web ?? {};
  const api = out.services.api ?? {};

  it("asks for one host port per published (service, target, protocol)", () => {
    expect(requestedPorts(model).map(portKey).sort()).toStrictEqual([
      "api/8081/tcp",
      "web/8080/tcp",
    ]);
  });

  it("publishes each port on its allocated host port and keeps the declared host_ip", () => {
    expect(ports.sort((a, b) => a.hostPort - b.hostPort)).toStrictEqual([
      { service: "web", target: 8080, protocol: "tcp", hostPort: 20001 },
      { service: "api", target: 8081, protocol: "tcp", hostPort: 20002 },
    ]);
    expect((web.ports as unknown[]).flatMap(parsePortEntry)).toStrictEqual([
      expect.objectContaining({ target: 8080, published: "20001", protocol: "tcp" }),
    ]);
    expect((api.ports as unknown[]).flatMap(parsePortEntry)).toStrictEqual([
      expect.objectContaining({
        target: 8081,
        published: "20002",
        protocol: "tcp",
        hostIp: "127.0.0.1",
      }),
    ]);
  });

  it("drops container_name and makes the old name an alias on each of the service's networks", () => {
    expect(web).not.toHaveProperty("container_name");
    expect(api).not.toHaveProperty("container_name");
    expect(web.networks).toStrictEqual({
      back: { aliases: ["shop-web"] },
      front: { aliases: ["shop-web"] },
    });
    expect(api.networks).toStrictEqual({ back: { aliases: ["shop-api"] } });
  });

  it("gives the explicitly named network and volume the version's names", () => {
    expect((out.networks?.back as { name: string }).name).toBe("dockbot-shop-feature_back");
    expect((out.volumes?.data as { name: string }).name).toBe("dockbot-shop-feature_data");
    expect(external).toStrictEqual({ networks: [], volumes: [] });
  });

  it("names the built image after the version and leaves pulled images alone", () => {
    expect(web.image).toBe("dockbot-shop-feature-web");
    expect(api.image).toBe("dockbot-test-base:latest");
    expect(builtImages).toStrictEqual([{ service: "web", image: "dockbot-shop-feature-web" }]);
    expect(builtImagesOf(out)).toStrictEqual(["dockbot-shop-feature-web"]);
  });

  it("labels every service with the dockbot project and version and keeps its own labels", () => {
    expect(web.labels).toStrictEqual({
      "dockbot.primary": "true",
      "dockbot.project": "shop",
      "dockbot.version": "feature",
    });
    expect(api.labels).toStrictEqual({ "dockbot.project": "shop", "dockbot.version": "feature" });
  });

  it("keeps the top-level name to v2, set to the compose project, and changes no input", () => {
    if (flavor === "v2") expect(out.name).toBe("dockbot-shop-feature");
    else expect(out).not.toHaveProperty("name");
    expect(model.services.web?.container_name).toBe("shop-web");
    expect((model.networks?.back as { name: string }).name).toBe("shop-back");
  });

  it("takes the service labelled primary, whatever the order", () => {
    expect(primaryService(model, serviceOrder(shopFile))).toBe("web");
  });
});

describe("the rest of the rewrite", () => {
  const base = (services: ComposeModel["services"], extra: Partial<ComposeModel> = {}) =>
    ({ services, ...extra }) as ComposeModel;

  it("picks the first service of the file with a published TCP port, not the model's first", () => {
    const model = base({
      api: { image: "x", ports: [{ target: 81, published: "81" }] },
      dns: { image: "x", ports: ["53:53/udp"] },
      web: { image: "x", ports: [{ target: 80, published: "80" }] },
    });
    const file = "services:\n  dns: {}\n  web: {}\n  api: {}\n";
    expect(primaryService(model, serviceOrder(file))).toBe("web");
    expect(primaryService(model, [])).toBe("api");
    expect(primaryService(base({ db: { image: "x" } }), ["db"])).toBeUndefined();
  });

  it("leaves external networks and volumes as they are, names them, and adds no alias there", () => {
    const model = base(
      {
        web: {
          image: "x",
          container_name: "web",
          networks: { proxy: null, default: null },
          volumes: ["shared:/shared"],
        },
      },
      {
        networks: { proxy: { name: "traefik", external: true }, default: { name: "p_default" } },
        volumes: { shared: { external: { name: "old-style" } } },
      },
    );
    const { model: out, external } = rewriteComposeModel(model, {
      ...ctx("v2"),
      hostPorts: new Map(),
    });
    expect(external).toStrictEqual({ networks: ["traefik"], volumes: ["old-style"] });
    expect(out.networks?.proxy).toStrictEqual({ name: "traefik", external: true });
    expect(out.services.web?.networks).toStrictEqual({
      proxy: null,
      default: { aliases: ["web"] },
    });
  });

  it("puts a service without networks on the default one with its alias, as v1 needs", () => {
    const model = base({ db: { image: "x", container_name: "shop-db", networks: ["a"] } });
    const noNetworks = base({ db: { image: "x", container_name: "shop-db" } });
    const rewrite = (m: ComposeModel) =>
      rewriteComposeModel(m, { ...ctx("v1"), hostPorts: new Map() }).model.services.db;
    expect(rewrite(model)?.networks).toStrictEqual({ a: { aliases: ["shop-db"] } });
    expect(rewrite(noNetworks)?.networks).toStrictEqual({ default: { aliases: ["shop-db"] } });
  });

  it("follows network_mode container:<old name> to the service, which has no networks to alias", () => {
    const model = base({
      vpn: { image: "x", container_name: "vpn" },
      app: { image: "x", container_name: "app", network_mode: "container:vpn" },
    });
    const out = rewriteComposeModel(model, { ...ctx("v2"), hostPorts: new Map() }).model;
    expect(out.services.app?.network_mode).toBe("service:vpn");
    expect(out.services.app).not.toHaveProperty("networks");
    expect(out.services.app).not.toHaveProperty("container_name");
  });

  it("writes v1 ports in short syntax, which is the only one with a host_ip there", () => {
    const model = base({ web: { image: "x", ports: ["127.0.0.1:80:8080/udp", "8443"] } });
    const out = rewriteComposeModel(model, {
      ...ctx("v1"),
      hostPorts: new Map([
        ["web/8080/udp", 20005],
        ["web/8443/tcp", 20006],
      ]),
    }).model;
    expect(out.services.web?.ports).toStrictEqual(["127.0.0.1:20005:8080/udp", "20006:8443/tcp"]);
  });

  it("labels a service whose labels are a list", () => {
    const model = base({ web: { image: "x", labels: ["a=1", "dockbot.primary=true"] } });
    const out = rewriteComposeModel(model, { ...ctx("v1"), hostPorts: new Map() }).model;
    expect(out.services.web?.labels).toStrictEqual({
      a: "1",
      "dockbot.primary": "true",
      "dockbot.project": "shop",
      "dockbot.version": "feature",
    });
    expect(primaryService(model, [])).toBe("web");
  });

  it("fails when a published port has no host port allocated", () => {
    const model = base({ web: { image: "x", ports: ["80"] } });
    expect(() => rewriteComposeModel(model, { ...ctx("v2"), hostPorts: new Map() })).toThrow(
      /no host port allocated for web 80/,
    );
  });

  it("reads env_file entries of every form from the file as written", () => {
    const file = [
      "services:",
      "  a: {env_file: .env.a}",
      "  b: {env_file: [x.env, {path: ../../outside.env, required: false}]}",
      "  c: {}",
    ].join("\n");
    expect(envFileEntries(file)).toStrictEqual([
      { service: "a", path: ".env.a" },
      { service: "b", path: "x.env" },
      { service: "b", path: "../../outside.env" },
    ]);
  });

  it("refuses output that is not a model", () => {
    expect(() => parseComposeModel("{", "v2")).toThrow(/not JSON/);
    expect(() => parseComposeModel("version: '3'\n", "v1")).toThrow(/no services/);
  });
});

// test/fixtures/compose/limits rendered by both flavours: services with and without limits of
// their own (docs/api.md, "Resources": the project's limits go where a service sets none).
describe.each(["v2", "v1"] as const)(
  "the project's limits on a model rendered by Compose %s",
  (flavor) => {
    const model = parseComposeModel(
      read(flavor === "v2" ? "limits.rendered-v2.json" : "limits.rendered-v1.yaml"),
      flavor,
    );
    const before = structuredClone(model);
    const { model: out, applied, own } = applyServiceLimits(model, { cpus: 0.5, memory: "512m" });
    const service = (name: string) => out.services[name] ?? {};
    const bytes512m = String(512 * 1024 * 1024);

    it("gives a service with no limits both, memory in bytes", () => {
      expect(service("plain").cpus).toBe(0.5);
      expect(service("plain").mem_limit).toBe(bytes512m);
    });

    it.each([
      ["own-cpus", { cpus: 0.25, mem_limit: bytes512m }],
      ["own-memory", { cpus: 0.5, mem_limit: flavor === "v2" ? String(64 * 1024 * 1024) : "64m" }],
      ["quota", { cpus: undefined, mem_limit: bytes512m, cpu_quota: 50000 }],
    ])("lets %s keep the limit it sets and adds the other kind", (name, expected) => {
      expect(service(name)).toMatchObject(
        Object.fromEntries(Object.entries(expected).filter(([, v]) => v !== undefined)),
      );
      if (expected.cpus === undefined) expect(service(name).cpus).toBeUndefined();
    });

    it("leaves a service that sets both limits as it is and names it", () => {
      expect(service("own-both")).toStrictEqual(model.services["own-both"]);
      expect(own).toStrictEqual(["own-both"]);
    });

    it("adds the missing limit inside a service's own deploy.resources.limits, keeping the rest", () => {
      const def = service("deploy-cpus");
      expect(def.deploy).toMatchObject({
        resources: {
          limits: { cpus: 0.75, memory: bytes512m },
          reservations: { memory: flavor === "v2" ? "16777216" : "16m" },
        },
      });
      expect(def.cpus).toBeUndefined();
      expect(def.mem_limit).toBeUndefined();
    });

    it("writes service-level limits beside a deploy block that has reservations only", () => {
      expect(service("reserved")).toMatchObject({ cpus: 0.5, mem_limit: bytes512m });
    });

    it("says which limits each service got, in model order, and changes no input", () => {
      expect(applied).toStrictEqual([
        { service: "deploy-cpus", memory: "512m" },
        { service: "own-cpus", memory: "512m" },
        { service: "own-memory", cpus: 0.5 },
        { service: "plain", cpus: 0.5, memory: "512m" },
        { service: "quota", memory: "512m" },
        { service: "reserved", cpus: 0.5, memory: "512m" },
      ]);
      expect(model).toStrictEqual(before);
    });
  },
);

describe("limits the project leaves out", () => {
  const model = parseComposeModel(read("limits.rendered-v2.json"), "v2");

  it("returns the model untouched when the project sets no limits", () => {
    expect(applyServiceLimits(model, undefined)).toStrictEqual({ model, applied: [], own: [] });
    expect(applyServiceLimits(model, {})).toStrictEqual({ model, applied: [], own: [] });
  });

  it("applies only the kind the project sets", () => {
    const { model: out, applied } = applyServiceLimits(model, { memory: "1.5g" });
    expect(out.services.plain?.mem_limit).toBe(String(1.5 * 1024 ** 3));
    expect(out.services.plain?.cpus).toBeUndefined();
    expect(applied.map((a) => a.service)).toStrictEqual([
      "deploy-cpus",
      "own-cpus",
      "plain",
      "quota",
      "reserved",
    ]);
  });

  it("refuses a memory limit that is no size rather than writing it", () => {
    expect(() => applyServiceLimits(model, { memory: "lots" })).toThrow(/not a size/);
  });
});
