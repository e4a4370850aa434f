/**
 * The import rules dcctl keeps (npm run depcheck; .ci/run fails on any violation). The layers, top to bottom:
 *
 *   cli  →  runbooks, backup, stacks, console, lab  →  databases, restic, hosts, notify  →  inventory, util
 *
 * An import may go down or stay within its layer, never up; nothing imports cli/; bench/, scripts/ and test/ may
 * import anything, and nothing imports them. No module may reach itself through its imports, type-only imports
 * included: a cycle that types alone close still ties the files' meanings together.
 */
const folders = (...names) => `^(${names.join("|")})/`;
const CLI = folders("cli");
const MIDDLE = folders("runbooks", "backup", "stacks", "console", "lab");
const LOWER = folders("databases", "restic", "hosts", "notify");
const TOOLS = folders("bench", "scripts", "test");

export default {
  forbidden: [
    {
      name: "no-cycle",
      comment: "A module reaches itself through its imports (type-only ones count): untie it, e.g. by moving what both need into a third module.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "nothing-imports-cli",
      comment: "cli/ is the top layer: it parses options and calls one library function; what another folder needs belongs below it.",
      severity: "error",
      from: { pathNot: [CLI, TOOLS] },
      to: { path: CLI },
    },
    {
      name: "lower-not-up",
      comment: "databases, restic, hosts and notify serve runbooks, backup, stacks, console and lab, and never import them.",
      severity: "error",
      from: { path: LOWER },
      to: { path: MIDDLE },
    },
    {
      name: "base-not-up",
      comment: "inventory and util are the bottom layer: they import only each other.",
      severity: "error",
      from: { path: folders("inventory", "util") },
      to: { path: [MIDDLE, LOWER] },
    },
    {
      name: "lab-only-from-the-top",
      comment: "lab/ is the test data centre: the product (backup, runbooks, stacks, console) never depends on it.",
      severity: "error",
      from: { path: folders("runbooks", "backup", "stacks", "console") },
      to: { path: folders("lab") },
    },
    {
      name: "nothing-imports-tools",
      comment: "bench/, scripts/ and test/ use the product; the product never uses them.",
      severity: "error",
      from: { pathNot: TOOLS },
      to: { path: TOOLS },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|dist|tools|provider)/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.test.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js", ".cjs", ".mjs", ".json"] },
  },
};
