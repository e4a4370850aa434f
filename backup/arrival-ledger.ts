import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { errorMessage, InputError } from "../util/errors.js";
import { writeAtomic } from "../util/files.js";
import { withLock } from "../util/lock.js";
import { renderGauges, type Gauge } from "../util/prometheus.js";
import type { Snapshot, SnapshotFilter } from "../restic/index.js";
import { wants, type NotifyResult } from "../notify/index.js";
import { emitEvent } from "../notify/event-feed.js";
import { jobOfTags, loadJobs, runOfTags, type BackupJob } from "./jobs.js";
import { loadPolicies, REPOSITORY_NAMES, type RepositoryName } from "./policies.js";
import { resticFor, type BackupConfig } from "./repositories.js";
import { backupStatePaths } from "./state-paths.js";
import { notifyDistrust } from "./notices/distrust.js";
import type { RunLookup } from "./run-evidence.js";
import { suspiciousSnapshots, settingsByJob, type AnomalySettings } from "./anomaly.js";
import { effectiveTime, IMPLAUSIBLE_RULES, isTrusted, judgeArrivals, judgeAsFound, seriesOf, type Distrust, type DistrustKind, type JudgedSnapshot, type KnownSnapshot, type RunEvidence, type Verdict } from "./trust.js";

/**
 * The arrival ledger: when each snapshot of the repository this site keeps first reached it, by this site's own
 * clock, and the verdict trust.ts gave it then. `<stateDir>/backup/arrivals/<repository>.json`, written whole
 * (writeAtomic) under a lock, by every listing of that repository at this site (listJudged: status and the console,
 * readiness, prune, restore, the drill, `backup snapshots`); a complete listing also records when it began (the next
 * newcomer arrived after it) and drops what is gone. The snapshots present when the ledger begins are taken as they
 * claim (trust on first use), but for a time in the future. A repository another site keeps is judged by its claims
 * alone (judgeAsFound): that site's ledger is the one that counts.
 *
 * Each distrusted snapshot is told once on the failure channel (notices/distrust.ts), sent once per kind of distrust
 * on the SOC's feed (DCCTL-4001 implausible, DCCTL-4002 suspicious), and counted in `dcctl_snapshots.prom` beside the
 * backup metrics.
 */

interface LedgerEntry {
  seen: string;
  after?: string;
  /** What it claims, kept so that later arrivals are judged against it whatever a listing's filter. */
  time: string;
  series: string;
  copyOf?: string;
  distrust?: Distrust[];
  pending?: string[];
  /** When its distrust was told (notices/distrust.ts); while absent, the next listing tells it. */
  notified?: string;
  /** Which kinds of its distrust went to the SOC's feed (spooled, notify/event-feed.ts): each once. */
  reported?: DistrustKind[];
  /** An operator's decision to trust it after all (acceptSnapshot), with the distrust it overrules. */
  accepted?: { by: string; at: string; reason: string; overruled: Distrust[]; approvedBy?: string };
}

interface Ledger {
  version: 1;
  repository: RepositoryName;
  /** When the ledger began: what was there then is trusted on first use. */
  began: string;
  /** When the last complete listing began. */
  lastListing: string;
  snapshots: Record<string, LedgerEntry>;
}

/** The listing every view asks for: all that dcctl made. A listing with a narrower filter records, but drops nothing. */
export const ALL_DCCTL: SnapshotFilter = { tags: ["dcctl"] };

/** How long a listing waits for another to finish writing the ledger (a write takes milliseconds). */
const LEDGER_WAIT_MS = 15_000;

export function arrivalLedgerPath(config: Pick<BackupConfig, "stateDir">, name: RepositoryName): string {
  return join(config.stateDir, "backup", "arrivals", `${name}.json`);
}

function readLedger(path: string, name: RepositoryName): Ledger | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  const l = JSON.parse(text) as Partial<Ledger>;
  // A ledger that is not one is never replaced by a new one silently: that would trust whatever is there now.
  if (l.version !== 1 || l.repository !== name || typeof l.began !== "string" || typeof l.lastListing !== "string" || typeof l.snapshots !== "object" || l.snapshots === null) {
    throw new Error(`${path} is not an arrival ledger of repository ${name}; move it aside to begin a new one (what is there now is then trusted as it claims)`);
  }
  return l as Ledger;
}

/** Whether this site keeps the repository's ledger: it owns it (and alone prunes it). */
export function keepsLedger(config: BackupConfig, name: RepositoryName): boolean {
  return name === config.site && config.repositories[name]?.owner === config.site;
}

export interface ListingOptions {
  /** What to list; default ALL_DCCTL (a complete listing). */
  filter?: SnapshotFilter;
  /** The runs' records, for the "no-run" rule; without it that check stays pending. */
  runs?: RunLookup;
  /** The jobs, for each one's arrivalLag and anomaly settings; default: the inventory's and policies'. */
  jobs?: readonly Pick<BackupJob, "id" | "arrivalLagMs" | "anomaly">[];
  /** Bounds of the listing (resticFor). */
  stallMs?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  now?: () => Date;
  /** Told of each distrusted snapshot's first notice. */
  onNotified?: (results: NotifyResult[]) => void;
}

export interface JudgedListing {
  repository: RepositoryName;
  snapshots: JudgedSnapshot[];
  /** Judged against this site's arrival ledger; otherwise by what they claim alone. */
  byArrival: boolean;
  /** When the ledger began (what was there then is trusted as it claimed). */
  ledgerBegan?: string;
  /** Why the ledger could not be read or written this time: the listing is judged by claims alone. */
  ledgerError?: string;
}

/** Each job's arrivalLag (the default for a snapshot of no known job) and anomaly settings, by its `job:` tag. */
function jobFinders(o: ListingOptions): { lagOf: (s: Snapshot) => number; settingsFor: (s: Snapshot) => AnomalySettings } {
  let jobs = o.jobs;
  let fallback = 25 * 3_600_000;
  if (!jobs) {
    try {
      jobs = loadJobs();
      fallback = loadPolicies().defaultArrivalLagMs;
    } catch {
      jobs = [];
    }
  } else if (jobs[0]) fallback = Math.max(...jobs.map((j) => j.arrivalLagMs));
  const byId = new Map(jobs.map((j) => [j.id, j.arrivalLagMs]));
  return { lagOf: (s) => byId.get((s.tags ?? []).find((t) => t.startsWith("job:"))?.slice(4) ?? "") ?? fallback, settingsFor: settingsByJob(jobs) };
}

/**
 * Lists a repository and judges each snapshot: in the repository this site keeps, by the arrival ledger (recorded
 * first); in another, by its claims alone. Throws only when the listing itself fails.
 */
export async function listJudged(config: BackupConfig, name: RepositoryName, o: ListingOptions = {}): Promise<JudgedListing> {
  const now = o.now ?? (() => new Date());
  const filter = o.filter ?? ALL_DCCTL;
  const startedAt = now();
  const listed = await resticFor(config, name, { ...(o.stallMs ? { stallMs: o.stallMs } : {}), ...(o.signal ? { signal: o.signal } : {}) }).snapshots(filter, o.timeoutMs ? { timeoutMs: o.timeoutMs } : {});
  const seenAt = now();
  const byClaims = (ledgerError?: string): JudgedListing => {
    const v = judgeAsFound(listed, seenAt);
    return { repository: name, snapshots: listed.map((s) => withVerdict(s, v.get(s.id))), byArrival: false, ...(ledgerError ? { ledgerError } : {}) };
  };
  if (!keepsLedger(config, name)) return byClaims();
  const complete = filter.host === undefined && !filter.paths?.length && (filter.tags ?? []).join() === "dcctl";
  const path = arrivalLedgerPath(config, name);
  try {
    // The runs' records are read before the lock is taken (another site may take seconds to answer).
    const before = readLedger(path, name);
    const evidence = before && o.runs ? await o.runs(runsToCheck(before, listed)) : undefined;
    const { lagOf, settingsFor } = jobFinders(o);
    const { ledger, tell, report } = await withLock(backupStatePaths(config).locksDir, `arrivals-${name}`, { mode: "exclusive", waitMs: LEDGER_WAIT_MS, what: `the arrival ledger of repository ${name}` }, async () => {
      const ledger = readLedger(path, name) ?? (complete ? beginLedger(name, listed, startedAt, seenAt) : undefined);
      if (!ledger) return { ledger: undefined, tell: [], report: [] };
      record(ledger, listed, { complete, startedAt, seenAt, lagOf, settingsFor, ...(evidence ? { evidence } : {}) });
      // Claimed under the lock: of two listings at once, one tells.
      const tell = wants(config.notify, "failure") ? listed.filter((s) => ledger.snapshots[s.id]?.distrust?.length && !ledger.snapshots[s.id]?.notified) : [];
      for (const s of tell) (ledger.snapshots[s.id] as LedgerEntry).notified = seenAt.toISOString();
      const report = config.soc ? listed.flatMap((s) => unreported(ledger.snapshots[s.id]).map((kind) => ({ id: s.id, kind }))) : [];
      for (const r of report) {
        const e = ledger.snapshots[r.id] as LedgerEntry;
        e.reported = [...(e.reported ?? []), r.kind];
      }
      writeAtomic(path, JSON.stringify(ledger) + "\n");
      writeTrustMetrics(config, ledger);
      return { ledger, tell, report };
    });
    if (!ledger) return byClaims("no arrival ledger yet: a complete listing begins it");
    const snapshots = listed.map((s) => fromEntry(s, ledger.snapshots[s.id]));
    for (const r of report) {
      const s = snapshots.find((x) => x.id === r.id);
      if (s) reportDistrust(config, name, s, r.kind);
    }
    if (tell.length) await tellDistrust(config, name, snapshots.filter((s) => tell.some((t) => t.id === s.id)), seenAt, path, o);
    return { repository: name, snapshots, byArrival: true, ledgerBegan: ledger.began };
  } catch (e) {
    return byClaims(`arrival ledger ${path}: ${errorMessage(e)}`);
  }
}

/** The runs to look up: those named by newcomers, and by snapshots whose run check is still open. */
function runsToCheck(ledger: Ledger, listed: readonly Snapshot[]): string[] {
  const runs = listed.filter((s) => !ledger.snapshots[s.id] || ledger.snapshots[s.id]?.pending?.includes("no-run")).map((s) => runOfTags(s.tags));
  return [...new Set(runs.filter((r): r is string => r !== undefined))];
}

function entryOf(s: Snapshot, seen: string, after: string | undefined, v: Verdict | undefined): LedgerEntry {
  return {
    seen,
    ...(after ? { after } : {}),
    time: s.time,
    series: seriesOf(s),
    ...(s.original ? { copyOf: s.original } : {}),
    ...(v?.distrust.length ? { distrust: v.distrust } : {}),
    ...(v?.pending.length ? { pending: v.pending } : {}),
  };
}

function beginLedger(name: RepositoryName, listed: readonly Snapshot[], startedAt: Date, seenAt: Date): Ledger {
  const found = judgeAsFound(listed, seenAt);
  const snapshots: Record<string, LedgerEntry> = {};
  for (const s of listed) snapshots[s.id] = entryOf(s, seenAt.toISOString(), undefined, found.get(s.id));
  return { version: 1, repository: name, began: seenAt.toISOString(), lastListing: startedAt.toISOString(), snapshots };
}

/** Records one listing into the ledger: newcomers judged, open run checks made where the records now say, the gone dropped. */
function record(
  ledger: Ledger,
  listed: readonly Snapshot[],
  o: { complete: boolean; startedAt: Date; seenAt: Date; lagOf: (s: Snapshot) => number; settingsFor: (s: Snapshot) => AnomalySettings; evidence?: ReadonlyMap<string, RunEvidence> },
): void {
  const arrived = listed.filter((s) => !ledger.snapshots[s.id]);
  const earlier: KnownSnapshot[] = Object.entries(ledger.snapshots).map(([id, e]) => ({ id, time: e.time, series: e.series, ...(e.copyOf ? { copyOf: e.copyOf } : {}), trusted: !e.distrust?.length }));
  const after = new Date(ledger.lastListing);
  const verdicts = judgeArrivals(arrived, { seen: o.seenAt, after, earlier, lagOf: o.lagOf, ...(o.evidence ? { runs: o.evidence } : {}) });
  for (const s of arrived) ledger.snapshots[s.id] = entryOf(s, o.seenAt.toISOString(), ledger.lastListing, verdicts.get(s.id));
  judgeChanges(ledger, listed, arrived, o);
  if (o.evidence) {
    const noRun = IMPLAUSIBLE_RULES["no-run"];
    for (const s of listed) {
      const e = ledger.snapshots[s.id];
      if (!e?.pending?.includes("no-run") || !noRun) continue;
      const f = noRun(s, listed, { seen: o.seenAt, earlier: [], lagOf: o.lagOf, runs: o.evidence });
      if (f === "pending") continue;
      e.pending = e.pending.filter((p) => p !== "no-run");
      if (!e.pending.length) delete e.pending;
      if (f) e.distrust = [...(e.distrust ?? []), { kind: "implausible", rule: f.rule, reason: f.reason, at: o.seenAt.toISOString() }];
    }
  }
  if (o.complete) {
    const present = new Set(listed.map((s) => s.id));
    // Only what was here before this listing began can be missing from it; one that came meanwhile stays.
    for (const [id, e] of Object.entries(ledger.snapshots)) if (!present.has(id) && Date.parse(e.seen) < o.startedAt.getTime()) delete ledger.snapshots[id];
    if (o.startedAt.getTime() > Date.parse(ledger.lastListing)) ledger.lastListing = o.startedAt.toISOString();
  }
}

/**
 * The anomaly score of each newcomer the rules left trusted, against its series' trusted history ordered by when
 * each reached this site (anomaly.ts): one above its policy's threshold is suspicious, judged once like the rules.
 */
function judgeChanges(ledger: Ledger, listed: readonly Snapshot[], arrived: readonly Snapshot[], o: { seenAt: Date; settingsFor: (s: Snapshot) => AnomalySettings }): void {
  const fresh = arrived.filter((s) => !ledger.snapshots[s.id]?.distrust?.length);
  if (!fresh.length) return;
  const trusted = listed.filter((s) => !ledger.snapshots[s.id]?.distrust?.length);
  const timeOf = (s: Snapshot) => effectiveTime({ time: s.time, arrival: { seen: ledger.snapshots[s.id]?.seen ?? s.time } });
  const found = suspiciousSnapshots(trusted, { settingsFor: o.settingsFor, timeOf });
  for (const s of fresh) {
    const v = found.get(s.id);
    const e = ledger.snapshots[s.id];
    if (v && e) e.distrust = [{ kind: "suspicious", rule: "anomaly", reason: v.reason, score: v.score, at: o.seenAt.toISOString() }];
  }
}

function withVerdict(s: Snapshot, v: Verdict | undefined): JudgedSnapshot {
  return { ...s, ...(v?.distrust.length ? { distrust: v.distrust } : {}), ...(v?.pending.length ? { pending: v.pending } : {}) };
}

function fromEntry(s: Snapshot, e: LedgerEntry | undefined): JudgedSnapshot {
  if (!e) return { ...s };
  return { ...s, arrival: { seen: e.seen, ...(e.after ? { after: e.after } : {}) }, ...(e.distrust?.length ? { distrust: e.distrust } : {}), ...(e.pending?.length ? { pending: e.pending } : {}) };
}

/** The kinds of an entry's distrust not yet sent to the SOC's feed. */
function unreported(e: LedgerEntry | undefined): DistrustKind[] {
  const kinds = [...new Set((e?.distrust ?? []).map((d) => d.kind))];
  return kinds.filter((k) => !e?.reported?.includes(k));
}

const SOC_KIND: Record<DistrustKind, "snapshot.implausible" | "snapshot.suspicious"> = { implausible: "snapshot.implausible", suspicious: "snapshot.suspicious" };

/** One event per snapshot and kind of distrust, on the site's SOC feed (spooled before it returns; never throws). */
function reportDistrust(config: BackupConfig, name: RepositoryName, s: JudgedSnapshot, kind: DistrustKind): void {
  const of = (s.distrust ?? []).filter((d) => d.kind === kind);
  const score = of.find((d) => d.score !== undefined)?.score;
  emitEvent(config, SOC_KIND[kind], {
    target: `snapshot ${s.short_id || s.id.slice(0, 8)} in repository ${name}`,
    outcome: "detected",
    message: `${kind} snapshot ${s.short_id || s.id.slice(0, 8)} of ${s.hostname} in repository ${name}: ${of.map((d) => d.reason).join("; ")}`,
    data: {
      snapshot: s.id,
      repository: name,
      job: jobOfTags(s.tags),
      ...(kind === "implausible" ? { claimedTime: s.time, firstSeen: s.arrival?.seen, reason: of.map((d) => d.rule).join(",") } : { score }),
    },
  });
}

/** Sends the notice; when no channel took it, the claim is withdrawn so that the next listing tries again. */
async function tellDistrust(config: BackupConfig, name: RepositoryName, found: JudgedSnapshot[], at: Date, path: string, o: ListingOptions): Promise<void> {
  const results = await notifyDistrust(config, name, found, at);
  o.onNotified?.(results);
  if (results.some((r) => r.ok)) return;
  await withLock(backupStatePaths(config).locksDir, `arrivals-${name}`, { mode: "exclusive", waitMs: LEDGER_WAIT_MS, what: `the arrival ledger of repository ${name}` }, async () => {
    const ledger = readLedger(path, name);
    if (!ledger) return;
    for (const s of found) {
      const e = ledger.snapshots[s.id];
      if (e?.notified === at.toISOString()) delete e.notified;
    }
    writeAtomic(path, JSON.stringify(ledger) + "\n");
  }).catch(() => undefined);
}

/**
 * Adds a distrust to a snapshot of the repository this site keeps (another kind than implausible: a suspicious change,
 * scored elsewhere), recorded in the ledger like the rules' own: from then on it is not counted, not chosen, out of
 * retention, and told at the next listing. The snapshot is recorded as arriving now if the ledger did not hold it.
 */
export async function addDistrust(config: BackupConfig, name: RepositoryName, snapshot: Snapshot, d: Omit<Distrust, "at">, now: Date = new Date()): Promise<void> {
  if (!keepsLedger(config, name)) throw new Error(`repository ${name} is kept by the ${config.repositories[name]?.owner ?? name} site: its ledger is there`);
  const path = arrivalLedgerPath(config, name);
  await withLock(backupStatePaths(config).locksDir, `arrivals-${name}`, { mode: "exclusive", waitMs: LEDGER_WAIT_MS, what: `the arrival ledger of repository ${name}` }, async () => {
    const ledger = readLedger(path, name);
    if (!ledger) throw new Error(`repository ${name} has no arrival ledger yet: list it first (dcctl backup status)`);
    const e = (ledger.snapshots[snapshot.id] ??= entryOf(snapshot, now.toISOString(), ledger.lastListing, undefined));
    if (!e.distrust?.some((x) => x.kind === d.kind && x.rule === d.rule)) e.distrust = [...(e.distrust ?? []), { ...d, at: now.toISOString() }];
    writeAtomic(path, JSON.stringify(ledger) + "\n");
    writeTrustMetrics(config, ledger);
  });
}

/**
 * An operator's decision that a snapshot this site distrusts is real after all (copies that arrived after an outage
 * longer than their arrivalLag, say): from then on it is trusted, counted and kept by retention like the others. The
 * distrust it overrules, who decided and why stay in the ledger. `id`: full, short, or a prefix of 8 or more.
 */
export async function acceptSnapshot(config: BackupConfig, name: RepositoryName, id: string, o: { by: string; reason: string; approvedBy?: string; now?: Date }): Promise<{ id: string; overruled: Distrust[] }> {
  if (!keepsLedger(config, name)) throw new InputError([`repository ${name} is kept by the ${config.repositories[name]?.owner ?? name} site: decide there`]);
  const path = arrivalLedgerPath(config, name);
  const at = (o.now ?? new Date()).toISOString();
  return withLock(backupStatePaths(config).locksDir, `arrivals-${name}`, { mode: "exclusive", waitMs: LEDGER_WAIT_MS, what: `the arrival ledger of repository ${name}` }, async () => {
    const { ledger, full, entry: e } = distrustedEntry(readLedger(path, name), name, path, id);
    e.accepted = { by: o.by, at, reason: o.reason, overruled: e.distrust ?? [], ...(o.approvedBy ? { approvedBy: o.approvedBy } : {}) };
    delete e.distrust;
    writeAtomic(path, JSON.stringify(ledger) + "\n");
    writeTrustMetrics(config, ledger);
    return { id: full, overruled: e.accepted.overruled };
  });
}

/** The one entry an id (full, or 8 or more of its first characters) names, distrusted; bad input otherwise. */
function distrustedEntry(ledger: Ledger | undefined, name: RepositoryName, path: string, id: string): { ledger: Ledger; full: string; entry: LedgerEntry } {
  const found = Object.entries(ledger?.snapshots ?? {}).filter(([full]) => full === id || (id.length >= 8 && full.startsWith(id)));
  const [hit] = found;
  if (!ledger || !hit || found.length > 1) throw new InputError([`snapshot ${id}: ${found.length > 1 ? `names ${found.length} snapshots; give more of its id` : `not in the arrival ledger of repository ${name} (${path})`}`]);
  if (!hit[1].distrust?.length) throw new InputError([`snapshot ${id} is trusted already`]);
  return { ledger, full: hit[0], entry: hit[1] };
}

/**
 * The distrusted snapshot `backup accept` would trust, as the ledger holds it now (read without the lock): what a
 * second operator is shown before approving. acceptSnapshot looks again under the lock.
 */
export function findDistrusted(config: BackupConfig, name: RepositoryName, id: string): { id: string; distrust: Distrust[] } {
  if (!keepsLedger(config, name)) throw new InputError([`repository ${name} is kept by the ${config.repositories[name]?.owner ?? name} site: decide there`]);
  const path = arrivalLedgerPath(config, name);
  const { full, entry } = distrustedEntry(readLedger(path, name), name, path, id);
  return { id: full, distrust: entry.distrust ?? [] };
}

/** What the ledger holds, counted: the trust metrics and the console's summary. */
export interface TrustCounts {
  repository: RepositoryName;
  trusted: number;
  pending: number;
  implausible: number;
  suspicious: number;
  lastListing: string;
}

function countsOf(ledger: Ledger): TrustCounts {
  const c: TrustCounts = { repository: ledger.repository, trusted: 0, pending: 0, implausible: 0, suspicious: 0, lastListing: ledger.lastListing };
  for (const e of Object.values(ledger.snapshots)) {
    if (!isTrusted(e)) {
      if (e.distrust?.some((d) => d.kind === "implausible")) c.implausible++;
      if (e.distrust?.some((d) => d.kind === "suspicious")) c.suspicious++;
    } else if (e.pending?.length) c.pending++;
    else c.trusted++;
  }
  return c;
}

const METRICS: Gauge<TrustCounts>[] = [
  { name: "dcctl_snapshots_trusted", help: "Snapshots of the repository this site keeps that it trusts (arrival ledger).", value: (c) => c.trusted },
  { name: "dcctl_snapshots_pending", help: "Snapshots whose run's record could not be read yet: trusted meanwhile, out of retention.", value: (c) => c.pending },
  { name: "dcctl_snapshots_implausible", help: "Snapshots judged implausible (time, series, copy or run): kept, never counted, never restored unless named.", value: (c) => c.implausible },
  { name: "dcctl_snapshots_suspicious", help: "Snapshots judged suspicious: kept, never counted, never restored unless named.", value: (c) => c.suspicious },
  { name: "dcctl_snapshots_listed_timestamp_seconds", help: "Unix time the last complete listing of the repository began.", value: (c) => Date.parse(c.lastListing) / 1000 },
];

/** The Prometheus textfile beside the backup metrics: config.metricsFile's folder, dcctl_snapshots.prom. */
export function trustMetricsPath(config: Pick<BackupConfig, "metricsFile">): string {
  return join(dirname(config.metricsFile), "dcctl_snapshots.prom");
}

function writeTrustMetrics(config: BackupConfig, ledger: Ledger): void {
  try {
    writeAtomic(trustMetricsPath(config), renderGauges(METRICS, [countsOf(ledger)], (c) => ({ repository: c.repository })).join("\n") + "\n");
  } catch {
    // The ledger is what counts; a metrics folder that cannot be written shows as stale metrics.
  }
}

/** The counts of the repository this site keeps, from its ledger as last written; undefined without one. */
export function trustCounts(config: BackupConfig): TrustCounts | undefined {
  const name = REPOSITORY_NAMES.find((r) => r === config.site);
  if (!name || !keepsLedger(config, name)) return undefined;
  try {
    const l = readLedger(arrivalLedgerPath(config, name), name);
    return l ? countsOf(l) : undefined;
  } catch {
    return undefined;
  }
}
