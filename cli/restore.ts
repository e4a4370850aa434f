import { posix } from "node:path";
import type { Argv, CommandModule } from "yargs";
import { findHost, loadSites } from "../inventory/index.js";
import { loadJobs } from "../backup/jobs.js";
import { REPOSITORY_NAMES, type RepositoryName } from "../backup/policies.js";
import { loadBackupConfig, resticFor, type BackupConfig } from "../backup/repositories.js";
import { DB_ENGINES, ENGINES, enginesOf, type DbEngine } from "../databases/registry.js";
import { RestoreTargetExistsError, type DbRestoreResult } from "../databases/restore.js";
import { restorePath } from "../backup/restore-path.js";
import { connectHost, hostPool, type Executor } from "../hosts/index.js";
import { archivedDatabase, archivedDatabases, archivePoints, recoverToPoint } from "../backup/pitr.js";
import { gapText, pointText, readPointInTime } from "../databases/pitr.js";
import { formatInZone } from "../util/time-zone.js";
import { print, printJson } from "./print.js";
import { confirmAction } from "../util/confirm.js";
import type { Lang } from "../util/i18n.js";
import { confirmTexts } from "./confirm-texts.js";
import { operatorLang } from "./lang.js";
import { InputError } from "../util/errors.js";
import type { ApprovalRecord } from "../backup/approval/index.js";
import { approvalLine, gate } from "./approvals.js";
import { withEvents } from "../notify/event-feed.js";
import { listJudged } from "../backup/arrival-ledger.js";
import { chooseSnapshot, distrustLine, isTrusted, passedOverLine } from "../backup/trust.js";

/**
 * `dcctl restore --host H (--db NAME | --path P) [--snapshot ID|latest] [--target HOST] [--to DIR] [--yes]`.
 * Overwriting an existing database or a non-empty folder asks first (or needs --yes); without a terminal and
 * without --yes it is refused with exit 5 and nothing is changed.
 */

/** The engines whose restore runs in parallel (--jobs). */
const PARALLEL = DB_ENGINES.filter((e) => ENGINES[e].parallelRestore !== undefined);

interface RestoreArgs {
  host: string;
  db?: string;
  path?: string;
  snapshot: string;
  target?: string;
  to?: string;
  "target-db"?: string;
  engine?: DbEngine;
  jobs?: number;
  repository?: string;
  at?: string;
  before?: string;
  points?: boolean;
  port?: number;
  yes: boolean;
  json: boolean;
  approval?: string;
  /** The global --lang (cli/main.ts): the confirmation's language. */
  lang?: string;
}

export const restoreCommands: CommandModule<object, RestoreArgs> = {
  // Its command and description are in ./commands.ts, which lists the groups without loading them.
  builder: (y: Argv<object>): Argv<RestoreArgs> =>
    y
      .option("host", { type: "string", demandOption: true, describe: "the inventory host whose backup to restore" })
      .option("db", { type: "string", describe: "a database name as it was backed up" })
      .option("path", { type: "string", describe: "an absolute path as it was backed up" })
      .option("snapshot", { type: "string", default: "latest", describe: "a snapshot id, or latest" })
      .option("target", { type: "string", describe: "restore onto this inventory host (default: --host)" })
      .option("to", { type: "string", describe: "--path only: recreate the path under this folder instead of in place" })
      .option("target-db", { type: "string", describe: "--db only: restore into this database name" })
      .option("engine", { type: "string", choices: DB_ENGINES, describe: "--db only: when the host runs both" })
      .option("jobs", { type: "number", describe: `--db, ${PARALLEL.map((e) => `${ENGINES[e].label}: ${ENGINES[e].parallelRestore ?? ""}`).join("; ")}` })
      .option("repository", { type: "string", describe: `restore from ${REPOSITORY_NAMES.join(" or ")} (default: the host's job's)` })
      .option("at", { type: "string", describe: "--db: the server as it was at this time (ISO 8601 with offset), every transaction committed by then, from the point-in-time archive, into a scratch server on --target" })
      .option("before", { type: "string", describe: "--db: as --at, without the transactions committed at that very time" })
      .option("points", { type: "boolean", describe: "--db: list the span the point-in-time archive of --host covers, and its lag; restore nothing" })
      .option("port", { type: "number", describe: "--at/--before: the port the scratch server listens on (default: the engine's usual one plus one, 5433 or 3307)" })
      .option("yes", { type: "boolean", default: false, describe: "overwrite without asking" })
      .option("approval", { type: "string", describe: "--db over an existing database: the code of the approved request for it (four eyes: the site's approval:)" })
      .option("json", { type: "boolean", default: false })
      .conflicts("db", "path")
      .conflicts("to", "db")
      .conflicts("at", "before")
      .conflicts("points", ["at", "before"])
      .example("$0 restore --host qn-app-web-01 --path /var/www --target qn-dr-app-web-01", "a folder onto the standby")
      .example("$0 restore --host qn-db-01 --db portal --target qn-dr-db-01 --yes", "a database over an existing one"),
  handler: async (args) => {
    if ((args.db === undefined) === (args.path === undefined)) throw new InputError(["dcctl restore: give exactly one of --db NAME or --path P"]);
    if (args.jobs !== undefined && (args.db === undefined || !Number.isInteger(args.jobs) || args.jobs < 1 || args.jobs > 64)) {
      throw new InputError([`dcctl restore: --jobs must be a whole number from 1 to 64, with --db (not ${String(args.jobs)})`]);
    }
    const pointInTime = args.at !== undefined || args.before !== undefined || args.points === true;
    if (pointInTime) return restorePointInTime(args);
    const sites = loadSites();
    const source = findHost(sites, args.host);
    if (!source) throw new InputError([`dcctl restore: unknown host "${args.host}" (see dcctl inventory show)`]);
    const target = args.target ? findHost(sites, args.target) : source;
    if (!target) throw new InputError([`dcctl restore: unknown target host "${args.target ?? ""}"`]);
    const config = loadBackupConfig();
    const lang = operatorLang(args.lang, config);
    const repoName = repositoryFor(args.repository, args.host);
    const restic = resticFor(config, repoName);
    const exec = connectHost(target, config);
    try {
      if (args.path !== undefined) {
        const path = args.path;
        const result = await withEvents(config, RESTORE_EVENTS, restoreFacts(args, target.name, "path", `${target.name}:${args.to ?? ""}${path}`), () =>
          restorePath({
            restic,
            host: args.host,
            path,
            snapshot: args.snapshot,
            targetExec: exec,
            destination: args.to,
            confirm: (action) => confirmAction({ yes: args.yes, action: lang === "en" ? action : pathAction(lang, args, target.name), expect: target.name, lang }),
            list: async (filter) => (await listJudged(config, repoName, { filter })).snapshots,
            onNote: (line) => process.stderr.write(`note: ${line}\n`),
          }),
          (r) => ({ snapshot: r.snapshotId }),
        );
        if (args.json) process.stdout.write(JSON.stringify(result, null, 2) + "\n");
        else process.stdout.write(`restored ${args.path} of ${args.host} (snapshot ${result.snapshotId.slice(0, 8)}) to ${result.restoredTo} on ${target.name}\n`);
        return;
      }
      const { approval, ...result } = await withEvents(
        config,
        RESTORE_EVENTS,
        restoreFacts(args, target.name, "database", `${target.name}/${args["target-db"] ?? args.db ?? ""}`),
        () => restoreDb(args, config, restic, exec, target.name, target.services, lang, repoName),
        (r) => ({ snapshot: r.snapshotId, replaced: r.replaced }),
        (r) => r.approval?.approvedBy,
      );
      for (const note of result.notes ?? []) process.stderr.write(`note: ${note}\n`);
      if (args.json) process.stdout.write(JSON.stringify({ ...result, ...(approval ? { approval } : {}) }, null, 2) + "\n");
      else if (approval) process.stdout.write(approvalLine(approval) + "\n");
      if (!args.json) process.stdout.write(`restored database ${args.db ?? ""} of ${args.host} (snapshot ${result.snapshotId.slice(0, 8)}) as ${result.targetDb} on ${target.name}${result.replaced ? ", replacing the one there" : ""}\n`);
    } finally {
      await exec.close();
    }
  },
};

/** `--at`, `--before`, `--points`: from the point-in-time archive (backup/pitr.ts), never from a snapshot. */
async function restorePointInTime(args: RestoreArgs): Promise<void> {
  const flag = args.at !== undefined ? "--at" : args.before !== undefined ? "--before" : "--points";
  if (args.db === undefined) throw new InputError([`dcctl restore: ${flag} restores a database server: give --db NAME`]);
  if (args.snapshot !== "latest") throw new InputError([`dcctl restore: ${flag} restores from the point-in-time archive, not a snapshot: drop --snapshot`]);
  if (args.port !== undefined && (!Number.isInteger(args.port) || args.port < 1 || args.port > 65535)) throw new InputError([`dcctl restore: --port must be a port number (not ${String(args.port)})`]);
  const when = args.at ?? args.before;
  const sites = loadSites();
  // A time without an offset is read on the wall clock of the site of the server whose data it is.
  const site = findHost(sites, args.host)?.site;
  const timeZone = site === undefined ? undefined : sites[site].timeZone;
  const point = when === undefined ? undefined : readPointInTime(when, flag, { clock: { site: site ?? "?", ...(timeZone === undefined ? {} : { timeZone }) } });
  const target = point?.at;
  const db = archivedDatabase(archivedDatabases(sites, loadJobs()), args.host);
  const onto = args.target === undefined ? db.host : findHost(sites, args.target);
  if (!onto) throw new InputError([`dcctl restore: unknown target host "${args.target ?? ""}"`]);
  const config = loadBackupConfig();
  const exec = hostPool(config);
  try {
    if (!target) {
      const s = await archivePoints(config, db, exec);
      if (args.json) printJson(s);
      else {
        const local = (iso: string | undefined) => (iso && timeZone ? ` (${formatInZone(Date.parse(iso), timeZone)} ${timeZone})` : "");
        print(`${s.host} (${s.engine}): restorable from ${s.earliest ?? "- (no base backup yet)"}${local(s.earliest)} to ${s.latest ?? "-"}${local(s.latest)}`);
        for (const g of s.gaps ?? []) print(`  GAP: ${gapText(s.host, g)}`);
        print(`  ${s.baseBackups} base backup${s.baseBackups === 1 ? "" : "s"}, newest ${s.newestBaseBackup ?? "-"}; ${s.receiving ? `receiving, lag ${s.lagSeconds === undefined ? "unknown" : `${s.lagSeconds.toFixed(2)} s`}` : "NOT receiving"}${s.notes.length ? `; ${s.notes.join("; ")}` : ""}`);
      }
      return;
    }
    const log = (line: string) => void (args.json ? undefined : process.stderr.write(`${line}\n`));
    const dbName = args.db;
    const facts = restoreFacts(args, onto.name, "point-in-time", `${onto.name}/${dbName}`);
    const r = await withEvents(config, RESTORE_EVENTS, { ...facts, data: { ...facts.data, snapshot: `${flag} ${when ?? ""}` } }, () =>
      recoverToPoint(config, db, exec, { target, targetText: point?.text ?? "", inclusive: args.at !== undefined, flag, onto, ...(args.port === undefined ? {} : { port: args.port }), dbName, log }),
    );
    const exactly = pointText(point ?? { at: target }, timeZone);
    if (args.json) printJson({ ...r, point: { utc: target.toISOString(), ...(timeZone ? { site: formatInZone(target.getTime(), timeZone, point?.fraction), timeZone } : {}) } });
    else {
      print(`recovered ${r.host} as of ${flag} ${exactly} from base backup ${r.baseBackup}: database ${args.db} on ${onto.name} at ${r.address}:${r.port} (data ${r.dataDir})`);
      const inZone = (iso: string) => (timeZone ? ` (${formatInZone(Date.parse(iso), timeZone)})` : "");
      print(`  last transaction recovered: ${r.lastTransactionAt ? `${r.lastTransactionAt}${inZone(r.lastTransactionAt)}` : "none after the base backup"}${r.stoppedBefore ? `; stopped before transaction ${r.stoppedBefore.transaction} committed ${r.stoppedBefore.committedAt}` : "; every archived change applied"}`);
      print(`  stop and remove it on ${onto.name}: ${r.stop.join(" ")} && rm -rf ${r.dataDir}`);
    }
  } finally {
    await exec.closeAll();
  }
}

/** A restore is told to the SOC when it starts and when it ends (notify/events.ts: DCCTL-1101, DCCTL-1102). */
const RESTORE_EVENTS = { started: "restore.started", ended: "restore.ended" } as const;

function restoreFacts(args: RestoreArgs, targetHost: string, kind: string, target: string): { target: string; data: Record<string, string | boolean> } {
  return { target, data: { source: args.host, kind, snapshot: args.snapshot, targetHost, overwrite: args.yes } };
}

/**
 * The overwrite a path restore asks about, in the operator's language. backup/restore-path.ts words it in English
 * from what it found (the snapshot's short id); in another language it is said again from the command's arguments.
 */
function pathAction(lang: Lang, args: RestoreArgs, target: string): string {
  const path = posix.normalize(args.path ?? "/").replace(/\/+$/, "") || "/";
  const vars = { landing: posix.join(posix.normalize(args.to ?? "/"), path), target, path, snapshot: args.snapshot, host: args.host };
  return confirmTexts(lang)(args.snapshot === "latest" ? "restore.pathLatest" : "restore.pathSnapshot", vars);
}

function repositoryFor(option: string | undefined, host: string): RepositoryName {
  if (option !== undefined) {
    const r = REPOSITORY_NAMES.find((n) => n === option);
    if (!r) throw new InputError([`dcctl restore: unknown repository "${option}" (expected one of: ${REPOSITORY_NAMES.join(", ")})`]);
    return r;
  }
  const job = loadJobs().find((j) => j.host === host);
  if (!job) throw new InputError([`dcctl restore: host ${host} has no backup job; name the repository with --repository`]);
  return job.repository;
}

async function restoreDb(
  args: RestoreArgs,
  config: BackupConfig,
  restic: ReturnType<typeof resticFor>,
  exec: Executor,
  targetName: string,
  services: string[],
  lang: Lang,
  repoName: RepositoryName,
): Promise<DbRestoreResult & { approval?: ApprovalRecord }> {
  const engines = enginesOf(services);
  const engine: DbEngine | undefined = args.engine ?? (engines.length === 1 ? engines[0] : undefined);
  if (!engine) {
    throw new InputError([`dcctl restore: cannot tell which database server of ${targetName} to restore into (services: ${services.join(", ") || "none"}); use --engine`]);
  }
  if (args.jobs !== undefined && !PARALLEL.includes(engine)) throw new InputError([`dcctl restore: --jobs is for ${PARALLEL.map((e) => ENGINES[e].label).join(" or ")}; a ${engine} dump is one SQL stream, run in order`]);
  const db = args.db ?? "";
  const snapshot = await trustedChoice(config, repoName, ["dcctl", ...ENGINES[engine].tags(db)], args.host, args.snapshot);
  const attempt = (overwrite: boolean): Promise<DbRestoreResult> => {
    return ENGINES[engine].restore(config, targetName, { restic, snapshot, db, host: args.host, targetExec: exec, targetDb: args["target-db"], overwrite, ...(args.jobs !== undefined ? { jobs: args.jobs } : {}) });
  };
  // Where a second operator must approve replacing a database, the restore first finds out whether it would.
  const fourEyes = config.approval?.required === true;
  try {
    return await attempt(args.yes && !fourEyes);
  } catch (e) {
    // The database is there: ask (a terminal) or refuse (exit 5); nothing has been changed so far.
    if (!(e instanceof RestoreTargetExistsError) || (args.yes && !fourEyes)) throw e;
    await confirmAction({ yes: args.yes, action: confirmTexts(lang)("restore.database", { database: e.database, target: targetName }), expect: e.database, lang });
    const approval = gate(
      config,
      {
        action: "restore --db",
        site: config.site,
        target: `database ${e.database} on ${targetName}`,
        args: { host: args.host, db, snapshot: args.snapshot, repository: repoName, engine, targetDb: args["target-db"] ?? null },
        change: confirmTexts("en")("restore.database", { database: e.database, target: targetName }),
      },
      args,
    );
    return { ...(await attempt(true)), ...(approval ? { approval } : {}) };
  }
}

/**
 * The snapshot a database restore takes, as this site judges them (backup/trust.ts): `latest` is the newest trusted
 * one; an id is taken as named, trusted or not. Either way what the operator should know is said on stderr; an id
 * dcctl does not list (not a dcctl snapshot) is left to the engine, which says it is none of the database's.
 */
async function trustedChoice(config: BackupConfig, repoName: RepositoryName, tags: string[], host: string, wanted: string): Promise<string> {
  const listed = (await listJudged(config, repoName, { filter: { tags, host } })).snapshots;
  const { chosen, passedOver } = chooseSnapshot(listed, wanted);
  for (const s of passedOver) process.stderr.write(`note: ${passedOverLine(s)}\n`);
  if (chosen && !isTrusted(chosen)) process.stderr.write(`note: restoring a snapshot this site does not trust, as named: ${distrustLine(chosen)}\n`);
  // None trusted while some are there: refused here, as bad input, rather than letting the engine take the newest.
  if (!chosen && wanted === "latest" && listed.length) throw new InputError([`dcctl restore: no trusted snapshot of ${tags.filter((t) => t !== "dcctl").join(", ")} of host ${host} in repository ${repoName} (${listed.length} not trusted; name one with --snapshot to restore it anyway)`]);
  return chosen?.id ?? wanted;
}
