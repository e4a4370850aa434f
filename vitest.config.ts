import { defineConfig } from "vitest/config";

/** The lab test files: they share one two-site lab (test/shared-lab-setup.ts), so they run one after another. */
const LAB_FILES = "test/integration/lab-*.test.ts";

export default defineConfig({
  test: {
    // Integration tests start real servers (vcsim, sshd, PostgreSQL) and the Pulumi engine; they take seconds.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // The lab they share: brought up by the first lab file that needs it, taken down and checked after the last.
    globalSetup: ["test/shared-lab-setup.ts"],
    // Two streams side by side, each one file at a time: the lab files, which mostly wait on the lab (a site's
    // probes, a stall limit, a replica catching up), and the rest. Two cores: more would only slow each down.
    projects: [
      { extends: true, test: { name: "lab", include: [LAB_FILES], fileParallelism: false } },
      { extends: true, test: { name: "rest", include: ["test/**/*.test.ts"], exclude: [LAB_FILES, "**/node_modules/**"], fileParallelism: false } },
    ],
  },
});
