// dockbot's packaging for real: the Helm chart rendered by Helm, the nginx config served by
// Debian's nginx in front of a running dockbot, docker-compose.yml read by Compose v2, and the
// Dockerfile built into an image that deploys an app through the host's Docker socket.
import { randomBytes } from "node:crypto";
import { readdir, readFile, writeFile, mkdir, mkdtemp, rm, chmod } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureSshKey } from "../../src/deploy/ssh-key.js";
import {
  ADMIN_TOKEN,
  fetchText,
  startDockbot,
  webApp,
  type DockbotHarness,
  type OperationJson,
  type VersionJson,
} from "../support/dockbot-harness.js";
import { apiClient, waitForOperation } from "../support/api-client.js";
import { authorizeKey, createTestRepo, type TestRepo } from "../support/git-server.js";
import { requestWithHost, untilStatus } from "../support/preview-upstream.js";
import {
  checkComposeV2,
  checkDocker,
  checkGitServer,
  checkTestBaseImage,
  describeWithServices,
  gitServer as gitServerAddress,
  type ServiceCheck,
} from "../support/services.js";
import { freePort } from "../support/dockbot-process.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const chartDir = path.join(root, "charts/dockbot");
const nginxConfPath = path.join(root, "deploy/nginx/dockbot.conf");

/** Made by scripts/services/image-base.sh: the stand-in for debian:trixie-slim. */
const IMAGE_BASE = "dockbot-image-base:trixie";
const IMAGE = "dockbot:packaging-test";

async function checkCommand(cmd: string, args: string[], reason: string): Promise<ServiceCheck> {
  const r = await execa(cmd, args, { reject: false, timeout: 20_000, stdin: "ignore" });
  return r.exitCode === 0 ? { ok: true, reason: "" } : { ok: false, reason };
}

const helm = await checkCommand(
  "helm",
  ["version", "--short"],
  "no `helm` (scripts/services/helm.sh)",
);
const nginx = await checkCommand("nginx", ["-v"], "no `nginx` (scripts/services/nginx.sh)");
const docker = await checkDocker();
const composeV2 = await checkComposeV2();
const gitServer = await checkGitServer();
const testBase = await checkTestBaseImage();
const imageBase = docker.ok
  ? await checkCommand(
      "docker",
      ["image", "inspect", IMAGE_BASE],
      `no local image ${IMAGE_BASE} (scripts/services/image-base.sh)`,
    )
  : docker;

type K8sObject = { kind: string; metadata: { name: string }; [key: string]: unknown };

interface Container {
  name: string;
  image: string;
  command?: string[];
  env?: {
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string } };
  }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  volumeMounts?: { name: string; mountPath: string }[];
  securityContext?: Record<string, unknown>;
}

interface DeploymentSpec {
  replicas: number;
  strategy: { type: string };
  template: {
    spec: {
      enableServiceLinks?: boolean;
      initContainers?: Container[];
      containers: Container[];
      volumes: {
        name: string;
        hostPath?: { path: string; type?: string };
        persistentVolumeClaim?: { claimName: string };
        emptyDir?: object;
      }[];
    };
  };
}

async function helmTemplate(args: string[]): Promise<K8sObject[]> {
  const { stdout } = await execa("helm", ["template", "rel", chartDir, ...args]);
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

function find<T = Record<string, unknown>>(
  objects: K8sObject[],
  kind: string,
): (K8sObject & T) | undefined {
  return objects.find((o) => o.kind === kind) as (K8sObject & T) | undefined;
}

function dockbotContainer(deployment: { spec: DeploymentSpec }): Container {
  const c = deployment.spec.template.spec.containers.find((x) => x.name === "dockbot");
  if (!c) throw new Error("no container named dockbot in the Deployment");
  return c;
}

describeWithServices([helm], "the Helm chart", () => {
  let tmp: string;
  let valuesFile: string;
  const mongoUrl = "mongodb://dockbot:pw@mongo.example.internal:27017/dockbot";

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "dockbot-helm-"));
    valuesFile = path.join(tmp, "values.yaml");
    await writeFile(
      valuesFile,
      [
        "replicaCount: 3",
        "ingress:",
        "  enabled: true",
        "  host: dockbot.example.test",
        "  tls: {enabled: true}",
        "mongodb:",
        `  url: "${mongoUrl}"`,
        "persistence:",
        "  accessModes: [ReadWriteMany]",
        "secrets:",
        "  adminToken: an-admin-token-of-some-length",
        "",
      ].join("\n"),
    );
  });

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("passes helm lint with the default values and with 3 replicas, an Ingress and MongoDB", async () => {
    const plain = await execa("helm", ["lint", "--strict", chartDir], { reject: false });
    expect(plain.exitCode, plain.stdout + plain.stderr).toBe(0);
    const scaled = await execa("helm", ["lint", "--strict", chartDir, "-f", valuesFile], {
      reject: false,
    });
    expect(scaled.exitCode, scaled.stdout + scaled.stderr).toBe(0);
  });

  it("renders one pod with the Docker socket, a PVC for /data and probes on /api/health by default", async () => {
    const objects = await helmTemplate([]);
    const deployment = find<{ spec: DeploymentSpec }>(objects, "Deployment");
    expect(deployment).toBeDefined();
    if (!deployment) return;
    expect(deployment.spec.replicas).toBe(1);
    // SQLite and a ReadWriteOnce volume: never two pods at once.
    expect(deployment.spec.strategy.type).toBe("Recreate");
    // A Service named dockbot would otherwise inject DOCKBOT_PORT=tcp://... into the pod.
    expect(deployment.spec.template.spec.enableServiceLinks).toBe(false);
    const c = dockbotContainer(deployment);
    expect(c.livenessProbe?.httpGet?.path).toBe("/api/health");
    expect(c.readinessProbe?.httpGet?.path).toBe("/api/health");
    expect(c.volumeMounts).toContainEqual({
      name: "docker-socket",
      mountPath: "/var/run/docker.sock",
    });
    expect(c.volumeMounts).toContainEqual({ name: "data", mountPath: "/data" });
    const volumes = deployment.spec.template.spec.volumes;
    expect(volumes.find((v) => v.name === "docker-socket")?.hostPath).toEqual({
      path: "/var/run/docker.sock",
      type: "Socket",
    });
    expect(volumes.find((v) => v.name === "data")?.persistentVolumeClaim?.claimName).toBe(
      "rel-dockbot-data",
    );
    expect(find(objects, "PersistentVolumeClaim")?.metadata.name).toBe("rel-dockbot-data");
    expect(find(objects, "Ingress")).toBeUndefined();
    expect(c.env?.find((e) => e.name === "DOCKBOT_MONGODB_URL")).toBeUndefined();
    expect(c.env?.find((e) => e.name === "DOCKBOT_ADMIN_TOKEN")?.valueFrom?.secretKeyRef).toEqual({
      name: "rel-dockbot",
      key: "admin-token",
    });
    const secret = find<{ data: Record<string, string> }>(objects, "Secret");
    // Generated when not given, at least as long as dockbot's minimum of 16 characters.
    expect(
      Buffer.from(secret?.data["admin-token"] ?? "", "base64").toString().length,
    ).toBeGreaterThanOrEqual(16);
  });

  it("renders 3 replicas behind an Ingress for the host, with DOCKBOT_MONGODB_URL from the Secret", async () => {
    const objects = await helmTemplate(["-f", valuesFile]);
    const deployment = find<{ spec: DeploymentSpec }>(objects, "Deployment");
    expect(deployment?.spec.replicas).toBe(3);
    if (!deployment) return;
    expect(deployment.spec.strategy.type).toBe("RollingUpdate");
    const c = dockbotContainer(deployment);
    expect(c.livenessProbe?.httpGet).toEqual({ path: "/api/health", port: "http" });
    expect(c.readinessProbe?.httpGet).toEqual({ path: "/api/health", port: "http" });
    expect(c.volumeMounts).toContainEqual({
      name: "docker-socket",
      mountPath: "/var/run/docker.sock",
    });

    const mongoRef = c.env?.find((e) => e.name === "DOCKBOT_MONGODB_URL")?.valueFrom?.secretKeyRef;
    expect(mongoRef?.name).toBe("rel-dockbot");
    const secret = find<{ data: Record<string, string> }>(objects, "Secret");
    expect(secret?.metadata.name).toBe("rel-dockbot");
    const stored = secret?.data[mongoRef?.key ?? ""];
    expect(Buffer.from(stored ?? "", "base64").toString()).toBe(mongoUrl);
    expect(Buffer.from(secret?.data["admin-token"] ?? "", "base64").toString()).toBe(
      "an-admin-token-of-some-length",
    );
    expect(c.env?.find((e) => e.name === "DOCKBOT_PUBLIC_URL")?.value).toBe(
      "https://dockbot.example.test",
    );

    const ingress = find<{
      metadata: { annotations: Record<string, string> };
      spec: {
        rules: { host: string; http: { paths: { backend: { service: { name: string } } }[] } }[];
        tls: { hosts: string[] }[];
      };
    }>(objects, "Ingress");
    expect(ingress?.spec.rules[0]?.host).toBe("dockbot.example.test");
    expect(ingress?.spec.rules[0]?.http.paths[0]?.backend.service.name).toBe("rel-dockbot");
    expect(ingress?.spec.tls[0]?.hosts).toEqual(["dockbot.example.test"]);
    expect(ingress?.metadata.annotations["nginx.ingress.kubernetes.io/proxy-body-size"]).toBe(
      "25m",
    );
    expect(
      Number(ingress?.metadata.annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]),
    ).toBeGreaterThanOrEqual(3600);
    expect(find(objects, "Service")?.metadata.name).toBe("rel-dockbot");
  });

  it("renders the preview router: its ports, the node's IP as upstream and a wildcard Ingress rule", async () => {
    const objects = await helmTemplate([
      "--set",
      "ingress.enabled=true",
      "--set",
      "ingress.tls.enabled=true",
      "--set",
      "preview.ingressHost=*.preview.example.test",
    ]);
    const deployment = find<{ spec: DeploymentSpec }>(objects, "Deployment");
    if (!deployment) throw new Error("no Deployment");
    const c = dockbotContainer(deployment) as unknown as {
      ports: { name: string; containerPort: number }[];
      env: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
    };
    expect(c.ports).toContainEqual(
      expect.objectContaining({ name: "preview", containerPort: 3001 }),
    );
    const env = (name: string) => c.env.find((e) => e.name === name);
    expect(env("DOCKBOT_PREVIEW_PORT")?.value).toBe("3001");
    expect(env("DOCKBOT_PREVIEW_URL")?.value).toBe("https://*.preview.example.test");
    // Kubernetes expands $(NODE_IP) from the variable defined before it.
    const names = c.env.map((e) => e.name);
    expect(names.indexOf("NODE_IP")).toBeLessThan(names.indexOf("DOCKBOT_PREVIEW_UPSTREAM"));
    expect(env("NODE_IP")?.valueFrom?.fieldRef?.fieldPath).toBe("status.hostIP");
    expect(env("DOCKBOT_PREVIEW_UPSTREAM")?.value).toBe("published:$(NODE_IP)");
    const service = find<{ spec: { ports: { name: string; port: number; targetPort: string }[] } }>(
      objects,
      "Service",
    );
    expect(service?.spec.ports).toContainEqual(
      expect.objectContaining({ name: "preview", port: 3001, targetPort: "preview" }),
    );
    const ingress = find<{
      spec: {
        tls: { hosts: string[] }[];
        rules: {
          host: string;
          http: { paths: { backend: { service: { port: { name: string } } } }[] };
        }[];
      };
    }>(objects, "Ingress");
    expect(ingress?.spec.tls[0]?.hosts).toContain("*.preview.example.test");
    const rule = ingress?.spec.rules.find((r) => r.host === "*.preview.example.test");
    expect(rule?.http.paths[0]?.backend.service.port.name).toBe("preview");

    const remote = await helmTemplate([
      "--set",
      "docker.mode=remote",
      "--set",
      "docker.host=tcp://docker-vm.example.test:2376",
    ]);
    const remoteDeployment = find<{ spec: DeploymentSpec }>(remote, "Deployment");
    if (!remoteDeployment) throw new Error("no Deployment");
    expect(
      dockbotContainer(remoteDeployment).env?.find((e) => e.name === "DOCKBOT_PREVIEW_UPSTREAM")
        ?.value,
    ).toBe("published:docker-vm.example.test");

    const off = await helmTemplate(["--set", "preview.port=0"]);
    const offService = find<{ spec: { ports: { name: string }[] } }>(off, "Service");
    expect(offService?.spec.ports.map((p) => p.name)).toEqual(["http"]);
  });

  it("refuses a preview.ingressHost that is no wildcard host, naming the form it needs", async () => {
    const r = await execa(
      "helm",
      ["template", "rel", chartDir, "--set", "preview.ingressHost=preview.example.test"],
      { reject: false },
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain("preview.ingressHost must be a wildcard host starting with *.");
  });

  it("refuses to render several replicas without MongoDB, naming the value to set", async () => {
    const r = await execa("helm", ["template", "rel", chartDir, "--set", "replicaCount=3"], {
      reject: false,
    });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain("mongodb.url");
  });

  it("installs the Secret's SSH key where dockbot reads it, so dockbot serves that key's public half", async () => {
    const keyDir = path.join(tmp, "key");
    await mkdir(keyDir);
    const keyFile = path.join(keyDir, "id");
    await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "mine", "-f", keyFile]);
    const objects = await helmTemplate(["--set-file", `ssh.privateKey=${keyFile}`]);
    const deployment = find<{ spec: DeploymentSpec }>(objects, "Deployment");
    const init = deployment?.spec.template.spec.initContainers?.find((x) => x.name === "ssh-key");
    const script = init?.command?.at(-1);
    expect(script).toBeDefined();
    if (!script) return;

    // Run the init container's script for real, with the pod's paths moved into a temp dir.
    const dataDir = path.join(tmp, "data");
    const secretDir = path.join(tmp, "secret");
    await mkdir(dataDir);
    await mkdir(secretDir);
    const secret = find<{ data: Record<string, string> }>(objects, "Secret");
    for (const [key, value] of Object.entries(secret?.data ?? {})) {
      await writeFile(path.join(secretDir, key), Buffer.from(value, "base64"), { mode: 0o400 });
    }
    const local = script.replaceAll("/etc/dockbot-secret", secretDir).replaceAll("/data", dataDir);
    await execa("sh", ["-ec", local]);

    const served = await ensureSshKey(dataDir);
    const expected = (await readFile(`${keyFile}.pub`, "utf8"))
      .trim()
      .split(/\s+/)
      .slice(0, 2)
      .join(" ");
    expect(served.publicKey).toBe(`${expected} dockbot`);
    expect(served.privateKeyPath).toBe(path.join(dataDir, "ssh", "id_ed25519"));
  });
});

// ---------------------------------------------------------------------------------------------

interface NginxProcess {
  port: number;
  stop(): Promise<void>;
}

/** Debian's nginx with deploy/nginx/dockbot.conf, its upstream moved to `upstreamPort`. */
async function startNginx(upstreamPort: number): Promise<NginxProcess> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-nginx-"));
  // Workers run as nginx's unprivileged user when the master is root: they write request
  // bodies to the temp paths below.
  await chmod(dir, 0o755);
  for (const sub of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) {
    await mkdir(path.join(dir, sub));
    await chmod(path.join(dir, sub), 0o777);
  }
  const port = await freePort();
  const original = await readFile(nginxConfPath, "utf8");
  const conf = original
    .replace(/server dockbot:3000;/, `server 127.0.0.1:${upstreamPort};`)
    .replace(/listen 80;/, `listen 127.0.0.1:${port};`);
  if (!conf.includes(`127.0.0.1:${upstreamPort}`) || !conf.includes(`listen 127.0.0.1:${port}`)) {
    throw new Error(
      `${nginxConfPath} no longer has "server dockbot:3000;" and "listen 80;" for the test to replace`,
    );
  }
  await writeFile(path.join(dir, "dockbot.conf"), conf);
  const main = path.join(dir, "nginx.conf");
  await writeFile(
    main,
    [
      "daemon off;",
      "worker_processes 1;",
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log warn;`,
      "events { worker_connections 256; }",
      "http {",
      `  access_log ${dir}/access.log;`,
      `  client_body_temp_path ${dir}/body;`,
      `  proxy_temp_path ${dir}/proxy;`,
      `  fastcgi_temp_path ${dir}/fastcgi;`,
      `  uwsgi_temp_path ${dir}/uwsgi;`,
      `  scgi_temp_path ${dir}/scgi;`,
      `  include ${dir}/dockbot.conf;`,
      "}",
      "",
    ].join("\n"),
  );
  const args = ["-e", path.join(dir, "error.log"), "-p", dir, "-c", main];
  const check = await execa("nginx", ["-t", ...args], { reject: false });
  if (check.exitCode !== 0) throw new Error(`nginx rejects the config: ${check.stderr}`);
  const proc = execa("nginx", args, { reject: false, stdin: "ignore" });
  const until = Date.now() + 10_000;
  while (!(await tcpConnects(port))) {
    if (Date.now() > until || proc.exitCode !== null) {
      proc.kill();
      throw new Error(
        `nginx did not listen on ${port}: ${await readFile(path.join(dir, "error.log"), "utf8").catch(() => "")}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    async stop() {
      proc.kill("SIGQUIT");
      await proc;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function tcpConnects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" }, () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

interface UpgradeAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
}

/** A WebSocket handshake (RFC 6455) as a browser sends it; resolves with the answer's status. */
function websocketHandshake(port: number, urlPath: string): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port,
      path: urlPath,
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
      },
      timeout: 10_000,
    });
    req.once("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    req.once("response", (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    req.once("timeout", () =>
      req.destroy(new Error("no answer to the WebSocket handshake in 10 s")),
    );
    req.once("error", reject);
    req.end();
  });
}

/**
 * A stand-in upstream that records the WebSocket upgrades nginx forwards and accepts them itself;
 * any plain request (what nginx sends when it drops the Upgrade headers) gets 404.
 */
async function startRecordingUpstream() {
  const upgrades: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((_req, res) => {
    res.writeHead(404).end();
  });
  server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket) => {
    upgrades.push(req.headers);
    socket.end(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    upgrades,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describeWithServices(
  [nginx, gitServer],
  "nginx with deploy/nginx/dockbot.conf in front of dockbot",
  () => {
    let h: DockbotHarness;
    let proxy: NginxProcess;
    let upstream: Awaited<ReturnType<typeof startRecordingUpstream>>;
    let recordingProxy: NginxProcess;
    let base: string;

    beforeAll(async () => {
      h = await startDockbot();
      proxy = await startNginx(Number(new URL(h.baseUrl).port));
      base = `http://127.0.0.1:${proxy.port}`;
      upstream = await startRecordingUpstream();
      recordingProxy = await startNginx(upstream.port);
    });

    afterAll(async () => {
      await recordingProxy?.stop();
      await upstream?.close();
      await proxy?.stop();
      await h?.close();
    });

    it("passes GET /api/health through to dockbot", async () => {
      const res = await fetch(`${base}/api/health`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { status: string }).status).toBe("ok");
    });

    it("passes the Authorization header on: 401 without the token, the project list with it", async () => {
      const anonymous = await fetch(`${base}/api/projects`);
      expect(anonymous.status).toBe(401);
      const created = await fetch(`${base}/api/projects`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({
          name: "behind-nginx",
          repoUrl: "ssh://git@127.0.0.1:2222/srv/none.git",
        }),
      });
      expect(created.status).toBe(201);
      const list = await fetch(`${base}/api/projects`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(list.status).toBe(200);
      const names = ((await list.json()) as { name: string }[]).map((p) => p.name);
      expect(names).toContain("behind-nginx");
    });

    it("hands a 3 MB GitLab webhook body to dockbot instead of answering 413 itself", async () => {
      const body = JSON.stringify({ object_kind: "push", padding: "x".repeat(3 * 1024 * 1024) });
      const res = await fetch(`${base}/webhooks/gitlab`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-gitlab-token": "not-a-secret-of-any-project",
          "x-gitlab-event": "Push Hook",
        },
        body,
      });
      // dockbot's own answer to a wrong token (JSON envelope), not nginx's HTML 413 page.
      expect(res.status).toBe(401);
      expect(res.headers.get("content-type")).toContain("application/json");
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    });

    it("forwards the WebSocket Upgrade headers on /socket.io/ and relays the 101", async () => {
      const answer = await websocketHandshake(
        recordingProxy.port,
        "/socket.io/?EIO=4&transport=websocket",
      );
      expect(answer.status).toBe(101);
      expect(upstream.upgrades).toHaveLength(1);
      expect(upstream.upgrades[0]?.upgrade).toBe("websocket");
      expect(upstream.upgrades[0]?.connection?.toLowerCase()).toBe("upgrade");
    });

    it("upgrades a Socket.io WebSocket through to dockbot with 101 Switching Protocols", async (ctx) => {
      const direct = await fetch(`${h.baseUrl}/socket.io/?EIO=4&transport=polling`);
      await direct.body?.cancel();
      // Until the Socket.io server is wired into dockbot, the recording upstream above is the check.
      if (direct.status === 404) ctx.skip();
      const answer = await websocketHandshake(proxy.port, "/socket.io/?EIO=4&transport=websocket");
      expect(answer.status).toBe(101);
      expect(answer.headers.upgrade?.toLowerCase()).toBe("websocket");
    });
  },
);

// ---------------------------------------------------------------------------------------------

describeWithServices([docker, composeV2], "docker-compose.yml", () => {
  let tmp: string;
  const composeEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("DOCKBOT_")),
  ) as Record<string, string>;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "dockbot-compose-"));
  });

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("is accepted by docker compose config with the .env values, wiring MongoDB, the socket and nginx", async () => {
    const envFile = path.join(tmp, "dummy.env");
    await writeFile(
      envFile,
      "DOCKBOT_ADMIN_TOKEN=0123456789abcdef0123\nDOCKBOT_PUBLIC_URL=https://dockbot.example.test\n",
    );
    const r = await execa(
      "docker",
      ["compose", "-f", "docker-compose.yml", "--env-file", envFile, "config", "--format", "json"],
      { cwd: root, env: composeEnv, extendEnv: false, reject: false },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    type Service = {
      image?: string;
      environment?: Record<string, string>;
      volumes?: { type: string; source: string; target: string }[];
      ports?: { target: number; published: string }[];
    };
    const config = JSON.parse(r.stdout) as { services: Record<string, Service> };
    expect(Object.keys(config.services).sort()).toEqual(["dockbot", "mongodb", "nginx"]);
    const dockbot = config.services.dockbot;
    expect(dockbot?.environment?.DOCKBOT_ADMIN_TOKEN).toBe("0123456789abcdef0123");
    expect(dockbot?.environment?.DOCKBOT_PUBLIC_URL).toBe("https://dockbot.example.test");
    expect(dockbot?.environment?.DOCKBOT_MONGODB_URL).toMatch(/^mongodb:\/\/mongodb:27017\//);
    expect(dockbot?.volumes).toContainEqual(
      expect.objectContaining({
        type: "bind",
        source: "/var/run/docker.sock",
        target: "/var/run/docker.sock",
      }),
    );
    expect(dockbot?.volumes).toContainEqual(
      expect.objectContaining({ type: "volume", target: "/data" }),
    );
    expect(config.services.mongodb?.image).toBe("mongo:7");
    expect(config.services.nginx?.volumes).toContainEqual(
      expect.objectContaining({ source: nginxConfPath, target: "/etc/nginx/conf.d/default.conf" }),
    );
    expect(config.services.nginx?.ports?.[0]?.target).toBe(80);
  });

  it("publishes the preview router's port 3001 and passes DOCKBOT_PREVIEW_URL on", async () => {
    const envFile = path.join(tmp, "preview.env");
    await writeFile(
      envFile,
      "DOCKBOT_ADMIN_TOKEN=0123456789abcdef0123\nDOCKBOT_PUBLIC_URL=https://dockbot.example.test\n" +
        "DOCKBOT_PREVIEW_URL=https://*.preview.example.test\nDOCKBOT_PREVIEW_HTTP_PORT=8443\n",
    );
    const r = await execa(
      "docker",
      ["compose", "-f", "docker-compose.yml", "--env-file", envFile, "config", "--format", "json"],
      { cwd: root, env: composeEnv, extendEnv: false, reject: false },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const config = JSON.parse(r.stdout) as {
      services: Record<
        string,
        { environment?: Record<string, string>; ports?: { target: number; published: string }[] }
      >;
    };
    const dockbot = config.services.dockbot;
    expect(dockbot?.ports).toContainEqual(
      expect.objectContaining({ target: 3001, published: "8443" }),
    );
    expect(dockbot?.environment?.DOCKBOT_PREVIEW_PORT).toBe("3001");
    expect(dockbot?.environment?.DOCKBOT_PREVIEW_URL).toBe("https://*.preview.example.test");
  });

  it("refuses to start without DOCKBOT_ADMIN_TOKEN, saying where to set it", async () => {
    const envFile = path.join(tmp, "no-token.env");
    await writeFile(envFile, "DOCKBOT_PUBLIC_URL=https://dockbot.example.test\n");
    const r = await execa(
      "docker",
      ["compose", "-f", "docker-compose.yml", "--env-file", envFile, "config"],
      {
        cwd: root,
        env: composeEnv,
        extendEnv: false,
        reject: false,
      },
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain("DOCKBOT_ADMIN_TOKEN");
  });
});

// ---------------------------------------------------------------------------------------------

/**
 * Certificate authorities this machine trusts beyond Debian's Mozilla set: a TLS-intercepting
 * proxy's, which `npm ci` inside the build must trust too. Empty on an ordinary machine.
 */
async function extraCaCerts(): Promise<string> {
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
  const bundleFile = process.env.NODE_EXTRA_CA_CERTS ?? "/etc/ssl/certs/ca-certificates.crt";
  const bundle = await readFile(bundleFile, "utf8").catch(() => "");
  const known = new Set<string>();
  const mozilla = "/usr/share/ca-certificates";
  const entries = await readdir(mozilla, { recursive: true }).catch(() => [] as string[]);
  for (const entry of entries) {
    if (!entry.endsWith(".crt")) continue;
    const text = await readFile(path.join(mozilla, entry), "utf8").catch(() => "");
    for (const cert of text.match(pem) ?? []) known.add(cert.replace(/\s/g, ""));
  }
  return (bundle.match(pem) ?? []).filter((cert) => !known.has(cert.replace(/\s/g, ""))).join("\n");
}

async function inspect<T>(container: string, format: string): Promise<T> {
  return JSON.parse(
    (await execa("docker", ["inspect", "--format", `{{json ${format}}}`, container])).stdout,
  ) as T;
}

describeWithServices(
  [docker, imageBase, testBase, gitServer],
  "the container image built from the Dockerfile",
  () => {
    const suffix = randomBytes(4).toString("hex");
    const container = `dockbot-packaging-${suffix}`;
    const volume = `dockbot-packaging-data-${suffix}`;
    let port: number;
    let previewPort: number;
    let base: string;
    let repo: TestRepo | undefined;
    let composeProject: string | undefined;
    let buildSeconds = 0;

    const api = apiClient(() => base, ADMIN_TOKEN);

    beforeAll(async () => {
      const started = Date.now();
      const ca = await extraCaCerts();
      // --network host: RUN steps (apt, npm ci) reach the network the way this host does.
      await execa(
        "docker",
        [
          "build",
          "--network",
          "host",
          "--build-arg",
          `BASE_IMAGE=${IMAGE_BASE}`,
          ...(ca ? ["--build-arg", `EXTRA_CA_CERTS=${ca}`] : []),
          "-t",
          IMAGE,
          ".",
        ],
        { cwd: root, timeout: 900_000 },
      );
      buildSeconds = Math.round((Date.now() - started) / 1000);
      port = await freePort();
      previewPort = await freePort();
      base = `http://127.0.0.1:${port}`;
      // --network host: the container reaches the test sshd on 127.0.0.1 and the app's published
      // port is on this host's loopback. The capability drop matches the Helm chart's default.
      await execa("docker", [
        "run",
        "-d",
        "--name",
        container,
        "--network",
        "host",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        `${volume}:/data`,
        "-e",
        `DOCKBOT_PORT=${port}`,
        "-e",
        "DOCKBOT_HOST=127.0.0.1",
        "-e",
        `DOCKBOT_ADMIN_TOKEN=${ADMIN_TOKEN}`,
        "-e",
        `DOCKBOT_PUBLIC_URL=${base}`,
        "-e",
        `DOCKBOT_PREVIEW_PORT=${previewPort}`,
        "-e",
        "DOCKBOT_LOG_LEVEL=warn",
        IMAGE,
      ]);
    }, 960_000);

    afterAll(async () => {
      await repo?.remove();
      const logs = await execa("docker", ["logs", "--tail", "30", container], {
        reject: false,
        all: true,
      });
      if (logs.exitCode === 0 && logs.all)
        process.stderr.write(`--- ${container} logs ---\n${logs.all}\n`);
      await execa("docker", ["rm", "-f", container], { reject: false });
      await execa("docker", ["volume", "rm", "-f", volume], { reject: false });
      if (composeProject) {
        // A failed test may leave the deployed app behind: remove it by its compose label.
        const label = `label=com.docker.compose.project=${composeProject}`;
        const ids = (
          await execa("docker", ["ps", "-aq", "--filter", label], { reject: false })
        ).stdout
          .split("\n")
          .filter(Boolean);
        if (ids.length > 0) await execa("docker", ["rm", "-f", "-v", ...ids], { reject: false });
      }
      process.stderr.write(`dockbot image built in ${buildSeconds} s\n`);
    });

    it("runs compiled JavaScript as root under tini, with /data as a volume and ports 3000 and 3001 exposed", async () => {
      const config = await inspect<{
        Entrypoint: string[];
        Cmd: string[];
        User?: string;
        Volumes: Record<string, object>;
        ExposedPorts: Record<string, object>;
        Env: string[];
      }>(IMAGE, ".Config");
      expect(config.Entrypoint).toEqual(["/usr/bin/tini", "--"]);
      expect(config.Cmd).toEqual(["node", "dist/src/main.js"]);
      // No USER: root, to use the root-owned Docker socket (see the Dockerfile's header).
      expect(config.User ?? "").toBe("");
      expect(Object.keys(config.Volumes)).toEqual(["/data"]);
      expect(Object.keys(config.ExposedPorts).sort()).toEqual(["3000/tcp", "3001/tcp"]);
      expect(config.Env).toContain("DOCKBOT_DATA_DIR=/data");
      const tools = await execa("docker", [
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        IMAGE,
        "-c",
        "git --version && ssh -V 2>&1 && docker --version && docker compose version && " +
          "test ! -e node_modules/tsx && test ! -e node_modules/typescript && test ! -e src && echo pruned",
      ]);
      expect(tools.stdout).toMatch(/git version/);
      expect(tools.stdout).toMatch(/OpenSSH/);
      expect(tools.stdout).toMatch(/Docker Compose version v?2\./);
      expect(tools.stdout).toMatch(/pruned$/);
    });

    it("becomes healthy by its own HEALTHCHECK on /api/health", async () => {
      const until = Date.now() + 90_000;
      let status = "";
      while (status !== "healthy") {
        status = await inspect<string>(container, ".State.Health.Status");
        if (status === "unhealthy" || Date.now() > until) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      expect(status).toBe("healthy");
      const health = (await (await fetch(`${base}/api/health`)).json()) as Record<string, string>;
      // The engine's data root is not mounted into dockbot's container: its free space is null.
      expect(health).toEqual({
        status: "ok",
        store: "sqlite",
        docker: "ok",
        compose: "v2",
        disk: { dockerFreeBytes: null, dataFreeBytes: expect.any(Number) as number },
      });
      const pid1 = await execa("docker", ["exec", container, "cat", "/proc/1/cmdline"]);
      expect(pid1.stdout.split("\0")[0]).toBe("/usr/bin/tini");
    });

    it("deploys a version through the host's Docker socket and serves it", async () => {
      const key = (await (await fetch(`${base}/api/ssh-key`)).json()) as { publicKey: string };
      await authorizeKey(key.publicKey);
      repo = await createTestRepo("packaging", webApp("hello from the dockbot image"));
      const created = await api("POST", "/api/projects", {
        name: `img-${suffix}`,
        repoUrl: repo.sshUrl,
      });
      expect(created.status).toBe(201);
      const version = await api<VersionJson>("POST", `/api/projects/img-${suffix}/versions`, {
        ref: "main",
      });
      expect(version.status).toBe(201);
      const on = await api<OperationJson>("POST", `/api/projects/img-${suffix}/versions/main/on`);
      expect(on.status).toBe(202);
      const op = await waitForOperation<OperationJson>(api, on.body.id, 240_000);
      expect(op.status, op.log ?? op.error).toBe("succeeded");
      const running = await api<VersionJson>("GET", `/api/projects/img-${suffix}/versions/main`);
      expect(running.body.state).toBe("running");
      composeProject = running.body.composeProject;
      const url = running.body.urls[0];
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
      expect(await fetchText(url ?? "")).toBe("hello from the dockbot image\n");
      // On the host's network the router reaches the published port on 127.0.0.1, as on the host.
      const preview = await requestWithHost(previewPort, `main--img-${suffix}.localhost`);
      expect(preview.status, preview.body).toBe(200);
      expect(preview.body).toBe("hello from the dockbot image\n");

      // Delete removes what it deployed from the host's engine, through the same socket.
      const del = await api<OperationJson>("DELETE", `/api/projects/img-${suffix}/versions/main`);
      expect(del.status).toBe(202);
      expect((await waitForOperation<OperationJson>(api, del.body.id, 240_000)).status).toBe(
        "succeeded",
      );
      const left = await execa("docker", [
        "ps",
        "-aq",
        "--filter",
        `label=com.docker.compose.project=${running.body.composeProject}`,
      ]);
      expect(left.stdout.trim()).toBe("");
    });

    // dockbot in a bridged container, as docker-compose.yml runs it: 127.0.0.1 is the container,
    // so the preview router reaches the version over the dockbot-preview network.
    const bridged = {
      container: `dockbot-packaging-bridged-${suffix}`,
      volume: `dockbot-packaging-bridged-data-${suffix}`,
      network: `dockbot-packaging-net-${suffix}`,
      relay: undefined as net.Server | undefined,
      repo: undefined as TestRepo | undefined,
      composeProject: undefined as string | undefined,
    };

    afterAll(async () => {
      await execa("docker", ["rm", "-f", bridged.container], { reject: false });
      await execa("docker", ["volume", "rm", "-f", bridged.volume], { reject: false });
      if (bridged.composeProject) {
        const label = `label=com.docker.compose.project=${bridged.composeProject}`;
        const ids = (
          await execa("docker", ["ps", "-aq", "--filter", label], { reject: false })
        ).stdout
          .split("\n")
          .filter(Boolean);
        if (ids.length > 0) await execa("docker", ["rm", "-f", "-v", ...ids], { reject: false });
      }
      await execa("docker", ["network", "rm", bridged.network], { reject: false });
      // dockbot made it; gone once nothing else uses it (another test's dockbot may).
      await execa("docker", ["network", "rm", "dockbot-preview"], { reject: false });
      const relay = bridged.relay;
      if (relay) await new Promise<void>((resolve) => relay.close(() => resolve()));
      await bridged.repo?.remove();
    });

    it("routes a preview request through dockbot in a bridged container to a version, over the dockbot-preview network", async () => {
      await execa("docker", ["network", "create", bridged.network]);
      const gateway = (
        await execa("docker", [
          "network",
          "inspect",
          "--format",
          "{{(index .IPAM.Config 0).Gateway}}",
          bridged.network,
        ])
      ).stdout.trim();
      // The test sshd listens on 127.0.0.1 only: relay it onto the network's gateway address.
      const relay = net.createServer((client) => {
        const upstream = net.connect(gitServerAddress.port, "127.0.0.1");
        client.pipe(upstream).pipe(client);
        client.on("error", () => upstream.destroy());
        upstream.on("error", () => client.destroy());
      });
      bridged.relay = relay;
      await new Promise<void>((resolve) => relay.listen(0, gateway, resolve));
      const relayPort = (relay.address() as net.AddressInfo).port;

      const apiPort = await freePort();
      const routerPort = await freePort();
      const bridgedBase = `http://127.0.0.1:${apiPort}`;
      await execa("docker", [
        "run",
        "-d",
        "--name",
        bridged.container,
        "--network",
        bridged.network,
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        `${bridged.volume}:/data`,
        "-p",
        `127.0.0.1:${apiPort}:3000`,
        "-p",
        `127.0.0.1:${routerPort}:3001`,
        "-e",
        `DOCKBOT_ADMIN_TOKEN=${ADMIN_TOKEN}`,
        "-e",
        `DOCKBOT_PUBLIC_URL=${bridgedBase}`,
        "-e",
        "DOCKBOT_LOG_LEVEL=warn",
        IMAGE,
      ]);
      const bridgedApi = apiClient(bridgedBase, ADMIN_TOKEN);
      const until = Date.now() + 60_000;
      while (
        !(await fetch(`${bridgedBase}/api/health`).then(
          (r) => r.ok,
          () => false,
        ))
      ) {
        if (Date.now() > until) throw new Error("the bridged dockbot did not answer in 60 s");
        await new Promise((r) => setTimeout(r, 500));
      }
      const key = (await (await fetch(`${bridgedBase}/api/ssh-key`)).json()) as {
        publicKey: string;
      };
      await authorizeKey(key.publicKey);
      bridged.repo = await createTestRepo(
        "packaging-bridged",
        webApp("hello over the preview network"),
      );
      const repoPath = new URL(bridged.repo.sshUrl).pathname;
      const name = `br-${suffix}`;
      expect(
        (
          await bridgedApi("POST", "/api/projects", {
            name,
            repoUrl: `ssh://git@${gateway}:${relayPort}${repoPath}`,
          })
        ).status,
      ).toBe(201);
      expect(
        (await bridgedApi("POST", `/api/projects/${name}/versions`, { ref: "main" })).status,
      ).toBe(201);
      const on = await bridgedApi<OperationJson>("POST", `/api/projects/${name}/versions/main/on`);
      const op = await waitForOperation<OperationJson>(bridgedApi, on.body.id, 240_000);
      expect(op.status, op.log ?? op.error).toBe("succeeded");
      const running = await bridgedApi<VersionJson & { previewUrl: string | null }>(
        "GET",
        `/api/projects/${name}/versions/main`,
      );
      bridged.composeProject = running.body.composeProject;
      expect(running.body.previewUrl).toBe(`http://main--${name}.localhost:3001`);

      const answer = await untilStatus(
        () => requestWithHost(routerPort, `main--${name}.localhost:3001`),
        200,
      );
      expect(answer.status, answer.body).toBe(200);
      expect(answer.body).toBe("hello over the preview network\n");
      // Both ends are on the router's network, and the version's own network is untouched.
      const networksOf = async (id: string) =>
        Object.keys(await inspect<Record<string, unknown>>(id, ".NetworkSettings.Networks"));
      expect(await networksOf(bridged.container)).toContain("dockbot-preview");
      const web = (
        await execa("docker", [
          "ps",
          "-q",
          "--filter",
          `label=com.docker.compose.project=${running.body.composeProject}`,
        ])
      ).stdout.trim();
      expect(await networksOf(web)).toContain("dockbot-preview");

      // The attachment never keeps a delete from removing the version's network.
      const del = await bridgedApi<OperationJson>("DELETE", `/api/projects/${name}/versions/main`);
      const deleted = await waitForOperation<OperationJson>(bridgedApi, del.body.id, 240_000);
      expect(deleted.status, deleted.log ?? deleted.error).toBe("succeeded");
      const nets = await execa("docker", [
        "network",
        "ls",
        "-q",
        "--filter",
        `label=com.docker.compose.project=${running.body.composeProject}`,
      ]);
      expect(nets.stdout.trim()).toBe("");
    }, 600_000);

    it("stops cleanly on docker stop: tini hands SIGTERM to node, which exits 0", async () => {
      const started = Date.now();
      await execa("docker", ["stop", "--time", "20", container]);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(await inspect<number>(container, ".State.ExitCode")).toBe(0);
    });
  },
);
