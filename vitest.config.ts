import { defineConfig } from "vitest/config";

/** The lab test files: they share one two-site lab (test/shared-lab-setup.ts), so they run one after another. */
const LAB_FILES = "test/integration/lab-*.test.ts";
/**
 * Long files that run in a stream of their own, so that the three streams take about as long. Measured alone on an
 * idle machine: the lab files about 16 min; these about 10 (release 110 s, infra-import 105, backup-cli 86,
 * vsphere-plugin 85, stacks-vcsim 64, restic 59, bench-cleanup 54, the rest under 20 each); every other file about 10.
 */
const SECOND_STREAM = ["release", "vsphere-plugin", "infra-import", "stacks-vcsim", "pulumi-cli", "smoke", "secrets-argv", "backup-cli", "bench-cleanup", "restic"].map(
  (name) => `test/integration/${name}.test.ts`,
);

export default defineConfig({
  test: {
    // Integration tests start real servers (vcsim, sshd, PostgreSQL) and the Pulumi engine; they take seconds.
    testTimeout: 300_000,
    // The repositories the tests make get keys that open at once (Restic.init): restic's own key derivation cost
    // about 0.6 s of CPU at every restic command, most of what the tests spent.
    env: { DCCTL_THROWAWAY_KEYS: "1" },
    hookTimeout: 300_000,
    // Two cores: running the engine-heavy files side by side only slows each of them down. `npm test` runs the three
    // projects below in three processes side by side (scripts/test.sh), one file at a time in each: the lab files
    // mostly wait on the lab (a site's probes, a stall limit, a replica catching up), which leaves room for two more.
    fileParallelism: false,
    // The lab the lab files share: brought up by the first that needs it, taken down and checked after the last.
    globalSetup: ["test/shared-lab-setup.ts"],
    projects: [
      { extends: true, test: { name: "lab", include: [LAB_FILES] } },
      { extends: true, test: { name: "second", include: SECOND_STREAM } },
      { extends: true, test: { name: "rest", include: ["test/**/*.test.ts"], exclude: [LAB_FILES, ...SECOND_STREAM, "**/node_modules/**"] } },
    ],
  },
});
