import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createDiskProbe, freeSpaceOf, parseDockerSize } from "../../src/deploy/disk.js";
import { treeBytes } from "../../src/deploy/disk-usage.js";

describe("sizes as the docker CLI prints them", () => {
  it.each([
    ["0B", 0],
    ["6B", 6],
    ["3.2kB", 3200],
    ["1.982MB", 1_982_000],
    ["2GB", 2_000_000_000],
    ["1.5TB", 1_500_000_000_000],
  ])("reads %s as %d bytes", (text, bytes) => {
    expect(parseDockerSize(text)).toBe(bytes);
  });

  it.each(["", "N/A", "12", "1.2 XB", "-3MB"])("refuses %j", (text) => {
    expect(parseDockerSize(text)).toBeUndefined();
  });
});

describe("free space", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "dockbot-disk-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads free and total bytes of the file system of a directory", async () => {
    const space = await freeSpaceOf(dir);
    expect(space?.totalBytes).toBeGreaterThan(0);
    expect(space?.freeBytes).toBeGreaterThan(0);
    expect(space?.freeBytes).toBeLessThanOrEqual(space?.totalBytes ?? 0);
  });

  it("answers null for a path that does not exist here", async () => {
    expect(await freeSpaceOf(path.join(dir, "missing", "docker"))).toBeNull();
  });

  it("reports no Docker figure for a remote engine, and asks it for its root dir only once", async () => {
    let asked = 0;
    const docker = {
      rootDir: () => {
        asked += 1;
        return Promise.resolve(dir);
      },
    };
    const remote = await createDiskProbe({ docker, dataDir: dir, engineLocal: false }).free();
    expect(remote.docker).toBeNull();
    expect(remote.data?.freeBytes).toBeGreaterThan(0);
    expect(asked).toBe(0);

    const local = createDiskProbe({ docker, dataDir: dir, engineLocal: true });
    await local.free();
    const again = await local.free();
    expect(again.docker?.totalBytes).toBe(again.data?.totalBytes);
    expect(asked).toBe(1);
  });

  it("counts the blocks a checkout takes, files and directories, and 0 for none", async () => {
    expect(await treeBytes(path.join(dir, "none"))).toBe(0);
    const empty = await treeBytes(dir);
    await writeFile(path.join(dir, "big"), Buffer.alloc(200_000, 1));
    expect((await treeBytes(dir)) - empty).toBeGreaterThanOrEqual(200_000);
  });
});
