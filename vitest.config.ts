import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests share one Docker engine and one sshd; running files in parallel on a
    // 2-core machine makes builds race for CPU without finishing sooner.
    fileParallelism: false,
    reporters: ["default"],
  },
});
