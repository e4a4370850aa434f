import { defineConfig } from "vitest/config";

/** The lab test files: they share one two-site lab (test/shared-lab-setup.ts), so they run one after another. */
const LAB_FILES = "test/integration/lab-*.test.ts";

export default defineConfig({
  test: {
    // Integration tests start real servers (vcsim, sshd, PostgreSQL) and the Pulumi engine; they take seconds.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // Two cores: running the engine-heavy files side by side only slows each of them down. `npm test` runs the two
    // projects below in two processes side by side (scripts/test.sh): one file at a time in each.
    fileParallelism: false,
    // The lab the lab files share: brought up by the first that needs it, taken down and checked after the last.
    globalSetup: ["test/shared-lab-setup.ts"],
    projects: [
      { extends: true, test: { name: "lab", include: [LAB_FILES] } },
      { extends: true, test: { name: "rest", include: ["test/**/*.test.ts"], exclude: [LAB_FILES, "**/node_modules/**"] } },
    ],
  },
});
