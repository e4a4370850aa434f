import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadSites } from "../inventory/index.js";
import { shapeOf } from "../lab/site-shape.js";
import { startVcsim, type Vcsim } from "../lab/vcsim.js";
import { textTable } from "../util/table.js";
import { repoRoot } from "../util/tools.js";
import { benchValue } from "./args.js";
import { loadText as load, median } from "./stats.js";
import { bringUp, broughtUp, runBench, takeDownAll } from "./brought-up.js";
import { timed } from "./timed.js";

/**
 * `dcctl infra up --stack primary` of the primary's 33 VMs against vcsim (issue 14), this checkout against another
 * build (--before CHECKOUT: e.g. main before the stacks moved to @pulumi/vsphere), in the same run:
 *   node dist/bench/infra-up.js [--rounds N] [--before CHECKOUT]
 * Each build gets a vcsim of its own, shaped as the primary's vCenter; each round configures a fresh state, runs
 * `infra up --yes` (preview with the policy pack, then the update: the figure) and `infra destroy --yes`, the builds
 * interleaved. Prints the medians, the ratio to the first build and the load; asserts nothing.
 */

const ROUNDS = Number(benchValue("rounds") ?? 3);
const BEFORE = benchValue("before");

interface Build {
  name: string;
  main: string;
  sim?: Vcsim;
  up: number[];
  destroy: number[];
}

async function dcctl(build: Build, cliArgs: string[]): Promise<number> {
  const t = await timed(process.execPath, [build.main, ...cliArgs]);
  if (t.code !== 0) throw new Error(`${build.name}: dcctl ${cliArgs.join(" ")} exited ${t.code}: ${t.out.trim().slice(-1500)}`);
  return t.ms;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "dcctl-bench-infra-up-"));
  const builds: Build[] = [{ name: "this checkout", main: join(repoRoot, "dist", "cli", "main.js"), up: [], destroy: [] }];
  if (BEFORE) builds.push({ name: `before (${BEFORE})`, main: join(resolve(BEFORE), "dist", "cli", "main.js"), up: [], destroy: [] });
  process.stdout.write(`bench/infra-up: ${ROUNDS} rounds, 33 VMs of the primary; load ${load()} at start\n`);
  broughtUp("the work folder", () => rmSync(work, { recursive: true, force: true }));
  {
    const shape = shapeOf(loadSites().primary);
    for (const [i, b] of builds.entries()) b.sim = await bringUp("vcsim", () => startVcsim(join(work, `vcsim-${i}`), shape), (sim) => sim.stop());
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, b] of builds.entries()) {
        const sim = b.sim as Vcsim;
        const state = join(work, `state-${i}-${round}`);
        const pw = join(work, `pw-${i}`);
        writeFileSync(pw, sim.connection.password + "\n", { mode: 0o600 });
        await dcctl(b, ["infra", "configure", "--stack", "primary", "--state", state, "--url", sim.connection.url, "--user", sim.connection.username, "--password-file", pw, "--insecure"]);
        b.up.push(await dcctl(b, ["infra", "up", "--stack", "primary", "--state", state, "--yes"]));
        b.destroy.push(await dcctl(b, ["infra", "destroy", "--stack", "primary", "--state", state, "--yes"]));
      }
    }
  }
  await takeDownAll();
  const ref = median(builds[0]?.up ?? []);
  process.stdout.write(
    textTable(
      ["BUILD", "UP (MEDIAN)", "SAMPLES", "× THIS CHECKOUT", "DESTROY (MEDIAN)"],
      builds.map((b) => [b.name, `${(median(b.up) / 1000).toFixed(2)} s`, b.up.map((m) => (m / 1000).toFixed(1)).join(" "), `${(median(b.up) / ref).toFixed(2)}×`, `${(median(b.destroy) / 1000).toFixed(2)} s`]),
    ) + "\n",
  );
  process.stdout.write(`load ${load()} at end\n`);
}

await runBench("infra-up", main);
