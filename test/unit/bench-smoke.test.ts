import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../util/tools.js";

/**
 * The bench code at a small size, so that a change that breaks it shows in CI rather than on the day someone runs
 * `npm run bench`. Figures are not checked: a timed assertion on a shared 2-core machine would only be flaky.
 */
const inventoryScale = join(repoRoot, "dist", "bench", "inventory-scale.js");
const leftovers = () => readdirSync(tmpdir()).filter((f) => f.startsWith("dcctl-bench-inventory-"));

describe("bench/inventory-scale at 1× and 2×", () => {
  it("generates valid inventories, measures the three commands at both sizes and prints the table and the growth", () => {
    expect(existsSync(inventoryScale), `${inventoryScale} is missing: npm run build`).toBe(true);
    const before = new Set(leftovers());
    const res = spawnSync(process.execPath, [inventoryScale, "1", "2", "--rounds", "1"], { cwd: repoRoot, encoding: "utf8", timeout: 60_000 });
    expect(res.status, res.stderr).toBe(0);
    const out = res.stdout;
    expect(out).toMatch(/^COMMAND +SIZE +VMS +TIME +MS\/VM/m);
    for (const command of ["infra plan --stack primary --json", "inventory validate", "backup jobs --json"]) {
      expect(out).toMatch(new RegExp(`^${command} +1× +\\d+ +\\d`, "m"));
      expect(out).toContain(`growth 1×→2× (VMs ×2.0) ${command}: time ×`);
    }
    // 2× the province: 66 VMs at the primary, and every host of both sites twice.
    expect(out).toMatch(/^ +2× +66 +/m);
    expect(out).toMatch(/load \(1\/5\/15 min\): [\d.]+ [\d.]+ [\d.]+ at start/);
    // The generated site files are removed at the end.
    expect(leftovers().filter((f) => !before.has(f))).toEqual([]);
  }, 60_000);

  it("refuses a size out of order with one line", () => {
    const res = spawnSync(process.execPath, [inventoryScale, "2", "1"], { cwd: repoRoot, encoding: "utf8", timeout: 20_000 });
    expect(res.status).not.toBe(0);
    expect(res.stderr).toContain("give the sizes in increasing order");
  });
});
