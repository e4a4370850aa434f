import { join } from "node:path";
import { siteCommand } from "../lab/lab.js";
import { inNetns, managementNetns } from "../lab/network.js";
import { PG_BIN_DIR } from "../lab/postgres.js";
import { runningLab } from "./running-lab.js";
import { timed } from "./timed.js";
import { guardBench } from "./brought-up.js";

/**
 * Replication in the lab, measured in one run (node dist/bench/replication.js [MiB], on a running lab; `dcctl lab up
 * --size 500` for a realistic portal database), printing figures and ratios, asserting nothing:
 *  1. throughput: MiB of WAL written at lab-db-01 (a scratch table, dropped again) until lab-dr-db-01 has replayed
 *     it, across the WAN, against the WAN's cap;
 *  2. RTO of a failover by promotion against one by restore, same data: the portal database restored from the
 *     secondary's repository into a scratch database on the secondary's restore-test server (what a failover without
 *     a replica does), against lab-dr-db-01 promoted until it takes a write. The standby is then rebuilt as a replica
 *     (pg_rewind), so the lab is as it was.
 */
const mib = Number(process.argv[2] ?? 64);
guardBench("replication");
const { dir, config, sites, net } = runningLab("replication");
const primaryNs = managementNetns(net, sites, "primary");
const pgpass = join(dir, "secrets", "postgres.pgpass");
const PRIMARY_DB = sites.primary.hosts.find((h) => h.name === "lab-db-01")?.ip ?? "";
const STANDBY_DB = sites.secondary.hosts.find((h) => h.standbyFor === "lab-db-01")?.ip ?? "";

const runIn = (ns: string | undefined, argv: string[], env: NodeJS.ProcessEnv = process.env) => (ns ? timed(...inNetns(ns, argv), env) : timed(argv[0] ?? "", argv.slice(1), env));

/** SQL on a lab PostgreSQL from the primary's management host (it reaches both sites). */
async function sql(address: string, query: string, db = "postgres"): Promise<string> {
  const res = await runIn(primaryNs, [join(PG_BIN_DIR, "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", address, "-U", "postgres", "-d", db, "-c", query], { ...process.env, PGPASSFILE: pgpass });
  if (res.code !== 0) throw new Error(`psql ${address}: ${res.out.trim()}`);
  return res.out.trim();
}

/** dcctl on a site's management host, as an operator runs it there. */
async function dcctlAt(site: "primary" | "secondary", args: string[]): Promise<{ ms: number; out: string; code: number | null }> {
  const { cmd, args: argv, env } = siteCommand(dir, site, ["dcctl", ...args]);
  return runIn(undefined, [cmd, ...argv], env);
}

const line = (what: string, text: string) => process.stdout.write(`${what.padEnd(44)} ${text}\n`);

// 1. Throughput: WAL written at the primary until the standby has replayed it.
await sql(PRIMARY_DB, "DROP TABLE IF EXISTS bench_replication; CREATE TABLE bench_replication (id int, pad text)", "portal");
const from = await sql(PRIMARY_DB, "SELECT pg_current_wal_lsn()");
const t0 = performance.now();
// Incompressible rows, so that the WAN carries what the WAL holds.
await sql(PRIMARY_DB, `INSERT INTO bench_replication SELECT g, string_agg(md5(random()::text), '') FROM generate_series(1, ${mib * 1024}) g, generate_series(1, 32) k GROUP BY g`, "portal");
const to = await sql(PRIMARY_DB, "SELECT pg_current_wal_lsn()");
for (;;) {
  const behind = Number(await sql(STANDBY_DB, `SELECT pg_wal_lsn_diff('${to}', pg_last_wal_replay_lsn())`));
  if (behind <= 0) break;
  await new Promise((r) => setTimeout(r, 50));
}
const seconds = (performance.now() - t0) / 1000;
const bytes = Number(await sql(PRIMARY_DB, `SELECT pg_wal_lsn_diff('${to}', '${from}')`));
const mbit = (bytes * 8) / 1e6 / seconds;
line("replication, lab-db-01 → lab-dr-db-01", `${(bytes / 2 ** 20).toFixed(0)} MiB of WAL replayed in ${seconds.toFixed(2)} s = ${mbit.toFixed(1)} Mbit/s, ${(mbit / config.wanMbit).toFixed(2)} × the ${config.wanMbit} Mbit/s cap`);
await sql(PRIMARY_DB, "DROP TABLE bench_replication", "portal");

// 2. RTO: restore from the repository against promotion of the replica, same portal database.
const size = await sql(PRIMARY_DB, "SELECT pg_size_pretty(pg_database_size('portal'))");
const backup = await dcctlAt("primary", ["backup", "run", "--job", "lab-db-01/db-hourly"]);
if (backup.code !== 0) throw new Error(`backup: ${backup.out}`);
const copy = await dcctlAt("primary", ["backup", "replicate", "--to", "secondary"]);
if (copy.code !== 0) throw new Error(`replicate: ${copy.out}`);
const restore = await dcctlAt("secondary", ["restore", "--host", "lab-db-01", "--db", "portal", "--target", "lab-dr-bk-01", "--engine", "postgresql", "--target-db", "bench_rto_portal", "--repository", "secondary", "--yes"]);
if (restore.code !== 0) throw new Error(`restore: ${restore.out}`);
const backupHost = sites.secondary.hosts.find((h) => h.name === "lab-dr-bk-01")?.ip ?? "";
await sql(backupHost, "DROP DATABASE IF EXISTS bench_rto_portal");

const promoteStart = performance.now();
const promoted = await sql(STANDBY_DB, "SELECT pg_promote(true, 60)");
if (promoted !== "t") throw new Error("pg_promote did not finish");
await sql(STANDBY_DB, "CREATE TABLE bench_rto_write (x int); DROP TABLE bench_rto_write", "portal");
const promoteMs = performance.now() - promoteStart;
line(`failover by restore (portal, ${size})`, `${(restore.ms / 1000).toFixed(2)} s (restic dump | pg_restore on the restore-test server)`);
line(`failover by promotion (same data)`, `${(promoteMs / 1000).toFixed(2)} s until it took a write: restore / promotion = ${(restore.ms / promoteMs).toFixed(1)} ×`);

const rebuilt = await dcctlAt("secondary", ["replication", "setup", "--pair", "lab-dr-db-01", "--yes"]);
if (rebuilt.code !== 0) throw new Error(`rebuilding the standby: ${rebuilt.out}`);
line("standby rebuilt as a replica", `${(rebuilt.ms / 1000).toFixed(2)} s: ${rebuilt.out.trim().split("\n").pop() ?? ""}`);
