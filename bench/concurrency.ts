import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { siteCommand, labNetwork } from "../lab/lab.js";
import { freezerGroup, inFreezer, pidsIn } from "../lab/freezer.js";
import { inNetns, managementNetns } from "../lab/network.js";
import { labPaths, readLabConfig } from "../lab/paths.js";
import { run, type RunResult } from "../util/process.js";
import { textTable } from "../util/table.js";
import { toolEnv, toolPath } from "../util/tools.js";
import { broughtUp, labUp, runBench } from "./brought-up.js";
import { median } from "./stats.js";

/**
 * `dcctl backup run --all` with concurrency 4 against concurrency 1, with the jobs on the lab's remote hosts (issue
 * 13, item 5; node dist/bench/concurrency.js [--size MB] [--etc-mib N] [--srv-mib N] [--change F] [--bare-mib N]
 * [--rounds N]; root, ~10 min): a lab of the bench's own (`dcctl lab up --size 64`, no stacks, no portal writes),
 * the lab hosts' file trees (<lab>/hosts/etc, read by the six db and management jobs, and <lab>/hosts/srv, by the two
 * portal hosts) filled with random files, a fraction of them rewritten before every run so that each run has new
 * data to send. dcctl runs on the primary's management host as its timer would; the repositories file's
 * `concurrency:` is 1 or 4, in turn (A B B A …), median of the rounds. Against the machine's own limit in the same
 * run: two bare `restic backup` of trees of --bare-mib each, one after the other against side by side, into fresh
 * repositories on the primary's rest-server. During every run: the machine's CPU (/proc/stat, sampled), the CPU
 * the bench's own processes used (dcctl's tree and the lab's servers, each in a cpuacct cgroup of the bench's), the
 * disk (/proc/diskstats) and the bytes over the lab's WAN (its router's counters), so that the table says what
 * bounds the speed-up. Goal (issue): concurrency 4 as close to the bare speed-up as the machine allows. Asserts
 * nothing; the lab is stopped and its folder removed at the end.
 */

interface Options {
  sizeMb: number;
  etcMib: number;
  srvMib: number;
  change: number;
  bareMib: number;
  rounds: number;
}

function options(argv: string[]): Options {
  const o: Options = { sizeMb: 64, etcMib: 32, srvMib: 128, change: 0.25, bareMib: 64, rounds: 3 };
  const names: Record<string, keyof Options> = { "--size": "sizeMb", "--etc-mib": "etcMib", "--srv-mib": "srvMib", "--change": "change", "--bare-mib": "bareMib", "--rounds": "rounds" };
  for (let i = 0; i < argv.length; i++) {
    const key = names[argv[i] ?? ""];
    const value = Number(argv[i + 1]);
    if (!key || !(value > 0)) throw new Error(`unknown option or bad value at ${argv.slice(i).join(" ")} (options: ${Object.keys(names).join(" ")})`);
    o[key] = value;
    i++;
  }
  return o;
}

const FILE_KIB = 256;

/** Fills dir with files of FILE_KIB random KiB, MiB in all, in ten sub-folders. */
function fillTree(dir: string, mib: number): string[] {
  const files: string[] = [];
  const count = Math.max(1, Math.round((mib * 1024) / FILE_KIB));
  for (let i = 0; i < count; i++) {
    const sub = join(dir, `d${i % 10}`);
    mkdirSync(sub, { recursive: true });
    const f = join(sub, `f${i}.bin`);
    writeFileSync(f, randomBytes(FILE_KIB * 1024));
    files.push(f);
  }
  return files;
}

/** Rewrites a fraction of the files with new random data, a different slice each time. */
function churn(files: string[], fraction: number, turn: number): number {
  const n = Math.max(1, Math.round(files.length * fraction));
  for (let i = 0; i < n; i++) writeFileSync(files[(turn * n + i) % files.length] ?? "", randomBytes(FILE_KIB * 1024));
  return n * FILE_KIB * 1024;
}

// --- what the machine did during a run ---------------------------------------------------------------------

/** The all-CPU line of /proc/stat: busy and iowait jiffies, and the total. */
function cpuTimes(): { busy: number; iowait: number; total: number } {
  const f = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return { busy: user + nice + system + irq + softirq + steal, iowait, total: user + nice + system + idle + iowait + irq + softirq + steal };
}

/** Sectors read and written and ms spent doing I/O, summed over the whole disks (not their partitions). */
function diskTimes(): { readBytes: number; writeBytes: number; ioMs: number } {
  let readBytes = 0;
  let writeBytes = 0;
  let ioMs = 0;
  for (const line of readFileSync("/proc/diskstats", "utf8").split("\n")) {
    const f = line.trim().split(/\s+/);
    const name = f[2] ?? "";
    if (!/^(vd[a-z]+|sd[a-z]+|nvme\d+n\d+|xvd[a-z]+)$/.test(name)) continue;
    readBytes += Number(f[5]) * 512;
    writeBytes += Number(f[9]) * 512;
    ioMs += Number(f[12]);
  }
  return { readBytes, writeBytes, ioMs };
}

const CPUACCT = "/sys/fs/cgroup/cpuacct";

/** A cpuacct cgroup of the bench's: CPU used by every process started in it (or moved into it) and their children. */
class CpuGroup {
  readonly path: string;
  constructor(name: string) {
    this.path = join(CPUACCT, name);
    if (existsSync(CPUACCT)) mkdirSync(this.path, { recursive: true });
  }
  get available(): boolean {
    return existsSync(join(this.path, "cpuacct.usage"));
  }
  /** CPU seconds so far (0 where the machine has no cpuacct controller). */
  seconds(): number {
    return this.available ? Number(readFileSync(join(this.path, "cpuacct.usage"), "utf8")) / 1e9 : 0;
  }
  /** The command line that runs argv inside the group (as it is where the machine has no cpuacct controller). */
  wrap([cmd, args]: [string, string[]]): [string, string[]] {
    return this.available ? inFreezer(this.path, cmd, args) : [cmd, args];
  }
  adopt(pids: number[]): void {
    if (!this.available) return;
    for (const pid of pids) {
      try {
        writeFileSync(join(this.path, "cgroup.procs"), String(pid));
      } catch {
        // Gone meanwhile.
      }
    }
  }
  /** Back to the root group with anything left, then removed. */
  remove(): void {
    if (!existsSync(this.path)) return;
    const left = readFileSync(join(this.path, "cgroup.procs"), "utf8").split("\n").filter(Boolean);
    for (const pid of left) {
      try {
        writeFileSync(join(CPUACCT, "cgroup.procs"), pid);
      } catch {
        // Gone meanwhile.
      }
    }
    try {
      rmdirSync(this.path);
    } catch {
      // A process that would not move; the empty group goes with the next reboot.
    }
  }
}

interface Usage {
  ms: number;
  /** Machine CPU busy, 0..1 of all cores (everyone's work, not only the bench's). */
  cpu: number;
  /** The share of 250 ms samples in which the machine's CPU was ≥ 95 % busy. */
  saturated: number;
  iowait: number;
  /** CPU seconds of the bench's own processes: the command's tree, and the lab's servers (sshd, restic on the hosts, dumps, databases, rest-servers). */
  cmdCpu: number;
  serverCpu: number;
  diskMBps: number;
  diskUtil: number;
  /** Bytes over the WAN each way, primary → secondary and back. */
  wanOut: number;
  wanIn: number;
}

/** Runs fn while sampling the machine; what it used, besides what fn returns. */
async function measured<T>(groups: { cmd: CpuGroup; servers: CpuGroup }, wan: () => Promise<{ tx: number; rx: number }>, fn: () => Promise<T>): Promise<{ value: T; usage: Usage }> {
  const cpu0 = cpuTimes();
  const disk0 = diskTimes();
  const wan0 = await wan();
  const cmd0 = groups.cmd.seconds();
  const srv0 = groups.servers.seconds();
  let last = cpu0;
  let samples = 0;
  let saturated = 0;
  const timer = setInterval(() => {
    const now = cpuTimes();
    const total = now.total - last.total;
    if (total > 0) {
      samples++;
      if ((now.busy - last.busy) / total >= 0.95) saturated++;
    }
    last = now;
  }, 250);
  const t0 = performance.now();
  try {
    const value = await fn();
    const ms = performance.now() - t0;
    const cpu1 = cpuTimes();
    const disk1 = diskTimes();
    const wan1 = await wan();
    const total = cpu1.total - cpu0.total || 1;
    return {
      value,
      usage: {
        ms,
        cpu: (cpu1.busy - cpu0.busy) / total,
        saturated: samples ? saturated / samples : 0,
        iowait: (cpu1.iowait - cpu0.iowait) / total,
        cmdCpu: groups.cmd.seconds() - cmd0,
        serverCpu: groups.servers.seconds() - srv0,
        diskMBps: (disk1.readBytes - disk0.readBytes + disk1.writeBytes - disk0.writeBytes) / 1e6 / (ms / 1000),
        diskUtil: (disk1.ioMs - disk0.ioMs) / ms,
        wanOut: wan1.tx - wan0.tx,
        wanIn: wan1.rx - wan0.rx,
      },
    };
  } finally {
    clearInterval(timer);
  }
}

// --- the run ---------------------------------------------------------------------------------------------

interface JobLine {
  job: string;
  host: string;
  site: string;
  repository: string;
  status: string;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  bytesAdded: number;
  error?: string;
}

const medianOf = (us: Usage[], k: keyof Usage): number => median(us.map((u) => u[k]));
const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const pct = (x: number): string => `${Math.round(x * 100)} %`;

/** The most jobs that ran at once, from their start and finish times. */
function mostAtOnce(jobs: JobLine[]): number {
  const edges = jobs.flatMap((j) => [
    { t: Date.parse(j.startedAt), d: 1 },
    { t: Date.parse(j.finishedAt), d: -1 },
  ]);
  edges.sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let most = 0;
  for (const e of edges) most = Math.max(most, (now += e.d));
  return most;
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error("it needs root (it brings up a lab of its own)");
  const loadStart = loadavg();
  const dir = mkdtempSync(join(tmpdir(), "dcctl-bench-concurrency-"));
  const groups = { cmd: new CpuGroup(`dcctl-bench-${process.pid}-cmd`), servers: new CpuGroup(`dcctl-bench-${process.pid}-servers`) };
  const say = (line: string) => process.stderr.write(`bench/concurrency: ${line}\n`);
  broughtUp("CPU accounting groups", () => {
    groups.cmd.remove();
    groups.servers.remove();
  });
  {
    say(`lab up in ${dir} (--size ${o.sizeMb}, no stacks)`);
    const up = () => labUp(dir, ["--size", String(o.sizeMb), "--no-provision", "--write-every", "0"], { removeDir: true });
    let attempt = await up();
    if (attempt.code !== 0) {
      // On a loaded machine a server can be slow to accept its first connection: one more try, from a clean lab.
      say(`lab up failed (${attempt.out.trim().split("\n").pop() ?? ""}); once more`);
      await attempt.down();
      attempt = await up();
    }
    if (attempt.code !== 0) throw new Error(`lab up failed: ${attempt.out.trim()}`);
    const { sites, net } = labNetwork(dir);
    const config = readLabConfig(dir);
    // Every lab server (and what its sshd, databases and rest-server start from now on) counted in one group.
    groups.servers.adopt([...pidsIn(freezerGroup(net.id, "primary")), ...pidsIn(freezerGroup(net.id, "secondary"))]);
    const wan = async () => {
      const res = await run("ip", ["-n", net.sites.primary.router, "-s", "-j", "link", "show", "wan"]);
      const link = (JSON.parse(res.stdout) as { stats64?: { rx: { bytes: number }; tx: { bytes: number } } }[])[0];
      return { tx: link?.stats64?.tx.bytes ?? 0, rx: link?.stats64?.rx.bytes ?? 0 };
    };

    say(`filling the hosts' trees: etc ${o.etcMib} MiB, srv ${o.srvMib} MiB`);
    const hosts = join(dir, "hosts");
    const etcFiles = fillTree(join(hosts, "etc", "bench"), o.etcMib);
    const srvFiles = fillTree(join(hosts, "srv", "bench"), o.srvMib);
    const bareTrees = ["a", "b"].map((n) => (fillTree(join(dir, "bare", n), o.bareMib), join(dir, "bare", n)));

    // The site's repositories file twice, concurrency 1 and 4, everything else as the lab wrote it.
    const reposFile = labPaths(dir).reposFile("primary");
    const base = parse(readFileSync(reposFile, "utf8")) as Record<string, unknown>;
    const reposFor = (c: number) => {
      const f = join(dir, "control", "primary", `repositories-c${c}.yaml`);
      writeFileSync(f, stringify({ ...base, concurrency: c }), { mode: 0o600 });
      return f;
    };
    const variants = [1, 4].map((c) => ({ c, file: reposFor(c) }));
    const dcctlRun = async (file: string): Promise<{ res: RunResult; jobs: JobLine[] }> => {
      const { cmd, args, env: siteEnv } = siteCommand(dir, "primary", ["dcctl", "backup", "run", "--all", "--site", "primary", "--json"]);
      const res = await run(...groups.cmd.wrap([cmd, args]), { env: { ...siteEnv, DCCTL_REPOS_FILE: file } });
      let jobs: JobLine[] = [];
      try {
        jobs = (JSON.parse(res.stdout) as { results: JobLine[] }).results;
      } catch {
        // Reported below with the exit code.
      }
      if (res.code !== 0) {
        const bad = jobs.filter((j) => j.status !== "ok").map((j) => `${j.job}: ${j.error ?? j.status}`);
        throw new Error(`dcctl backup run --all exited ${res.code}: ${bad.join("; ") || res.stderr.trim()}`);
      }
      return { res, jobs };
    };

    say("first run (everything new to the repositories), not counted");
    const first = await measured(groups, wan, () => dcctlRun(variants[1]?.file ?? ""));

    // Bare restic on the same host dcctl runs on, into fresh repositories on the primary's rest-server.
    const mgmt = managementNetns(net, sites, "primary");
    const restServer = (parse(readFileSync(reposFile, "utf8")) as { repositories: Record<string, { url: string }> }).repositories.primary?.url ?? "";
    const restRoot = restServer.replace(/primary\/$/, "");
    const restic = toolPath("restic");
    let scratch = 0;
    const bare = async (tree: string, repo: string) => {
      const res = await run(...groups.cmd.wrap(inNetns(mgmt, [restic, "-r", repo, "backup", "--json", "-q", "--host", "bench", tree])), { env: toolEnv({ RESTIC_PASSWORD: "bench", RESTIC_CACHE_DIR: join(dir, "bare-cache") }) });
      if (res.code !== 0) throw new Error(`bare restic backup: ${res.stderr.trim()}`);
    };
    const freshRepos = async (): Promise<string[]> => {
      const repos = ["a", "b"].map(() => `${restRoot}bench-bare-${++scratch}/`);
      for (const repo of repos) {
        const res = await run(...inNetns(mgmt, [restic, "-r", repo, "init", "-q"]), { env: toolEnv({ RESTIC_PASSWORD: "bench" }) });
        if (res.code !== 0) throw new Error(`restic init ${repo}: ${res.stderr.trim()}`);
      }
      return repos;
    };

    const runs = new Map<number, { usage: Usage[]; jobs: JobLine[][] }>(variants.map((v) => [v.c, { usage: [], jobs: [] }]));
    const bareSeq: Usage[] = [];
    const barePar: Usage[] = [];
    let turn = 0;
    let churned = 0;
    for (let r = 0; r < o.rounds; r++) {
      // A B, then B A: neither variant always follows the other.
      const order = r % 2 === 0 ? variants : [...variants].reverse();
      for (const v of order) {
        churned = churn(etcFiles, o.change, turn) + churn(srvFiles, o.change, turn);
        turn++;
        say(`round ${r + 1}/${o.rounds}: concurrency ${v.c}`);
        const m = await measured(groups, wan, () => dcctlRun(v.file));
        runs.get(v.c)?.usage.push(m.usage);
        runs.get(v.c)?.jobs.push(m.value.jobs);
      }
      say(`round ${r + 1}/${o.rounds}: bare restic, one after the other and side by side`);
      const [a, b] = bareTrees as [string, string];
      const seqRepos = await freshRepos();
      bareSeq.push((await measured(groups, wan, async () => {
        await bare(a, seqRepos[0] ?? "");
        await bare(b, seqRepos[1] ?? "");
      })).usage);
      const parRepos = await freshRepos();
      barePar.push((await measured(groups, wan, () => Promise.all([bare(a, parRepos[0] ?? ""), bare(b, parRepos[1] ?? "")]))).usage);
    }

    // --- the report ---
    const out = process.stdout;
    const jobsOf = runs.get(1)?.jobs[0] ?? [];
    out.write(
      `concurrency: \`dcctl backup run --all\` on the primary's management host, ${jobsOf.length} jobs; lab --size ${o.sizeMb} MB, WAN ${config?.wanMbit ?? "?"} Mbit/s; ` +
        `hosts' trees etc ${o.etcMib} MiB (read by ${jobsOf.filter((j) => /db-|mgmt-/.test(j.job)).length} jobs) and srv ${o.srvMib} MiB (by ${jobsOf.filter((j) => j.job.includes("app-")).length}), ` +
        `${pct(o.change)} of each rewritten before every run (${(churned / 2 ** 20).toFixed(0)} MiB); median of ${o.rounds}, interleaved; ${availableParallelism()} cores\n`,
    );
    out.write(`load (1/5/15 min): ${loadStart.map((l) => l.toFixed(2)).join(" ")} at start, ${loadavg().map((l) => l.toFixed(2)).join(" ")} at end\n`);
    out.write(`first run (all data new, concurrency 4): ${sec(first.usage.ms)}\n`);
    const row = (what: string, us: Usage[], extra: string): string[] => [
      what,
      sec(medianOf(us, "ms")),
      extra,
      pct(medianOf(us, "cpu")),
      pct(medianOf(us, "saturated")),
      pct(medianOf(us, "iowait")),
      `${medianOf(us, "cmdCpu").toFixed(1)} + ${medianOf(us, "serverCpu").toFixed(1)} s`,
      `${medianOf(us, "diskMBps").toFixed(0)} MB/s, ${pct(medianOf(us, "diskUtil"))}`,
      `${((medianOf(us, "wanOut") * 8) / 1e6 / (medianOf(us, "ms") / 1000)).toFixed(1)} / ${((medianOf(us, "wanIn") * 8) / 1e6 / (medianOf(us, "ms") / 1000)).toFixed(1)}`,
    ];
    const c1 = runs.get(1)?.usage ?? [];
    const c4 = runs.get(4)?.usage ?? [];
    const at = (c: number) => median((runs.get(c)?.jobs ?? []).map(mostAtOnce));
    const speedup = medianOf(c1, "ms") / medianOf(c4, "ms");
    const bareSpeedup = medianOf(bareSeq, "ms") / medianOf(barePar, "ms");
    out.write(
      textTable(
        ["RUN", "WALL", "JOBS AT ONCE", "MACHINE CPU", "CPU ≥95 %", "IOWAIT", "BENCH CPU (CMD + SERVERS)", "DISK", "WAN MBIT/S (→ SEC / ← SEC)"],
        [
          row("dcctl --all, concurrency 1", c1, `≤ ${at(1)}`),
          row("dcctl --all, concurrency 4", c4, `≤ ${at(4)}`),
          row(`bare restic 2 × ${o.bareMib} MiB, one after the other`, bareSeq, "1"),
          row(`bare restic 2 × ${o.bareMib} MiB, side by side`, barePar, "2"),
        ],
      ),
    );
    out.write(
      `speed-up of concurrency 4 over 1: ${speedup.toFixed(2)}× (ratio ${(1 / speedup).toFixed(3)}); the machine's own for two restic side by side: ${bareSpeedup.toFixed(2)}×; ` +
        `dcctl's speed-up is ${(speedup / bareSpeedup).toFixed(2)} of the bare one\n`,
    );
    out.write("(MACHINE CPU: everything on the machine, other work included; BENCH CPU: CPU seconds of the command's process tree and of the lab's servers; jobs of both sites run in one pool per site, so concurrency 1 runs up to one per site at once)\n");
    // What bounds concurrency 4: each resource's use during its runs, against what the resource has.
    const wall4 = medianOf(c4, "ms") / 1000;
    const cores = (medianOf(c4, "cmdCpu") + medianOf(c4, "serverCpu")) / wall4;
    const wanUse = (Math.max(medianOf(c4, "wanOut"), medianOf(c4, "wanIn")) * 8) / 1e6 / wall4 / (config?.wanMbit ?? 100);
    out.write(
      `bounds at concurrency 4: CPU — the machine ${pct(medianOf(c4, "cpu"))} busy (≥ 95 % in ${pct(medianOf(c4, "saturated"))} of the samples), ` +
        `the bench's own processes ${cores.toFixed(2)} of the ${availableParallelism()} cores; disk ${pct(medianOf(c4, "diskUtil"))} busy, iowait ${pct(medianOf(c4, "iowait"))}; ` +
        `WAN ${pct(wanUse)} of its cap on average over the run (the jobs that cross it are marked below)\n`,
    );

    const perJob = (c: number, id: string) => median((runs.get(c)?.jobs ?? []).map((js) => js.find((j) => j.job === id)?.durationSeconds ?? 0));
    const crosses = (j: JobLine): string => {
      const over: string[] = [];
      if (j.site !== "primary") over.push("SSH to the host");
      if (j.repository !== j.site) over.push(`into the ${j.repository} repository`);
      return over.length ? `yes: ${over.join(", ")}` : "no";
    };
    out.write(
      textTable(
        ["JOB", "SITE", "REPOSITORY", "CROSSES THE WAN", "CONCURRENCY 1", "CONCURRENCY 4", "ADDED (LAST RUN)"],
        jobsOf.map((j) => [j.job, j.site, j.repository, crosses(j), `${perJob(1, j.job).toFixed(1)} s`, `${perJob(4, j.job).toFixed(1)} s`, `${((runs.get(4)?.jobs.at(-1)?.find((x) => x.job === j.job)?.bytesAdded ?? 0) / 2 ** 20).toFixed(1)} MiB`]),
      ),
    );
  }
}

await runBench("concurrency", main);
