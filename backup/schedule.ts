import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SiteName } from "../inventory/index.js";
import type { BackupJob } from "./jobs.js";
import type { Policies } from "./policies.js";
import { makeDir } from "../util/dirs.js";
import { parseCron, toOnCalendar } from "./cron.js";
import type { ArchivedDatabase } from "./pitr.js";

/**
 * The site's backup cycle as systemd timers or a crontab: a task per job and for replicate, prune and verify, on the
 * schedules of the policies file (cron.ts reads them).
 */

export interface ScheduleOptions {
  /** The command that runs dcctl, as an argument vector, e.g. [process.execPath, "/opt/dcctl/dist/cli/main.js"]. */
  dcctl: string[];
  /** Extra environment for the jobs (e.g. DCCTL_REPOS_FILE); written into the units / crontab. */
  env?: Record<string, string>;
  /** Where cron jobs append their output (systemd keeps it in the journal); created by writeSchedule's caller. */
  logDir?: string;
}

/**
 * A scheduled run waits this long for a run of the same job still going before it counts as failed (exit 3): long
 * enough for an overrun to finish, short enough that a job that is always locked shows as failing, not as healthy.
 * Replicate, prune and verify wait the same for the repository's lock.
 */
export const SCHEDULED_LOCK_WAIT_SECONDS = 600;

/** One thing a site's scheduler runs: a unit pair (.service + .timer), or a crontab line. */
export interface ScheduledTask {
  /** The units' name without .service/.timer; also the name of the cron line's log. */
  name: string;
  /** What it does, for Description=. */
  what: string;
  /** dcctl's arguments. */
  args: string[];
  /** 5-field cron expression (checked when the policies were read). */
  schedule: string;
  randomizedDelaySec: number;
  /** Where the schedule is written, `file:line` (the file alone for a default): refusals name it. */
  at: string;
}

/**
 * Everything a site's backup server schedules, the whole cycle: its hosts' backups; at the primary, the copy into the
 * secondary's repository after the backup windows (replicate runs where the primary's repository and its locks are,
 * so a prune there never removes what is being copied); at each site, prune and verify of the repository that site
 * owns. The secondary never replicates (its repository is the destination, append-only to the primary) and never
 * prunes the primary's repository: its prune covers its own repository, the primary's copies included. Each site
 * delivers its SOC events every minute (`events send`), and also keeps its own point-in-time archive of the `archived` servers: a minute's upkeep (receivers, filing,
 * retention) and each server's base backups on its policy's `pitr.baseBackup`.
 */
export function siteSchedule(site: SiteName, jobs: BackupJob[], policies: Pick<Policies, "file" | "policies" | "cycle">, archived: ArchivedDatabase[] = []): ScheduledTask[] {
  const wait = ["--wait", String(SCHEDULED_LOCK_WAIT_SECONDS)];
  const { replicate, prune, verify } = policies.cycle;
  const tasks: ScheduledTask[] = jobs
    .filter((j) => j.site === site)
    .map((job) => ({
      name: unitName(job),
      what: `dcctl backup ${job.id} (policy ${job.policy}, repository ${job.repository})`,
      args: ["backup", "run", "--job", job.id, ...wait],
      schedule: job.schedule,
      randomizedDelaySec: job.randomizedDelaySec,
      at: policies.policies.get(job.policy)?.scheduleAt() ?? policies.file,
    }));
  if (site === "primary") {
    tasks.push({
      name: "dcctl-replicate-secondary",
      what: "dcctl copy of new snapshots into the secondary's repository",
      args: ["backup", "replicate", "--to", "secondary", ...wait],
      schedule: replicate.schedule,
      randomizedDelaySec: 0,
      at: replicate.at(),
    });
  }
  tasks.push(
    {
      name: `dcctl-prune-${site}`,
      what: `dcctl forget and prune of repository ${site} by each job's retention`,
      args: ["backup", "prune", ...wait],
      schedule: prune.schedule,
      randomizedDelaySec: 0,
      at: prune.at(),
    },
    {
      name: `dcctl-verify-${site}`,
      what: `dcctl check of repository ${site}, reading ${verify.subset} of its data`,
      args: ["backup", "verify", "--repository", site, "--subset", verify.subset, ...wait],
      schedule: verify.schedule,
      randomizedDelaySec: 0,
      at: verify.at(),
    },
  );
  // The SOC feed's spool, every minute: what a command could not deliver as it ended (a collector down) goes out
  // once the collector answers. Quiet, and a few milliseconds, when there is nothing to send or no soc: section.
  tasks.push({ name: "dcctl-events-send", what: "dcctl delivery of the spooled events to the SOC's collectors", args: ["events", "send"], schedule: "* * * * *", randomizedDelaySec: 0, at: policies.file });
  if (archived.length) {
    tasks.push({ name: "dcctl-pitr-maintain", what: "dcctl upkeep of the point-in-time archives: receivers, WAL filing, retention", args: ["pitr", "maintain"], schedule: "* * * * *", randomizedDelaySec: 0, at: policies.file });
    for (const db of archived) {
      tasks.push({ name: `dcctl-pitr-base-${db.host.name}`, what: `dcctl base backup of ${db.host.name} into ${site}'s point-in-time archive`, args: ["pitr", "base-backup", "--host", db.host.name], schedule: db.baseBackup, randomizedDelaySec: 0, at: db.baseBackupAt() });
    }
  }
  return tasks;
}

export interface RenderedFile {
  name: string;
  content: string;
}

/** systemd unit names cannot hold "/": escape like `systemd-escape` would, keeping the names readable. */
export function unitName(job: BackupJob): string {
  return `dcctl-backup-${job.host}-${job.policy}`.replace(/[^A-Za-z0-9:_.-]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** systemd's quoting for ExecStart= and Environment= words: double quotes, with \ and " escaped, % doubled. */
function systemdWord(word: string): string {
  if (/^[A-Za-z0-9_@+=:,./-]+$/.test(word)) return word;
  return `"${word.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/%/g, "%%")}"`;
}

/** One oneshot .service and one .timer per task. */
export function renderSystemd(tasks: ScheduledTask[], opts: ScheduleOptions): RenderedFile[] {
  const files: RenderedFile[] = [];
  const env = Object.entries(opts.env ?? {}).map(([k, v]) => `Environment=${systemdWord(`${k}=${v}`)}`);
  for (const task of tasks) {
    const exec = [...opts.dcctl, ...task.args].map(systemdWord).join(" ");
    // Description= expands %-specifiers too ("10%" of the data).
    const what = task.what.replace(/%/g, "%%");
    files.push({
      name: `${task.name}.service`,
      content: [
        "[Unit]",
        `Description=${what}`,
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        ...env,
        `ExecStart=${exec}`,
        // Every non-zero exit, 3 (still locked after the wait) included, fails the unit: it must show in systemctl --failed.
        "Nice=10",
        "IOSchedulingClass=best-effort",
        "IOSchedulingPriority=7",
        "",
      ].join("\n"),
    });
    files.push({
      name: `${task.name}.timer`,
      content: [
        "[Unit]",
        `Description=${what} on "${task.schedule.replace(/%/g, "%%")}"`,
        "",
        "[Timer]",
        ...toOnCalendar(parseCron(task.schedule)).map((c) => `OnCalendar=${c}`),
        ...(task.randomizedDelaySec > 0 ? [`RandomizedDelaySec=${task.randomizedDelaySec}`] : []),
        // A run missed while the scheduler was down starts at boot: the RPO clock keeps ticking regardless.
        "Persistent=true",
        `Unit=${task.name}.service`,
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
      ].join("\n"),
    });
  }
  return files;
}

/** A crontab (for `crontab FILE`): one line per task, the cron expression as the policies file gives it. */
export function renderCrontab(tasks: ScheduledTask[], opts: ScheduleOptions): RenderedFile[] {
  const shellWord = (w: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);
  const lines = ["# dcctl backup cycle - generated by `dcctl backup schedule --emit cron`; edit backup/policies.yaml instead", "SHELL=/bin/sh"];
  for (const [k, v] of Object.entries(opts.env ?? {})) lines.push(`${k}=${v}`);
  for (const task of tasks) {
    // % ends a cron command line; escape it in the words.
    const cmd = [...opts.dcctl, ...task.args].map(shellWord).join(" ").replace(/%/g, "\\%");
    // Output is kept (a log per task) rather than thrown away: the line that says why a run failed is in it.
    const log = opts.logDir ? shellWord(join(opts.logDir, `${task.name}.log`)).replace(/%/g, "\\%") : undefined;
    lines.push(`${task.schedule} ${cmd}${log ? ` >>${log} 2>&1` : ""}`);
  }
  return [{ name: "dcctl-backup.crontab", content: lines.join("\n") + "\n" }];
}

/** Writes the files into `dir` (created if needed), each atomically; returns their paths. */
export function writeSchedule(dir: string, files: RenderedFile[]): string[] {
  makeDir(dir);
  return files.map((f) => {
    const path = join(dir, f.name);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, f.content);
    renameSync(tmp, path);
    return path;
  });
}
