import { readdir, readFile } from "node:fs/promises";

/**
 * Kills what a killed dockbot left running: its commands run in their own process groups
 * (run-command.ts), so a SIGKILL of dockbot leaves e.g. `docker compose -p <project> up` building
 * on. At restart, every process group led by a command naming one of `projectNames` after `-p`
 * is killed, so an interrupted deploy cannot start containers behind the store's back.
 * Linux only (reads /proc); elsewhere it finds nothing. Returns the pids killed.
 */
export async function killOrphanCommands(projectNames: readonly string[]): Promise<number[]> {
  if (projectNames.length === 0) return [];
  const wanted = new Set(projectNames);
  let entries: string[];
  try {
    entries = await readdir("/proc");
  } catch {
    return [];
  }
  const killed: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let args: string[];
    let stat: string;
    try {
      args = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
      stat = await readFile(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile, or not ours to read
    }
    const i = args.indexOf("-p");
    const project = i >= 0 ? args[i + 1] : undefined;
    if (project === undefined || !wanted.has(project)) continue;
    // Field 5 of /proc/<pid>/stat (after the parenthesised name) is the process group id.
    const pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
    try {
      process.kill(pgid === pid ? -pid : pid, "SIGKILL");
      killed.push(pid);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  }
  return killed;
}
