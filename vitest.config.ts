import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Files run in parallel: most of an integration test's time is spent waiting for Docker,
    // git over SSH and health checks, not on the CPU. Every file isolates what it makes (its own
    // data dir, store, compose project prefix, host port block), so files cannot collide.
    // DOCKBOT_TEST_WORKERS sets how many at once (1: one file after another).
    fileParallelism: true,
    maxWorkers: Number(process.env.DOCKBOT_TEST_WORKERS ?? 3),
    // Fails the run when it left a dockbot compose project on the Docker engine.
    globalSetup: ["test/support/global-setup.ts"],
    // Its teardown lists and removes Docker objects; vitest's default 10 s would cut it short.
    teardownTimeout: 120_000,
    reporters: ["default"],
  },
});
