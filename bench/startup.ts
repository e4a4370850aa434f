import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { textTable } from "../util/table.js";
import { cacheDir, repoRoot } from "../util/tools.js";
import { timed } from "./timed.js";
import { median } from "./stats.js";
import { broughtUp, runBench } from "./brought-up.js";

/**
 * dcctl's start-up (issue 13, item 1; node dist/bench/startup.js [--rounds N] [--job J] [--main OTHER/dist/cli/main.js]…):
 * goal ≤ 150 ms for `dcctl --help`, and for `dcctl backup run --job J` and `dcctl backup status` to their first
 * useful work, each the median of N rounds (default 15), against bare `node` measured the same way in the same
 * rounds, interleaved (A B C … A B C …). Each figure also as CPU time: on a loaded machine it moves less than wall time.
 *
 * Two measures, each taken the same way for dcctl and for bare node:
 *  - whole process (spawn to exit): `node -e 0` against `dcctl --help`, `dcctl backup jobs --json` and
 *    `dcctl backup run --job J --dry-run`, whose work is what they print;
 *  - to first contact: spawn until the process first starts a program or opens a connection, which is where a
 *    command's own work begins (SSH to the job's host, a replica probe, restic): flags parsed, the inventory,
 *    policies and repositories file read and checked, the jobs chosen, the engine's code loaded (and a run's locks).
 *    Bare node against it: `node -e` opening a connection.
 * A tracer preloaded into every measured process (the same file for all; it needs nothing from dcctl, so any build
 * can be measured, e.g. a copy of main as it was, with --main) reports the CPU time, and at first contact ends the
 * process there, so nothing goes further. It cannot be fooled by a probe placed early in dcctl.
 *
 * dcctl reads this checkout's inventory (stacks/sites) and policies, and a repositories file of the bench's own whose
 * repositories and hosts are never reached; each process gets a fresh state folder. "Unchanged files" runs read the
 * same files every time (a timer's case: dcctl keeps their parsed data, util/yaml-cache.ts); "edited files" runs
 * read copies that differ from every earlier run by a comment line (the first run after an edit). Asserts nothing.
 */

const TRACER = `import { writeSync } from "node:fs";
// Loaded first into every process the bench measures. At exit, or (STARTUP_BENCH_CONTACT=1) at the first program
// started or connection opened, where it also ends the process: one line on stderr with the CPU time used so far.
// It loads nothing else unless it watches for contact, so that a process to exit pays for no more than it uses.
const cpuMs = () => {
  const u = process.cpuUsage();
  return ((u.user + u.system) / 1000).toFixed(1);
};
let said = false;
const say = (what) => {
  if (said) return;
  said = true;
  writeSync(2, "startup-bench " + what + " cpu=" + cpuMs() + "\\n");
};
process.on("exit", () => say("exit"));
if (process.env.STARTUP_BENCH_CONTACT === "1") {
  const [{ default: childProcess }, { default: net }, { syncBuiltinESMExports }] = await Promise.all([import("node:child_process"), import("node:net"), import("node:module")]);
  const contact = (what) => {
    say("contact " + what);
    process.exit(0);
  };
  for (const name of ["spawn", "spawnSync", "execFile", "execFileSync", "exec", "execSync", "fork"]) {
    const original = childProcess[name];
    childProcess[name] = function (...args) {
      contact(name + " " + String(args[0]));
      return original.apply(this, args);
    };
  }
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (...args) {
    const first = Array.isArray(args[0]) ? args[0][0] : args[0];
    contact("connect " + (typeof first === "object" && first !== null ? (first.path ?? first.host + ":" + first.port) : String(first)));
    return connect.apply(this, args);
  };
  syncBuiltinESMExports();
}
`;

interface Options {
  rounds: number;
  job: string;
  mains: string[];
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { rounds: 15, job: "qn-db-01/db-hourly", mains: [join(repoRoot, "dist", "cli", "main.js")] };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === "--rounds" && value && Number.isInteger(Number(value)) && Number(value) >= 1) opts.rounds = Number(value);
    else if (flag === "--job" && value) opts.job = value;
    else if (flag === "--main" && value) opts.mains.push(resolve(value));
    else {
      process.stderr.write(`bench/startup: unknown or incomplete argument ${flag ?? ""} (--rounds N, --job J, --main PATH)\n`);
      process.exit(2);
    }
    i++;
  }
  return opts;
}

interface Sample {
  /** Wall time: spawn to exit, or to first contact. */
  ms: number;
  /** CPU time the process used by then (all its threads), as the tracer read it: what a quiet machine's wall time tracks. */
  cpuMs: number;
  /** What the first contact was (contact runs). */
  what?: string;
}

const tracerLine = /^startup-bench (exit|contact (.*)) cpu=([\d.]+)$/m;

/** Spawn to exit, with the tracer's CPU figure; a failed command stops the bench, showing what it said. */
async function toExit(args: readonly string[], env: NodeJS.ProcessEnv): Promise<Sample> {
  const t = await timed(process.execPath, args, env);
  const m = tracerLine.exec(t.out);
  if (t.code !== 0 || !m) throw new Error(`node ${args.join(" ")} exited ${t.code}: ${t.out.trim().slice(0, 400)}`);
  return { ms: t.ms, cpuMs: Number(m[3]) };
}

/** Spawn until the tracer's contact line (the tracer then ends the process). */
function toFirstContact(args: readonly string[], env: NodeJS.ProcessEnv): Promise<Sample> {
  return new Promise((done, fail) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { env: { ...env, STARTUP_BENCH_CONTACT: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let found: Sample | undefined;
    const look = (b: Buffer) => {
      out += b.toString();
      const m = found ? null : tracerLine.exec(out);
      if (m) found = { ms: performance.now() - t0, cpuMs: Number(m[3]), ...(m[2] !== undefined ? { what: m[2] } : {}) };
    };
    child.stdout.on("data", look);
    child.stderr.on("data", look);
    child.on("close", () => (found?.what !== undefined ? done(found) : fail(new Error(`node ${args.join(" ")} ended before any contact: ${out.trim().slice(0, 400)}`))));
  });
}

interface Figure {
  label: string;
  /** Which bare-node figure it is compared with. */
  against: "exit" | "contact";
  run: () => Promise<Sample>;
  samples: Sample[];
}


async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const work = mkdtempSync(join(tmpdir(), "dcctl-bench-startup-"));
  broughtUp("the work folder", () => rmSync(work, { recursive: true, force: true }));
  {
    const tracer = join(work, "tracer.mjs");
    writeFileSync(tracer, TRACER);
    writeFileSync(join(work, "pass"), "bench\n", { mode: 0o600 });
    writeFileSync(join(work, "known_hosts"), "");
    // A key, so that a job gets as far as connecting to its host (the hosts are never reached: the tracer ends it).
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(work, "id")]);
    // Port 9 (discard) on loopback: nothing there; the tracer ends each process before it would find out.
    const repositoriesText = [
      "site: primary",
      "repositories:",
      `  primary: { url: "rest:http://127.0.0.1:9/primary/", passwordFile: ${join(work, "pass")} }`,
      `  secondary: { url: "rest:http://127.0.0.1:9/secondary/", passwordFile: ${join(work, "pass")} }`,
      `ssh: { keyFile: ${join(work, "id")}, knownHosts: ${join(work, "known_hosts")} }`,
      "",
    ].join("\n");
    const sitesDir = join(repoRoot, "stacks", "sites");
    const policiesFile = join(repoRoot, "backup", "policies.yaml");
    const files = { repos: join(work, "repositories.yaml"), sites: sitesDir, policies: policiesFile };
    writeFileSync(files.repos, repositoriesText);
    // dcctl's cache in the bench's folder: the parsed YAML it keeps goes when the bench ends, the tools stay reachable.
    const cache = join(work, "cache");
    mkdirSync(cache);
    if (existsSync(join(cacheDir(), "bin"))) symlinkSync(join(cacheDir(), "bin"), join(cache, "bin"));
    let runs = 0;
    /** Copies of the inventory, policies and repositories file that no earlier run has read: a comment line differs. */
    const edited = (): typeof files => {
      const dir = join(work, "edited", String(runs));
      mkdirSync(join(dir, "sites"), { recursive: true });
      const mark = `\n# bench run ${runs}\n`;
      for (const site of ["primary", "secondary"]) writeFileSync(join(dir, "sites", `${site}.yaml`), readFileSync(join(sitesDir, `${site}.yaml`), "utf8") + mark);
      writeFileSync(join(dir, "policies.yaml"), readFileSync(policiesFile, "utf8") + mark);
      writeFileSync(join(dir, "repositories.yaml"), repositoriesText + mark);
      return { repos: join(dir, "repositories.yaml"), sites: join(dir, "sites"), policies: join(dir, "policies.yaml") };
    };
    // A fresh state folder for every process: no run sees another's locks, ledger or reports.
    const env = (f: typeof files): NodeJS.ProcessEnv => ({
      ...process.env,
      DCCTL_SITES_DIR: f.sites,
      DCCTL_POLICIES_FILE: f.policies,
      DCCTL_REPOS_FILE: f.repos,
      DCCTL_STATE_DIR: join(work, "state", String(runs++)),
      DCCTL_CACHE: cache,
      DCCTL_LANG: "",
      DCCTL_DEBUG: "",
    });
    const whole = (args: string[]) => () => toExit(["--import", tracer, ...args], env(files));
    const contact = (args: string[], fresh = false) => () => toFirstContact(["--import", tracer, ...args], env(fresh ? edited() : files));

    const figures: Figure[] = [
      { label: "node -e 0", against: "exit", run: whole(["-e", "0"]), samples: [] },
      { label: "node -e net.connect(…)", against: "contact", run: contact(["-e", "require('node:net').connect(9, '127.0.0.1').on('error', () => {})"]), samples: [] },
    ];
    const several = opts.mains.length > 1;
    for (const [i, mainJs] of opts.mains.entries()) {
      const build = several ? ` [${i === 0 ? "this checkout" : mainJs}]` : "";
      figures.push(
        { label: `dcctl --help${build}`, against: "exit", run: whole([mainJs, "--help"]), samples: [] },
        { label: `dcctl backup jobs --json${build}`, against: "exit", run: whole([mainJs, "backup", "jobs", "--json"]), samples: [] },
        { label: `dcctl backup run --job ${opts.job} --dry-run${build}`, against: "exit", run: whole([mainJs, "backup", "run", "--job", opts.job, "--dry-run"]), samples: [] },
        { label: `dcctl backup run --job ${opts.job}${build}`, against: "contact", run: contact([mainJs, "backup", "run", "--job", opts.job]), samples: [] },
        { label: `dcctl backup status${build}`, against: "contact", run: contact([mainJs, "backup", "status"]), samples: [] },
        { label: `dcctl backup run --job ${opts.job}, edited files${build}`, against: "contact", run: contact([mainJs, "backup", "run", "--job", opts.job], true), samples: [] },
        { label: `dcctl backup status, edited files${build}`, against: "contact", run: contact([mainJs, "backup", "status"], true), samples: [] },
      );
    }

    const hosts = ["primary", "secondary"].map((s) => (parse(readFileSync(join(sitesDir, `${s}.yaml`), "utf8")) as { hosts: unknown[] }).hosts.length);
    const bytes = ["primary.yaml", "secondary.yaml"].map((f) => statSync(join(sitesDir, f)).size).reduce((a, b) => a + b, 0) + statSync(policiesFile).size;
    const loadStart = loadavg();
    process.stdout.write(
      `bench/startup: ${opts.rounds} rounds, interleaved; inventory ${hosts.join(" + ")} hosts, site files and policies ${(bytes / 1024).toFixed(1)} KiB; ` +
        `node ${process.version}; load ${loadStart.map((l) => l.toFixed(2)).join(" ")} at start\n`,
    );
    // One round before the measured ones: the page cache and the file system's caches warm for every variant alike.
    for (const f of figures) await f.run();
    for (let round = 0; round < opts.rounds; round++) for (const f of figures) f.samples.push(await f.run());
    const loadEnd = loadavg();

    const stat = (f: Figure | undefined, key: "ms" | "cpuMs") => median((f?.samples ?? []).map((x) => x[key]));
    const base = { exit: figures[0], contact: figures[1] };
    const rows = figures.map((f) => {
      const [wall, cpu] = [stat(f, "ms"), stat(f, "cpuMs")];
      const [bareWall, bareCpu] = [stat(base[f.against], "ms"), stat(base[f.against], "cpuMs")];
      const walls = f.samples.map((x) => x.ms);
      return [
        f.label,
        f.against === "exit" ? "to exit" : "to first contact",
        wall.toFixed(1),
        `${Math.min(...walls).toFixed(0)}-${Math.max(...walls).toFixed(0)}`,
        `${(wall / bareWall).toFixed(2)}×`,
        `+${(wall - bareWall).toFixed(1)}`,
        cpu.toFixed(1),
        `${(cpu / bareCpu).toFixed(2)}×`,
      ];
    });
    process.stdout.write(textTable(["WHAT", "MEASURED", "WALL MS", "RANGE", "× BARE", "MS OVER BARE", "CPU MS", "CPU × BARE"], rows));
    for (const f of figures.filter((x) => x.against === "contact")) {
      process.stdout.write(`first contact of ${f.label}: ${[...new Set(f.samples.map((x) => x.what))].join("; ")}\n`);
    }
    process.stdout.write(`load ${loadEnd.map((l) => l.toFixed(2)).join(" ")} at end; goal: ≤ 150 ms wall for --help, and for backup run and backup status to first contact\n`);
  }
}

await runBench("startup", main);
