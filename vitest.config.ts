import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests share one Docker engine and one sshd; running files in parallel on a
    // 2-core machine makes builds race for CPU without finishing sooner.
    fileParallelism: false,
    // Fails the run when it left a dockbot compose project on the Docker engine.
    globalSetup: ["test/support/global-setup.ts"],
    // Its teardown lists and removes Docker objects; vitest's default 10 s would cut it short.
    teardownTimeout: 120_000,
    reporters: ["default"],
  },
});
