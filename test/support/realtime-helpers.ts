// Helpers shared by the Socket.io tests: waiting, connecting, and checking a received log.
import type { Socket } from "socket.io-client";
import { expect } from "vitest";

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for a condition; throws when it does not come in time. */
export async function waitFor(
  what: string,
  condition: () => boolean,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * Waits up to `timeoutMs` for lines to arrive, then returns either way: a gap or a repeat then
 * fails in expectExactly, which says where.
 */
export async function settle(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  await waitFor("lines", condition, timeoutMs).catch(() => undefined);
  await sleep(200);
}

/** Resolves on connect, rejects with the connect_error. */
export function connected(client: Pick<Socket, "once">): Promise<void> {
  return new Promise((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("connect_error", (error: Error) => reject(error));
  });
}

export function defaultText(seq: number): string {
  return `line ${seq}`;
}

/** The lines are exactly seq `from`..`to`, in order, each with its expected text. */
export function expectExactly(
  lines: Array<{ seq: number; text: string }>,
  from: number,
  to: number,
  text: (seq: number) => string = defaultText,
): void {
  const seqs = lines.map((l) => l.seq);
  const firstWrong = seqs.findIndex((seq, i) => seq !== from + i);
  expect({
    count: lines.length,
    firstWrong,
    firstWrongSeq: firstWrong >= 0 ? seqs[firstWrong] : undefined,
  }).toEqual({ count: to - from + 1, firstWrong: -1, firstWrongSeq: undefined });
  expect(lines.find((l) => l.text !== text(l.seq))).toBeUndefined();
}
