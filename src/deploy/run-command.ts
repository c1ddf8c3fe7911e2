import { execa } from "execa";

/** A child process that exited non-zero, was killed, or could not start. */
export class CommandError extends Error {
  override readonly name = "CommandError";
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly exitCode: number | undefined,
    readonly stderrTail: string[],
    readonly canceled: boolean,
    options?: { cause?: unknown },
  ) {
    const last = stderrTail.at(-1) ?? "";
    super(
      canceled
        ? `${command} was stopped`
        : `${command} ${args[0] ?? ""} exited with code ${exitCode ?? "?"}${last ? `: ${last}` : ""}`,
      options,
    );
  }
}

export type OutputStream = "stdout" | "stderr";

export interface RunCommandOptions {
  cwd?: string;
  /** Added to the parent's environment. */
  env?: Record<string, string>;
  /** Aborting it kills the whole process group (SIGTERM, then SIGKILL after killGraceMs). */
  signal?: AbortSignal;
  killGraceMs?: number;
  /** Each line the command prints, as it prints it. */
  onLine?: (stream: OutputStream, text: string) => void;
  /** Keep stdout in the result (for commands whose answer is their output). Default true. */
  captureStdout?: boolean;
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
}

const STDERR_TAIL_LINES = 20;

/**
 * The one way dockbot starts a process: an argv array (never a shell), its own process group so
 * a cancel reaches every grandchild (compose plugins, ssh under git), and line-by-line output.
 */
export async function runCommand(
  command: string,
  args: readonly string[],
  options: RunCommandOptions = {},
): Promise<CommandResult> {
  const stderrTail: string[] = [];
  const stdoutLines: string[] = [];
  const capture = options.captureStdout ?? true;
  const onLine = options.onLine;
  if (options.signal?.aborted) {
    throw new CommandError(command, args, undefined, [], true);
  }
  const child = execa(command, [...args], {
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: { ...options.env, LC_ALL: "C" },
    extendEnv: true,
    detached: true,
    reject: false,
    stdin: "ignore",
    cleanup: true,
    buffer: false,
    stripFinalNewline: true,
    stdout: {
      // A transform that yields nothing keeps no copy in execa: lines go to our callbacks only.
      // eslint-disable-next-line require-yield
      transform: function* (chunk: unknown) {
        const line = String(chunk);
        if (capture) stdoutLines.push(line);
        onLine?.("stdout", line);
      },
    },
    stderr: {
      // A transform that yields nothing keeps no copy in execa: lines go to our callbacks only.
      // eslint-disable-next-line require-yield
      transform: function* (chunk: unknown) {
        const line = String(chunk);
        stderrTail.push(line);
        if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
        onLine?.("stderr", line);
      },
    },
  });

  let killed = false;
  let forceTimer: NodeJS.Timeout | undefined;
  const killGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch (error) {
      // ESRCH: the group is already gone, which is what we wanted.
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  };
  const onAbort = () => {
    killed = true;
    killGroup("SIGTERM");
    forceTimer = setTimeout(() => killGroup("SIGKILL"), options.killGraceMs ?? 5000);
    forceTimer.unref();
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const result = await child;
    if (killed) throw new CommandError(command, args, result.exitCode, stderrTail, true);
    if (result.failed) {
      const detail =
        result.exitCode === undefined
          ? [...stderrTail, result.shortMessage ?? "could not start"]
          : stderrTail;
      throw new CommandError(command, args, result.exitCode, detail, false, { cause: result });
    }
    return { exitCode: result.exitCode ?? 0, stdout: stdoutLines.join("\n") };
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    if (forceTimer) {
      clearTimeout(forceTimer);
      // Leave no straggler of a canceled command behind.
      if (killed) killGroup("SIGKILL");
    }
  }
}
