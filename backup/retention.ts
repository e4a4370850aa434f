import type { KeepPolicy } from "../restic/index.js";
import { formatSpan } from "../util/duration.js";
import { DEFAULT_MIN_AGE_MS } from "./policies.js";
import { effectiveTime, isTrusted, type JudgedSnapshot } from "./trust.js";

/**
 * Retention by arrival: which snapshots of a job `backup prune` keeps and which it forgets, decided here rather than
 * by `restic forget --keep-*`, which orders and buckets snapshots by the time they claim — so that a snapshot dated
 * in the future holds the newest place and a hundred dated in the past fill the daily, weekly and monthly ones, and
 * the real snapshots are forgotten. Here:
 *
 * - only trusted snapshots take part (trust.ts); a distrusted one is neither kept in a place nor removed: it is kept
 *   for investigation (quarantined), and one with a check still open (pending) waits for it;
 * - they are ordered by when they reached this site (the arrival ledger), then by their time; each is bucketed
 *   (hour, day, ISO week, month, year of this site's local time) by the time it counts as made at: its claim, never
 *   later than its arrival. A trusted snapshot claims no time before what its series already had, nor much before
 *   its arrival (trust.ts), so a newcomer competes for the buckets of the hours it arrived in, never for older ones;
 * - restic's rule then decides as `forget --keep-*` would: per rule, the newest snapshot of each of the last N
 *   buckets that have one (keepLast: of the last N snapshots);
 * - whatever that says, a snapshot that reached this site less than the policy's minAge ago is kept.
 */

export interface RetentionPlan<T> {
  /** Kept by a keep rule. */
  keep: T[];
  /** No rule keeps it, but it reached this site less than minAge ago: kept. */
  young: T[];
  /** Forgotten. */
  remove: T[];
  /** Distrusted: kept for investigation, taking no place. */
  quarantined: T[];
  /** A check of it is still open: kept, taking no place, until it is made. */
  pending: T[];
}

/** When a snapshot reached this site: its first sighting; for one present when the ledger began, the time it claims. */
export function arrivedAt(s: Pick<JudgedSnapshot, "time" | "arrival">): number {
  return s.arrival?.after ? Date.parse(s.arrival.seen) : effectiveTime(s);
}

/** restic's grouping (`--group-by host,paths`): each database's dumps and each host's files keep their own history. */
export function retentionGroups<T extends JudgedSnapshot>(list: readonly T[]): T[][] {
  const groups = new Map<string, T[]>();
  for (const s of list) {
    const key = `${s.hostname}\u0000${[...s.paths].sort().join("\u0000")}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  return [...groups.values()];
}

/** The ISO 8601 week-numbering year and week of a local date, as one number (yyyyww). */
function isoWeek(d: Date): number {
  const day = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  // Thursday of this week decides the year.
  day.setDate(day.getDate() + 3 - ((day.getDay() + 6) % 7));
  const jan4 = new Date(day.getFullYear(), 0, 4);
  const week = 1 + Math.round(((day.getTime() - jan4.getTime()) / 86_400_000 - 3 + ((jan4.getDay() + 6) % 7)) / 7);
  return day.getFullYear() * 100 + week;
}

const RULES: [keyof KeepPolicy, (d: Date, index: number) => number][] = [
  ["keepLast", (_d, i) => i],
  ["keepHourly", (d) => ((d.getFullYear() * 100 + d.getMonth() + 1) * 100 + d.getDate()) * 100 + d.getHours()],
  ["keepDaily", (d) => (d.getFullYear() * 100 + d.getMonth() + 1) * 100 + d.getDate()],
  ["keepWeekly", (d) => isoWeek(d)],
  ["keepMonthly", (d) => d.getFullYear() * 100 + d.getMonth() + 1],
  ["keepYearly", (d) => d.getFullYear()],
];

/** What prune does with one group (retentionGroups) of one job's snapshots. */
export function planRetention<T extends JudgedSnapshot>(group: readonly T[], policy: KeepPolicy, o: { now: Date; minAgeMs: number }): RetentionPlan<T> {
  const plan: RetentionPlan<T> = { keep: [], young: [], remove: [], quarantined: [], pending: [] };
  const ranked: T[] = [];
  for (const s of group) {
    if (!isTrusted(s)) plan.quarantined.push(s);
    else if (s.pending?.length) plan.pending.push(s);
    else ranked.push(s);
  }
  ranked.sort((a, b) => arrivedAt(b) - arrivedAt(a) || effectiveTime(b) - effectiveTime(a));
  const left = new Map(RULES.map(([key]) => [key, policy[key] ?? 0]));
  const lastBucket = new Map<keyof KeepPolicy, number>();
  ranked.forEach((s, index) => {
    const at = new Date(effectiveTime(s));
    let kept = false;
    for (const [key, bucket] of RULES) {
      const n = left.get(key) ?? 0;
      const b = bucket(at, index);
      if (n > 0 && b !== lastBucket.get(key)) {
        kept = true;
        lastBucket.set(key, b);
        left.set(key, n - 1);
      }
    }
    if (kept) plan.keep.push(s);
    else if (o.now.getTime() - arrivedAt(s) < o.minAgeMs) plan.young.push(s);
    else plan.remove.push(s);
  });
  return plan;
}

/**
 * The jobs with every minAge shorter than the default raised to it: what a prune goes by where a shortened floor
 * needs a second operator's approval (four eyes) and has none.
 */
export function withDefaultFloor<T extends { minAgeMs: number }>(jobs: readonly T[]): T[] {
  return jobs.map((j) => (j.minAgeMs < DEFAULT_MIN_AGE_MS ? { ...j, minAgeMs: DEFAULT_MIN_AGE_MS } : j));
}

/**
 * The policies whose minAge is shorter than the default, with what they set: the one check of a shortened floor
 * (prune warns of it; an approval can be asked for it).
 */
export function minAgeShortened<T extends { policy: string; minAgeMs: number }>(jobs: readonly T[]): { policy: string; minAgeMs: number; text: string }[] {
  const out = new Map<string, { policy: string; minAgeMs: number; text: string }>();
  for (const j of jobs) {
    if (j.minAgeMs >= DEFAULT_MIN_AGE_MS || out.has(j.policy)) continue;
    out.set(j.policy, { policy: j.policy, minAgeMs: j.minAgeMs, text: `policy ${j.policy}: minAge ${formatSpan(j.minAgeMs)} is shorter than the default ${formatSpan(DEFAULT_MIN_AGE_MS)}: prune may remove snapshots that reached this site ${j.minAgeMs === 0 ? "at any age" : `${formatSpan(j.minAgeMs)} ago`}` });
  }
  return [...out.values()];
}
