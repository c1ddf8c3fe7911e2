import { execFileSync, spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { killOrphanCommands } from "../../src/deploy/orphans.js";

/** Live (not zombie) processes of a process group. */
function liveInGroup(pgid: number): string[] {
  const out = execFileSync("ps", ["-e", "-o", "pgid=,stat=,pid="], { encoding: "utf8" });
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter(([g, stat]) => Number(g) === pgid && stat !== undefined && !stat.startsWith("Z"))
    .map((cols) => cols[2] ?? "");
}

describe("killOrphanCommands", () => {
  it("kills the whole process group of a command naming the compose project after -p, and nothing else", async () => {
    const project = `dockbot-orphan-${process.pid}`;
    // `sh -c 'sleep 300 & wait' -p <project>`: a group leader with a grandchild, like compose.
    const target = spawn("sh", ["-c", "sleep 300 & wait", "-p", project], {
      detached: true,
      stdio: "ignore",
    });
    const bystander = spawn("sh", ["-c", "sleep 300 & wait", "-p", `${project}-other`], {
      detached: true,
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => target.once("exit", resolve));
    await new Promise((r) => setTimeout(r, 200));
    try {
      const killed = await killOrphanCommands([project]);
      expect(killed).toEqual([target.pid]);
      await exited;
      expect(liveInGroup(target.pid ?? 0)).toEqual([]);
      expect(liveInGroup(bystander.pid ?? 0)).toHaveLength(2);
    } finally {
      process.kill(-(bystander.pid ?? 0), "SIGKILL");
      if (liveInGroup(target.pid ?? 0).length > 0) process.kill(-(target.pid ?? 0), "SIGKILL");
    }
  });

  it("does nothing without project names", async () => {
    expect(await killOrphanCommands([])).toEqual([]);
  });
});
