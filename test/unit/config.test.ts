import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";

describe("parseConfig", () => {
  it("gives the defaults of docs/api.md for an empty environment", () => {
    const r = parseConfig({}, "/srv/dockbot");
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config).toMatchObject({
      port: 3000,
      host: "0.0.0.0",
      dataDir: "/srv/dockbot/data",
      publicUrl: "http://localhost:3000",
      concurrency: 2,
      compose: "auto",
      operationTimeoutSeconds: 1800,
      sshStrict: "accept-new",
      logLevel: "info",
      logMaxBytes: 5 * 1024 * 1024,
    });
    expect(r.config.mongodbUrl).toBeUndefined();
    expect(r.config.adminToken).toBeUndefined();
  });

  it("reads every variable", () => {
    const r = parseConfig({
      DOCKBOT_PORT: "8080",
      DOCKBOT_HOST: "127.0.0.1",
      DOCKBOT_DATA_DIR: "/var/lib/dockbot",
      DOCKBOT_MONGODB_URL: "mongodb://db:27017/dockbot",
      DOCKBOT_ADMIN_TOKEN: "0123456789abcdef0123",
      DOCKBOT_PUBLIC_URL: "https://deploy.example.com/",
      DOCKBOT_GITLAB_URL: "https://gitlab.example.com",
      DOCKBOT_GITLAB_TOKEN: "glpat-x",
      DOCKBOT_CONCURRENCY: "0",
      DOCKBOT_COMPOSE: "v1",
      DOCKBOT_OPERATION_TIMEOUT: "60",
      DOCKBOT_SSH_STRICT: "yes",
      DOCKBOT_LOG_LEVEL: "debug",
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config).toMatchObject({
      port: 8080,
      host: "127.0.0.1",
      dataDir: "/var/lib/dockbot",
      mongodbUrl: "mongodb://db:27017/dockbot",
      publicUrl: "https://deploy.example.com",
      gitlabUrl: "https://gitlab.example.com",
      gitlabToken: "glpat-x",
      concurrency: 0,
      compose: "v1",
      operationTimeoutSeconds: 60,
      sshStrict: "yes",
      logLevel: "debug",
    });
  });

  it.each([
    ["DOCKBOT_PORT", "abc"],
    ["DOCKBOT_PORT", "70000"],
    ["DOCKBOT_CONCURRENCY", "-1"],
    ["DOCKBOT_COMPOSE", "v3"],
    ["DOCKBOT_OPERATION_TIMEOUT", "0"],
    ["DOCKBOT_SSH_STRICT", "no"],
    ["DOCKBOT_LOG_LEVEL", "loud"],
    ["DOCKBOT_PUBLIC_URL", "ftp://x"],
    ["DOCKBOT_MONGODB_URL", "postgres://x"],
    ["DOCKBOT_ADMIN_TOKEN", "short"],
    ["DOCKBOT_IDLE_HOURS", "-1"],
    ["DOCKBOT_IDLE_HOURS", "soon"],
    ["DOCKBOT_MAX_RUNNING", "1.5"],
    ["DOCKBOT_DISK_MIN_FREE", "120%"],
    ["DOCKBOT_DISK_MIN_FREE", "lots"],
    ["DOCKBOT_RETENTION_DAYS", "0"],
  ])("rejects %s=%s with one line naming the variable", (name, value) => {
    const r = parseConfig({ [name]: value });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toContain(name);
    expect(r.errors[0]).not.toContain("\n");
  });

  it("gives the idle, limit, disk and retention defaults of docs/api.md", () => {
    const r = parseConfig({});
    expect(r.ok && r.config).toMatchObject({
      idleHours: 72,
      maxRunning: 0,
      diskMinFree: { percent: 10 },
      retentionDays: 30,
    });
  });

  it("reads fractions of hours and days, a running limit, and free space in bytes or percent", () => {
    const r = parseConfig({
      DOCKBOT_IDLE_HOURS: "0.5",
      DOCKBOT_MAX_RUNNING: "12",
      DOCKBOT_DISK_MIN_FREE: "5g",
      DOCKBOT_RETENTION_DAYS: "7.5",
    });
    expect(r.ok && r.config).toMatchObject({
      idleHours: 0.5,
      maxRunning: 12,
      diskMinFree: { bytes: 5 * 1024 ** 3 },
      retentionDays: 7.5,
    });
    const off = parseConfig({ DOCKBOT_IDLE_HOURS: "0", DOCKBOT_DISK_MIN_FREE: "15%" });
    expect(off.ok && off.config).toMatchObject({ idleHours: 0, diskMinFree: { percent: 15 } });
  });

  it("reports every bad variable at once", () => {
    const r = parseConfig({ DOCKBOT_PORT: "x", DOCKBOT_COMPOSE: "y" });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors).toHaveLength(2);
  });

  it("needs a GitLab URL when a GitLab token is given", () => {
    const r = parseConfig({ DOCKBOT_GITLAB_TOKEN: "glpat-x" });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]).toContain("DOCKBOT_GITLAB_URL");
  });
});
