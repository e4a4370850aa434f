import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../util/tools.js";
import { broughtUp, labUp, runBench, takeDownAll } from "./brought-up.js";
import { loadText } from "./stats.js";

/**
 * Every bench in bench/, one after another, each printing its own figures (`npm run bench`; node dist/bench/all.js
 * [NAME…] [--skip NAME,…] [--lab-size MB]): the ones listed below in that order, then any other built bench this list
 * does not name yet. Most bring up a lab of their own; wan, replication and anomaly measure a running lab, so for
 * them this brings one up (`dcctl lab up --size --lab-size`, 64 MB by default, in a folder of its own) and stops it
 * after.
 * A bench that fails does not stop the others; the exit code is 1 when any failed. Not for CI: it takes most of an
 * hour and needs root.
 */

/** The benches, quickest first; `lab: true` for those that measure a running lab instead of starting their own. */
interface Bench {
  name: string;
  lab?: true;
}
const BENCHES: Bench[] = [
  { name: "startup" },
  { name: "inventory-scale" },
  { name: "backup" },
  { name: "remote-files" },
  { name: "db-backup" },
  { name: "db-restore" },
  { name: "concurrency" },
  { name: "wan", lab: true },
  { name: "replication", lab: true },
  { name: "anomaly", lab: true },
];

/** Modules of dist/bench that are helpers of the benches, not benches. */
const HELPERS = new Set(["all", "timed", "running-lab", "db-lab", "brought-up", "args", "stats"]);

const benchDir = join(repoRoot, "dist", "bench");

interface Outcome {
  name: string;
  status: string;
  seconds: number;
}

/**
 * Runs a bench with this process's output, resolving with its exit code (or 1 when a signal ended it). While it runs,
 * it is among what this one brought up: stopping bench/all stops it first (SIGTERM: it takes its own things down).
 */
function runInherited(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "inherit", "inherit"] });
    const closed = new Promise<number>((r) => child.on("close", (code) => r(code ?? 1)));
    const stop = broughtUp(`bench ${args[0] ?? cmd}`, async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await closed;
    });
    child.on("error", (e) => {
      process.stderr.write(`bench/all: cannot run ${cmd}: ${e.message}\n`);
      resolve(1);
    });
    void closed.then((code) => {
      // Over by itself: nothing to stop any more.
      void stop();
      resolve(code);
    });
  });
}

function parseArgs(argv: string[]): { only: string[]; skip: Set<string>; labSize: number } {
  const only: string[] = [];
  const skip = new Set<string>();
  let labSize = 64;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (a === "--skip") for (const n of (argv[++i] ?? "").split(",")) skip.add(n.trim());
    else if (a === "--lab-size") labSize = Number(argv[++i]);
    else if (a.startsWith("-")) throw new Error(`unknown option ${a} (options: NAME… --skip NAME,… --lab-size MB)`);
    else only.push(a);
  }
  if (!(labSize > 0)) throw new Error("--lab-size takes megabytes > 0");
  return { only, skip, labSize };
}

async function main(): Promise<void> {
  const { only, skip, labSize } = parseArgs(process.argv.slice(2));
  const built = existsSync(benchDir) ? readdirSync(benchDir).filter((f) => f.endsWith(".js")).map((f) => f.slice(0, -3)) : [];
  const listed = new Set(BENCHES.map((b) => b.name));
  const unknown = only.filter((n) => !listed.has(n) && !built.includes(n));
  if (unknown.length) throw new Error(`no bench ${unknown.join(", ")} (known: ${[...listed].join(", ")})`);
  // Benches written since this list: after the listed ones, on their own (none of them measures a running lab).
  const all: Bench[] = [...BENCHES, ...built.filter((n) => !listed.has(n) && !HELPERS.has(n)).sort().map((name) => ({ name }))];
  const chosen = all.filter((b) => (only.length === 0 || only.includes(b.name)) && !skip.has(b.name));

  const outcomes: Outcome[] = [];
  let lab: { dir: string; up: boolean } | undefined;
  const t0 = performance.now();
  process.stdout.write(`bench/all: ${chosen.map((b) => b.name).join(", ")}; load ${loadText()}\n`);
  {
    for (const b of chosen) {
      const js = join(benchDir, `${b.name}.js`);
      process.stdout.write(`\n=== ${b.name} ===\n`);
      if (!existsSync(js)) {
        process.stdout.write(`(not built: ${js} is missing; run npm run build)\n`);
        outcomes.push({ name: b.name, status: "not built", seconds: 0 });
        continue;
      }
      const env: NodeJS.ProcessEnv = { ...process.env };
      if (b.lab) {
        if (process.getuid?.() !== 0) {
          process.stdout.write("(skipped: it measures a running lab, and bringing one up needs root)\n");
          outcomes.push({ name: b.name, status: "skipped (needs root)", seconds: 0 });
          continue;
        }
        if (!lab) {
          lab = { dir: mkdtempSync(join(tmpdir(), "dcctl-bench-all-lab-")), up: false };
          process.stdout.write(`(bringing up a lab for the benches that measure a running one: ${lab.dir}, --size ${labSize})\n`);
          lab.up = (await labUp(lab.dir, ["--size", String(labSize), "--no-provision", "--write-every", "0"], { removeDir: true, inherit: true })).code === 0;
        }
        if (!lab.up) {
          outcomes.push({ name: b.name, status: "failed (lab up failed)", seconds: 0 });
          continue;
        }
        env.DCCTL_LAB_DIR = lab.dir;
      }
      const started = performance.now();
      const code = await runInherited(process.execPath, [js], env);
      outcomes.push({ name: b.name, status: code === 0 ? "ok" : `failed (exit ${code})`, seconds: (performance.now() - started) / 1000 });
    }
  }
  // The shared lab is down before the summary.
  await takeDownAll();
  process.stdout.write(`\n=== summary (${((performance.now() - t0) / 60000).toFixed(1)} min; load ${loadText()} at the end) ===\n`);
  for (const o of outcomes) process.stdout.write(`${o.name.padEnd(18)} ${o.status.padEnd(24)} ${o.seconds.toFixed(0)} s\n`);
  if (outcomes.some((o) => o.status.startsWith("failed"))) process.exitCode = 1;
}

await runBench("all", main);
