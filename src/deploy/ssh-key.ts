// dockbot's own SSH key: the deploy key users add to their GitLab projects (GET /api/ssh-key).
// Created once on first start, then reused for every clone and fetch. The private half never
// leaves the data dir: nothing here returns or logs it.
import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { AppError } from "../errors.js";
import { runCommand } from "./run-command.js";

export interface SshKey {
  privateKeyPath: string;
  /** `ssh-ed25519 AAAA... dockbot`, one line, as GitLab's deploy key form takes it. */
  publicKey: string;
  /** `SHA256:...` exactly as `ssh-keygen -l` prints it (and GitLab shows it). */
  fingerprint: string;
}

const KEY_COMMENT = "dockbot";

/** The key at `<dataDir>/ssh/id_ed25519`, created (mode 0600, dir 0700) when missing. */
export async function ensureSshKey(dataDir: string): Promise<SshKey> {
  const dir = path.resolve(dataDir, "ssh");
  const privateKeyPath = path.join(dir, "id_ed25519");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode is ignored for a directory that already exists and is masked by the umask.
  await chmod(dir, 0o700);

  if (!(await exists(privateKeyPath))) await generateKey(dir, privateKeyPath);
  // ssh refuses a private key others can read ("UNPROTECTED PRIVATE KEY FILE").
  await chmod(privateKeyPath, 0o600);

  const publicKey = await readPublicKey(privateKeyPath);
  return { privateKeyPath, publicKey, fingerprint: fingerprintOf(publicKey) };
}

/**
 * `SHA256:<base64 of sha256(key blob), no padding>`, the format of `ssh-keygen -l` since
 * OpenSSH 6.8.
 */
export function fingerprintOf(publicKey: string): string {
  const [type, blob] = publicKey.trim().split(/\s+/);
  const bytes =
    blob && /^[A-Za-z0-9+/]+={0,2}$/.test(blob) ? Buffer.from(blob, "base64") : undefined;
  // The blob starts with its own type name (RFC 4253 6.6): `ssh-ed25519` inside `ssh-ed25519 AAAA`.
  const nameLength = bytes && bytes.length >= 4 ? bytes.readUInt32BE(0) : -1;
  if (!bytes || !type || bytes.subarray(4, 4 + nameLength).toString("latin1") !== type) {
    throw new AppError("unprocessable", "not an OpenSSH public key line");
  }
  const digest = createHash("sha256").update(bytes).digest("base64");
  return `SHA256:${digest.replace(/=+$/, "")}`;
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

/**
 * Generated in a temporary folder and moved in public half first, so a process killed halfway
 * never leaves a private key without its public key (the next start would fail) nor a half-written
 * key (the next start would reuse it).
 */
async function generateKey(dir: string, privateKeyPath: string): Promise<void> {
  const tmpDir = path.join(dir, `.tmp-${randomBytes(6).toString("hex")}`);
  await mkdir(tmpDir, { mode: 0o700 });
  try {
    const tmpKey = path.join(tmpDir, "id_ed25519");
    await runCommand("ssh-keygen", [
      "-q",
      "-t",
      "ed25519",
      "-N",
      "",
      "-C",
      KEY_COMMENT,
      "-f",
      tmpKey,
    ]);
    await chmod(tmpKey, 0o600);
    await rename(`${tmpKey}.pub`, `${privateKeyPath}.pub`);
    await rename(tmpKey, privateKeyPath);
  } catch (error) {
    throw new AppError("unavailable", `could not create the SSH key in ${dir}`, undefined, {
      cause: error,
    });
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
}

async function readPublicKey(privateKeyPath: string): Promise<string> {
  let line: string;
  try {
    line = await readFile(`${privateKeyPath}.pub`, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    // The public half was deleted by hand: derive it from the private key.
    line = (await runCommand("ssh-keygen", ["-y", "-f", privateKeyPath])).stdout;
  }
  const [type, blob] = line.trim().split(/\s+/);
  if (!type || !blob)
    throw new AppError("unprocessable", `${privateKeyPath}.pub is not an OpenSSH public key`);
  return `${type} ${blob} ${KEY_COMMENT}`;
}
