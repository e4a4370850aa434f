import { defineConfig } from "vitest/config";

/** The lab test files: they share one two-site lab (test/shared-lab-setup.ts), so they run one after another. */
const LAB_FILES = "test/integration/lab-*.test.ts";
/**
 * Long files of their own that run in the lab's stream, so that the two streams take about as long (measured: the lab
 * files 19 min, the rest 28 min; these two moved about 5 min).
 */
const BESIDE_THE_LAB = ["test/integration/vsphere-plugin.test.ts", "test/integration/release.test.ts"];

export default defineConfig({
  test: {
    // Integration tests start real servers (vcsim, sshd, PostgreSQL) and the Pulumi engine; they take seconds.
    testTimeout: 300_000,
    // The repositories the tests make get keys that open at once (Restic.init): restic's own key derivation cost
    // about 0.6 s of CPU at every restic command, most of what the tests spent.
    env: { DCCTL_THROWAWAY_KEYS: "1" },
    hookTimeout: 300_000,
    // Two cores: running the engine-heavy files side by side only slows each of them down. `npm test` runs the two
    // projects below in two processes side by side (scripts/test.sh): one file at a time in each. A third stream was
    // tried: the machine was 91 % busy with two or three, and with three the lab's bring-up ran past its limit.
    fileParallelism: false,
    // The lab the lab files share: brought up by the first that needs it, taken down and checked after the last.
    globalSetup: ["test/shared-lab-setup.ts"],
    projects: [
      { extends: true, test: { name: "lab", include: [LAB_FILES, ...BESIDE_THE_LAB] } },
      { extends: true, test: { name: "rest", include: ["test/**/*.test.ts"], exclude: [LAB_FILES, ...BESIDE_THE_LAB, "**/node_modules/**"] } },
    ],
  },
});
