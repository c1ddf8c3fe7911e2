// Log viewers for `npm run bench -- logs`, in their own process so their CPU and memory are not
// counted as dockbot's. Usage:
//   node --import tsx bench/log-clients.ts <url> <token> <versionId> <clients> <batch|line>
// Each client subscribes to the version, and to an operation of it as soon as it is queued
// (`since` = last seq seen, `batch: true` in batch mode); it resubscribes after a reconnect or a
// `resubscribe`, as docs/api.md asks of a viewer. Prints `ready` once every client is subscribed to
// the version; then reads one JSON line `{"total": N}` from stdin (the operation's stored line
// count), waits until every client has seq N (or 120 s), prints one JSON line of results and exits.
import path from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { argv, exit, stdin, stdout } from "node:process";
import { io, type Socket } from "socket.io-client";
import type {
  ClientToServerEvents,
  LogBatchLine,
  ServerToClientEvents,
} from "../src/realtime/socket-server.js";

type Client = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface ClientResult {
  lines: number;
  lastSeq: number;
  /** Lines whose seq was at or below the last one seen. */
  repeats: number;
  /** Times a seq came more than one after the last one seen. */
  gaps: number;
  resubscribes: number;
  connects: number;
  events: number;
  /** Epoch ms (fractional) when the first line, the markers and the last line arrived. */
  firstAt: number;
  startMarkerAt: number;
  endMarkerAt: number;
  lastAt: number;
}

export interface ClientsReport {
  mode: "batch" | "line";
  clients: ClientResult[];
  timedOut: boolean;
}

/** Build output lines that bracket the measured part: see bench/logs.ts. */
export const START_MARKER = "BENCH-START";
export const END_MARKER = "BENCH-END";

const now = () => performance.timeOrigin + performance.now();

function startClient(url: string, token: string, versionId: string, batch: boolean) {
  const r: ClientResult = {
    lines: 0,
    lastSeq: 0,
    repeats: 0,
    gaps: 0,
    resubscribes: 0,
    connects: 0,
    events: 0,
    firstAt: 0,
    startMarkerAt: 0,
    endMarkerAt: 0,
    lastAt: 0,
  };
  let operationId: string | undefined;
  const socket: Client = io(url, {
    auth: { token },
    transports: ["websocket"],
    forceNew: true,
    reconnectionDelay: 100,
  });
  const follow = () => {
    if (operationId === undefined) return;
    socket.emit("subscribe", { operationId, since: r.lastSeq, ...(batch ? { batch: true } : {}) });
  };
  let onVersion: () => void = () => undefined;
  const subscribed = new Promise<void>((resolve) => (onVersion = resolve));
  socket.on("connect", () => {
    r.connects += 1;
    // In the same mode as the operation's: the version's follow of it is then taken over as is.
    socket.emit("subscribe", { versionId, ...(batch ? { batch: true } : {}) }, () => onVersion());
    follow();
  });
  socket.on("operation.queued", (op) => {
    if (op.versionId !== versionId || operationId !== undefined) return;
    operationId = op.id;
    follow();
  });
  socket.on("resubscribe", (request) => {
    if (request.operationId !== operationId) return;
    r.resubscribes += 1;
    follow();
  });
  const take = (seq: number, text: string, at: number) => {
    if (seq <= r.lastSeq) {
      r.repeats += 1;
      return;
    }
    if (seq !== r.lastSeq + 1) r.gaps += 1;
    r.lastSeq = seq;
    r.lines += 1;
    // "B": only the marker lines start with it among the build's output of numbers.
    if (text.charCodeAt(0) === 66) {
      if (text.startsWith(START_MARKER)) r.startMarkerAt = at;
      else if (text.startsWith(END_MARKER)) r.endMarkerAt = at;
    }
  };
  socket.on("operation.logs", (event) => {
    if (event.operationId !== operationId) return;
    const at = now();
    r.events += 1;
    if (r.firstAt === 0) r.firstAt = at;
    const lines: LogBatchLine[] = event.lines;
    for (const line of lines) take(line.seq, line.text, at);
    r.lastAt = at;
  });
  socket.on("operation.log", (line) => {
    if (line.operationId !== operationId) return;
    const at = now();
    r.events += 1;
    if (r.firstAt === 0) r.firstAt = at;
    take(line.seq, line.text, at);
    r.lastAt = at;
  });
  return { socket, result: r, subscribed };
}

async function main(): Promise<void> {
  const [url, token, versionId, count, mode] = argv.slice(2);
  if (!url || !token || !versionId || !count || (mode !== "batch" && mode !== "line")) {
    throw new Error("usage: log-clients.ts <url> <token> <versionId> <clients> <batch|line>");
  }
  const clients = Array.from({ length: Number(count) }, () =>
    startClient(url, token, versionId, mode === "batch"),
  );
  await Promise.all(clients.map((c) => c.subscribed));
  stdout.write("ready\n");

  const input = createInterface({ input: stdin });
  const total = await new Promise<number>((resolve) => {
    input.once("line", (line) => resolve((JSON.parse(line) as { total: number }).total));
  });
  input.close();
  const until = Date.now() + 120_000;
  let timedOut = false;
  while (clients.some((c) => c.result.lastSeq < total)) {
    if (Date.now() > until) {
      timedOut = true;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  for (const c of clients) c.socket.close();
  const report: ClientsReport = { mode, clients: clients.map((c) => c.result), timedOut };
  stdout.write(`${JSON.stringify(report)}\n`);
}

// Run only as a program: bench/logs.ts imports the markers from here.
if (argv[1] && import.meta.url === pathToFileURL(path.resolve(argv[1])).href) {
  main().then(
    () => exit(0),
    (error: unknown) => {
      process.stderr.write(
        `log-clients: ${error instanceof Error ? error.message : String(error)}\n`,
      );
      exit(1);
    },
  );
}
