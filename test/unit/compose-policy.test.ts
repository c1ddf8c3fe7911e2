// The compose policy (src/deploy/compose-policy.ts) on files that Compose v2 and v1 really
// printed for test/fixtures/compose/risky (one service per rule), checked out at
// /tmp/dockbot/checkouts/risky/main.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseComposeModel, type ComposeModel } from "../../src/deploy/compose-model.js";
import {
  checkComposePolicy,
  describeViolation,
  hostPathUses,
  isPolicyWord,
  POLICY_WORDS,
  type HostPathUse,
  type PolicyWord,
} from "../../src/deploy/compose-policy.js";

const fixtures = path.join(import.meta.dirname, "..", "fixtures", "compose");
const read = (name: string) => readFileSync(path.join(fixtures, name), "utf8");
const checkoutDir = "/tmp/dockbot/checkouts/risky/main";
const models = {
  v2: parseComposeModel(read("risky.rendered-v2.json"), "v2"),
  v1: parseComposeModel(read("risky.rendered-v1.yaml"), "v1"),
};

function check(
  model: ComposeModel,
  allow: readonly string[] = [],
  extra: { hostPaths?: HostPathUse[]; resolved?: Map<string, string> } = {},
) {
  return checkComposePolicy(model, {
    allow,
    checkoutDir,
    hostPaths: extra.hostPaths ?? hostPathUses(model),
    resolved: extra.resolved ?? new Map(),
  });
}

const RULES: Array<[service: string, word: PolicyWord, setting: RegExp]> = [
  ["priv", "privileged", /^privileged: true$/],
  ["hostpid", "host-namespaces", /^pid: host$/],
  ["caps", "capabilities", /^cap_add: \[NET_ADMIN\]$/],
  ["dev", "devices", /^devices$/],
  ["sock", "docker-socket", /docker\.sock/],
  ["hostpath", "host-paths", /\/etc:\/host-etc/],
  ["unconf", "unconfined", /^security_opt: seccomp[=:]unconfined$/],
];

describe.each(["v2", "v1"] as const)("the risky app rendered by Compose %s", (flavor) => {
  const model = models[flavor];

  it("refuses each rule by default, naming the service, the setting and the word", () => {
    const found = check(model);
    expect(found.map((v) => [v.service, v.word]).sort()).toStrictEqual(
      RULES.map(([service, word]) => [service, word]).sort(),
    );
    for (const [service, word, setting] of RULES) {
      const v = found.find((x) => x.service === service);
      expect(v?.setting).toMatch(setting);
      const line = describeViolation(v!);
      expect(line).not.toContain("\n");
      expect(line).toContain(`service '${service}'`);
      expect(line).toContain(`policy.allow "${word}"`);
    }
  });

  it.each(RULES)("lets %s run once its word %s is allowed", (service, word) => {
    expect(check(model).some((v) => v.service === service)).toBe(true);
    const found = check(model, [word]);
    expect(found.some((v) => v.service === service)).toBe(false);
    // Allowing one word allows nothing else.
    expect(found).toHaveLength(RULES.length - 1);
  });

  it("keeps a relative bind mount inside the checkout and a named volume allowed", () => {
    expect(check(model, POLICY_WORDS).length).toBe(0);
    expect(check(model).some((v) => v.service === "fine")).toBe(false);
  });
});

describe("host paths", () => {
  const service = (volumes: unknown[]): ComposeModel => ({
    services: { app: { image: "x", volumes } },
  });

  it("follows symlinks: a link inside the checkout to a host path outside is refused", () => {
    const model = service([`${checkoutDir}/link:/x`]);
    const resolved = new Map([[`${checkoutDir}/link`, "/etc"]]);
    expect(check(model, [], { resolved })).toStrictEqual([
      { service: "app", setting: `volumes: ${checkoutDir}/link:/x`, word: "host-paths" },
    ]);
    const inside = new Map([[`${checkoutDir}/link`, `${checkoutDir}/data`]]);
    expect(check(model, [], { resolved: inside })).toStrictEqual([]);
  });

  it("tells the Docker socket from other host paths, also reached through a symlink", () => {
    const model = service([
      { type: "bind", source: "/run/docker.sock", target: "/s" },
      { type: "bind", source: "/srv/sock-link", target: "/t" },
    ]);
    const resolved = new Map([["/srv/sock-link", "/var/run/docker.sock"]]);
    expect(check(model, [], { resolved }).map((v) => v.word)).toStrictEqual([
      "docker-socket",
      "docker-socket",
    ]);
  });

  it("does not take a sibling whose name starts like the checkout for the checkout", () => {
    const model = service([`${checkoutDir}-other/secrets:/x`]);
    expect(check(model).map((v) => v.word)).toStrictEqual(["host-paths"]);
  });

  it("counts build contexts, bind volumes in disguise, file secrets and env_file paths", () => {
    const model: ComposeModel = {
      services: {
        app: { build: { context: "/", dockerfile: "Dockerfile" } },
        web: { build: { context: `${checkoutDir}/web`, dockerfile: "../../other/Dockerfile" } },
        remote: { build: { context: "https://example.com/repo.git" } },
      },
      volumes: { sneaky: { driver_opts: { type: "none", o: "bind", device: "/root" } } },
      secrets: { key: { file: "/root/.ssh/id_ed25519" } },
    };
    const uses = [
      ...hostPathUses(model),
      { service: "app", setting: "env_file: ../other/.env", path: "/tmp/dockbot/other/.env" },
    ];
    expect(check(model, [], { hostPaths: uses }).map((v) => [v.service, v.setting])).toStrictEqual([
      ["app", "build.context: /"],
      ["web", "build.dockerfile: ../../other/Dockerfile"],
      ["volumes.sneaky", "driver_opts.device: /root"],
      ["secrets.key", "file: /root/.ssh/id_ed25519"],
      ["app", "env_file: ../other/.env"],
    ]);
  });

  it("takes an unresolved ~ for the user's home, never the checkout", () => {
    expect(check(service(["~/.aws:/aws"])).map((v) => v.word)).toStrictEqual(["host-paths"]);
  });
});

describe("other host namespaces and options", () => {
  it.each([
    ["network_mode", "host"],
    ["ipc", "host"],
    ["userns_mode", "host"],
    ["cgroup", "host"],
    ["uts", "host"],
  ])("refuses %s: %s as host-namespaces", (key, value) => {
    const model: ComposeModel = { services: { app: { image: "x", [key]: value } } };
    expect(check(model)).toStrictEqual([
      { service: "app", setting: `${key}: ${value}`, word: "host-namespaces" },
    ]);
  });

  it("allows network_mode of another service of the version, and GPUs count as devices", () => {
    const model: ComposeModel = {
      services: {
        app: { image: "x", network_mode: "service:db" },
        gpu: {
          image: "x",
          deploy: { resources: { reservations: { devices: [{ capabilities: ["gpu"] }] } } },
        },
      },
    };
    expect(check(model).map((v) => [v.service, v.word])).toStrictEqual([["gpu", "devices"]]);
  });

  it("knows its words and nothing else", () => {
    expect(POLICY_WORDS.every(isPolicyWord)).toBe(true);
    expect(isPolicyWord("everything")).toBe(false);
  });
});
