// Webhook intake benchmark: requests per second and p50/p99 latency of POST /webhooks/gitlab at
// 200 concurrent deliveries (distinct delivery ids, valid token), against a bare hono route that
// answers 202, both in child processes loaded by autocannon from this one. Afterwards the stored
// deliveries and operations are counted: none may be lost or doubled.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { execa } from "execa";
import { print } from "./stats.js";
import { openSqliteStore } from "../src/store/sqlite-store.js";
import { dockbotProcess, freePort, waitUntil } from "../test/support/dockbot-process.js";

const CONNECTIONS = 200;
/** A fixed number of deliveries (not a duration), so none is cut off in flight and counts are exact. */
const DELIVERIES = 20_000;
/** Sent first to each server and not measured: connections opened, code compiled by the JIT. */
const WARMUP = 4_000;
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
): Promise<Load> {
  let i = 0;
  const result = await autocannon({
    url,
    method: "POST",
    connections: CONNECTIONS,
    amount,
    headers: { "content-type": "application/json", ...headers },
    requests: [
      {
        setupRequest: (req) => {
          i += 1;
          return {
            ...req,
            headers: { ...req.headers, "idempotency-key": randomUUID() },
            body: body(i),
          };
        },
      },
    ],
  });
  // Throughput over the whole run: autocannon's per-second average drops partial seconds.
  const seconds = (result.finish.getTime() - result.start.getTime()) / 1000;
  return {
    rps: result.requests.total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    ok: result["2xx"],
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

function show(name: string, l: Load): void {
  print(
    `${name.padEnd(28)} ${l.rps.toFixed(0).padStart(7)} req/s   p50 ${l.p50.toFixed(1)} ms   p99 ${l.p99.toFixed(1)} ms   2xx ${l.ok}   other ${l.non2xx}   errors ${l.errors}`,
  );
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
  await waitUntil("the bare server", async () => {
    const r = await fetch(`http://127.0.0.1:${barePort}/webhooks/gitlab`, { method: "POST" });
    return r.status === 202 ? true : undefined;
  });
  await load(`http://127.0.0.1:${barePort}/webhooks/gitlab`, {}, body, WARMUP);
  const baseline = await load(`http://127.0.0.1:${barePort}/webhooks/gitlab`, {}, body);
  bare.kill("SIGTERM");
  await bare;

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
  const hookHeaders = {
    "x-gitlab-token": created.body.webhookSecret,
    "x-gitlab-event": "Push Hook",
  };
  const warm = await load(`${dockbot.base}/webhooks/gitlab`, hookHeaders, body, WARMUP);
  const measured = await load(`${dockbot.base}/webhooks/gitlab`, hookHeaders, body);
  await dockbot.kill("SIGTERM");
  const store = await openSqliteStore(path.join(dockbot.dataDir, "dockbot.sqlite"));
  const deliveries = await store.listDeliveries(created.body.id, 10_000_000);
  const operations = await store.listOperations({ projectId: created.body.id });
  await store.close();
  await dockbot.close();

  print(
    `${DELIVERIES} deliveries over ${CONNECTIONS} connections after ${WARMUP} to warm up, distinct Idempotency-Key per delivery`,
  );
  show("bare hono route (baseline)", baseline);
  show("dockbot /webhooks/gitlab", measured);
  print(
    `throughput ratio dockbot / bare: ${(measured.rps / baseline.rps).toFixed(2)} (goal >= 0.50)`,
  );
  print(`p99: ${measured.p99.toFixed(1)} ms (goal < 25 ms)`);
  const keys = new Set(deliveries.map((d) => d.deliveryKey));
  const answered = warm.ok + measured.ok;
  print(
    `answered 2xx (warm-up included): ${answered}; stored deliveries: ${deliveries.length} (distinct keys ${keys.size}); operations: ${operations.length}`,
  );
  print(
    deliveries.length === answered &&
      keys.size === deliveries.length &&
      operations.length === deliveries.length
      ? "no delivery lost or doubled"
      : "MISMATCH: deliveries lost or doubled",
  );
}
