import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real guests under TCG are slow; integration files set their own per-test timeouts.
    testTimeout: 30_000,
    hookTimeout: 600_000,
    // Integration tests boot QEMU guests: on a 2-core host, one file at a time.
    fileParallelism: false,
  },
});
