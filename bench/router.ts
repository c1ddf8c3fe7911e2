// Preview router benchmark: requests per second and p50/p99 latency of GET / on a small HTTP
// service in Docker (the Go upstream of test/fixtures/preview-upstream, published on 127.0.0.1),
// (a) reached directly, (b) through Debian's nginx as a reverse proxy (one worker, keep-alive to
// the upstream, the same X-Forwarded-* headers), (c) through dockbot's preview router (its own
// process, the real lookup cache and Docker locator over a SQLite store). At 1 and at 50
// connections; rounds alternate between the three so all see the same machine, medians compared.
// Latencies are each response's own time (autocannon's histogram has 1 ms steps, too coarse at
// one connection); throughput is timed from the first request to the last response (autocannon's
// start/finish are rounded to its 1 s tick).
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { execa } from "execa";
import { median, print } from "./stats.js";
import { freePort, waitUntil } from "../test/support/dockbot-process.js";
import { buildUpstreamImage, requestWithHost } from "../test/support/preview-upstream.js";

const ROUNDS = 3;
const AMOUNT = { 1: 4_000, 50: 40_000 } as const;
const WARMUP = 3_000;
const root = path.resolve(import.meta.dirname, "..");

interface Load {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

async function load(
  port: number,
  host: string,
  connections: number,
  amount: number,
): Promise<Load> {
  const times = new Float64Array(amount);
  let n = 0;
  let first = 0;
  let last = 0;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `http://127.0.0.1:${port}/`,
        headers: { host },
        connections,
        amount,
        requests: [
          {
            setupRequest: (req) => {
              if (first === 0) first = performance.now();
              return req;
            },
          },
        ],
      },
      (error, done) => (error ? reject(error as Error) : resolve(done)),
    );
    instance.on("response", (_client, _status, _bytes, responseTime) => {
      last = performance.now();
      if (n < amount) times[n++] = responseTime;
    });
  });
  const sorted = times.subarray(0, n).sort();
  return {
    rps: (result.requests.total / (last - first)) * 1000,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

function show(name: string, l: Load): void {
  print(
    `${name.padEnd(30)} ${l.rps.toFixed(0).padStart(6)} req/s   p50 ${l.p50.toFixed(2).padStart(6)} ms   p99 ${l.p99.toFixed(2).padStart(6)} ms   non-2xx ${l.non2xx}   errors ${l.errors}`,
  );
}

function medianOf(runs: Load[]): Load {
  const m = (f: (l: Load) => number) => median(runs.map(f));
  return {
    rps: m((l) => l.rps),
    p50: m((l) => l.p50),
    p99: m((l) => l.p99),
    non2xx: runs.reduce((s, l) => s + l.non2xx, 0),
    errors: runs.reduce((s, l) => s + l.errors, 0),
  };
}

/** Debian's nginx as a plain reverse proxy to the upstream: what a team would put there. */
async function startNginx(upstreamPort: number): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-bench-nginx-"));
  await chmod(dir, 0o755);
  for (const sub of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) {
    await mkdir(path.join(dir, sub));
    await chmod(path.join(dir, sub), 0o777);
  }
  const port = await freePort();
  const conf = path.join(dir, "nginx.conf");
  await writeFile(
    conf,
    [
      "daemon off;",
      // One worker: dockbot's router is one process too.
      "worker_processes 1;",
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log warn;`,
      "events { worker_connections 1024; }",
      "http {",
      "  access_log off;",
      `  client_body_temp_path ${dir}/body;`,
      `  proxy_temp_path ${dir}/proxy;`,
      `  fastcgi_temp_path ${dir}/fastcgi;`,
      `  uwsgi_temp_path ${dir}/uwsgi;`,
      `  scgi_temp_path ${dir}/scgi;`,
      `  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 64; }`,
      "  server {",
      `    listen 127.0.0.1:${port};`,
      "    location / {",
      "      proxy_pass http://app;",
      "      proxy_http_version 1.1;",
      '      proxy_set_header Connection "";',
      "      proxy_set_header Host $host;",
      "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
      "      proxy_set_header X-Forwarded-Proto $scheme;",
      "      proxy_set_header X-Forwarded-Host $http_host;",
      "    }",
      "  }",
      "}",
      "",
    ].join("\n"),
  );
  const args = ["-e", path.join(dir, "error.log"), "-p", dir, "-c", conf];
  const proc = execa("nginx", args, { reject: false, stdin: "ignore" });
  await waitUntil("nginx", async () =>
    (await requestWithHost(port, "x.localhost").catch(() => undefined))?.status === 200
      ? true
      : undefined,
  ).catch(async (error: unknown) => {
    proc.kill();
    throw new Error(`nginx did not start: ${await readFile(path.join(dir, "error.log"), "utf8")}`, {
      cause: error,
    });
  });
  return {
    port,
    async stop() {
      proc.kill("SIGQUIT");
      await proc;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function startRouter(
  composeProject: string,
  hostPort: number,
): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const proc = execa(
    "node",
    ["--import", "tsx", "bench/router-server.ts", String(port), composeProject, String(hostPort)],
    { cwd: root, reject: false, stdin: "ignore" },
  );
  await waitUntil("the preview router", async () =>
    (await requestWithHost(port, "main--bench.localhost").catch(() => undefined))?.status === 200
      ? true
      : undefined,
  );
  return {
    port,
    async stop() {
      proc.kill("SIGTERM");
      await proc;
    },
  };
}

export async function benchRouter(): Promise<void> {
  const suffix = randomBytes(3).toString("hex");
  const image = `dockbot-bench-upstream:${suffix}`;
  const composeProject = `dockbot-benchrouter-${suffix}`;
  const container = `${composeProject}-web-1`;
  const removeImage = await buildUpstreamImage(image);
  let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
  let router: Awaited<ReturnType<typeof startRouter>> | undefined;
  try {
    // Labelled as compose labels its containers: the router's locator finds it that way.
    await execa("docker", [
      "run",
      "-d",
      "--name",
      container,
      "--label",
      `com.docker.compose.project=${composeProject}`,
      "--label",
      "com.docker.compose.service=web",
      "-e",
      "BODY=hello",
      "-p",
      "127.0.0.1::8080",
      image,
    ]);
    const hostPort = Number(
      (await execa("docker", ["port", container, "8080/tcp"])).stdout
        .split("\n")[0]
        ?.split(":")
        .pop(),
    );
    await waitUntil("the upstream", async () =>
      (await requestWithHost(hostPort, "x").catch(() => undefined))?.status === 200
        ? true
        : undefined,
    );
    nginx = await startNginx(hostPort);
    router = await startRouter(composeProject, hostPort);
    const targets = [
      { name: "direct", port: hostPort, host: `127.0.0.1:${hostPort}` },
      { name: "nginx", port: nginx.port, host: `main--bench.localhost:${nginx.port}` },
      { name: "dockbot router", port: router.port, host: `main--bench.localhost:${router.port}` },
    ];
    for (const t of targets) await load(t.port, t.host, 50, WARMUP);

    print(
      `GET / of a Go HTTP service in Docker, published on 127.0.0.1; ${ROUNDS} rounds per target, alternating; medians`,
    );
    const summary: Record<string, Record<number, Load>> = {};
    for (const connections of [1, 50] as const) {
      const runs: Record<string, Load[]> = {};
      for (let round = 0; round < ROUNDS; round++) {
        for (const t of targets) {
          (runs[t.name] ??= []).push(await load(t.port, t.host, connections, AMOUNT[connections]));
        }
      }
      print(
        `-- ${connections} connection${connections === 1 ? "" : "s"}, ${AMOUNT[connections]} requests a round`,
      );
      for (const t of targets) {
        const m = medianOf(runs[t.name] ?? []);
        (summary[t.name] ??= {})[connections] = m;
        show(t.name, m);
      }
    }
    for (const connections of [1, 50] as const) {
      const direct = summary.direct?.[connections];
      const ng = summary.nginx?.[connections];
      const rt = summary["dockbot router"]?.[connections];
      if (!direct || !ng || !rt) continue;
      print(
        `${connections} conn: router/nginx throughput ${(rt.rps / ng.rps).toFixed(2)} (goal >= 0.80); ` +
          `p99 added over direct: router ${(rt.p99 - direct.p99).toFixed(2)} ms, nginx ${(ng.p99 - direct.p99).toFixed(2)} ms` +
          (connections === 50 ? " (goal: router < 2 ms)" : ""),
      );
    }
  } finally {
    await router?.stop();
    await nginx?.stop();
    await execa("docker", ["rm", "-f", container], { reject: false });
    await removeImage();
  }
}
