import type { Argv, CommandModule } from "yargs";
import { loadSites } from "../inventory/index.js";
import { loadJobs } from "../backup/jobs.js";
import { loadBackupConfig, type BackupConfig } from "../backup/repositories.js";
import { archivedDatabase, archivedDatabases, archivesVerdict, archiveStatuses, baseBackup, maintainArchives, recordArchiveStatuses, setupArchives, stopArchives, type ArchivedDatabase } from "../backup/pitr.js";
import { hostPool, type HostPool } from "../hosts/index.js";
import { DcctlError, ExitCode } from "../util/errors.js";
import { gapText } from "../databases/pitr.js";
import { formatDuration } from "../util/duration.js";
import { textTable } from "../util/table.js";
import { print, printJson } from "./print.js";

/**
 * `dcctl pitr setup|status|base-backup|maintain|stop`: continuous archiving of the database servers whose policy has
 * `pitr:`, kept at this site's management host. Exit codes: 0 ok, 1 failed, 2 bad input, 4 (status) an archive is
 * not receiving, has no base backup, or lags past its tier's RPO, 7 (status) an archived server did not answer.
 */

interface HostArgs {
  host?: string;
  json: boolean;
}

/** The archived servers, or the one --host names; and the site's config and hosts, closed by `use`'s end. */
async function withArchives<T>(args: { host?: string }, use: (config: BackupConfig, dbs: ArchivedDatabase[], exec: HostPool) => Promise<T>): Promise<T> {
  const all = archivedDatabases(loadSites(), loadJobs());
  const dbs = args.host === undefined ? all : [archivedDatabase(all, args.host)];
  if (dbs.length === 0) throw new DcctlError("no database server is archived for point-in-time recovery: no policy has pitr: (see docs/operator/pitr.md)", ExitCode.badInput);
  const config = loadBackupConfig();
  const exec = hostPool(config);
  try {
    return await use(config, dbs, exec);
  } finally {
    await exec.closeAll();
  }
}

const hostOption = <A>(y: Argv<A>) => y.option("host", { type: "string", describe: "only this archived database host" }).option("json", { type: "boolean", default: false });

const setupCommand: CommandModule<object, HostArgs> = {
  command: "setup",
  describe: "archive every server whose policy has pitr: (the account and slot on the server, the receiver here, a first base backup); idempotent",
  builder: (y) => hostOption(y),
  handler: async (args) => {
    await withArchives(args, async (config, dbs, exec) => {
      await setupArchives(config, dbs, exec, (line) => void process.stderr.write(`${line}\n`));
      const statuses = await archiveStatuses(config, dbs, exec);
      recordArchiveStatuses(config, statuses);
      if (args.json) printJson(statuses);
      else for (const s of statuses) print(`${s.host}: archived, ${s.receiving ? "receiving" : "not receiving"}, ${s.baseBackups} base backup${s.baseBackups === 1 ? "" : "s"}, restorable ${s.earliest ?? "-"} to ${s.latest ?? "-"}`);
    });
  },
};

const lagText = (s: { lagSeconds?: number }) => (s.lagSeconds === undefined ? "unknown" : s.lagSeconds < 1 ? `${s.lagSeconds.toFixed(2)} s` : formatDuration(s.lagSeconds * 1000));

const statusCommand: CommandModule<object, HostArgs> = {
  command: "status",
  describe: "per archived server: receiving or not, the archive's lag (the live RPO) against its tier, base backups, the span a restore can reach",
  builder: (y) => hostOption(y),
  handler: async (args) => {
    await withArchives(args, async (config, dbs, exec) => {
      const statuses = await archiveStatuses(config, dbs, exec);
      recordArchiveStatuses(config, statuses);
      if (args.json) printJson(statuses);
      else
        print(
          textTable(
            ["HOST", "ENGINE", "RECEIVING", "LAG", "RPO", "BASE BACKUPS", "RESTORABLE FROM", "TO", "NOTES"],
            statuses.map((s) => [s.host, s.engine, s.receiving ? "yes" : "no", lagText(s), `${s.rpoSeconds / 60} min`, String(s.baseBackups), s.earliest ?? "-", s.latest ?? "-", [...(s.gaps ?? []).map((g) => `GAP: ${gapText(s.host, g)}`), ...s.notes].join("; ")]),
          ),
        );
      const verdict = archivesVerdict(statuses, lagText);
      if (verdict.code !== 0) throw new DcctlError(verdict.line ?? "", verdict.code === 7 ? ExitCode.siteUnreachable : ExitCode.partial);
    });
  },
};

const baseBackupCommand: CommandModule<object, HostArgs> = {
  command: "base-backup",
  describe: "a base backup of each archived server now (what the schedule runs on the policy's pitr.baseBackup)",
  builder: (y) => hostOption(y),
  handler: async (args) => {
    await withArchives(args, async (config, dbs, exec) => {
      for (const db of dbs) {
        const id = await baseBackup(config, db, exec);
        if (args.json) printJson({ host: db.host.name, baseBackup: id });
        else print(`${db.host.name}: base backup ${id}`);
      }
    });
  },
};

const maintainCommand: CommandModule<object, { json: boolean }> = {
  command: "maintain",
  describe: "keep the archives going (what the schedule runs every minute): receivers that stopped started again, streamed WAL filed, retention applied; then measured (the metrics and the console's figures)",
  builder: (y) => y.option("json", { type: "boolean", default: false }),
  handler: async (args) => {
    await withArchives({}, async (config, dbs, exec) => {
      await maintainArchives(config, dbs);
      const statuses = await archiveStatuses(config, dbs, exec);
      recordArchiveStatuses(config, statuses);
      if (args.json) printJson(statuses);
    });
  },
};

const stopCommand: CommandModule<object, HostArgs & { "drop-slot": boolean }> = {
  command: "stop",
  describe: "stop archiving (the archive stays and can still be restored from); the schedule's maintain starts it again unless the policy's pitr: is gone",
  builder: (y) => hostOption(y).option("drop-slot", { type: "boolean", default: false, describe: "also release what the server keeps for this site's archive (a replication slot holding its log, where the engine has one)" }),
  handler: async (args) => {
    await withArchives(args, async (config, dbs, exec) => {
      await stopArchives(config, dbs, exec, args["drop-slot"]);
      // Measured once more, so that the metrics and the console say it no longer receives.
      recordArchiveStatuses(config, await archiveStatuses(config, dbs, exec));
      for (const db of dbs) print(`${db.host.name}: archiving stopped${args["drop-slot"] ? ", what the server kept for this site released" : ""}`);
    });
  },
};

export const pitrCommands: CommandModule<object, object> = {
  // Its command and description are in ./commands.ts, which lists the groups without loading them.
  builder: (y: Argv<object>): Argv<object> =>
    y
      .command(setupCommand)
      .command(statusCommand)
      .command(baseBackupCommand)
      .command(maintainCommand)
      .command(stopCommand)
      .demandCommand(1, "name a pitr command: setup, status, base-backup, maintain or stop"),
  handler: () => undefined,
};
