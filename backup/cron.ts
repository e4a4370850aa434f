/**
 * Cron expressions (5 fields) as the policies write them: parsed and checked here (policies.ts refuses a bad one at
 * its file:line), matched against times, and turned into systemd OnCalendar= lines for schedule.ts.
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

/**
 * The longest wait between two runs of the expression over a week (from a fixed Monday, local time): what one
 * scheduled task can leave undone at most. A task that fires less than weekly counts as a week.
 */
export function longestGap(cron: Cron): number {
  const week = 7 * 86_400_000;
  const start = new Date(2024, 0, 1, 0, 0, 0, 0);
  const end = start.getTime() + week;
  let t = nextRun(cron, new Date(start.getTime() - 60_000));
  if (t.getTime() >= end) return week;
  let longest = 0;
  while (t.getTime() < end) {
    const next = nextRun(cron, t);
    longest = Math.max(longest, next.getTime() - t.getTime());
    t = next;
  }
  return Math.min(longest, week);
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
