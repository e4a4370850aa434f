import { quoteArgv, withEnv } from "../hosts/quote.js";
import { mariadbArgv } from "../databases/mariadb/connection.js";
import { pgArgv, pgDbname, pgEnv } from "../databases/postgresql/connection.js";
import {
  bashArgv,
  benchLabUp,
  commonOptions,
  MARIA_DB,
  MARIA_HOST,
  PG_DB,
  PG_HOST,
  dcctlArgv,
  ensureMariaDatabase,
  fmtMiB,
  fmtS,
  lastJson,
  mariaSql,
  ok,
  pipeline,
  pipelineArgv,
  psql,
  purgeBinlogs,
  reposVariant,
  restic,
  resticEnv,
  sampledAt,
  sampledBare,
  standbyCaughtUp,
  type BenchLab,
  type Sampled,
} from "./db-lab.js";
import { benchOption } from "./args.js";
import { runBench } from "./brought-up.js";
import { loadText as load, median } from "./stats.js";

/**
 * The database restore path, the RTO, against the bare tools, in one run on a lab of the bench's own (issue 13,
 * item 3):   node dist/bench/db-restore.js [--maria-mb 1200] [--rounds 3] [--jobs 2,4] [--lab DIR] [--before CHECKOUT]
 *                                          [--keep-up] [--only pg|mariadb]
 *  1. `dcctl restore --host H --db NAME --target H --target-db …` of one snapshot, run at the primary's management
 *     host, against `restic dump … | ssh H pg_restore …` (`… | ssh H mariadb …`) from the same place, and against
 *     restic run on the database host (`ssh H 'restic dump … | pg_restore …'`); goal ≤ 1.05×.
 *  2. What the tools allow beyond that: pg_restore --jobs N from a file restic restored on the host first, for a
 *     snapshot of each dump format (pg_dump -Fc's zlib at its default level and at 1, and -Z0 with restic
 *     compressing): the restore time beside the snapshot's stream size, in one table.
 * Each restore goes into a scratch database, dropped before every run (outside the timing); runs interleaved, median
 * of --rounds after a warm-up round. The snapshots are taken by the bench with the bare pipeline. Prints figures and
 * ratios with sizes and the load; asserts nothing. The lab is stopped at the end (--keep-up: not).
 */

const MARIA_MB = Number(benchOption("maria-mb", "1200"));
const { rounds: ROUNDS, lab: LAB, before: BEFORE, only: ONLY, keepUp: KEEP_UP } = commonOptions();
const JOBS = benchOption("jobs", "2,4")
  .split(",")
  .map(Number)
  .filter((n) => n > 0);

const PG_TARGET = "bench_restored";
const MARIA_TARGET = "bench_mail_restored";

interface Variant {
  name: string;
  against?: string;
  run: () => Promise<Sampled>;
}

interface Row {
  name: string;
  against?: string;
  ms: number[];
  dcctlPeakKiB: number;
  cpu: Record<string, number[]>;
}

async function rounds(variants: Variant[], reset: () => Promise<void>, check: (name: string) => Promise<void>): Promise<Row[]> {
  const rows = new Map<string, Row>(variants.map((v) => [v.name, { name: v.name, against: v.against, ms: [], dcctlPeakKiB: 0, cpu: {} }]));
  for (let round = 0; round <= ROUNDS; round++) {
    for (const v of variants) {
      await reset();
      const s = ok(v.name, await v.run());
      await check(v.name);
      // Each sample as it is taken: a bench that fails later has printed what it measured.
      process.stdout.write(`  ${round === 0 ? "warm-up" : `round ${round}`} ${v.name}: ${fmtS(s.ms)}\n`);
      if (round === 0) continue;
      const row = rows.get(v.name) as Row;
      row.ms.push(s.ms);
      row.dcctlPeakKiB = Math.max(row.dcctlPeakKiB, s.usage.dcctl?.peakKiB ?? 0);
      for (const [cls, u] of Object.entries(s.usage)) (row.cpu[cls] ??= []).push(u.cpuMs);
    }
  }
  await reset();
  return [...rows.values()];
}

function printRows(title: string, rows: Row[]): void {
  process.stdout.write(`${title}\n`);
  const byName = new Map(rows.map((r) => [r.name, r]));
  for (const r of rows) {
    const t = median(r.ms);
    const ref = r.against ? byName.get(r.against) : undefined;
    const ratio = ref ? `  ${(t / median(ref.ms)).toFixed(3)}× ${r.against}` : "";
    const cpu = Object.entries(r.cpu)
      .filter(([cls]) => ["dcctl", "restic", "ssh"].includes(cls))
      .map(([cls, xs]) => `${cls} ${fmtS(median(xs))}`)
      .join(", ");
    const mem = r.dcctlPeakKiB ? `, dcctl peak RSS ${(r.dcctlPeakKiB / 1024).toFixed(0)} MiB` : "";
    process.stdout.write(`  ${r.name.padEnd(52)} ${fmtS(t).padStart(9)}${ratio}   [${r.ms.map((m) => (m / 1000).toFixed(1)).join(" ")}]  cpu here: ${cpu || "-"}${mem}\n`);
  }
}

/** dcctl restore as this checkout does it, the same with restic kept here (streamed), and --before's build. */
function dcctlVariants(lab: BenchLab, restoreArgs: string[], relayedRepos: string, ref: string): Variant[] {
  const variants: Variant[] = [
    { name: "dcctl restore --db", against: ref, run: () => sampledAt(lab, dcctlArgv(undefined, restoreArgs)) },
    { name: "dcctl restore --db, resticOnHost: false (streamed)", against: ref, run: () => sampledAt(lab, dcctlArgv(undefined, restoreArgs), { DCCTL_REPOS_FILE: relayedRepos }) },
  ];
  if (BEFORE) variants.push({ name: "dcctl restore --db, main as found (streamed)", against: ref, run: () => sampledAt(lab, dcctlArgv(BEFORE, restoreArgs)) });
  return variants;
}

/** A snapshot of one dump taken with the bare pipeline: its id and the stream's size. */
async function bareSnapshot(lab: BenchLab, host: string, dump: string[], env: Record<string, string>, filename: string, tag: string): Promise<{ id: string; bytes: number }> {
  const s = ok(`backup for ${tag}`, await sampledBare(lab, pipelineArgv([lab.ssh(host, dump, env), [restic(), "backup", "--json", "--host", host, "--tag", tag, "--stdin", "--stdin-filename", filename]]), resticEnv(lab)));
  const summary = lastJson<{ snapshot_id: string; total_bytes_processed: number }>(s.stdout, (m) => m.message_type === "summary");
  if (!summary) throw new Error(`no backup summary for ${tag}: ${s.out}`);
  return { id: summary.snapshot_id, bytes: summary.total_bytes_processed };
}

/** restic as the database host runs it: the repository by URL, the password on the SSH channel's stdin. */
function resticOnHost(lab: BenchLab, argv: string[]): string[] {
  const env = resticEnv(lab);
  return withEnv([restic(), ...argv], { RESTIC_REPOSITORY: env.RESTIC_REPOSITORY ?? "", RESTIC_PASSWORD_FILE: "/dev/stdin" });
}

function pgVariants(lab: BenchLab, snapshot: string, relayedRepos: string): Variant[] {
  const conn = lab.pg(PG_HOST);
  const env = resticEnv(lab);
  const file = `/postgresql/${PG_DB}.dump`;
  const restore = (extra: string[], from?: string) => withEnv(pgArgv(conn, "pg_restore", ["--no-owner", "--exit-on-error", ...extra, "-d", pgDbname(PG_TARGET), ...(from ? [from] : [])]), pgEnv(conn));
  const createdb = lab.ssh(PG_HOST, withEnv(pgArgv(conn, "createdb", [PG_TARGET]), pgEnv(conn)));
  const ref = "bare restic dump | ssh pg_restore";
  const restoreArgs = ["restore", "--host", PG_HOST, "--db", PG_DB, "--target", PG_HOST, "--target-db", PG_TARGET, "--snapshot", snapshot, "--repository", "primary", "--yes"];
  const variants: Variant[] = [
    { name: ref, run: () => sampledBare(lab, bashArgv(pipeline([createdb]), pipeline([[restic(), "dump", snapshot, file], lab.ssh(PG_HOST, restore([]))])), env) },
    ...dcctlVariants(lab, restoreArgs, relayedRepos, ref),
  ];
  variants.push({
    name: "bare on host: restic dump | pg_restore",
    against: ref,
    run: () => sampledBare(lab, bashArgv(pipeline([createdb]), pipeline([lab.ssh(PG_HOST, ["sh", "-c", `${quoteArgv(resticOnHost(lab, ["dump", snapshot, file]))} | ${quoteArgv(restore([]))}`])], env.RESTIC_PASSWORD_FILE)), {}),
  });
  for (const j of JOBS) {
    // restic restore writes the file on the host (a file, not a pipe: what pg_restore --jobs needs); then it goes.
    const dir = `/var/tmp/dcctl-bench-restore-${process.pid}`;
    const steps = [`mkdir -m 700 ${dir}`, `${quoteArgv(resticOnHost(lab, ["restore", "--target", dir, "--include", file, snapshot]))} >/dev/null`, quoteArgv(restore(["--jobs", String(j)], dir + file))];
    const script = `${steps.join(" && ")}; c=$?; rm -rf ${dir}; exit $c`;
    variants.push({ name: `bare on host: restic restore to a file, pg_restore -j ${j}`, against: ref, run: () => sampledBare(lab, bashArgv(pipeline([createdb]), pipeline([lab.ssh(PG_HOST, ["sh", "-c", script])], env.RESTIC_PASSWORD_FILE)), {}) });
  }
  return variants;
}

function mariaVariants(lab: BenchLab, snapshot: string, relayedRepos: string): Variant[] {
  const conn = lab.maria(MARIA_HOST);
  const env = resticEnv(lab);
  const file = `/mariadb/${MARIA_DB}.sql`;
  const load = mariadbArgv(conn, "mariadb", ["--batch", "--", MARIA_TARGET]);
  const create = lab.ssh(MARIA_HOST, mariadbArgv(conn, "mariadb", ["-e", `CREATE DATABASE ${MARIA_TARGET} CHARACTER SET utf8mb4`]));
  const ref = "bare restic dump | ssh mariadb";
  const restoreArgs = ["restore", "--host", MARIA_HOST, "--db", MARIA_DB, "--target", MARIA_HOST, "--target-db", MARIA_TARGET, "--snapshot", snapshot, "--repository", "primary", "--yes"];
  const variants: Variant[] = [
    { name: ref, run: () => sampledBare(lab, bashArgv(pipeline([create]), pipeline([[restic(), "dump", snapshot, file], lab.ssh(MARIA_HOST, load)])), env) },
    ...dcctlVariants(lab, restoreArgs, relayedRepos, ref),
  ];
  variants.push({
    name: "bare on host: restic dump | mariadb",
    against: ref,
    run: () => sampledBare(lab, bashArgv(pipeline([create]), pipeline([lab.ssh(MARIA_HOST, ["sh", "-c", `${quoteArgv(resticOnHost(lab, ["dump", snapshot, file]))} | ${quoteArgv(load)}`])], env.RESTIC_PASSWORD_FILE)), {}),
  });
  const dir = `/var/tmp/dcctl-bench-restore-${process.pid}`;
  const steps = [`mkdir -m 700 ${dir}`, `${quoteArgv(resticOnHost(lab, ["restore", "--target", dir, "--include", file, snapshot]))} >/dev/null`, `${quoteArgv(load)} < ${dir}${file}`];
  variants.push({
    name: "bare on host: restic restore to a file, mariadb < file",
    against: ref,
    run: () => sampledBare(lab, bashArgv(pipeline([create]), pipeline([lab.ssh(MARIA_HOST, ["sh", "-c", `${steps.join(" && ")}; c=$?; rm -rf ${dir}; exit $c`])], env.RESTIC_PASSWORD_FILE)), {}),
  });
  return variants;
}

async function main(): Promise<void> {
  process.stdout.write(`bench/db-restore: load at start ${load()}; lab ${LAB}; ${ROUNDS} rounds after a warm-up\n`);
  const lab = await benchLabUp(LAB, 1024, KEEP_UP);
  {
    const relayedRepos = reposVariant(lab, "restore-relayed", (r) => {
      const pg = (r.databases.hosts[PG_HOST] ??= {});
      pg.postgresql = { ...(pg.postgresql ?? { port: 5432, user: "postgres" }), resticOnHost: false };
      const maria = (r.databases.hosts[MARIA_HOST] ??= {});
      maria.mariadb = { ...(maria.mariadb ?? { port: 3306 }), resticOnHost: false };
    });
    if (ONLY !== "mariadb") {
      const conn = lab.pg(PG_HOST);
      const size = await psql(lab, PG_HOST, "postgres", `SELECT pg_size_pretty(pg_database_size('${PG_DB}'))`);
      const rows = await psql(lab, PG_HOST, PG_DB, "SELECT (SELECT count(*) FROM dossiers) || '/' || (SELECT count(*) FROM document_exchange)");
      const reset = async () => {
        await psql(lab, PG_HOST, "postgres", `DROP DATABASE IF EXISTS ${PG_TARGET} WITH (FORCE)`);
        await standbyCaughtUp(lab, PG_HOST, "postgresql");
      };
      const check = async (name: string) => {
        const got = await psql(lab, PG_HOST, PG_TARGET, "SELECT (SELECT count(*) FROM dossiers) || '/' || (SELECT count(*) FROM document_exchange)");
        if (got !== rows) throw new Error(`${name} restored ${got} rows, not ${rows}`);
      };
      for (const [label, extra] of [
        ["pg_dump -Fc (zlib)", []],
        ["pg_dump -Fc -Z1", ["-Z1"]],
        ["pg_dump -Fc -Z0", ["-Z0"]],
      ] as const) {
        const snap = await bareSnapshot(lab, PG_HOST, pgArgv(conn, "pg_dump", ["-Fc", ...extra, "-d", pgDbname(PG_DB)]), pgEnv(conn), `postgresql/${PG_DB}.dump`, "bench:restore");
        const result = await rounds(pgVariants(lab, snap.id, relayedRepos), reset, check);
        printRows(`PostgreSQL ${PG_DB} (${size}, ${rows} rows) from a snapshot of ${label}, stream ${fmtMiB(snap.bytes)}, restored into ${PG_HOST}:`, result);
      }
    }
    if (ONLY !== "pg") {
      await ensureMariaDatabase(lab, MARIA_HOST, MARIA_DB, MARIA_MB);
      const conn = lab.maria(MARIA_HOST);
      const count = await mariaSql(lab, MARIA_HOST, `SELECT COUNT(*) FROM ${MARIA_DB}.messages`);
      const snap = await bareSnapshot(
        lab,
        MARIA_HOST,
        mariadbArgv(conn, "mysqldump", ["--single-transaction", "--routines", "--triggers", "--events", "--hex-blob", "--", MARIA_DB]),
        {},
        `mariadb/${MARIA_DB}.sql`,
        "bench:restore",
      );
      const reset = async () => {
        await mariaSql(lab, MARIA_HOST, `DROP DATABASE IF EXISTS ${MARIA_TARGET}`);
        await standbyCaughtUp(lab, MARIA_HOST, "mariadb");
        await purgeBinlogs(lab, MARIA_HOST);
      };
      const check = async (name: string) => {
        const got = await mariaSql(lab, MARIA_HOST, `SELECT COUNT(*) FROM ${MARIA_TARGET}.messages`);
        if (got !== count) throw new Error(`${name} restored ${got} rows, not ${count}`);
      };
      const result = await rounds(mariaVariants(lab, snap.id, relayedRepos), reset, check);
      printRows(`MariaDB ${MARIA_DB} (${count} rows) from a snapshot of mysqldump, stream ${fmtMiB(snap.bytes)}, restored into ${MARIA_HOST}:`, result);
    }
  }
  process.stdout.write(`load at end ${load()}\n`);
}

await runBench("db-restore", main);
