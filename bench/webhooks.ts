// Webhook intake benchmark: requests per second and p50/p99 latency of POST /webhooks/gitlab at
// 200 concurrent deliveries (distinct delivery ids, valid token), against a bare hono route that
// answers 202, both in child processes loaded by autocannon from this one. Rounds alternate
// between the two so both see the same machine; the medians are compared. A run at 20
// connections follows, for the latency of a delivery in a smaller burst. Afterwards the stored
// deliveries and operations are counted: none may be lost or doubled.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { execa } from "execa";
import { median, print } from "./stats.js";
import { openSqliteStore } from "../src/store/sqlite-store.js";
import { dockbotProcess, freePort, waitUntil } from "../test/support/dockbot-process.js";

const CONNECTIONS = 200;
/** Deliveries per round: a fixed number (not a duration), so none is cut off in flight. */
const DELIVERIES = 20_000;
const ROUNDS = 3;
/** Sent first to each server and not measured: connections opened, code compiled by the JIT. */
const WARMUP = 4_000;
/** A burst of this many concurrent deliveries is the most a busy GitLab instance sends here. */
const FEW_CONNECTIONS = 20;
const TOKEN = "bench-admin-token-0123456789abcdef";
const root = path.resolve(import.meta.dirname, "..");

interface Load {
  rps: number;
  p50: number;
  p99: number;
  ok: number;
  errors: number;
  non2xx: number;
}

async function load(
  url: string,
  headers: Record<string, string>,
  body: (i: number) => string,
  amount = DELIVERIES,
  connections = CONNECTIONS,
): Promise<Load> {
  let i = 0;
  // Timed here, from the first request to the last response: autocannon notices that `amount`
  // is done only at its next one-second tick, so its own start/finish are whole seconds apart.
  let first = 0;
  let last = 0;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        method: "POST",
        connections,
        amount,
        headers: { "content-type": "application/json", ...headers },
        requests: [
          {
            setupRequest: (req) => {
              i += 1;
              if (first === 0) first = performance.now();
              return {
                ...req,
                headers: { ...req.headers, "idempotency-key": randomUUID() },
                body: body(i),
              };
            },
          },
        ],
      },
      (error, done) => (error ? reject(error as Error) : resolve(done)),
    );
    instance.on("response", () => {
      last = performance.now();
    });
  });
  return {
    rps: (result.requests.total / (last - first)) * 1000,
    p50: result.latency.p50,
    p99: result.latency.p99,
    ok: result["2xx"],
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

function show(name: string, l: Load): void {
  print(
    `${name.padEnd(34)} ${l.rps.toFixed(0).padStart(6)} req/s   p50 ${l.p50.toFixed(1).padStart(5)} ms   p99 ${l.p99.toFixed(1).padStart(5)} ms   2xx ${l.ok}   other ${l.non2xx}   errors ${l.errors}`,
  );
}

function medianOf(runs: Load[]): Load {
  const m = (f: (l: Load) => number) => median(runs.map(f));
  return {
    rps: m((l) => l.rps),
    p50: m((l) => l.p50),
    p99: m((l) => l.p99),
    ok: runs.reduce((n, l) => n + l.ok, 0),
    errors: runs.reduce((n, l) => n + l.errors, 0),
    non2xx: runs.reduce((n, l) => n + l.non2xx, 0),
  };
}

export async function benchWebhooks(): Promise<void> {
  const push = JSON.parse(
    readFileSync(path.join(root, "test/fixtures/gitlab/push.json"), "utf8"),
  ) as Record<string, unknown>;
  const sha = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
  // 50 branches: deliveries for one branch supersede each other, as rapid pushes do.
  const body = (i: number) =>
    JSON.stringify({ ...push, ref: `refs/heads/bench-${i % 50}`, after: sha, checkout_sha: sha });

  // Baseline: the bare route.
  const barePort = await freePort();
  const bare = execa("node", ["--import", "tsx", "bench/bare-server.ts", String(barePort)], {
    cwd: root,
    reject: false,
  });
  const bareUrl = `http://127.0.0.1:${barePort}/webhooks/gitlab`;
  await waitUntil("the bare server", async () => {
    const r = await fetch(bareUrl, { method: "POST" });
    return r.status === 202 ? true : undefined;
  });

  // dockbot: the embedded store, no runner (DOCKBOT_CONCURRENCY=0) so intake alone is measured.
  const dockbot = await dockbotProcess(TOKEN, { DOCKBOT_CONCURRENCY: "0" });
  await dockbot.start();
  const created = await dockbot.api<{ id: string; webhookSecret: string }>(
    "POST",
    "/api/projects",
    {
      name: "bench-hooks",
      repoUrl: "git@gitlab.example.com:team/app.git",
    },
  );
  const hookUrl = `${dockbot.base}/webhooks/gitlab`;
  const hookHeaders = {
    "x-gitlab-token": created.body.webhookSecret,
    "x-gitlab-event": "Push Hook",
  };

  await load(bareUrl, {}, body, WARMUP);
  const answered: Load[] = [await load(hookUrl, hookHeaders, body, WARMUP)];
  const bareRuns: Load[] = [];
  const dockbotRuns: Load[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    bareRuns.push(await load(bareUrl, {}, body));
    dockbotRuns.push(await load(hookUrl, hookHeaders, body));
  }
  answered.push(...dockbotRuns);
  const bareFew = await load(bareUrl, {}, body, DELIVERIES, FEW_CONNECTIONS);
  const dockbotFew = await load(hookUrl, hookHeaders, body, DELIVERIES, FEW_CONNECTIONS);
  answered.push(dockbotFew);

  bare.kill("SIGTERM");
  await bare;
  await dockbot.kill("SIGTERM");
  const store = await openSqliteStore(path.join(dockbot.dataDir, "dockbot.sqlite"));
  const deliveries = await store.listDeliveries(created.body.id, 10_000_000);
  const operations = await store.listOperations({ projectId: created.body.id });
  await store.close();
  await dockbot.close();

  print(
    `${ROUNDS} rounds of ${DELIVERIES} deliveries over ${CONNECTIONS} connections, bare and dockbot alternating, after ${WARMUP} each to warm up; distinct Idempotency-Key per delivery`,
  );
  bareRuns.forEach((l, i) => show(`bare hono route, round ${i + 1}`, l));
  dockbotRuns.forEach((l, i) => show(`dockbot, round ${i + 1}`, l));
  const baseline = medianOf(bareRuns);
  const measured = medianOf(dockbotRuns);
  show("bare hono route (median)", baseline);
  show("dockbot /webhooks/gitlab (median)", measured);
  print(
    `throughput ratio dockbot / bare: ${(measured.rps / baseline.rps).toFixed(2)} (goal >= 0.50)`,
  );
  print(
    `p99 at saturation: dockbot ${measured.p99.toFixed(1)} ms, bare ${baseline.p99.toFixed(1)} ms (goal < 25 ms); ` +
      `with ${CONNECTIONS} requests always in flight the mean latency is at least ${CONNECTIONS} / throughput: ` +
      `${((CONNECTIONS / measured.rps) * 1000).toFixed(1)} ms for dockbot, ${((CONNECTIONS / baseline.rps) * 1000).toFixed(1)} ms for bare`,
  );
  print(`${DELIVERIES} deliveries over ${FEW_CONNECTIONS} connections:`);
  show(`bare hono route, ${FEW_CONNECTIONS} connections`, bareFew);
  show(`dockbot, ${FEW_CONNECTIONS} connections`, dockbotFew);
  const keys = new Set(deliveries.map((d) => d.deliveryKey));
  const total = answered.reduce((n, l) => n + l.ok, 0);
  print(
    `answered 2xx (warm-up included): ${total}; stored deliveries: ${deliveries.length} (distinct keys ${keys.size}); operations: ${operations.length}`,
  );
  print(
    deliveries.length === total &&
      keys.size === deliveries.length &&
      operations.length === deliveries.length
      ? "no delivery lost or doubled"
      : "MISMATCH: deliveries lost or doubled",
  );
}
