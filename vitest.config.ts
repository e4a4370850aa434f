import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Integration tests start real servers (vcsim, sshd, PostgreSQL) and the Pulumi engine; they take seconds.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // Two cores: running the engine-heavy files side by side only slows each of them down.
    fileParallelism: false,
    // The lab the lab test files share: brought up by the first that needs it, taken down and checked after the last.
    globalSetup: ["test/shared-lab-setup.ts"],
  },
});
