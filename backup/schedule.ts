import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SiteName } from "../inventory/index.js";
import type { BackupJob } from "./jobs.js";
import type { Policies } from "./policies.js";
import { makeDir } from "../util/dirs.js";

/**
 * Cron expressions (5 fields) as the policies write them, checked here, and rendered as systemd timers or a crontab.
 * Each field is expanded into its explicit set of values, so the conversion to OnCalendar never has to translate
 * cron's step and range syntax into systemd's (which differ in edge cases); the sets are then printed compactly.
 */

export interface CronField {
  /** Sorted values this field matches. */
  values: number[];
  /** True when written as `*` (or `*` with step 1): cron's "day-of-month OR day-of-week" rule depends on it. */
  any: boolean;
}

export interface Cron {
  text: string;
  minute: CronField;
  hour: CronField;
  dayOfMonth: CronField;
  month: CronField;
  /** 0 = Sunday … 6 = Saturday (7 is read as Sunday). */
  dayOfWeek: CronField;
}

const FIELDS = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day-of-month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12 },
  { name: "day-of-week", min: 0, max: 7 },
] as const;

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MACROS: Record<string, string> = {
  "@hourly": "0 * * * *",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@weekly": "0 0 * * 0",
  "@monthly": "0 0 1 * *",
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
};

export class CronError extends Error {}

/** Parses a 5-field cron expression (numbers, names, `*`, ranges, lists, steps, @daily-style macros); throws CronError. */
export function parseCron(text: string): Cron {
  const expanded = MACROS[text.trim().toLowerCase()] ?? text.trim();
  const parts = expanded.split(/\s+/).filter(Boolean);
  if (parts.length !== 5) throw new CronError(`cron expression "${text}" has ${parts.length} fields (expected 5: minute hour day-of-month month day-of-week)`);
  const fields = parts.map((part, i) => parseField(part, i));
  const [minute, hour, dayOfMonth, month, dayOfWeek] = fields as [CronField, CronField, CronField, CronField, CronField];
  // 7 and 0 both mean Sunday.
  dayOfWeek.values = [...new Set(dayOfWeek.values.map((d) => d % 7))].sort((a, b) => a - b);
  const cron = { text, minute, hour, dayOfMonth, month, dayOfWeek };
  // Only the days can make a well-formed expression never fire: refused here, so nothing scheduled is silently dead.
  if (cron.dayOfWeek.any && !datesExist(cron)) {
    throw new CronError(`cron expression "${text}" never fires: day-of-month ${dayOfMonth.values.join(",")} does not occur in month ${month.values.join(",")}`);
  }
  return cron;
}

/** Days in each month, February counted in a leap year (a "29 2" expression fires, every four years). */
const MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Whether some listed day-of-month occurs in some listed month. This decides whether an expression can ever fire,
 * exactly and without scanning a calendar: minutes, hours and months are non-empty sets of valid values, every
 * weekday occurs in every month, so the only empty combination is day-of-month × month (e.g. `0 0 31 2 *`); when
 * both day fields are restricted, cron's OR lets the weekdays fire anyway.
 *
 * Why not a library: cron-parser, the maintained one on npm, would be a second parser of the same text beside this
 * one (and brings luxon); why not systemd-analyze here: the policies are checked wherever dcctl reads them, cron
 * hosts included. `backup schedule --emit systemd` also asks systemd-analyze about the OnCalendar= it writes, when
 * that is installed (systemdCalendarProblems), which checks this and the conversion below against systemd itself.
 */
export function datesExist(cron: Pick<Cron, "dayOfMonth" | "month">): boolean {
  const first = cron.dayOfMonth.values[0] ?? Infinity;
  return cron.month.values.some((m) => first <= (MONTH_DAYS[m - 1] ?? 0));
}

function parseField(part: string, index: number): CronField {
  const spec = FIELDS[index];
  if (!spec) throw new CronError(`cron field ${index + 1} does not exist`);
  const names = index === 3 ? MONTHS : index === 4 ? DAYS : undefined;
  const num = (token: string): number => {
    const lower = token.toLowerCase();
    const named = names?.indexOf(lower) ?? -1;
    if (named >= 0) return index === 3 ? named + 1 : named;
    if (!/^\d+$/.test(token)) throw new CronError(`${spec.name} "${token}" is not a number${names ? " or a name" : ""}`);
    const n = Number(token);
    if (n < spec.min || n > spec.max) throw new CronError(`${spec.name} ${n} is out of range ${spec.min}-${spec.max}`);
    return n;
  };
  const values = new Set<number>();
  let any = false;
  for (const item of part.split(",")) {
    const [range = "", stepText] = item.split("/");
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) < 1) throw new CronError(`${spec.name} step "${stepText}" must be a whole number ≥ 1`);
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (range === "*") {
      [lo, hi] = [spec.min, index === 4 ? 6 : spec.max];
      if (step === 1) any = true;
    } else if (range.includes("-")) {
      const [a = "", b = ""] = range.split("-");
      [lo, hi] = [num(a), num(b)];
      if (lo > hi) throw new CronError(`${spec.name} range ${range} runs backwards`);
    } else {
      lo = num(range);
      // "5/15" means from 5 to the end in steps of 15, as in Vixie cron.
      hi = stepText !== undefined ? spec.max : lo;
    }
    for (let v = lo; v <= hi; v += step) values.add(v);
  }
  if (values.size === 0) throw new CronError(`${spec.name} "${part}" matches nothing`);
  return { values: [...values].sort((a, b) => a - b), any };
}

/** The next time (after `from`, to the minute) the expression fires, in local time; for tests and `status`. */
export function nextRun(cron: Cron, from: Date): Date {
  const t = new Date(from.getTime());
  t.setSeconds(0, 0);
  t.setMinutes(t.getMinutes() + 1);
  // Four years of minutes is enough for any satisfiable expression (Feb 29).
  for (let i = 0; i < 4 * 366 * 24 * 60; i++) {
    if (matches(cron, t)) return t;
    t.setMinutes(t.getMinutes() + 1);
  }
  throw new CronError(`cron expression "${cron.text}" never fires`);
}

export function matches(cron: Cron, t: Date): boolean {
  const dom = cron.dayOfMonth.values.includes(t.getDate());
  const dow = cron.dayOfWeek.values.includes(t.getDay());
  // cron: when both day fields are restricted, either one matching is enough.
  const day = cron.dayOfMonth.any || cron.dayOfWeek.any ? dom && dow : dom || dow;
  return day && cron.minute.values.includes(t.getMinutes()) && cron.hour.values.includes(t.getHours()) && cron.month.values.includes(t.getMonth() + 1);
}

const SYSTEMD_DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/**
 * systemd OnCalendar= lines equivalent to the cron expression. Usually one; two when both day fields are restricted,
 * because systemd requires weekday AND date to match where cron accepts either.
 */
export function toOnCalendar(cron: Cron): string[] {
  const list = (f: CronField, pad: number, full: number): string =>
    f.values.length === full ? "*" : f.values.map((v) => String(v).padStart(pad, "0")).join(",");
  const time = `${list(cron.hour, 2, 24)}:${list(cron.minute, 2, 60)}:00`;
  const month = list(cron.month, 2, 12);
  const weekdays = cron.dayOfWeek.values.map((d) => SYSTEMD_DAYS[d] ?? "").join(",");
  const byDate = `*-${month}-${list(cron.dayOfMonth, 2, 31)} ${time}`;
  if (cron.dayOfMonth.any && cron.dayOfWeek.any) return [`*-${month}-* ${time}`];
  if (cron.dayOfWeek.any) return [byDate];
  if (cron.dayOfMonth.any) return [`${weekdays} *-${month}-* ${time}`];
  // "0 0 31 2 mon" fires on February's Mondays only: systemd would keep a dead `*-02-31` line beside them.
  return datesExist(cron) ? [byDate, `${weekdays} *-${month}-* ${time}`] : [`${weekdays} *-${month}-* ${time}`];
}

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
 * prunes the primary's repository: its prune covers its own repository, the primary's copies included.
 */
export function siteSchedule(site: SiteName, jobs: BackupJob[], policies: Pick<Policies, "file" | "policies" | "cycle">): ScheduledTask[] {
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
