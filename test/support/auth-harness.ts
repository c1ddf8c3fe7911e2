// dockbot's API in-process (app.request, real SQLite store, no runner) with src/auth wired to a
// fake GitLab that signs people in over OAuth and answers their access levels
// (test/support/fake-gitlab-oauth.ts). A settable clock drives session, token and cache expiry;
// each request can come from its own address (rate limits are per address).
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { createAuth, type Auth } from "../../src/auth/auth.js";
import { DeployService } from "../../src/deploy/deploy-service.js";
import { EventBus } from "../../src/deploy/events.js";
import { adminToken } from "../../src/http/admin-token.js";
import { createApp } from "../../src/http/app.js";
import type { Store } from "../../src/store/store.js";
import { openSqliteStore } from "../../src/store/sqlite-store.js";
import { gitlabReceiver } from "../../src/webhooks/gitlab-receiver.js";
import { startFakeGitlab, type FakeGitlab } from "./fake-gitlab.js";
import { fakeGitlabOauth, type FakeGitlabOauth } from "./fake-gitlab-oauth.js";

export const AUTH_ADMIN_TOKEN = "auth-test-admin-token-0123456789";
export const PUBLIC_URL = "http://dockbot.test";

export interface AuthHarness {
  app: ReturnType<typeof createApp>;
  auth: Auth;
  store: Store;
  service: DeployService;
  bus: EventBus;
  gitlab: FakeGitlab;
  oauth: FakeGitlabOauth;
  /** Moves the clock of sessions, tokens and the role cache. */
  advance(ms: number): void;
  request(
    method: string,
    url: string,
    opts?: {
      bearer?: string;
      cookie?: string;
      body?: unknown;
      headers?: Record<string, string>;
      address?: string;
    },
  ): Promise<Response>;
  /** Signs in through the whole OAuth round trip; returns the session cookie (name=value). */
  signIn(username: string, address?: string): Promise<string>;
  close(): Promise<void>;
}

export function cookieOf(res: Response, name: string): string | undefined {
  for (const line of res.headers.getSetCookie()) {
    const pair = line.split(";")[0] ?? "";
    if (pair.startsWith(`${name}=`) && pair.length > name.length + 1) return pair;
  }
  return undefined;
}

export async function startAuthHarness(
  opts: { admins?: string[]; maxFailures?: number } = {},
): Promise<AuthHarness> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-auth-"));
  const store = await openSqliteStore(path.join(dir, "dockbot.sqlite"));
  const oauth = fakeGitlabOauth({ privateToken: "glpat-auth-test-dockbot-token" });
  const gitlab = await startFakeGitlab({
    token: "glpat-auth-test-dockbot-token",
    plugins: [oauth.plugin],
  });
  oauth.redirectUri = `${PUBLIC_URL}/auth/gitlab/callback`;
  let clock = Date.now();
  const logger = pino({ level: "silent" });
  const bus = new EventBus();
  const service = new DeployService({ store, bus, logger });
  const token = await adminToken(store, AUTH_ADMIN_TOKEN);
  const auth = createAuth({
    store,
    adminToken: token,
    publicUrl: PUBLIC_URL,
    logger,
    gitlabUrl: gitlab.url,
    gitlabToken: gitlab.token,
    oauth: { clientId: oauth.clientId, clientSecret: oauth.clientSecret },
    admins: opts.admins ?? ["root"],
    now: () => clock,
    rateLimit: { maxFailures: opts.maxFailures ?? 5, now: () => clock },
  });
  const app = createApp({
    publicUrl: PUBLIC_URL,
    store,
    service,
    bus,
    token,
    auth,
    sshKey: { publicKey: "ssh-ed25519 AAAAtest dockbot", fingerprint: "SHA256:test" },
    compose: { detect: () => Promise.resolve("v2"), dockerReachable: () => Promise.resolve(true) },
    logger,
  });

  app.route(
    "/webhooks",
    gitlabReceiver({
      service,
      store,
      logger,
      mergeRequestRefusal: (project, authorId) => auth.mergeRequestRefusal(project, authorId),
    }),
  );

  const request: AuthHarness["request"] = async (method, url, o = {}) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.bearer !== undefined) headers.authorization = `Bearer ${o.bearer}`;
    if (o.cookie !== undefined) {
      headers.cookie = o.cookie;
      headers["sec-fetch-site"] ??= "same-origin";
    }
    const init: RequestInit = { method, headers };
    if (o.body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(o.body);
    }
    const env = {
      incoming: {
        socket: { remoteAddress: o.address ?? "10.1.0.1", remotePort: 1, remoteFamily: "IPv4" },
      },
    };
    return app.request(url, init, env);
  };

  return {
    app,
    auth,
    store,
    service,
    bus,
    gitlab,
    oauth,
    advance: (ms) => void (clock += ms),
    request,
    async signIn(username, address) {
      const start = await request("GET", "/auth/gitlab?next=%2F", address ? { address } : {});
      const signInCookie = cookieOf(start, "dockbot_sign_in");
      const authorize = start.headers.get("location") ?? "";
      if (start.status !== 302 || !signInCookie || !authorize.startsWith(gitlab.url)) {
        throw new Error(`sign-in did not start: ${start.status} ${authorize}`);
      }
      oauth.signInAs(username);
      const back = await fetch(authorize, { redirect: "manual" });
      const callback = new URL(back.headers.get("location") ?? "");
      const done = await request("GET", `${callback.pathname}${callback.search}`, {
        headers: { cookie: signInCookie },
        ...(address ? { address } : {}),
      });
      const session = cookieOf(done, "dockbot_session");
      if (done.status !== 302 || !session) {
        throw new Error(`sign-in as ${username} failed: ${done.status} ${await done.text()}`);
      }
      return session;
    },
    async close() {
      await store.close();
      await gitlab.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
