import type { Snapshot } from "../restic/index.js";
import { formatSpan } from "../util/duration.js";
import { jobOfTags, runOfTags, snapshotItem } from "./jobs.js";
import type { RepositoryName } from "./policies.js";

/**
 * Which snapshots a site trusts: the one place that decides it. Everything in a snapshot (its time, host, tags,
 * paths, even `original`) is written by whoever holds the repository's password, and the primary holds the
 * secondary's; an append-only server keeps it from deleting, not from adding. What the site keeping a repository
 * knows for itself is when each snapshot first reached it (its own clock, arrival-ledger.ts), what was already there
 * then, and what the runs' records say (run-evidence.ts). From these a newly arrived snapshot is judged once, and the
 * verdict kept:
 *
 * - it claims a time after it was first seen (beyond CLOCK_TOLERANCE_MS): a date in the future;
 * - it claims a time further before its arrival than a real copy can be late (the job's arrivalLag: its run, the wait
 *   for the next replicate, the copy, an outage);
 * - it claims to be older than a trusted snapshot of the same series (host, job, item) that was already here when it
 *   arrived: a real backup is newer than every backup of its series before it, and `replicate` copies in order;
 * - it is a second copy of one snapshot (its `original`, or its id, is one a snapshot already here has): restic's
 *   copy and replicate never copy one twice; `restic rewrite --new-time` of a real one makes exactly this;
 * - no run on record made it: every snapshot dcctl makes carries `run:<id>`, and that run's record lists it.
 *
 * Such a snapshot is **implausible**. Another kind of distrust (a suspicious change, scored) is one more Distrust on
 * the snapshot (arrival-ledger.ts addDistrust); whatever its kind, a distrusted snapshot is never counted as a good
 * backup, never chosen by `latest`, neither kept nor removed by retention (retention.ts), and reported.
 *
 * Snapshots present when a site's ledger begins are taken as they claim (trust on first use), except a claimed time
 * in the future, which is judged against the moment the ledger began.
 */

export type DistrustKind = "implausible" | "suspicious";

export interface Distrust {
  kind: DistrustKind;
  /** Which rule found it (IMPLAUSIBLE_RULES' names, or the scorer's), stable for machines. */
  rule: string;
  /** One line for people. */
  reason: string;
  /** How far over its threshold, for a scored kind. */
  score?: number;
  /** When this site judged it (ISO). */
  at: string;
}

/** When a snapshot reached the site that keeps its repository, by that site's own clock. */
export interface Arrival {
  /** The listing that first held it, as it ended (ISO). */
  seen: string;
  /** The last complete listing before, which did not hold it (ISO): it arrived after this. Absent: present when the ledger began. */
  after?: string;
}

/** A snapshot with what this site knows of it; a plain Snapshot is one that nothing is known against. */
export type JudgedSnapshot = Snapshot & {
  arrival?: Arrival;
  /** Why this site does not trust it; absent or empty: trusted. */
  distrust?: Distrust[];
  /** Checks not made yet (the run's record could not be read): trusted meanwhile, but out of retention until done. */
  pending?: string[];
};

/** How far two sites' clocks may disagree before a claimed time counts as in the future. */
export const CLOCK_TOLERANCE_MS = 5 * 60_000;

export function isTrusted(s: Pick<JudgedSnapshot, "distrust">): boolean {
  return !s.distrust?.length;
}

/** The time a snapshot counts as made at: the time it claims, never later than when this site first saw it. */
export function effectiveTime(s: Pick<JudgedSnapshot, "time" | "arrival">): number {
  const claimed = Date.parse(s.time);
  return s.arrival ? Math.min(claimed, Date.parse(s.arrival.seen)) : claimed;
}

/** Minutes since effectiveTime: a claim can make a snapshot older, never younger than its arrival. */
export function ageMinutes(s: Pick<JudgedSnapshot, "time" | "arrival">, now: Date): number {
  // Only a claim within the clocks' tolerance can be ahead of now: a larger one is distrusted and never counted.
  return Math.max(0, now.getTime() - effectiveTime(s)) / 60_000;
}

/** A snapshot's series: the host, job and item it claims to belong to (its paths when it names no item). */
export function seriesOf(s: Pick<Snapshot, "hostname" | "tags" | "paths">): string {
  const tags = s.tags ?? [];
  return [s.hostname, jobOfTags(tags) ?? "", snapshotItem(tags) ?? [...s.paths].sort().join(",")].join("\u0000");
}

/** What a site knows of a snapshot already here when others arrive. */
export interface KnownSnapshot {
  id: string;
  /** The time it claims. */
  time: string;
  series: string;
  /** The snapshot it is a copy of (restic's `original`). */
  copyOf?: string;
  trusted: boolean;
}

/** What the records say of a run (run-evidence.ts). */
export type RunEvidence =
  /** `complete`: the run has ended, so its list is final; `where`: whose records these are. */
  | { found: true; snapshots: ReadonlySet<string>; complete: boolean; where: string }
  /** `definitive`: every site's records were read; otherwise it may yet be found. */
  | { found: false; definitive: boolean; where: string };

export interface ArrivalContext {
  /** When the listing that first holds them ended, by this site's clock. */
  seen: Date;
  /** The last complete listing before, which did not hold them; absent when the ledger begins with them. */
  after?: Date;
  /** What was here before they arrived. */
  earlier: readonly KnownSnapshot[];
  /** How late after its claimed time a real snapshot of this one's job can arrive (its policy's arrivalLag). */
  lagOf(s: Snapshot): number;
  /** The records of the runs they name; absent: runs are not checked (a check is then pending). */
  runs?: ReadonlyMap<string, RunEvidence>;
}

/** A rule's finding: a reason to distrust, "pending" when it cannot tell yet, undefined when it has nothing to say. */
type Finding = { rule: string; reason: string } | "pending" | undefined;
type ArrivalRule = (s: Snapshot, batch: readonly Snapshot[], ctx: ArrivalContext) => Finding;

const short = (s: Pick<Snapshot, "id" | "short_id">) => s.short_id || s.id.slice(0, 8);
const when = (iso: string | Date) => (typeof iso === "string" ? iso : iso.toISOString()).replace(/\.\d+/, "");
const span = (ms: number) => formatSpan(Math.round(ms / 60_000) * 60_000);

/** The rules that make a newly arrived snapshot implausible, by name. */
export const IMPLAUSIBLE_RULES: Record<string, ArrivalRule> = {
  "future": (s, _batch, ctx) => {
    const ahead = Date.parse(s.time) - ctx.seen.getTime();
    if (ahead <= CLOCK_TOLERANCE_MS) return undefined;
    return { rule: "future", reason: `claims ${when(s.time)}, ${span(ahead)} after this site first saw it (${when(ctx.seen)})` };
  },
  "too-late": (s, _batch, ctx) => {
    if (!ctx.after) return undefined;
    const lag = ctx.lagOf(s);
    const late = ctx.after.getTime() - Date.parse(s.time);
    if (late <= lag) return undefined;
    return { rule: "too-late", reason: `claims ${when(s.time)} but was not here at ${when(ctx.after)}: ${span(late)} or more after its time, where a real copy arrives within ${formatSpan(lag)} (arrivalLag)` };
  },
  "older-than-series": (s, _batch, ctx) => {
    const series = seriesOf(s);
    const newer = ctx.earlier.filter((e) => e.trusted && e.series === series && Date.parse(e.time) > Date.parse(s.time));
    const newest = newer.sort((a, b) => Date.parse(b.time) - Date.parse(a.time))[0];
    if (!newest) return undefined;
    return { rule: "older-than-series", reason: `claims ${when(s.time)}, older than ${newest.id.slice(0, 8)} (${when(newest.time)}) of the same host, job and item, already here when it arrived` };
  },
  "second-copy": (s, batch, ctx) => {
    const key = s.original ?? s.id;
    const before = ctx.earlier.find((e) => e.id !== s.id && (e.id === key || e.copyOf === key));
    if (before) return { rule: "second-copy", reason: `a second copy of snapshot ${key.slice(0, 8)}, which is here already as ${before.id.slice(0, 8)}: a snapshot is copied once` };
    const twin = batch.find((b) => b.id !== s.id && (b.original ?? b.id) === key);
    if (twin) return { rule: "second-copy", reason: `one of two snapshots (with ${short(twin)}) that arrived together claiming to be snapshot ${key.slice(0, 8)}: a snapshot is copied once` };
    return undefined;
  },
  "no-run": (s, _batch, ctx) => {
    if (!ctx.runs) return "pending";
    const run = runOfTags(s.tags);
    if (run === undefined) return { rule: "no-run", reason: "names no run (run:<id>): every snapshot dcctl makes names the run that made it" };
    const ev = ctx.runs.get(run);
    if (!ev) return "pending";
    if (ev.found) {
      if (ev.snapshots.has(s.original ?? s.id)) return undefined;
      if (!ev.complete) return "pending";
      return { rule: "no-run", reason: `run ${run} (${ev.where}) made ${ev.snapshots.size} snapshot${ev.snapshots.size === 1 ? "" : "s"}, not this one` };
    }
    return ev.definitive ? { rule: "no-run", reason: `no run ${run} is on record (${ev.where})` } : "pending";
  },
};

export interface Verdict {
  distrust: Distrust[];
  pending: string[];
}

/** The verdict on each snapshot of one arrival (those a listing holds for the first time), by id. */
export function judgeArrivals(batch: readonly Snapshot[], ctx: ArrivalContext): Map<string, Verdict> {
  const at = ctx.seen.toISOString();
  const out = new Map<string, Verdict>();
  for (const s of batch) {
    const v: Verdict = { distrust: [], pending: [] };
    for (const [name, rule] of Object.entries(IMPLAUSIBLE_RULES)) {
      const f = rule(s, batch, ctx);
      if (f === "pending") v.pending.push(name);
      else if (f) v.distrust.push({ kind: "implausible", rule: f.rule, reason: f.reason, at });
    }
    out.set(s.id, v);
  }
  return out;
}

/**
 * What can be said of snapshots that nobody's ledger holds (present when a ledger begins, or in a repository this
 * site does not keep): nothing of their arrival but that they are here `now`, so only a claim in the future.
 */
export function judgeAsFound(list: readonly Snapshot[], now: Date): Map<string, Verdict> {
  const ctx: ArrivalContext = { seen: now, earlier: [], lagOf: () => Number.POSITIVE_INFINITY };
  const future = IMPLAUSIBLE_RULES.future;
  const at = now.toISOString();
  return new Map(
    list.map((s) => {
      const f = future?.(s, list, ctx);
      return [s.id, { distrust: f && f !== "pending" ? [{ kind: "implausible" as const, rule: f.rule, reason: f.reason, at }] : [], pending: [] }];
    }),
  );
}

/** Newest first by effectiveTime, then by arrival. */
function newestFirst(a: JudgedSnapshot, b: JudgedSnapshot): number {
  return effectiveTime(b) - effectiveTime(a) || Date.parse(b.arrival?.seen ?? b.time) - Date.parse(a.arrival?.seen ?? a.time);
}

/** The newest snapshot that may be counted and restored as good: trusted, by the time it counts as made at. */
export function newestTrusted<T extends JudgedSnapshot>(list: readonly T[]): T | undefined {
  return list.filter(isTrusted).sort(newestFirst)[0];
}

export interface Choice<T> {
  chosen?: T;
  /** `latest`: the distrusted snapshots that claim to be newer than the one chosen, passed over. */
  passedOver: T[];
}

/**
 * The snapshot a restore or a drill takes: `latest` is the newest trusted one (before a suspicious one); an id (full, short or a prefix of 8 or
 * more) names one whatever its verdict — naming it is the operator's decision, which the caller says aloud.
 */
export function chooseSnapshot<T extends JudgedSnapshot>(list: readonly T[], wanted: string): Choice<T> {
  if (wanted !== "latest") return { chosen: list.find((s) => s.id === wanted || s.short_id === wanted || (wanted.length >= 8 && s.id.startsWith(wanted))), passedOver: [] };
  // Ransomware's encrypted files change once: the backups after a suspicious one look ordinary and hold the same
  // damage, so `latest` is the newest trusted snapshot from before the newest suspicious one (until it is accepted).
  const suspicious = list.filter((s) => s.distrust?.some((d) => d.kind === "suspicious")).sort(newestFirst)[0];
  const before = suspicious ? list.filter((s) => effectiveTime(s) < effectiveTime(suspicious)) : list;
  const chosen = newestTrusted(before);
  const passedOver = list.filter((s) => s !== chosen && (!isTrusted(s) || suspicious !== undefined) && (!chosen || effectiveTime(s) > effectiveTime(chosen)));
  return { ...(chosen ? { chosen } : {}), passedOver };
}

/** A snapshot this site does not trust, as status, prune and the console show it. */
export interface DistrustedSnapshot {
  repository: RepositoryName;
  id: string;
  short_id: string;
  hostname: string;
  job?: string;
  item?: string;
  /** The time it claims. */
  time: string;
  arrival?: Arrival;
  distrust: Distrust[];
}

function factsOf(s: JudgedSnapshot): Omit<DistrustedSnapshot, "repository"> {
  const job = jobOfTags(s.tags);
  const item = snapshotItem(s.tags ?? []);
  return { id: s.id, short_id: s.short_id, hostname: s.hostname, ...(job ? { job } : {}), ...(item ? { item } : {}), time: s.time, ...(s.arrival ? { arrival: s.arrival } : {}), distrust: s.distrust ?? [] };
}

export function distrustedRow(repository: RepositoryName, s: JudgedSnapshot): DistrustedSnapshot {
  return { repository, ...factsOf(s) };
}

/** "implausible: claims …; implausible: …", for a line about one snapshot. */
export function describeDistrust(s: Pick<JudgedSnapshot, "distrust">): string {
  return (s.distrust ?? []).map((d) => `${d.kind}${d.score !== undefined ? ` (score ${d.score.toFixed(2)})` : ""}: ${d.reason}`).join("; ");
}

/** One line naming a distrusted snapshot and why, for notes and warnings. */
/** Why `latest` passed a snapshot over: not trusted, or made after a suspicious one (chooseSnapshot). */
export function passedOverLine(s: JudgedSnapshot): string {
  if (!isTrusted(s)) return `passed over, not trusted: ${distrustLine(s)}`;
  return `passed over, made after a suspicious snapshot (it may hold the same damage): snapshot ${s.short_id || s.id.slice(0, 8)} of ${s.hostname}, claiming ${when(s.time)}`;
}

export function distrustLine(x: DistrustedSnapshot | JudgedSnapshot): string {
  const d: Omit<DistrustedSnapshot, "repository"> = "tree" in x ? factsOf(x) : x;
  return `snapshot ${d.short_id || d.id.slice(0, 8)} of ${d.hostname}${d.job ? ` (${d.job}${d.item ? `, ${d.item}` : ""})` : ""}, claiming ${when(d.time)}${d.arrival ? `, first seen ${when(d.arrival.seen)}` : ""}: ${describeDistrust(d)}`;
}
