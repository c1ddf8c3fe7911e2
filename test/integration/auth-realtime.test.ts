// Socket.io and src/auth (docs/api.md, "Who may do what"): a connection signs in with the
// dashboard's session cookie (from dockbot's own origin) or a token, and a client only hears
// events of projects it may read. Real http server, real socket.io-client, fake GitLab.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { io as connect, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attachSocketServer, type AttachedSocketServer } from "../../src/realtime/socket-server.js";
import { adminToken } from "../../src/http/admin-token.js";
import { ROLE_CACHE_MS } from "../../src/auth/gitlab-roles.js";
import {
  AUTH_ADMIN_TOKEN,
  PUBLIC_URL,
  startAuthHarness,
  type AuthHarness,
} from "../support/auth-harness.js";

let h: AuthHarness;
let server: http.Server;
let realtime: AttachedSocketServer;
let url = "";
const sockets: Socket[] = [];
const ids: Record<string, string> = {};

beforeAll(async () => {
  h = await startAuthHarness();
  h.oauth.addUser({ id: 21, username: "rae", name: "Rae Reporter" });
  h.oauth.setAccessLevel(201, 21, 20);
  for (const [name, projectId] of [
    ["rt-mine", 201],
    ["rt-other", 202],
  ] as const) {
    const res = await h.request("POST", "/api/projects", {
      bearer: AUTH_ADMIN_TOKEN,
      body: { name, repoUrl: "git@gitlab.example.com:t/a.git", gitlab: { projectId } },
    });
    ids[name] = ((await res.json()) as { id: string }).id;
  }
  server = http.createServer((_req, res) => res.writeHead(404).end());
  realtime = attachSocketServer(server, {
    bus: h.bus,
    store: h.store,
    token: await adminToken(h.store, AUTH_ADMIN_TOKEN),
    auth: h.auth,
    logger: pino({ level: "silent" }),
    publicUrl: PUBLIC_URL,
    // Rights of open sockets asked again every 100 ms instead of every minute.
    rightsRecheckMs: 100,
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await realtime?.close();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  await h?.close();
});

/** Connects; resolves with the socket, or with the error message the server refused it with. */
function open(opts: {
  token?: string;
  cookie?: string;
  origin?: string;
}): Promise<Socket | string> {
  const headers: Record<string, string> = {};
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.origin) headers.origin = opts.origin;
  const socket = connect(url, {
    path: "/socket.io",
    transports: ["websocket"],
    reconnection: false,
    extraHeaders: headers,
    ...(opts.token ? { auth: { token: opts.token } } : {}),
  });
  sockets.push(socket);
  return new Promise((resolve) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (error) => resolve(error.message));
  });
}

const subscribe = (socket: Socket, request: object) =>
  socket.emitWithAck("subscribe", request) as Promise<{ ok: boolean; error?: { code: string } }>;

describe("Socket.io sign-in and what a client hears", () => {
  it("accepts the session cookie from dockbot's origin, refuses it from another or without one", async () => {
    const cookie = await h.signIn("rae");
    expect(typeof (await open({ cookie, origin: PUBLIC_URL }))).not.toBe("string");
    expect(await open({ cookie })).toBe("forbidden");
    expect(await open({ cookie: "dockbot_session=forged", origin: PUBLIC_URL })).toBe(
      "unauthorized",
    );
    expect(await open({ token: "dbt_wrong" })).toBe("unauthorized");
    expect(typeof (await open({ token: AUTH_ADMIN_TOKEN }))).not.toBe("string");
  });

  it("gives a Reporter's socket its project's events and none of another project's", async () => {
    const cookie = await h.signIn("rae");
    const socket = await open({ cookie, origin: PUBLIC_URL });
    if (typeof socket === "string") throw new Error(socket);
    expect(await subscribe(socket, {})).toEqual({ ok: true });
    expect(await subscribe(socket, { projectId: ids["rt-other"] })).toMatchObject({
      ok: false,
      error: { code: "not_found" },
    });
    expect((await subscribe(socket, { projectId: ids["rt-mine"] })).ok).toBe(true);
    const heard: string[] = [];
    socket.on("version.updated", (v: { projectId: string; name: string }) => heard.push(v.name));
    const admin = await open({ token: AUTH_ADMIN_TOKEN });
    if (typeof admin === "string") throw new Error(admin);
    await subscribe(admin, {});
    const adminHeard: string[] = [];
    admin.on("version.updated", (v: { name: string }) => adminHeard.push(v.name));
    await h.service.createVersion("rt-other", { ref: "other-branch" });
    await h.service.createVersion("rt-mine", { ref: "my-branch" });
    await expect.poll(() => adminHeard.length, { timeout: 5000 }).toBe(2);
    await expect.poll(() => heard, { timeout: 5000 }).toEqual(["my-branch"]);
    // An operation of the other project: not a line, not an event.
    const other = await h.service.getVersion("rt-other", "other-branch");
    const op = await h.service.requestOperation(other.version, "up", { source: "api" });
    expect(await subscribe(socket, { operationId: op.id })).toMatchObject({ ok: false });
    await expect.poll(() => adminHeard.length, { timeout: 5000 }).toBeGreaterThan(2);
    expect(heard).toEqual(["my-branch"]);
  });

  it("disconnects an open socket whose person lost the project in GitLab, and keeps one that did not", async () => {
    h.oauth.addUser({ id: 22, username: "ray", name: "Ray Reporter" });
    h.oauth.setAccessLevel(201, 22, 20);
    h.oauth.addUser({ id: 23, username: "kim", name: "Kim Keeps" });
    h.oauth.setAccessLevel(201, 23, 20);
    const leaving = await open({ cookie: await h.signIn("ray"), origin: PUBLIC_URL });
    const staying = await open({ cookie: await h.signIn("kim"), origin: PUBLIC_URL });
    if (typeof leaving === "string" || typeof staying === "string") throw new Error("refused");
    expect((await subscribe(leaving, { projectId: ids["rt-mine"] })).ok).toBe(true);
    expect((await subscribe(staying, { projectId: ids["rt-mine"] })).ok).toBe(true);
    const reasons: string[] = [];
    leaving.on("disconnect", (reason) => reasons.push(reason));

    h.oauth.setAccessLevel(201, 22, 0);
    // Still connected while the role GitLab gave is cached...
    await new Promise((r) => setTimeout(r, 300));
    expect(leaving.connected).toBe(true);
    // ...and disconnected by the server once it asks GitLab again.
    h.advance(ROLE_CACHE_MS + 1);
    await expect.poll(() => reasons, { timeout: 5000 }).toEqual(["io server disconnect"]);
    expect(staying.connected).toBe(true);
  });

  it("disconnects an open socket whose API token was revoked", async () => {
    const made = await h.request("POST", "/api/tokens", {
      bearer: AUTH_ADMIN_TOKEN,
      body: { name: "rt-watch", scopes: ["read"] },
    });
    expect(made.status).toBe(201);
    const { id, token } = (await made.json()) as { id: string; token: string };
    const socket = await open({ token });
    if (typeof socket === "string") throw new Error(socket);
    expect((await subscribe(socket, {})).ok).toBe(true);
    const reasons: string[] = [];
    socket.on("disconnect", (reason) => reasons.push(reason));
    await new Promise((r) => setTimeout(r, 300));
    expect(socket.connected).toBe(true);

    const revoked = await h.request("DELETE", `/api/tokens/${id}`, { bearer: AUTH_ADMIN_TOKEN });
    expect(revoked.status).toBeLessThan(300);
    await expect.poll(() => reasons, { timeout: 5000 }).toEqual(["io server disconnect"]);
  });
});
