import type { BackupSummary, Snapshot } from "../restic/index.js";

/**
 * How unlike its job's normal a snapshot is: the sign ransomware leaves in a backup. Ransomware rewrites what is
 * there, so against the snapshot before it an encrypted tree comes back to restic with (1) nearly every file
 * rewritten (changed in place, or replaced by a new one), (2) nearly every byte rewritten — encrypted data shares no
 * chunk with what the repository holds — and (3) new data that no longer compresses, where the group's data used to.
 * Each of those happens alone for ordinary reasons: a restore rewrites every file but adds nothing new; a load of new
 * documents adds much but rewrites nothing; a scanned page does not compress at all. So each is a part from 0 to 1 —
 * how far it rose from the group's usual value towards its ceiling — and the score is their weighted geometric mean:
 * high only when every sign is there at once.
 *
 * A group is the snapshots of one job, host and set of paths: one files item, or one database's dumps. Its usual
 * values are the medians of the snapshots before it (those not judged suspicious themselves, so that an attack does
 * not become the normal). A dump is one file, new at every run: it is judged by the other two parts. A part that
 * cannot say anything is left out: a group that rewrites nearly everything at every run leaves no room for a jump;
 * data that never compressed cannot stop compressing.
 *
 * Pure: everything comes from `restic snapshots --json` (restic 0.17+ stores each backup's summary in its snapshot).
 */

export interface AnomalyWeights {
  /** The share of the files rewritten or replaced. */
  files: number;
  /** The share of the bytes rewritten (new to the repository, beyond what the tree grew by). */
  bytes: number;
  /** How much worse than usual the new data compresses. */
  incompressible: number;
}

/** A policy's `anomaly:` (backup/policies.ts). */
export interface AnomalySettings {
  /** A snapshot whose score is above this is suspicious; 0–1. */
  threshold: number;
  weights: AnomalyWeights;
}

export const DEFAULT_ANOMALY: AnomalySettings = { threshold: 0.5, weights: { files: 1, bytes: 1, incompressible: 1 } };

export type AnomalyPartName = keyof AnomalyWeights;
export const ANOMALY_PARTS: readonly AnomalyPartName[] = ["files", "bytes", "incompressible"];

/** One sign: its value in this snapshot, its usual value in the group, and how far it jumped (0–1). */
export interface AnomalyPart {
  value: number;
  usual: number;
  part: number;
  /** The usual value is assumed, the group having no snapshot to take it from yet. */
  assumed?: true;
}

export interface AnomalyScore {
  id: string;
  /** "unjudged": nothing to compare with (the group's first snapshot, no summary) or nothing that could be measured. */
  verdict: "ok" | "suspicious" | "unjudged";
  /** 0–1, three decimals; absent when unjudged. */
  score?: number;
  threshold: number;
  parts: Partial<Record<AnomalyPartName, AnomalyPart>>;
  /** How many snapshots of its group before it made its usual values. */
  history: number;
  /** In words: the parts against their usual values, or why it was not judged. */
  reason: string;
}

/** What the snapshot-trust module takes of a suspicious snapshot. */
export interface SuspiciousVerdict {
  kind: "suspicious";
  reason: string;
  score: number;
}

export interface ScoreOptions {
  /** The policy's settings of a snapshot's job (default: DEFAULT_ANOMALY for every snapshot). */
  settingsFor?: (s: Snapshot) => AnomalySettings;
  /** The order of a group's snapshots (default: the time each claims); e.g. when each reached this repository. */
  timeOf?: (s: Snapshot) => number;
}

/** How many snapshots before it make a group's usual values: weeks of a daily job, days of an hourly one. */
export const HISTORY_LIMIT = 60;
/**
 * Below this much new data a snapshot is not judged suspicious: too little to hold an encrypted tree, and too little
 * for its compressed size to mean anything (restic's own tree data weighs that much).
 */
export const MIN_NEW_BYTES = 64 * 1024;
/** A usual share at or above this leaves no room to jump: that part says nothing for the group. */
const NO_ROOM = 0.9;
/** How well new data compresses (packed / added) when the group has never added enough to measure it. */
const ASSUMED_COMPRESSION = 0.5;

/** What a snapshot shows against the snapshot of its group before it. */
interface Measures {
  /** Of the files, the share rewritten or replaced by new ones; only for a tree that had many files. */
  files?: number;
  /** Of the bytes there, the share rewritten: new data beyond what the tree grew by. */
  bytes?: number;
  /** Packed / added of its new data (1: does not compress), when restic said and there was enough to measure. */
  compression?: number;
}

/** Scores every snapshot of a listing against the earlier snapshots of its group. */
export function scoreSnapshots(snapshots: readonly Snapshot[], o: ScoreOptions = {}): Map<string, AnomalyScore> {
  const timeOf = o.timeOf ?? ((s: Snapshot) => Date.parse(s.time));
  const settingsFor = o.settingsFor ?? (() => DEFAULT_ANOMALY);
  const groups = new Map<string, Snapshot[]>();
  for (const s of snapshots) {
    const key = groupKey(s);
    const g = groups.get(key);
    if (g) g.push(s);
    else groups.set(key, [s]);
  }
  const scores = new Map<string, AnomalyScore>();
  for (const group of groups.values()) {
    group.sort((a, b) => timeOf(a) - timeOf(b) || a.id.localeCompare(b.id));
    // What later snapshots are measured against: the group's snapshots with a summary, but none judged suspicious.
    const accepted: Measures[] = [];
    let before: Partial<BackupSummary> | undefined;
    for (const s of group) {
      const m = s.summary ? measure(s.summary, before) : undefined;
      const score = scoreOne(s, m, before, accepted.slice(-HISTORY_LIMIT), settingsFor(s));
      scores.set(s.id, score);
      if (s.summary) before = s.summary;
      if (m && score.verdict !== "suspicious") accepted.push(m);
    }
  }
  return scores;
}

/** The suspicious snapshots of a listing, by id, in the form the trust module takes. */
export function suspiciousSnapshots(snapshots: readonly Snapshot[], o: ScoreOptions = {}): Map<string, SuspiciousVerdict> {
  return suspiciousOf(scoreSnapshots(snapshots, o));
}

export function suspiciousOf(scores: ReadonlyMap<string, AnomalyScore>): Map<string, SuspiciousVerdict> {
  const out = new Map<string, SuspiciousVerdict>();
  for (const [id, s] of scores) if (s.verdict === "suspicious" && s.score !== undefined) out.set(id, { kind: "suspicious", reason: s.reason, score: s.score });
  return out;
}

/** Each snapshot's settings from its `job:<id>` tag; a job no longer in the policies gets the defaults. */
export function settingsByJob(jobs: readonly { id: string; anomaly?: AnomalySettings }[]): (s: Snapshot) => AnomalySettings {
  const byId = new Map(jobs.map((j) => [j.id, j.anomaly ?? DEFAULT_ANOMALY]));
  return (s) => byId.get(s.tags?.find((t) => t.startsWith("job:"))?.slice(4) ?? "") ?? DEFAULT_ANOMALY;
}

/** Host, job and paths: one job's files item, or one database's dumps (each is stored under its own path). */
function groupKey(s: Snapshot): string {
  const job = s.tags?.find((t) => t.startsWith("job:")) ?? "";
  return JSON.stringify([s.hostname, job, [...s.paths].sort()]);
}

function num(x: number | undefined): number {
  return typeof x === "number" && Number.isFinite(x) && x > 0 ? x : 0;
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}

function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function filesOf(s: Partial<BackupSummary>): number {
  return num(s.total_files_processed);
}

/**
 * Ransomware rewrites what is there: each file in place (restic: changed) or into a new one that replaces it (new,
 * with as many gone). What only adds — new documents, a first load of data — rewrites nothing of what was there.
 */
function measure(s: Partial<BackupSummary>, before: Partial<BackupSummary> | undefined): Measures {
  const m: Measures = {};
  const added = num(s.data_added);
  if (s.data_added_packed !== undefined && added >= MIN_NEW_BYTES) m.compression = clamp01(num(s.data_added_packed) / added);
  if (!before) return m;
  // Shares of the larger of the tree before and now: a few files or bytes before say nothing of a tree that grew.
  const had = filesOf(before);
  if (had > 1) {
    const gone = Math.max(0, had + num(s.files_new) - filesOf(s));
    m.files = clamp01((num(s.files_changed) + Math.min(num(s.files_new), gone)) / Math.max(had, filesOf(s)));
  }
  const hadBytes = num(before.total_bytes_processed);
  const bytes = num(s.total_bytes_processed);
  if (hadBytes > 0) m.bytes = clamp01(Math.max(0, added - Math.max(0, bytes - hadBytes)) / Math.max(hadBytes, bytes));
  return m;
}

/** How far `value` rose from `usual` towards 1; undefined when the usual leaves no room to rise. */
function jump(value: number, usual: number, assumed: boolean): AnomalyPart | undefined {
  if (usual >= NO_ROOM) return undefined;
  return { value, usual, part: clamp01((value - usual) / (1 - usual)), ...(assumed ? { assumed: true as const } : {}) };
}

function scoreOne(s: Snapshot, m: Measures | undefined, before: Partial<BackupSummary> | undefined, history: Measures[], settings: AnomalySettings): AnomalyScore {
  const base = { id: s.id, threshold: settings.threshold, parts: {}, history: history.length };
  const summary = s.summary;
  if (!summary || !m || summary.data_added === undefined || summary.total_bytes_processed === undefined) {
    return { ...base, verdict: "unjudged", reason: "restic stored no summary in it (restic before 0.17)" };
  }
  if (history.length === 0) return { ...base, verdict: "unjudged", reason: "the first snapshot of its job, host and paths: nothing to compare with" };
  const added = num(summary.data_added);
  if (added < MIN_NEW_BYTES) return { ...base, verdict: "ok", score: 0, reason: `adds only ${kib(added)} of new data` };

  const usualOf = (name: keyof Measures) => median(history.flatMap((h) => h[name] ?? []));
  const parts: Partial<Record<AnomalyPartName, AnomalyPart>> = {};
  const add = (name: AnomalyPartName, p: AnomalyPart | undefined): void => {
    if (p) parts[name] = p;
  };
  // Before a group has an ordinary run to measure (its first backup is all new), a tree of files is judged against
  // rewriting nothing; a dump, rewritten in good part at every run, is not judged by its bytes until it has one.
  const tree = filesOf(summary) > 1 || filesOf(before ?? {}) > 1;
  if (m.files !== undefined) add("files", jump(m.files, usualOf("files") ?? 0, usualOf("files") === undefined));
  if (m.bytes !== undefined) {
    const usual = usualOf("bytes");
    if (usual !== undefined || tree) add("bytes", jump(m.bytes, usual ?? 0, usual === undefined));
  }
  if (m.compression !== undefined) add("incompressible", jump(m.compression, usualOf("compression") ?? ASSUMED_COMPRESSION, usualOf("compression") === undefined));

  const weighted = ANOMALY_PARTS.flatMap((name) => {
    const p = parts[name];
    const w = settings.weights[name];
    return p && w > 0 ? [{ ...p, w }] : [];
  });
  const described = describeParts(parts, summary, before);
  const unjudged = (why: string): AnomalyScore => ({ ...base, parts, verdict: "unjudged", reason: `${why}${described ? ` (${described})` : ""}` });
  if (weighted.length === 0) return unjudged("none of the signs can be measured for its group: it rewrites nearly everything at every run, or its data never compressed");
  // Assumptions alone judge nothing: one usual value at least must come from the group's own history.
  if (weighted.every((p) => p.assumed)) return unjudged("too little history to judge it");
  const total = weighted.reduce((sum, x) => sum + x.w, 0);
  // A sign at 0 makes the mean 0: every weighted sign has to be there.
  const score = Math.round(1000 * Math.exp(weighted.reduce((sum, x) => sum + x.w * Math.log(Math.max(x.part, 1e-9)), 0) / total)) / 1000;
  const suspicious = score > settings.threshold;
  return { ...base, parts, score, verdict: suspicious ? "suspicious" : "ok", reason: suspicious ? `score ${score.toFixed(2)} above ${settings.threshold}: ${described}` : described };
}

function percent(x: number): string {
  const p = x * 100;
  return `${p < 10 && p > 0 ? p.toFixed(1) : p.toFixed(0)}%`;
}

function kib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(0)} KiB`;
}

function describeParts(parts: Partial<Record<AnomalyPartName, AnomalyPart>>, s: Partial<BackupSummary>, before: Partial<BackupSummary> | undefined): string {
  const usual = (p: AnomalyPart) => `${p.assumed ? "assumed" : "usually"} ${percent(p.usual)}`;
  return [
    parts.files && `${percent(parts.files.value)} of its ${Math.max(filesOf(s), filesOf(before ?? {}))} files rewritten or replaced (${usual(parts.files)})`,
    parts.bytes && `${percent(parts.bytes.value)} of its ${kib(Math.max(num(s.total_bytes_processed), num(before?.total_bytes_processed)))} rewritten (${usual(parts.bytes)})`,
    parts.incompressible && `its ${kib(num(s.data_added))} of new data compresses to ${percent(parts.incompressible.value)} (${usual(parts.incompressible)})`,
  ]
    .filter(Boolean)
    .join(", ");
}
