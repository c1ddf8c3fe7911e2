// WAL checkpoints off the event loop.
//
// In WAL mode with synchronous=NORMAL a commit does not fsync; a checkpoint does (the WAL, then
// the database file), and by default the committing connection runs one every 1000 pages,
// synchronously, inside whatever write crossed the line. On this kind of machine that stalled the
// event loop for 5-15 ms several times a second under a webhook burst. So a worker thread with a
// connection of its own runs PASSIVE checkpoints every CHECKPOINT_EVERY_MS: they copy what no
// reader still needs into the database file without waiting for, or blocking, the writer. The
// main connection keeps its automatic checkpoint, at a higher mark, as the fallback should the
// worker fall behind or fail.
//
// The worker is plain CommonJS given as source (`eval`), so it runs the same under tsx and from
// the compiled build; it loads better-sqlite3 from the path this module resolves.
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

const CHECKPOINT_EVERY_MS = 250;

/** The main connection's own automatic checkpoint, in WAL pages (SQLite's default is 1000). */
export const FALLBACK_AUTOCHECKPOINT_PAGES = 10_000;

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
const timer = setInterval(() => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch (error) {
    // Busy or gone: the next tick tries again, and the main connection's own checkpoint stays.
  }
}, workerData.everyMs);
parentPort.on("message", () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface Checkpointer {
  /** Stops the worker after the checkpoint it may be running. */
  stop(): Promise<void>;
}

export function startCheckpointer(file: string): Checkpointer {
  const driver = createRequire(import.meta.url).resolve("better-sqlite3");
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { file, driver, everyMs: CHECKPOINT_EVERY_MS },
  });
  // It never keeps the process alive, and a failure only costs the main connection's fallback.
  worker.unref();
  worker.on("error", () => undefined);
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  return {
    async stop() {
      worker.postMessage("stop");
      const timeout = setTimeout(() => void worker.terminate(), 5_000);
      await exited;
      clearTimeout(timeout);
    },
  };
}
