// Host port blocks for the dockbots of test files that run at the same time (vitest.config.ts):
// dockbots of different files share no store, so only disjoint DOCKBOT_PORT_RANGEs keep them from
// handing out the same host port at the same moment.

/** Areas of 20000-29999 (dockbot's default range), one per vitest worker running a file. */
const PORT_AREAS = 8;
const AREA_SIZE = 10000 / PORT_AREAS;
let blocksGiven = 0;

/**
 * `size` host ports out of 20000-29999 that no dockbot of a test file running at the same time
 * is handed: files run in parallel (vitest.config.ts), each worker (VITEST_POOL_ID 1..N) one
 * file at a time, so each worker has an area of its own and its dockbots take the area's blocks
 * in turn. Outside vitest (benchmarks) a block anywhere in the range, at random.
 */
export function portBlock(size = 100): string {
  const pool = Number(process.env.VITEST_POOL_ID);
  if (!Number.isInteger(pool) || pool < 1 || size > AREA_SIZE) {
    const from = 20000 + size * Math.floor(Math.random() * (10000 / size));
    return `${from}-${from + size - 1}`;
  }
  const blocks = Math.floor(AREA_SIZE / size);
  const from = 20000 + ((pool - 1) % PORT_AREAS) * AREA_SIZE + (blocksGiven++ % blocks) * size;
  return `${from}-${from + size - 1}`;
}
