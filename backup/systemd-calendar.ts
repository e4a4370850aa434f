import { run } from "../util/process.js";
import { parseCron, toOnCalendar } from "./cron.js";
import type { ScheduledTask } from "./schedule.js";

/**
 * What systemd itself makes of the OnCalendar= lines `backup schedule --emit systemd` writes, asked of
 * `systemd-analyze calendar` (Debian's systemd package) on the machine that emits them. The policies' cron
 * expressions were checked when read (schedule.ts refuses one that never fires); this also checks their conversion,
 * by the program that will run the timers.
 */

/** How long systemd-analyze may take for one calendar before it counts as not asked. */
const ANALYZE_TIMEOUT_MS = 30_000;

export type CalendarVerdict = { next: Date } | { never: true } | { invalid: string };

/** systemd's verdict on one OnCalendar= value; undefined when systemd-analyze is not installed or did not answer. */
export async function systemdNextElapse(calendar: string): Promise<CalendarVerdict | undefined> {
  let res;
  try {
    // UTC, so that the printed next elapse reads back as a date whatever the machine's zone.
    res = await run("systemd-analyze", ["calendar", calendar], { timeoutMs: ANALYZE_TIMEOUT_MS, env: { ...process.env, LC_ALL: "C", TZ: "UTC" } });
  } catch {
    return undefined;
  }
  if (res.code !== 0) return res.code >= 128 ? undefined : { invalid: (res.stderr.trim().split("\n")[0] ?? "") || `exit ${res.code}` };
  const next = /Next elapse: (.+)$/m.exec(res.stdout)?.[1]?.trim();
  if (next === "never") return { never: true };
  const at = next ? /(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) UTC/.exec(next) : null;
  return at ? { next: new Date(`${at[1] ?? ""}T${at[2] ?? ""}Z`) } : undefined;
}

/**
 * One `file:line: …` per timer that systemd would never fire (no OnCalendar= of it has a next elapse) or cannot read;
 * undefined when systemd-analyze is not there to ask.
 */
export async function systemdCalendarProblems(tasks: ScheduledTask[]): Promise<string[] | undefined> {
  const verdicts = new Map<string, CalendarVerdict | undefined>();
  for (const calendar of new Set(tasks.flatMap((t) => toOnCalendar(parseCron(t.schedule))))) {
    const verdict = await systemdNextElapse(calendar);
    if (verdict === undefined && verdicts.size === 0) return undefined;
    verdicts.set(calendar, verdict);
  }
  const problems: string[] = [];
  for (const task of tasks) {
    const calendars = toOnCalendar(parseCron(task.schedule));
    const said = calendars.map((c) => verdicts.get(c));
    const unreadable = said.find((v) => v !== undefined && "invalid" in v);
    const problem =
      unreadable && "invalid" in unreadable
        ? `systemd cannot read its OnCalendar=${calendars.join(", ")}: ${unreadable.invalid}`
        : said.every((v) => v !== undefined && "never" in v)
          ? `systemd finds no next elapse for OnCalendar=${calendars.join(", ")}`
          : undefined;
    // Per schedule, not per unit: the jobs of one policy share its line.
    if (problem) problems.push(`${task.at}: schedule "${task.schedule}": ${problem}`);
  }
  return [...new Set(problems)];
}
