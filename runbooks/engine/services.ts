import { existsSync } from "node:fs";
import { LocalExecutor, hostPool, type Executor, type HostPool } from "../../hosts/index.js";
import { backupConfigPath, loadBackupConfig, resticFor, type BackupConfig } from "../../backup/repositories.js";
import { listJudged } from "../../backup/arrival-ledger.js";
import { chooseSnapshot, distrustLine, effectiveTime, isTrusted, passedOverLine } from "../../backup/trust.js";
import { REPOSITORY_NAMES, type RepositoryName } from "../../backup/policies.js";
import { ENGINES, enginesOf } from "../../databases/registry.js";
import { stagingLedger } from "../../databases/staging.js";
import { replicationAccount } from "../../backup/replication/index.js";
import { loadSites, type SiteHost } from "../../inventory/index.js";
import { loadJobs } from "../../backup/jobs.js";
import { archivedDatabase, archivedDatabases, archivePoints, queryRecovered, recoverToPoint, removeRecovered } from "../../backup/pitr.js";
import { DcctlError, InputError } from "../../util/errors.js";
import type { DatabaseRestorer, DrServices, InfraDriver, PointInTimeRestorer, ReplicaControl, SnapshotCatalog, SqlClient } from "./steps/types.js";
import { gapSeconds } from "./steps/restore-pitr.js";

/**
 * The DR engine's services as dcctl runs them for real: hosts over SSH (or this machine for the backup config's
 * localHosts), repositories, database logins and restores from the backup config (backup/repositories.ts), and the
 * Automation API driver handed in by the CLI (runbooks do not import the stacks).
 */
export interface ClosableServices extends DrServices {
  close(): Promise<void>;
}

/** The backup config when its file exists; without it, steps that need hosts or repositories fail with a clear line. */
export function optionalBackupConfig(env: NodeJS.ProcessEnv = process.env): BackupConfig | undefined {
  return existsSync(backupConfigPath(env)) ? loadBackupConfig(backupConfigPath(env), env) : undefined;
}

function need(config: BackupConfig | undefined, what: string): BackupConfig {
  if (!config) throw new DcctlError(`${what} needs the backup config (${backupConfigPath()}; set DCCTL_REPOS_FILE)`);
  return config;
}

function repoName(name: string): RepositoryName {
  if (!(REPOSITORY_NAMES as readonly string[]).includes(name)) throw new InputError([`no repository named "${name}" (known: ${REPOSITORY_NAMES.join(", ")})`]);
  return name as RepositoryName;
}

export function configuredServices(config: BackupConfig | undefined, infra?: InfraDriver): ClosableServices {
  const local = new LocalExecutor();
  // One executor per host for the whole run: an SSH connection is opened once and shared by the steps.
  let pool: HostPool | undefined;
  const poolOf = (what: string): HostPool => (pool ??= hostPool(need(config, what)));
  const executorFor = (host: SiteHost): Executor => poolOf(`reaching ${host.name}`)(host);

  const sql: SqlClient = {
    async query(host, engine, database, text) {
      const c = need(config, "SQL");
      return ENGINES[engine].query(c, host.name, executorFor(host), database, text);
    },
  };

  // Snapshots as this site judges them (backup/trust.ts): `latest` and the precheck's newest are the newest trusted.
  const snapshots: SnapshotCatalog = {
    async newest(repository, sourceHost) {
      const listed = (await listJudged(need(config, "precheck"), repoName(repository), { filter: { host: sourceHost, tags: ["dcctl"] } })).snapshots;
      const { chosen, passedOver } = chooseSnapshot(listed, "latest");
      const notes = passedOver.map(passedOverLine);
      return chosen ? { id: chosen.short_id, time: new Date(effectiveTime(chosen)).toISOString(), ...(notes.length ? { notes } : {}) } : undefined;
    },
  };

  const restorer: DatabaseRestorer = {
    async recoverBefore(req) {
      const c = need(config, "restore-db from the point-in-time archive");
      const exec = (pool ??= hostPool(c));
      const db = archivedDatabase(archivedDatabases(loadSites(), loadJobs()), req.sourceHost, "restore-db: with.from");
      const status = await archivePoints(c, db, exec);
      const r = await recoverToPoint(c, db, exec, { target: req.before.at, targetText: req.before.text, inclusive: false, flag: "--before", onto: req.targetHost, dbName: req.database, into: req.targetDatabase, status, log: req.log });
      return {
        baseBackup: r.baseBackup,
        baseBackupEnd: r.baseBackupEnd ?? status.earliest ?? req.before.at.toISOString(),
        ...(r.lastTransactionAt ? { lastTransactionAt: r.lastTransactionAt } : {}),
        ...(r.stoppedBefore ? { stoppedBefore: r.stoppedBefore } : {}),
        ...(status.latest ? { archiveLatest: status.latest } : {}),
      };
    },
    async restore(req) {
      const c = need(config, "restore-db");
      const repository = repoName(req.repository);
      const restic = resticFor(c, repository);
      // The snapshot is chosen here rather than by "latest" inside the restore, so that its time is known for RPO.
      const listed = (await listJudged(c, repository, { filter: { tags: ["dcctl", ...ENGINES[req.engine].tags(req.database)], host: req.sourceHost } })).snapshots;
      const { chosen, passedOver } = chooseSnapshot(listed, req.snapshot);
      if (!chosen) throw new DcctlError(`no ${req.snapshot === "latest" && listed.length ? "trusted " : ""}${req.engine} snapshot of ${req.database} from ${req.sourceHost} in repository ${req.repository}${req.snapshot === "latest" ? "" : ` with id ${req.snapshot}`}`);
      const judged = [...passedOver.map(passedOverLine), ...(isTrusted(chosen) ? [] : [`restored as named, though not trusted: ${distrustLine(chosen)}`])];
      const common = { restic, snapshot: chosen.id, db: req.database, host: req.sourceHost, targetExec: executorFor(req.targetHost), targetDb: req.targetDatabase, overwrite: req.replace };
      const done = await ENGINES[req.engine].restore(c, req.targetHost.name, common);
      // What killed restores left on the host, settled first, is said in the step's notes.
      const notes = [...judged, ...(done.notes ?? [])];
      return { snapshotId: chosen.short_id, snapshotTime: new Date(effectiveTime(chosen)).toISOString(), ...(notes.length ? { notes } : {}) };
    },
    async drop(req) {
      const c = need(config, "restore-db clean-up");
      await ENGINES[req.engine].drop(c, req.targetHost.name, executorFor(req.targetHost), req.database);
    },
    async settleLeft(hosts) {
      if (!config) return [];
      const named = new Set(stagingLedger(config.stateDir).left().map((e) => e.host));
      const notes: string[] = [];
      for (const host of hosts.filter((h) => named.has(h.name))) {
        for (const engine of enginesOf(host.services)) notes.push(...(await ENGINES[engine].settleRestores(config, host.name, executorFor(host))));
      }
      return notes;
    },
  };

  // This site's archive of the server (backup/pitr.ts), as `dcctl restore --at` reads it.
  const pointInTime: PointInTimeRestorer = {
    async recover(req) {
      const c = need(config, "restore-pitr");
      const all = archivedDatabases(loadSites(), loadJobs());
      const db = archivedDatabase(all.filter((a) => a.engine === req.engine), req.sourceHost, "restore-pitr with.from");
      const asked = req.at.toISOString();
      const r = await recoverToPoint(c, db, poolOf("restore-pitr"), {
        target: req.at,
        targetText: asked,
        inclusive: true,
        flag: "restore-pitr with.at",
        onto: req.targetHost,
        ...(req.port === undefined ? {} : { port: req.port }),
        dbName: req.database,
        log: req.log,
      });
      const reached = r.lastTransactionAt;
      return {
        sourceHost: r.host,
        engine: req.engine,
        database: req.database,
        targetHost: req.targetHost.name,
        asked,
        ...(reached === undefined ? {} : { reached, gapSeconds: gapSeconds(asked, reached) }),
        ...(r.stoppedBefore ? { firstNotApplied: r.stoppedBefore.committedAt } : {}),
        baseBackup: r.baseBackup,
        address: r.address,
        port: r.port,
        dataDir: r.dataDir,
        stop: r.stop,
      };
    },
    query: (r, host, database, sql) => queryRecovered(need(config, "restore-pitr"), r.engine, host, poolOf("restore-pitr"), r, database, sql),
    remove: (r, host) => removeRecovered(executorFor(host), r),
  };

  const replicas: ReplicaControl = {
    status: (pair) => ENGINES[pair.engine].replicaStatus(need(config, "replication"), { host: pair.primary, exec: executorFor(pair.primary) }, { host: pair.standby, exec: executorFor(pair.standby) }),
    promote: (pair) => ENGINES[pair.engine].promote(need(config, "promote"), { host: pair.standby, exec: executorFor(pair.standby) }),
    setup: (pair, o) => {
      const c = need(config, "reprotect");
      return ENGINES[pair.engine].setupReplica(c, { host: pair.primary, exec: executorFor(pair.primary) }, { host: pair.standby, exec: executorFor(pair.standby) }, replicationAccount(c), {
        overwrite: true,
        log: o.log,
        diverged: { keepDir: o.keepDir, discard: o.discard },
      });
    },
  };

  return {
    executorFor,
    local,
    sql,
    snapshots,
    restorer,
    pointInTime,
    replicas,
    ...(infra ? { infra } : {}),
    ...(config?.notify ? { notify: config.notify } : {}),
    ...(config?.soc ? { feed: config } : {}),
    now: () => new Date(),
    async close() {
      await pool?.closeAll();
    },
  };
}
