import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { parse, stringify } from "yaml";
import type { Host, Sites } from "../inventory/index.js";
import { quoteArg, quoteArgv, withEnv } from "../hosts/quote.js";
import { mariadbArgv, type MariadbConnection } from "../databases/mariadb/connection.js";
import { pgArgv, pgEnv, type PgConnection } from "../databases/postgresql/connection.js";
import { labNetwork, siteCommand } from "../lab/lab.js";
import { inNetns, managementNetns } from "../lab/network.js";
import { labPaths } from "../lab/paths.js";
import { isAlive } from "../util/process.js";
import { repoRoot, toolPath } from "../util/tools.js";
import { benchFlag, benchOption } from "./args.js";
import { labUp, whileRunning, type Timed } from "./brought-up.js";
import { timed } from "./timed.js";

/**
 * What bench/db-backup.ts and bench/db-restore.ts share: a lab of their own (its folder caches the generated data
 * between runs; the lab is taken down by bench/brought-up.ts, the folder kept), the data sets, the bare pipelines an engineer would script, and a
 * runner that samples the memory and CPU of every process of what it runs.
 */

export const DEFAULT_LAB = "/tmp/dcctl-bench-db/lab";

/** The lab's databases the benches measure: the portal PostgreSQL the lab generates, and a MariaDB of the bench's. */
export const PG_HOST = "lab-db-01";
export const MARIA_HOST = "lab-db-02";
export const PG_DB = "portal";
export const MARIA_DB = "bench_mail";


/** The options both database benches take: --rounds, --lab, --before, --only, --keep-up. */
export function commonOptions(): { rounds: number; lab: string; before: string; only: string; keepUp: boolean } {
  return {
    rounds: Number(benchOption("rounds", "3")),
    lab: benchOption("lab", DEFAULT_LAB),
    before: benchOption("before", ""),
    only: benchOption("only", ""),
    keepUp: benchFlag("keep-up"),
  };
}
export const mainJs = join(repoRoot, "dist", "cli", "main.js");

export interface BenchLab {
  dir: string;
  sites: Sites;
  /** The primary's management host's network namespace: where dcctl and the bare pipelines run. */
  mgmtNs: string;
  /** The lab's primary repositories file, parsed. */
  repos: LabRepos;
  host(name: string): Host;
  pg(host: string): PgConnection;
  maria(host: string): MariadbConnection;
  /** Runs argv on the primary's management host with its dcctl environment (plus `env`), collecting output. */
  at(argv: string[], env?: Record<string, string>): Promise<Timed>;
  /** The argv (argv[0] being `ssh`) that runs `remote` on a lab host as the lab's SSH login, host key pinned. */
  ssh(host: string, remote: string[], env?: Record<string, string>): string[];
}

export interface LabRepos {
  repositories: Record<string, { url: string; passwordFile: string }>;
  databases: {
    postgresql: PgConnection & Record<string, unknown>;
    mariadb: MariadbConnection & Record<string, unknown>;
    hosts: Record<string, { postgresql?: PgConnection & Record<string, unknown>; mariadb?: MariadbConnection & Record<string, unknown> }>;
  };
  [k: string]: unknown;
}


/** Runs a command to its end, output collected; no sampling (bench/timed.ts, with the input it is given). */
export function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, stdin?: string): Promise<Timed> {
  return timed(cmd, args, env, stdin ?? "");
}

export function ok<T extends Timed>(what: string, t: T): T {
  if (t.code !== 0) throw new Error(`${what} exited ${t.code}: ${t.out.trim().slice(-2000)}`);
  return t;
}

/**
 * `dcctl lab up` on the bench's own folder (no portal writes, no stacks, a WAN the seeding of the standbys does not
 * wait on). An existing folder keeps its data: the lab seeds once, so a size change needs a fresh folder.
 */
export async function benchLabUp(dir: string, sizeMb: number, keepUp: boolean): Promise<BenchLab> {
  await lockLab(dir);
  // Taken down at the end, on a failure and on SIGINT/SIGTERM (bench/brought-up.ts), unless --keep-up.
  ok("dcctl lab up", await labUp(dir, ["--size", String(sizeMb), "--write-every", "0", "--no-provision", "--wan-mbit", "1000"], { keepUp }));
  const { sites, net } = labNetwork(dir);
  const mgmtNs = managementNetns(net, sites, "primary");
  const paths = labPaths(dir);
  const repos = parse(readFileSync(paths.reposFile("primary"), "utf8")) as LabRepos;
  const host = (name: string): Host => {
    const h = [...sites.primary.hosts, ...sites.secondary.hosts].find((x) => x.name === name);
    if (!h) throw new Error(`the lab has no host ${name}`);
    return h;
  };
  return {
    dir,
    sites,
    mgmtNs,
    repos,
    host,
    pg: (h) => ({ ...repos.databases.postgresql, ...repos.databases.hosts[h]?.postgresql }),
    maria: (h) => ({ ...repos.databases.mariadb, ...repos.databases.hosts[h]?.mariadb }),
    at(argv, extra = {}) {
      const { cmd, args, env: siteEnv } = siteCommand(dir, "primary", argv);
      return run(cmd, args, { ...siteEnv, ...extra });
    },
    ssh(name, remote, remoteEnv) {
      const h = host(name);
      return [
        "ssh",
        "-i",
        paths.clientKey,
        "-o",
        `UserKnownHostsFile=${paths.knownHosts}`,
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-p",
        String(h.ssh.port),
        `${h.ssh.user}@${h.ssh.host}`,
        quoteArgv(withEnv(remote, remoteEnv)),
      ];
    },
  };
}

/**
 * One bench at a time on a lab: two would drop each other's scratch databases and time each other's load. A second
 * one waits for the first (a lock file beside the lab's folder, naming its pid; a dead holder's lock is taken over).
 */
async function lockLab(dir: string): Promise<void> {
  const file = `${dir}.bench-lock`;
  let told = false;
  for (;;) {
    try {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, String(process.pid), { flag: "wx" });
      process.on("exit", () => {
        if (readFileSync(file, "utf8") === String(process.pid)) rmSync(file, { force: true });
      });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const holder = Number(readFileSync(file, "utf8"));
    if (!isAlive(holder)) {
      rmSync(file, { force: true });
      continue;
    }
    if (!told) process.stdout.write(`waiting for bench pid ${holder}, which uses the lab ${dir}\n`);
    told = true;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/** psql as the lab's superuser from the management host; returns the unaligned output. */
export async function psql(lab: BenchLab, host: string, db: string, sql: string): Promise<string> {
  const conn = lab.pg(host);
  const res = await lab.at(pgArgv(conn, "psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql]), pgEnv(conn));
  return ok(`psql ${db}`, res).out.trim();
}

/** The mariadb client from the management host (SQL as an argument: the bench's own, never input from elsewhere). */
export async function mariaSql(lab: BenchLab, host: string, sql: string): Promise<string> {
  const res = await lab.at(mariadbArgv(lab.maria(host), "mariadb", ["--batch", "--skip-column-names", "-e", sql]));
  return ok("mariadb", res).out.trim();
}

/**
 * A PostgreSQL database of about `mb` megabytes made by SQL alone (for the memory figure at a second size): dossier-
 * shaped rows, created once and kept while its row count stays the same.
 */
export async function ensurePgDatabase(lab: BenchLab, host: string, db: string, mb: number): Promise<void> {
  const rows = Math.round((mb * 1024 * 1024) / 250);
  const exists = (await psql(lab, host, "postgres", `SELECT 1 FROM pg_database WHERE datname = '${db}'`)) === "1";
  if (exists && (await psql(lab, host, db, "SELECT count(*) FROM dossiers").catch(() => "")) === String(rows)) return;
  if (exists) await psql(lab, host, "postgres", `DROP DATABASE ${db} WITH (FORCE)`);
  await psql(lab, host, "postgres", `CREATE DATABASE ${db}`);
  await psql(
    lab,
    host,
    db,
    `CREATE TABLE dossiers AS SELECT g::bigint AS id, 'QN-2026-' || lpad(g::text, 8, '0') AS code, md5(g::text) AS citizen_id,
       (ARRAY['Cấp giấy phép xây dựng','Đăng ký hộ kinh doanh','Đăng ký khai sinh','Chứng thực bản sao'])[1 + g % 4] AS procedure,
       'Nguyễn Văn ' || md5((g * 7)::text) || ' — hồ sơ ' || sha256(g::text::bytea)::text AS note,
       timestamptz '2026-01-01' + g * interval '1 minute' AS submitted_at
     FROM generate_series(1, ${rows}) g;
     ALTER TABLE dossiers ADD PRIMARY KEY (id); ANALYZE dossiers;`,
  );
}

/**
 * The MariaDB data set: a mail-archive table of about `mb` megabytes on disk (the lab's own mail database is a few
 * MB), generated in batches with the seq engine; kept while its row count stays the same.
 */
export async function ensureMariaDatabase(lab: BenchLab, host: string, db: string, mb: number): Promise<void> {
  // About 1.1 KB a row on disk (a 800-byte body, a secondary index).
  const rows = Math.round((mb * 1024 * 1024) / 1110);
  const have = await mariaSql(lab, host, `SELECT COUNT(*) FROM ${db}.messages`).catch(() => "");
  if (have === String(rows)) return;
  await mariaSql(lab, host, `DROP DATABASE IF EXISTS ${db}; CREATE DATABASE ${db} CHARACTER SET utf8mb4`);
  await mariaSql(
    lab,
    host,
    `CREATE TABLE ${db}.messages (id INT PRIMARY KEY, mailbox VARCHAR(120) NOT NULL, subject VARCHAR(300) NOT NULL, sent DATETIME NOT NULL,
       body TEXT NOT NULL, KEY (mailbox)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  );
  const batch = 100_000;
  for (let from = 1; from <= rows; from += batch) {
    const to = Math.min(rows, from + batch - 1);
    await mariaSql(
      lab,
      host,
      `USE ${db}; INSERT INTO messages SELECT seq, CONCAT('canbo', LPAD(seq % 5000, 5, '0'), '@quangninh.gov.vn'),
         CONCAT('Công văn số ', seq, '/UBND-VP về việc ', ELT(1 + seq % 4, 'cấp phép xây dựng', 'đăng ký kinh doanh', 'chứng thực', 'đất đai')),
         TIMESTAMP('2026-01-01') + INTERVAL seq MINUTE,
         CONCAT('Kính gửi các sở, ban, ngành. ', REPEAT(CONCAT(MD5(seq), ' ', SHA1(seq * 7), ' Ủy ban nhân dân tỉnh Quảng Ninh đề nghị. '), 6))
       FROM seq_${from}_to_${to}`,
    );
    await purgeBinlogs(lab, host);
  }
}

/** The lab standby of a primary database host, if it has one. */
function standbyOf(lab: BenchLab, host: string): string | undefined {
  return lab.sites.secondary.hosts.find((h) => h.standbyFor === host)?.name;
}

/**
 * Waits until the standby of `host` has applied everything its primary has written: a restore's gigabyte is replayed
 * there afterwards, and the next run measured must not share the machine with that replay.
 */
export async function standbyCaughtUp(lab: BenchLab, host: string, engine: "postgresql" | "mariadb"): Promise<void> {
  const standby = standbyOf(lab, host);
  if (!standby) return;
  if (engine === "mariadb") {
    const pos = await mariaSql(lab, host, "SELECT @@gtid_binlog_pos");
    if (pos) await mariaSql(lab, standby, `SELECT MASTER_GTID_WAIT('${pos}', 900)`);
    return;
  }
  const lsn = await psql(lab, host, "postgres", "SELECT pg_current_wal_lsn()");
  const deadline = Date.now() + 900_000;
  while ((await psql(lab, standby, "postgres", `SELECT pg_last_wal_replay_lsn() >= '${lsn}'::pg_lsn`)) !== "t") {
    if (Date.now() > deadline) throw new Error(`${standby} did not replay ${host}'s WAL up to ${lsn} within 15 minutes`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Removes the binary logs of a lab MariaDB and of its standby up to the file in use. Every generated or restored
 * gigabyte is logged on both (the standby logs what it applies), and the lab keeps them all: a few bench runs
 * filled a 250 GB disk. A log the standby still reads is kept (the server refuses to purge a log in use).
 */
export async function purgeBinlogs(lab: BenchLab, host: string): Promise<void> {
  const standby = standbyOf(lab, host);
  for (const h of [host, ...(standby ? [standby] : [])]) {
    const current = (await mariaSql(lab, h, "SHOW MASTER STATUS")).split("\t")[0] ?? "";
    if (current) await mariaSql(lab, h, `PURGE BINARY LOGS TO '${current}'`);
  }
}

/**
 * A copy of the lab's primary repositories file with `edit` applied, written into the bench's folder: the benches
 * pick the databases a job takes this way, and leave the lab's own files as `lab up` wrote them.
 */
export function reposVariant(lab: BenchLab, name: string, edit: (r: LabRepos) => void): string {
  const copy = structuredClone(lab.repos);
  edit(copy);
  mkdirSync(join(lab.dir, "bench"), { recursive: true });
  const file = join(lab.dir, "bench", `repositories-${name}.yaml`);
  writeFileSync(file, stringify(copy), { mode: 0o600 });
  return file;
}

/** The lab's policies, with the database jobs taking their databases only (no files source beside them). */
export function policiesVariant(lab: BenchLab): string {
  mkdirSync(join(lab.dir, "bench"), { recursive: true });
  const file = join(lab.dir, "bench", "policies.yaml");
  const raw = parse(readFileSync(labPaths(lab.dir).policiesFile, "utf8")) as { policies: Record<string, { sources: { kind: string }[] }> };
  const hourly = raw.policies["db-hourly"];
  const daily = raw.policies["db-daily"];
  if (!hourly || !daily) throw new Error("the lab's policies lack db-hourly or db-daily");
  hourly.sources = [{ kind: "postgresql" }];
  daily.sources = [{ kind: "mariadb" }];
  writeFileSync(file, stringify(raw));
  return file;
}

/** The restic environment for a repository of the lab, at the management host (password by file). */
export function resticEnv(lab: BenchLab, repo = "primary"): Record<string, string> {
  const r = lab.repos.repositories[repo];
  if (!r) throw new Error(`the lab has no repository ${repo}`);
  return { RESTIC_REPOSITORY: r.url, RESTIC_PASSWORD_FILE: r.passwordFile };
}

export const restic = (): string => toolPath("restic");

/**
 * One shell pipeline from argv parts, each part quoted, `|` between them; `stdinFile` becomes the first part's
 * standard input (a password file, say: never on a command line).
 */
export function pipeline(parts: string[][], stdinFile?: string): string {
  const quoted = parts.map((p) => quoteArgv(p));
  if (stdinFile && quoted.length) quoted[0] = `${quoted[0] ?? ""} < ${quoteArg(stdinFile)}`;
  return quoted.join(" | ");
}

/** bash running pipelines one after the other (`&&`), failing when any part of any fails. */
export function bashArgv(...pipelines: string[]): string[] {
  return ["bash", "-o", "pipefail", "-c", pipelines.join(" && ")];
}

export function pipelineArgv(parts: string[][], stdinFile?: string): string[] {
  return bashArgv(pipeline(parts, stdinFile));
}

/** What one sampled process class used: CPU time summed over its processes, the largest peak RSS among them. */
export interface Usage {
  cpuMs: number;
  peakKiB: number;
}

export interface Sampled extends Timed {
  /** Standard output alone (`out` has stderr too). */
  stdout: string;
  /** Per class of process: "dcctl", "relay" (restic/stream-relay.js), or the program's name ("restic", "ssh"). */
  usage: Record<string, Usage>;
}

const TICK_MS = 10;

function readProc(pid: number): { cmdline: string[]; cpuMs: number; hwmKiB: number; children: number[] } | undefined {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of stat; the slice above starts at field 3.
    const cpuMs = (Number(fields[11]) + Number(fields[12])) * TICK_MS;
    const hwm = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    const children: number[] = [];
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      let list = "";
      try {
        list = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      } catch {
        // A thread that ended meanwhile.
      }
      if (list) children.push(...list.split(" ").map(Number));
    }
    return { cmdline, cpuMs, hwmKiB: hwm ? Number(hwm[1]) : 0, children };
  } catch {
    // Gone between the listing and the read.
    return undefined;
  }
}

/** A process's class by what it runs: node's script, or the program (restic's argv names the relay, too). */
function classify(cmdline: string[]): string {
  const program = basename(cmdline[0] ?? "?");
  if (program !== "node") return program;
  const script = cmdline.find((a, i) => i > 0 && !a.startsWith("-")) ?? "";
  if (script.endsWith("stream-relay.js")) return "relay";
  if (script.endsWith(join("cli", "main.js"))) return "dcctl";
  return `node ${basename(script)}`;
}

/**
 * Runs a command and samples, every 100 ms, the peak RSS (VmHWM) and CPU time of it and every descendant, by class.
 * The last sample of a process comes at most 100 ms before it exits, so CPU figures may miss that much.
 */
export function sampled(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<Sampled> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    whileRunning(child, [cmd, ...args].join(" ").slice(0, 120));
    let out = "";
    let stdout = "";
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    // As in timed.ts: a command that does not read its input must not crash the bench with an EPIPE.
    child.stdin.on("error", () => undefined);
    child.stdin.end(stdin ?? "");
    const seen = new Map<number, { cls: string; cpuMs: number; hwmKiB: number }>();
    const sample = () => {
      const todo = child.pid ? [child.pid] : [];
      while (todo.length) {
        const pid = todo.pop() as number;
        const p = readProc(pid);
        // An exiting process has no command line any more: its last sample with one stands.
        if (!p || p.cmdline.length === 0) continue;
        // nsenter, setpriv and env exec their program: the class is whatever the pid runs now.
        seen.set(pid, { cls: classify(p.cmdline), cpuMs: p.cpuMs, hwmKiB: p.hwmKiB });
        todo.push(...p.children);
      }
    };
    const timer = setInterval(sample, 100);
    sample();
    child.on("close", (code) => {
      clearInterval(timer);
      const usage: Record<string, Usage> = {};
      for (const s of seen.values()) {
        const u = (usage[s.cls] ??= { cpuMs: 0, peakKiB: 0 });
        u.cpuMs += s.cpuMs;
        u.peakKiB = Math.max(u.peakKiB, s.hwmKiB);
      }
      resolve({ ms: performance.now() - t0, code, out, stdout, usage });
    });
  });
}

/** Sampled, on the primary's management host. */
export function sampledAt(lab: BenchLab, argv: string[], env: Record<string, string> = {}, stdin?: string): Promise<Sampled> {
  const { cmd, args, env: siteEnv } = siteCommand(lab.dir, "primary", argv);
  return sampled(cmd, args, { ...siteEnv, ...env }, stdin);
}

/** A dcctl build other than this checkout's (e.g. main as it was, built elsewhere), run on the management host. */
export function dcctlArgv(build: string | undefined, args: string[]): string[] {
  return build ? [process.execPath, join(build, "dist", "cli", "main.js"), ...args] : ["dcctl", ...args];
}

/** Runs argv in the management namespace without the site's dcctl environment (the bare pipelines). */
export function sampledBare(lab: BenchLab, argv: string[], env: Record<string, string>): Promise<Sampled> {
  const [cmd, args] = inNetns(lab.mgmtNs, argv);
  return sampled(cmd, args, { ...process.env, ...env });
}


export const fmtS = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
export const fmtMiB = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** Parses the last JSON object restic or dcctl printed on a line of its own (their summaries). */
export function lastJson<T>(out: string, pred: (v: Record<string, unknown>) => boolean = () => true): T | undefined {
  const lines = out.split("\n").filter((l) => l.startsWith("{"));
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const v = JSON.parse(lines[i] as string) as Record<string, unknown>;
      if (pred(v)) return v as T;
    } catch {
      // Not JSON after all.
    }
  }
  return undefined;
}
