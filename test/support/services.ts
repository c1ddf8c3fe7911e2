// Gates for tests that need a real service (Docker, Compose, the sshd git server, MongoDB).
// Missing on a user's machine: the suite is skipped with a one-line reason. With
// DOCKBOT_REQUIRE_SERVICES=1 (set by .ci/run) a missing service fails the suite instead.
import { execa } from "execa";
import net from "node:net";
import path from "node:path";
import { describe, it } from "vitest";

export interface ServiceCheck {
  ok: boolean;
  /** Why the service is not usable (empty when ok). */
  reason: string;
}

export const servicesRequired = process.env.DOCKBOT_REQUIRE_SERVICES === "1";

/** `describe` that runs when every check passed; otherwise skips (or fails under CI). */
export function describeWithServices(checks: ServiceCheck[], name: string, body: () => void): void {
  const missing = checks.filter((c) => !c.ok).map((c) => c.reason);
  if (missing.length === 0) {
    describe(name, body);
    return;
  }
  const reason = missing.join("; ");
  if (servicesRequired) {
    describe(name, () => {
      it("has the services it needs (DOCKBOT_REQUIRE_SERVICES=1)", () => {
        throw new Error(`missing service: ${reason}. Run scripts/test-services.sh first.`);
      });
    });
  } else {
    describe.skip(`${name} (skipped: ${reason})`, body);
  }
}

async function commandWorks(cmd: string, args: string[]): Promise<boolean> {
  const r = await execa(cmd, args, { reject: false, timeout: 20_000, stdin: "ignore" });
  return r.exitCode === 0;
}

export async function checkDocker(): Promise<ServiceCheck> {
  return (await commandWorks("docker", ["info", "--format", "{{.ServerVersion}}"]))
    ? { ok: true, reason: "" }
    : { ok: false, reason: "no Docker engine answers `docker info`" };
}

export async function checkComposeV2(): Promise<ServiceCheck> {
  return (await commandWorks("docker", ["compose", "version"]))
    ? { ok: true, reason: "" }
    : { ok: false, reason: "no Compose v2 plugin (`docker compose version` fails)" };
}

export async function checkComposeV1(): Promise<ServiceCheck> {
  return (await commandWorks("docker-compose", ["version"]))
    ? { ok: true, reason: "" }
    : { ok: false, reason: "no Compose v1 (`docker-compose version` fails)" };
}

/** The image test Dockerfiles start FROM (built locally by scripts/test-services.sh). */
export const TEST_BASE_IMAGE = "dockbot-test-base:latest";

export async function checkTestBaseImage(): Promise<ServiceCheck> {
  return (await commandWorks("docker", ["image", "inspect", TEST_BASE_IMAGE]))
    ? { ok: true, reason: "" }
    : { ok: false, reason: `no local image ${TEST_BASE_IMAGE}` };
}

export function tcpOpen(port: number, host = "127.0.0.1", timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** Where scripts/test-services.sh puts the sshd git server. */
export const gitServer = {
  port: Number(process.env.DOCKBOT_TEST_SSH_PORT ?? 2222),
  home: process.env.DOCKBOT_TEST_GIT_HOME ?? "/srv/dockbot-test-git",
  user: "git",
};

export async function checkGitServer(): Promise<ServiceCheck> {
  return (await tcpOpen(gitServer.port))
    ? { ok: true, reason: "" }
    : { ok: false, reason: `no sshd git server on 127.0.0.1:${gitServer.port}` };
}

/** What a real deploy needs: Docker, Compose v2, the local base image and the sshd git server. */
export async function checkDeployServices(): Promise<ServiceCheck[]> {
  return [
    await checkDocker(),
    await checkComposeV2(),
    await checkTestBaseImage(),
    await checkGitServer(),
  ];
}

/** schemathesis' CLI in the venv scripts/services/schemathesis.sh makes. */
export const schemathesisBin = path.join(
  process.env.DOCKBOT_TEST_SCHEMATHESIS_VENV ?? "/opt/dockbot-schemathesis",
  "bin",
  "st",
);

export async function checkSchemathesis(): Promise<ServiceCheck> {
  return (await commandWorks(schemathesisBin, ["--version"]))
    ? { ok: true, reason: "" }
    : { ok: false, reason: `no schemathesis at ${schemathesisBin}` };
}
