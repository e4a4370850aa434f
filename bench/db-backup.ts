import { rmSync } from "node:fs";
import { join } from "node:path";
import { mariadbArgv } from "../databases/mariadb/connection.js";
import { withEnv } from "../hosts/quote.js";
import { pgArgv, pgDbname, pgEnv } from "../databases/postgresql/connection.js";
import {
  benchLabUp,
  commonOptions,
  MARIA_DB,
  MARIA_HOST,
  PG_DB,
  PG_HOST,
  dcctlArgv,
  ensureMariaDatabase,
  ensurePgDatabase,
  fmtMiB,
  fmtS,
  lastJson,
  mariaSql,
  ok,
  pipelineArgv,
  policiesVariant,
  psql,
  reposVariant,
  restic,
  resticEnv,
  sampledAt,
  sampledBare,
  type BenchLab,
  type Sampled,
} from "./db-lab.js";
import { benchOption } from "./args.js";
import { runBench } from "./brought-up.js";
import { loadText as load, median } from "./stats.js";

/**
 * The database backup path against the bare tools, in one run on a lab of the bench's own (issue 13, items 2 and 4):
 *   node dist/bench/db-backup.js [--pg-mb 1024] [--maria-mb 1200] [--small-mb 256] [--rounds 3] [--lab DIR]
 *                                [--before CHECKOUT] [--keep-up] [--only pg|mariadb|formats]
 *  1. `dcctl backup run --job` of the lab's PostgreSQL portal database (≥ 1 GB) and of a generated MariaDB database,
 *     run at the primary's management host, against the pipeline an engineer would script there:
 *     `ssh host pg_dump -Fc … | restic backup --stdin` (`mysqldump --single-transaction … | restic backup --stdin`),
 *     and against restic run on the database host (`ssh host restic backup --stdin-from-command -- pg_dump …`, the
 *     password over the SSH channel), interleaved, median of --rounds after one warm-up round; goal ≤ 1.05×.
 *     --before runs a second dcctl build (e.g. main as found, `git archive` + tsc elsewhere) in the same rounds.
 *  2. The dump format's effect: pg_dump -Fc at its default compression against -Z0 (restic compressing instead):
 *     dump time, stored size of a first backup, and of the next one after 1 % of the rows changed.
 *  3. Memory: the dcctl process's peak RSS (VmHWM, sampled) at each size streamed; goal ≤ 150 MB, flat.
 * Prints figures and ratios with the data sizes and the load; asserts nothing. The lab's folder (default
 * /tmp/dcctl-bench-db/lab) keeps the generated data between runs; the lab is stopped at the end (--keep-up: not),
 * also when the bench fails or is stopped (bench/brought-up.ts).
 */

const PG_MB = Number(benchOption("pg-mb", "1024"));
const MARIA_MB = Number(benchOption("maria-mb", "1200"));
const SMALL_MB = Number(benchOption("small-mb", "256"));
const { rounds: ROUNDS, lab: LAB, before: BEFORE, only: ONLY, keepUp: KEEP_UP } = commonOptions();

const SMALL_DB = "bench_small";

interface Variant {
  name: string;
  /** What its ratios are taken against (other variants' names); none for the references themselves. */
  against?: string[];
  run: () => Promise<Sampled>;
}

interface Row {
  name: string;
  against?: string[];
  ms: number[];
  dcctlPeakKiB: number;
  cpu: Record<string, number[]>;
  processed: number;
  added: number;
}

/** What a run's output says it backed up: restic's summary, or dcctl's JSON report. */
function summaryOf(s: Sampled): { processed: number; added: number } {
  const restic = lastJson<{ total_bytes_processed: number; data_added_packed?: number; data_added: number }>(s.stdout, (m) => m.message_type === "summary");
  if (restic) return { processed: restic.total_bytes_processed, added: restic.data_added_packed ?? restic.data_added };
  try {
    const report = JSON.parse(s.stdout) as { results?: { bytesAdded: number; status: string; error?: string }[] };
    const r = report.results?.[0];
    if (r && r.status !== "ok") throw new Error(`dcctl job ${r.status}: ${r.error ?? ""}`);
    return { processed: NaN, added: r?.bytesAdded ?? NaN };
  } catch (e) {
    if (e instanceof SyntaxError) return { processed: NaN, added: NaN };
    throw e;
  }
}

async function rounds(variants: Variant[]): Promise<Row[]> {
  const rows = new Map<string, Row>(variants.map((v) => [v.name, { name: v.name, against: v.against, ms: [], dcctlPeakKiB: 0, cpu: {}, processed: NaN, added: NaN }]));
  // Round 0 warms the caches and puts each variant's data in the repository once, so that every measured round is
  // an hourly backup of unchanged data (what the repository mostly sees); it is not counted.
  for (let round = 0; round <= ROUNDS; round++) {
    for (const v of variants) {
      const s = await v.run();
      ok(v.name, s);
      const row = rows.get(v.name) as Row;
      const sum = summaryOf(s);
      // Each sample as it is taken: a bench that fails later has printed what it measured.
      process.stdout.write(`  ${round === 0 ? "warm-up" : `round ${round}`} ${v.name}: ${fmtS(s.ms)}\n`);
      if (round === 0) continue;
      row.ms.push(s.ms);
      if (!Number.isNaN(sum.processed)) row.processed = sum.processed;
      row.added = sum.added;
      row.dcctlPeakKiB = Math.max(row.dcctlPeakKiB, s.usage.dcctl?.peakKiB ?? 0);
      for (const [cls, u] of Object.entries(s.usage)) (row.cpu[cls] ??= []).push(u.cpuMs);
    }
  }
  return [...rows.values()];
}

function printRows(title: string, rows: Row[]): void {
  process.stdout.write(`${title}\n`);
  const byName = new Map(rows.map((r) => [r.name, r]));
  for (const r of rows) {
    const t = median(r.ms);
    const ratio = (r.against ?? [])
      .map((name) => `  ${(t / median(byName.get(name)?.ms ?? [])).toFixed(3)}× ${name.replace(/^bare: /, "")}`)
      .join(",");
    const cpu = Object.entries(r.cpu)
      .filter(([cls]) => ["dcctl", "relay", "restic", "ssh"].includes(cls))
      .map(([cls, xs]) => `${cls} ${fmtS(median(xs))}`)
      .join(", ");
    const mem = r.dcctlPeakKiB ? `, dcctl peak RSS ${(r.dcctlPeakKiB / 1024).toFixed(0)} MiB` : "";
    const stream = Number.isNaN(r.processed) ? "" : `, stream ${fmtMiB(r.processed)}`;
    process.stdout.write(`  ${r.name.padEnd(42)} ${fmtS(t).padStart(9)}  [${r.ms.map((m) => (m / 1000).toFixed(1)).join(" ")}]${ratio}\n      cpu here: ${cpu || "-"}${mem}${stream}\n`);
  }
}

const BARE_FC = "bare: ssh pg_dump -Fc | restic --stdin";
const BARE_Z0 = "bare: ssh pg_dump -Fc -Z0 | restic --stdin";
const HOST_Z0 = "bare: restic on host, pg_dump -Fc -Z0";
const HOST_FC = "bare: restic on host, pg_dump -Fc";

/** dcctl's own variants: this checkout (restic on the host), the same with the dump relayed, and --before's build. */
function dcctlVariants(lab: BenchLab, job: string, repos: { onHost: string; relayed: string }, policies: string, against: { onHost: string[]; relayed: string[]; before: string[] }): Variant[] {
  const args = ["backup", "run", "--job", job, "--json"];
  const env = (file: string) => ({ DCCTL_REPOS_FILE: file, DCCTL_POLICIES_FILE: policies });
  const variants: Variant[] = [
    { name: "dcctl backup run --job", against: against.onHost, run: () => sampledAt(lab, dcctlArgv(undefined, args), env(repos.onHost)) },
    { name: "dcctl, resticOnHost: false (relayed)", against: against.relayed, run: () => sampledAt(lab, dcctlArgv(undefined, args), env(repos.relayed)) },
  ];
  if (BEFORE) variants.push({ name: "dcctl, main as found (relayed, zlib)", against: against.before, run: () => sampledAt(lab, dcctlArgv(BEFORE, args), env(repos.onHost)) });
  return variants;
}

/** restic on the database host: the dump never leaves it, only new (compressed) data goes to the rest-server. */
function onHostBackup(lab: BenchLab, host: string, resticArgs: string[], command: string[]): () => Promise<Sampled> {
  const env = resticEnv(lab);
  const argv = lab.ssh(host, [restic(), ...resticArgs, "--stdin-from-command", "--", ...command], { RESTIC_REPOSITORY: env.RESTIC_REPOSITORY ?? "", RESTIC_PASSWORD_FILE: "/dev/stdin" });
  return () => sampledBare(lab, pipelineArgv([argv], env.RESTIC_PASSWORD_FILE), {});
}

function pgVariants(lab: BenchLab, repos: { onHost: string; relayed: string }, policies: string, db: string, withAlternatives: boolean): Variant[] {
  const conn = lab.pg(PG_HOST);
  const dump = (extra: string[]) => pgArgv(conn, "pg_dump", ["-Fc", ...extra, "-d", pgDbname(db)]);
  const stdinBackup = ["backup", "--json", "--host", PG_HOST, "--stdin-filename", `postgresql/${db}.dump`];
  const bare = (extra: string[]) => () => sampledBare(lab, pipelineArgv([lab.ssh(PG_HOST, dump(extra), pgEnv(conn)), [restic(), ...stdinBackup, "--tag", "bench:bare", "--stdin"]]), resticEnv(lab));
  const onHost = (extra: string[]) => onHostBackup(lab, PG_HOST, [...stdinBackup, "--tag", "bench:on-host"], withEnv(dump(extra), pgEnv(conn)));
  const variants: Variant[] = [{ name: BARE_FC, run: bare([]) }];
  if (withAlternatives) {
    variants.push({ name: BARE_Z0, against: [BARE_FC], run: bare(["-Z0"]) }, { name: HOST_Z0, against: [BARE_Z0], run: onHost(["-Z0"]) }, { name: HOST_FC, against: [BARE_FC], run: onHost([]) });
  }
  const alt = (name: string) => (withAlternatives ? [name] : []);
  variants.push(...dcctlVariants(lab, `${PG_HOST}/db-hourly`, repos, policies, { onHost: [BARE_FC, ...alt(HOST_Z0)], relayed: [BARE_FC, ...alt(BARE_Z0)], before: [BARE_FC] }));
  return variants;
}

function mariaVariants(lab: BenchLab, repos: { onHost: string; relayed: string }, policies: string): Variant[] {
  const conn = lab.maria(MARIA_HOST);
  // The same flags as dcctl's MariaDB source.
  const dump = mariadbArgv(conn, "mysqldump", ["--single-transaction", "--routines", "--triggers", "--events", "--hex-blob", "--", MARIA_DB]);
  const stdinBackup = ["backup", "--json", "--host", MARIA_HOST, "--stdin-filename", `mariadb/${MARIA_DB}.sql`];
  const bareName = "bare: ssh mysqldump | restic --stdin";
  const hostName = "bare: restic on host, mysqldump";
  return [
    { name: bareName, run: () => sampledBare(lab, pipelineArgv([lab.ssh(MARIA_HOST, dump), [restic(), ...stdinBackup, "--tag", "bench:bare", "--stdin"]]), resticEnv(lab)) },
    { name: hostName, against: [bareName], run: onHostBackup(lab, MARIA_HOST, [...stdinBackup, "--tag", "bench:on-host"], dump) },
    ...dcctlVariants(lab, `${MARIA_HOST}/db-daily`, repos, policies, { onHost: [bareName, hostName], relayed: [bareName], before: [bareName] }),
  ];
}

/**
 * Stored size of one backup of each dump format in a fresh repository, and of the next backup after 1 % of the
 * dossiers changed: what -Z0 (restic compresses, and deduplicates) costs or saves against pg_dump's own zlib.
 */
async function formatSizes(lab: BenchLab): Promise<void> {
  const conn = lab.pg(PG_HOST);
  const env = resticEnv(lab);
  const base = (env.RESTIC_REPOSITORY ?? "").replace(/primary\/$/, "");
  const formats: [string, string[]][] = [
    ["-Fc (zlib, pg_dump's default)", []],
    ["-Fc -Z1", ["-Z1"]],
    ["-Fc -Z0 (restic compresses)", ["-Z0"]],
  ];
  const repos = formats.map((_, i) => `bench-format-${i}-${process.pid}`);
  const backup = async (i: number) => {
    const repoEnv = { ...env, RESTIC_REPOSITORY: `${base}${repos[i] ?? ""}/` };
    const argv = pipelineArgv([lab.ssh(PG_HOST, pgArgv(conn, "pg_dump", ["-Fc", ...(formats[i]?.[1] ?? []), "-d", pgDbname(PG_DB)]), pgEnv(conn)), [restic(), "backup", "--json", "--stdin", "--stdin-filename", "postgresql/portal.dump"]]);
    const s = ok(`format ${formats[i]?.[0] ?? ""}`, await sampledBare(lab, argv, repoEnv));
    return { ms: s.ms, ...summaryOf(s) };
  };
  try {
    const first: { ms: number; processed: number; added: number }[] = [];
    for (let i = 0; i < formats.length; i++) {
      ok("restic init", await sampledBare(lab, [restic(), "init"], { ...env, RESTIC_REPOSITORY: `${base}${repos[i] ?? ""}/` }));
      first.push(await backup(i));
    }
    // Between two hourly backups 1 % of the dossiers change: spread over the whole table (a worst case for
    // deduplication: every 1 MiB chunk holds a changed row), then the newest 1 % (what a portal mostly touches).
    const spread = Date.now() % 97;
    await psql(lab, PG_HOST, PG_DB, `UPDATE dossiers SET status = 'processing', due_at = due_at + interval '1 day' WHERE id % 100 = ${spread}`);
    const afterSpread: { ms: number; processed: number; added: number }[] = [];
    for (let i = 0; i < formats.length; i++) afterSpread.push(await backup(i));
    await psql(lab, PG_HOST, PG_DB, "UPDATE dossiers SET status = 'approved', decided_at = now() WHERE id > (SELECT max(id) - count(*) / 100 FROM dossiers)");
    const afterRecent: { ms: number; processed: number; added: number }[] = [];
    for (let i = 0; i < formats.length; i++) afterRecent.push(await backup(i));
    process.stdout.write(`dump format (${PG_DB}, fresh repository each; bare ssh | restic; stored = added to the repository, compressed):\n`);
    for (let i = 0; i < formats.length; i++) {
      const [f, n, r] = [first[i], afterSpread[i], afterRecent[i]];
      if (!f || !n || !r) continue;
      process.stdout.write(
        `  ${(formats[i]?.[0] ?? "").padEnd(30)} stream ${fmtMiB(f.processed).padStart(8)}  first backup ${fmtS(f.ms)} stores ${fmtMiB(f.added).padStart(8)};` +
          `  1 % spread changed: ${fmtS(n.ms)}, ${fmtMiB(n.added).padStart(8)};  newest 1 % changed: ${fmtS(r.ms)}, ${fmtMiB(r.added).padStart(8)}\n`,
      );
    }
  } finally {
    for (const r of repos) rmSync(join(lab.dir, "repos", "primary", r), { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  process.stdout.write(`bench/db-backup: load at start ${load()}; lab ${LAB}; ${ROUNDS} rounds after a warm-up\n`);
  const lab = await benchLabUp(LAB, PG_MB, KEEP_UP);
  {
    const policies = policiesVariant(lab);
    /** Repositories files whose jobs take one database each: restic on the host, and the dump relayed through dcctl. */
    const jobRepos = (name: string, pgDb: string) => {
      const write = (relayed: boolean) =>
        reposVariant(lab, `${name}${relayed ? "-relayed" : ""}`, (r) => {
          const h = (r.databases.hosts[PG_HOST] ??= {});
          // The default (restic on the host) is left unsaid: --before's build knows no resticOnHost.
          const placement = relayed ? { resticOnHost: false } : {};
          h.postgresql = { ...(h.postgresql ?? { port: 5432, user: "postgres" }), databases: [pgDb], globals: false, ...placement };
          const m = (r.databases.hosts[MARIA_HOST] ??= {});
          m.mariadb = { ...(m.mariadb ?? { port: 3306 }), databases: [MARIA_DB], ...placement };
        });
      return { onHost: write(false), relayed: write(true) };
    };
    const portalRepos = jobRepos("portal", PG_DB);
    const smallRepos = jobRepos("small", SMALL_DB);
    if (ONLY === "formats") await formatSizes(lab);
    if (ONLY === "" || ONLY === "pg") {
      await ensurePgDatabase(lab, PG_HOST, SMALL_DB, SMALL_MB);
      const size = await psql(lab, PG_HOST, "postgres", `SELECT pg_size_pretty(pg_database_size('${PG_DB}')) || ' / ' || pg_size_pretty(pg_database_size('${SMALL_DB}'))`);
      process.stdout.write(`PostgreSQL ${PG_HOST}: ${PG_DB} ${size.split(" / ")[0] ?? ""}, ${SMALL_DB} ${size.split(" / ")[1] ?? ""}\n`);
      const rows = await rounds(pgVariants(lab, portalRepos, policies, PG_DB, true));
      printRows(`PostgreSQL ${PG_DB} (${size.split(" / ")[0] ?? ""}), dcctl and ssh at lab-bk-01, restic at lab-bk-01 unless "on host":`, rows);
      const small = await rounds(pgVariants(lab, smallRepos, policies, SMALL_DB, false));
      printRows(`PostgreSQL ${SMALL_DB} (${size.split(" / ")[1] ?? ""}):`, small);
      await formatSizes(lab);
    }
    if (ONLY === "" || ONLY === "mariadb") {
      await ensureMariaDatabase(lab, MARIA_HOST, MARIA_DB, MARIA_MB);
      const mb = await mariaSql(lab, MARIA_HOST, `SELECT ROUND(SUM(data_length + index_length) / 1048576) FROM information_schema.tables WHERE table_schema = '${MARIA_DB}'`);
      const rows = await rounds(mariaVariants(lab, portalRepos, policies));
      printRows(`MariaDB ${MARIA_DB} (${mb} MiB on disk):`, rows);
    }
  }
  process.stdout.write(`load at end ${load()}\n`);
}

await runBench("db-backup", main);
