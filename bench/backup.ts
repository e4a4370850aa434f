import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { loadJobs } from "../backup/jobs.js";
import { loadBackupConfig } from "../backup/repositories.js";
import { Restic } from "../restic/index.js";
import { runJobsUnattended } from "../backup/unattended.js";
import { startRestServer } from "../lab/rest-server.js";
import { repoRoot, toolEnv, toolPath } from "../util/tools.js";
import { bringUp, broughtUp, runBench, type Timed } from "./brought-up.js";
import { timed } from "./timed.js";
import { median } from "./stats.js";

/**
 * What dcctl costs on top of restic, measured in one run on the same generated data (node dist/bench/backup.js):
 *  1. `dcctl backup run --job` of one local files job against a bare `restic backup` of the same paths, each into a
 *     fresh repository (first backup) and then again (incremental); goal: ≤ 5 % slower or ≤ 300 ms more.
 *  2. `dcctl backup run --all` over 30 small local jobs with concurrency 4, against the same jobs one by one
 *     (concurrency 1), each into a fresh repository.
 * Prints the figures; asserts nothing. Everything runs against a rest-server on 127.0.0.1, stopped at the end.
 */

const mainJs = join(repoRoot, "dist", "cli", "main.js");
const SMALL_JOBS = 30;

function ok(what: string, t: Timed): number {
  if (t.code !== 0) throw new Error(`${what} exited ${t.code}: ${t.out.trim()}`);
  return t.ms;
}

function generate(dir: string, files: number, size: number): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `d${i % 10}`);
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${i}.bin`), randomBytes(size));
  }
  writeFileSync(join(dir, "skip.tmp"), "excluded\n");
}

const fmt = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

const INCREMENTAL_ROUNDS = 5;

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "dcctl-bench-"));
  broughtUp("the work folder", () => rmSync(work, { recursive: true, force: true }));
  const rest = await bringUp("rest-server", () => startRestServer({ dataDir: join(work, "rest") }), (r) => r.stop());
  {
    const bigDir = join(work, "data", "big");
    const smallDir = join(work, "data", "small");
    generate(bigDir, 400, 256 * 1024); // 100 MiB in 400 files
    generate(join(bigDir, "many"), 2000, 2 * 1024); // and 2000 small ones
    generate(smallDir, 20, 8 * 1024);

    // Inventory: the valid two-site fixture, with 30 primary hosts for the small jobs and one secondary host for the big one.
    const sites = join(work, "sites");
    mkdirSync(sites);
    const fixture = join(repoRoot, "test", "fixtures", "inventory", "cross-site-ok");
    const p = parse(readFileSync(join(fixture, "primary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
    const first = { ...(p.hosts[0] ?? {}), backupPolicy: "bench-small" };
    const app = p.hosts[1] ?? {};
    p.hosts = [first, ...Array.from({ length: SMALL_JOBS - 1 }, (_, i) => ({ ...app, name: `bench-${String(i + 1).padStart(2, "0")}`, ip: `10.10.40.${20 + i}`, backupPolicy: "bench-small" }))];
    writeFileSync(join(sites, "primary.yaml"), stringify(p));
    const s = parse(readFileSync(join(fixture, "secondary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
    s.hosts = s.hosts.map((h) => ({ ...h, backupPolicy: h.activeOnly ? "bench-small" : "bench-big" }));
    writeFileSync(join(sites, "secondary.yaml"), stringify(s));
    const policy = (path: string) => ({ sources: [{ kind: "files", paths: [path], excludes: ["*.tmp"] }], schedule: "0 2 * * *", retention: { keepLast: 3 }, rpoMinutes: 1440, repository: "primary" });
    writeFileSync(join(work, "policies.yaml"), stringify({ policies: { "bench-big": policy(bigDir), "bench-small": policy(smallDir) } }));
    writeFileSync(join(work, "pass"), "bench\n", { mode: 0o600 });
    const localHosts = [...p.hosts, ...s.hosts].map((h) => String(h.name));

    /** A fresh repository and its own dcctl config and state, so no variant profits from another's uploads. */
    const variant = async (name: string): Promise<{ env: NodeJS.ProcessEnv; url: string }> => {
      const url = rest?.repo(name) ?? "";
      await new Restic({ url, passwordFile: join(work, "pass") }, { cacheDir: join(work, "cache") }).init();
      const config = join(work, `${name}.yaml`);
      writeFileSync(config, stringify({ site: "primary", repositories: { primary: { url, passwordFile: join(work, "pass") } }, localHosts, cacheDir: join(work, "cache"), stateDir: join(work, "state", name) }));
      return { url, env: toolEnv({ DCCTL_SITES_DIR: sites, DCCTL_POLICIES_FILE: join(work, "policies.yaml"), DCCTL_REPOS_FILE: config }) };
    };

    // 1. One job: dcctl against bare restic, first backup then an incremental one.
    const dcctlRepo = await variant("dcctl-one");
    const bareRepo = await variant("bare-one");
    const bareEnv = toolEnv({ RESTIC_REPOSITORY: bareRepo.url, RESTIC_PASSWORD_FILE: join(work, "pass"), RESTIC_CACHE_DIR: join(work, "cache") });
    const bareArgs = ["backup", "--json", "--retry-lock", "1m", "--host", "qn-dr-db-01", "--tag", "dcctl", "--exclude", "*.tmp", "--", bigDir];
    const dcctlArgs = [mainJs, "backup", "run", "--job", "qn-dr-db-01/bench-big"];
    // The engine without the CLI process: the run as the CLI makes it (signals, notices), in this process, into a third
    // fresh repository.
    const inProcess = await variant("engine-one");
    const engine = async (): Promise<number> => {
      const saved = { ...process.env };
      Object.assign(process.env, inProcess.env);
      try {
        const job = loadJobs().filter((j) => j.id === "qn-dr-db-01/bench-big");
        const t0 = performance.now();
        const { outcome } = await runJobsUnattended(job, { config: loadBackupConfig() });
        if (outcome.exitCode !== 0) throw new Error(`runJobs: ${outcome.results[0]?.error ?? "failed"}`);
        return performance.now() - t0;
      } finally {
        process.env = saved;
      }
    };
    // One sample of the first backup, then the median of several incremental rounds taken in turn, so that the
    // load of a 2-core machine falls on both sides alike.
    const rows: [string, number, number, number][] = [];
    for (const [round, samples] of [["first backup", 1], [`incremental (median of ${INCREMENTAL_ROUNDS})`, INCREMENTAL_ROUNDS]] as const) {
      const bare: number[] = [];
      const ours: number[] = [];
      const inproc: number[] = [];
      for (let i = 0; i < samples; i++) {
        bare.push(ok("restic backup", await timed(toolPath("restic"), bareArgs, bareEnv)));
        ours.push(ok("dcctl backup run", await timed(process.execPath, dcctlArgs, dcctlRepo.env)));
        inproc.push(await engine());
      }
      rows.push([round, median(ours), median(bare), median(inproc)]);
    }
    const startup = ok("dcctl --help", await timed(process.execPath, [mainJs, "backup", "jobs"], dcctlRepo.env));

    // 2. Thirty small jobs: --all with concurrency 4 against one by one.
    const parallel = await variant("all-c4");
    const serial = await variant("all-c1");
    const c4 = ok("--all --concurrency 4", await timed(process.execPath, [mainJs, "backup", "run", "--all", "--site", "primary", "--concurrency", "4"], parallel.env));
    const c1 = ok("--all --concurrency 1", await timed(process.execPath, [mainJs, "backup", "run", "--all", "--site", "primary", "--concurrency", "1"], serial.env));
    // And as timers would run them: one `dcctl backup run --job` process after another.
    const separate = await variant("separate");
    let each = 0;
    for (const h of p.hosts) each += ok("backup run --job", await timed(process.execPath, [mainJs, "backup", "run", "--job", String(h.name)], separate.env));

    process.stdout.write(`one local files job (${400 + 2000} files, ~104 MiB):\n`);
    const verdict = (ours: number, bare: number): string => (ours - bare <= 300 || ours <= bare * 1.05 ? "within goal" : "over goal");
    for (const [round, ours, bare, inproc] of rows) {
      process.stdout.write(`  ${round} restic ${fmt(bare)}\n`);
      process.stdout.write(`    dcctl CLI      ${fmt(ours)}  ratio ${(ours / bare).toFixed(3)}  +${Math.round(ours - bare)} ms  (${verdict(ours, bare)}: ≤5 % or ≤300 ms)\n`);
      process.stdout.write(`    engine (no CLI) ${fmt(inproc)}  ratio ${(inproc / bare).toFixed(3)}  +${Math.round(inproc - bare)} ms  (${verdict(inproc, bare)})\n`);
    }
    process.stdout.write(`  dcctl start-up alone (backup jobs): ${fmt(startup)}\n`);
    process.stdout.write(`${SMALL_JOBS} small local jobs:\n`);
    process.stdout.write(`  --all, concurrency 4: ${fmt(c4)}   one by one (concurrency 1): ${fmt(c1)}   speed-up ${(c1 / c4).toFixed(2)}x (ratio ${(c4 / c1).toFixed(3)})\n`);
    process.stdout.write(`  ${SMALL_JOBS} separate \`backup run --job\` processes: ${fmt(each)}   (--all, concurrency 4 is ${(each / c4).toFixed(2)}x faster)\n`);
  }
}

await runBench("backup", main);
