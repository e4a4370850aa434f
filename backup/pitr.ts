import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { drTierOf, findHost, type SiteHost, type Sites } from "../inventory/index.js";
import { DB_ENGINES, ENGINES, enginesOf, type DbEngine } from "../databases/registry.js";
import type { PointInTimeArchive } from "../databases/engine.js";
import { checkCovered, SCRATCH_PREFIX, type ArchiveHome, type ArchiveStatus, type ArchivedServer, type RecoverResult } from "../databases/pitr.js";
import type { Executor, HostPool } from "../hosts/index.js";
import { DcctlError, InputError } from "../util/errors.js";
import { writeAtomic } from "../util/files.js";
import { makeDir } from "../util/dirs.js";
import { renderGauges, type Gauge } from "../util/prometheus.js";
import type { BackupJob } from "./jobs.js";
import { replicationAccount } from "./replication/index.js";
import type { BackupConfig } from "./repositories.js";

/**
 * Which servers a site archives for point-in-time recovery, and the `dcctl pitr` operations over them. Every site's
 * management host pulls its own archive of the same servers (the primaries of jobs whose policy has `pitr:`), so the
 * secondary's copy never depends on, nor can be reached from, the primary's hosts.
 */

/** A server the site archives: its engine, its host, and the policy's recovery window. */
export interface ArchivedDatabase {
  engine: DbEngine;
  host: SiteHost;
  recoveryWindowDays: number;
  /** The policy's base backups: when (cron), and where that is written. */
  baseBackup: string;
  baseBackupAt: () => string;
  /** The tier's RPO: the archive's lag is judged against it. */
  rpoSeconds: number;
}

type Archive = PointInTimeArchive<DbEngine, unknown>;

/** The engine's archive, typed for the registry's config (each engine reads its own settings from it). */
function archiveOf(engine: DbEngine): Archive | undefined {
  return ENGINES[engine].pitr as Archive | undefined;
}

/**
 * The servers to archive: each database server (of an engine that can) on a host whose job's policy has `pitr:`.
 * A warm standby is not one: its changes are its primary's.
 */
export function archivedDatabases(sites: Sites, jobs: BackupJob[]): ArchivedDatabase[] {
  const out: ArchivedDatabase[] = [];
  for (const job of jobs) {
    if (!job.pitr) continue;
    const host = findHost(sites, job.host);
    if (!host || host.standbyFor) continue;
    const site = sites[host.site];
    for (const engine of enginesOf(host.services)) {
      if (!archiveOf(engine)) continue;
      const { recoveryWindowDays, baseBackup, baseBackupAt } = job.pitr;
      out.push({ engine, host, recoveryWindowDays, baseBackup, baseBackupAt, rpoSeconds: drTierOf(site, host).rpoMinutes * 60 });
    }
  }
  return out;
}

/** The archived server a `--host` names, or bad input listing the archived ones. */
export function archivedDatabase(all: ArchivedDatabase[], host: string, flag = "--host"): ArchivedDatabase {
  const found = all.find((a) => a.host.name === host);
  if (found) return found;
  const names = all.map((a) => a.host.name);
  const engines = DB_ENGINES.filter((e) => archiveOf(e)).join(", ");
  throw new InputError([`${flag} ${host}: not archived for point-in-time recovery (${names.length ? `archived: ${names.join(", ")}` : `none is: a host is when its policy has pitr: and its services name ${engines}`})`]);
}

/** Where this site keeps an engine's archive, and the account it pulls with. */
export function archiveHome(config: BackupConfig, engine: DbEngine, log: (line: string) => void = () => undefined): ArchiveHome {
  return { dir: join(config.stateDir, "pitr", engine), site: config.site, account: replicationAccount(config), log };
}

const serverOf = (db: ArchivedDatabase, exec: HostPool): ArchivedServer => ({ host: db.host, exec: exec(db.host), recoveryWindowDays: db.recoveryWindowDays });

function requireArchive(engine: DbEngine): Archive {
  const archive = archiveOf(engine);
  if (!archive) throw new InputError([`${ENGINES[engine].label} has no point-in-time archive in dcctl`]);
  return archive;
}

/** Each engine's archive made (or brought up to date) for all its servers. */
export async function setupArchives(config: BackupConfig, dbs: ArchivedDatabase[], exec: HostPool, log: (line: string) => void): Promise<void> {
  for (const engine of [...new Set(dbs.map((d) => d.engine))]) {
    const servers = dbs.filter((d) => d.engine === engine).map((d) => serverOf(d, exec));
    await requireArchive(engine).setup(config, archiveHome(config, engine, log), servers);
  }
}

export async function baseBackup(config: BackupConfig, db: ArchivedDatabase, exec: HostPool): Promise<string> {
  return requireArchive(db.engine).baseBackup(config, archiveHome(config, db.engine), serverOf(db, exec));
}

/** An archive's status judged against the tier: receiving, and the lag within the RPO. */
export interface JudgedArchive extends ArchiveStatus {
  engine: DbEngine;
  /** The site whose archive it is (this one). */
  site: string;
  rpoSeconds: number;
  ok: boolean;
}

export async function archiveStatuses(config: BackupConfig, dbs: ArchivedDatabase[], exec: HostPool): Promise<JudgedArchive[]> {
  return Promise.all(
    dbs.map(async (db) => {
      const status = await requireArchive(db.engine).status(config, archiveHome(config, db.engine), serverOf(db, exec));
      const ok = status.receiving && status.lagSeconds !== undefined && status.lagSeconds <= db.rpoSeconds && status.baseBackups > 0;
      return { ...status, engine: db.engine, site: config.site, rpoSeconds: db.rpoSeconds, ok };
    }),
  );
}

export async function maintainArchives(config: BackupConfig, dbs: ArchivedDatabase[]): Promise<void> {
  for (const engine of [...new Set(dbs.map((d) => d.engine))]) await requireArchive(engine).maintain(config, archiveHome(config, engine));
}

export async function stopArchives(config: BackupConfig, dbs: ArchivedDatabase[], exec: HostPool, dropSlot: boolean): Promise<void> {
  for (const engine of [...new Set(dbs.map((d) => d.engine))]) {
    await requireArchive(engine).stop(config, archiveHome(config, engine), dbs.filter((d) => d.engine === engine).map((d) => serverOf(d, exec)), dropSlot);
  }
}


/** What the archive can reach for one server (`restore --points`). */
export async function archivePoints(config: BackupConfig, db: ArchivedDatabase, exec: HostPool): Promise<JudgedArchive> {
  const [status] = await archiveStatuses(config, [db], exec);
  if (!status) throw new InputError([`no archive status for ${db.host.name}`]);
  return status;
}

/**
 * A point-in-time restore of the server into a scratch server on `onto`: a point the archive does not cover is
 * refused before anything is touched, naming what it covers.
 */
export async function recoverToPoint(
  config: BackupConfig,
  db: ArchivedDatabase,
  exec: HostPool,
  o: { target: Date; targetText: string; inclusive: boolean; flag: string; onto: SiteHost; port?: number; dbName: string; into?: string; status?: JudgedArchive; log(line: string): void },
): Promise<RecoverResult> {
  // A status measured moments ago (a DR recover reports what the archive holds past the point) is not measured twice.
  const status = o.status ?? (await archivePoints(config, db, exec));
  checkCovered(status, o.target, o.flag);
  const archive = requireArchive(db.engine);
  return archive.recover(config, archiveHome(config, db.engine, o.log), serverOf(db, exec), {
    target: o.target,
    targetText: o.targetText,
    inclusive: o.inclusive,
    onto: o.onto,
    ontoExec: exec(o.onto),
    port: o.port ?? archive.scratchPort,
    db: o.dbName,
    ...(o.into === undefined ? {} : { into: o.into }),
  });
}

/** SQL on a server recoverToPoint brought up (its address and port on `onto`), as the engine's client prints rows. */
export function queryRecovered(config: BackupConfig, engine: DbEngine, onto: SiteHost, exec: HostPool, r: Pick<RecoverResult, "address" | "port">, database: string, sql: string): Promise<string> {
  return requireArchive(engine).queryRecovered(config, onto.name, exec(onto), { address: r.address, port: r.port }, database, sql);
}

/**
 * Stops a server recoverToPoint brought up and removes its data folder: what a drill's clean-up does with it. A
 * server already stopped is no failure; a folder outside the scratch area is never removed.
 */
export async function removeRecovered(exec: Executor, r: Pick<RecoverResult, "stop" | "dataDir">): Promise<void> {
  await exec.run(r.stop, { timeoutMs: 120_000 });
  if (!r.dataDir.startsWith(SCRATCH_PREFIX)) throw new InputError([`not removing ${r.dataDir}: a recovered server's data lives under ${SCRATCH_PREFIX}*`]);
  const removed = await exec.run(["rm", "-rf", "--", r.dataDir], { timeoutMs: 600_000 });
  if (removed.code !== 0) throw new DcctlError(`removing ${r.dataDir} on ${exec.target} failed: ${removed.stderr.trim() || `exit ${removed.code}`}`);
}

/**
 * How `pitr status` ends: 7 when an archived server did not answer (a site lost or frozen: each archive is judged by
 * what this site holds), else 4 when an archive is not within its RPO, else 0; with the line that says why.
 */
export function archivesVerdict(statuses: JudgedArchive[], lag: (s: JudgedArchive) => string): { code: 0 | 4 | 7; line?: string } {
  const silent = statuses.filter((s) => s.answered === false);
  const first = silent[0];
  if (first) {
    return { code: 7, line: `${silent.length} of ${statuses.length} archived servers did not answer (first: ${first.host}): judged by what this site's archive holds, ${first.host} restorable ${first.earliest ?? "-"} to ${first.latest ?? "-"}` };
  }
  const bad = statuses.filter((s) => !s.ok);
  const worst = bad[0];
  if (!worst) return { code: 0 };
  return { code: 4, line: `${bad.length} of ${statuses.length} archives not within RPO (first: ${worst.host}: ${!worst.receiving ? "not receiving" : worst.baseBackups === 0 ? "no base backup" : `lag ${lag(worst)}`}${worst.notes[0] ? `: ${worst.notes[0]}` : ""})` };
}

/** Where the last measure of each archive is kept (for the console, which probes nothing for it) and its metrics. */
function pitrPaths(config: BackupConfig): { lastStatus: string; metricsFile: string } {
  return { lastStatus: join(config.stateDir, "pitr", "last-status.json"), metricsFile: join(dirname(config.metricsFile), "dcctl_pitr.prom") };
}

const METRICS: Gauge<JudgedArchive>[] = [
  { name: "dcctl_pitr_lag_seconds", help: "Seconds between the server's newest change and its arrival in the archive (the live RPO); NaN when unknown", value: (s) => s.lagSeconds ?? Number.NaN },
  { name: "dcctl_pitr_rpo_seconds", help: "The RPO of the server's DR tier", value: (s) => s.rpoSeconds },
  { name: "dcctl_pitr_receiving", help: "1 when the archive receives the server's changes as they are written", value: (s) => (s.receiving ? 1 : 0) },
  { name: "dcctl_pitr_ok", help: "1 when the archive receives, has a base backup, and lags within the tier's RPO", value: (s) => (s.ok ? 1 : 0) },
  { name: "dcctl_pitr_base_backups", help: "Base backups in the archive", value: (s) => s.baseBackups },
  { name: "dcctl_pitr_restorable_from_timestamp_seconds", help: "The oldest point a restore can reach", value: (s) => (s.earliest ? Date.parse(s.earliest) / 1000 : undefined) },
  { name: "dcctl_pitr_restorable_to_timestamp_seconds", help: "The newest point a restore can reach", value: (s) => (s.latest ? Date.parse(s.latest) / 1000 : undefined) },
  { name: "dcctl_pitr_measured_timestamp_seconds", help: "When the archive was last measured", value: (s) => Date.parse(s.measuredAt) / 1000 },
];

/** Keeps the measures (over the last ones of the same servers) and writes the Prometheus textfile. */
export function recordArchiveStatuses(config: BackupConfig, fresh: JudgedArchive[]): void {
  const paths = pitrPaths(config);
  const measured = new Set(fresh.map((s) => s.host));
  const all = [...readArchiveStatuses(config).filter((s) => !measured.has(s.host)), ...fresh].sort((a, b) => a.host.localeCompare(b.host));
  makeDir(dirname(paths.lastStatus));
  writeAtomic(paths.lastStatus, JSON.stringify(all, null, 1) + "\n");
  writeAtomic(paths.metricsFile, renderGauges(METRICS, all, (s) => ({ host: s.host, engine: s.engine, site: s.site })).join("\n") + "\n");
}

/** The archives as last measured here (`pitr status`, `pitr maintain`); none before the first measure. */
export function readArchiveStatuses(config: BackupConfig): JudgedArchive[] {
  try {
    return JSON.parse(readFileSync(pitrPaths(config).lastStatus, "utf8")) as JudgedArchive[];
  } catch {
    return [];
  }
}

/** An archive measured longer ago than this is not being watched (its upkeep runs every minute): its figures are old. */
export const ARCHIVE_STALE_MS = 5 * 60_000;

/** `backup status`'s lines for the archives of its jobs' hosts, as last measured: one each, what is wrong first. */
export function archiveLines(archives: JudgedArchive[], now: Date): string[] {
  return archives.map((a) => {
    const minutes = (now.getTime() - Date.parse(a.measuredAt)) / 60_000;
    const problems = [
      ...(minutes * 60_000 > ARCHIVE_STALE_MS ? [`NOT MEASURED for ${Math.round(minutes)} min (is dcctl pitr maintain scheduled?)`] : []),
      ...(a.receiving ? [] : ["NOT RECEIVING"]),
      ...(a.baseBackups === 0 ? ["NO BASE BACKUP"] : []),
      ...(a.receiving && a.lagSeconds !== undefined && a.lagSeconds > a.rpoSeconds ? ["OVER RPO"] : []),
    ];
    const lag = a.lagSeconds === undefined ? "lag unknown" : `lag ${a.lagSeconds.toFixed(2)} s`;
    return `point-in-time archive of ${a.host}: ${problems.length ? problems.join(", ") : "receiving"}, ${lag} (RPO ${a.rpoSeconds / 60} min), restorable ${a.earliest ?? "-"} to ${a.latest ?? "-"}, measured ${a.measuredAt}`;
  });
}
