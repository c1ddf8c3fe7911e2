import { execa } from "execa";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ensureSshKey, fingerprintOf } from "../../src/deploy/ssh-key.js";

describe("ensureSshKey", () => {
  let dataDir: string;

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "dockbot-ssh-key-"));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("creates an ed25519 key readable only by its owner in a private ssh folder", async () => {
    const key = await ensureSshKey(dataDir);

    expect(key.privateKeyPath).toBe(path.join(dataDir, "ssh", "id_ed25519"));
    expect((await stat(key.privateKeyPath)).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(dataDir, "ssh"))).mode & 0o777).toBe(0o700);
    expect(key.publicKey).toMatch(/^ssh-ed25519 AAAA[A-Za-z0-9+/]+={0,2} dockbot$/);
    expect(await readFile(key.privateKeyPath, "utf8")).toContain("BEGIN OPENSSH PRIVATE KEY");
  });

  it("reuses the same key on the next start", async () => {
    const first = await ensureSshKey(dataDir);
    const privateBefore = await readFile(first.privateKeyPath, "utf8");

    const second = await ensureSshKey(dataDir);

    expect(second).toEqual(first);
    expect(await readFile(second.privateKeyPath, "utf8")).toBe(privateBefore);
  });

  it("reports the fingerprint exactly as ssh-keygen -l prints it", async () => {
    const key = await ensureSshKey(dataDir);

    const { stdout } = await execa("ssh-keygen", [
      "-l",
      "-E",
      "sha256",
      "-f",
      `${key.privateKeyPath}.pub`,
    ]);

    expect(key.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(stdout.split(" ")[1]).toBe(key.fingerprint);
  });

  it("derives the public key again when only the private key is left", async () => {
    const first = await ensureSshKey(dataDir);
    await rm(`${first.privateKeyPath}.pub`);

    const second = await ensureSshKey(dataDir);

    expect(second.publicKey).toBe(first.publicKey);
  });

  it("tightens a private key whose mode was loosened by hand", async () => {
    const key = await ensureSshKey(dataDir);
    await execa("chmod", ["0644", key.privateKeyPath]);

    await ensureSshKey(dataDir);

    expect((await stat(key.privateKeyPath)).mode & 0o777).toBe(0o600);
  });
});

describe("fingerprintOf", () => {
  it("rejects a line that is not an OpenSSH public key", () => {
    expect(() => fingerprintOf("not a key")).toThrow(/not an OpenSSH public key/);
  });
});
