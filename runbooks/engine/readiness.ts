import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { DEFAULT_DRILL_EVERY_DAYS, type Host, type Sites } from "../../inventory/index.js";
import { expandJobs, type BackupJob } from "../../backup/jobs.js";
import { loadPolicies } from "../../backup/policies.js";
import { writeAtomic } from "../../util/files.js";
import { renderGauges, type Gauge } from "../../util/prometheus.js";
import type { BackupConfig } from "../../backup/repositories.js";
import { describeLag, measurePairs, replicationPairs, type PairStatus, type ReplicationPair } from "../../backup/replication/index.js";
import type { Reconciled } from "../../backup/run-ledger.js";
import { backupStatus, formatAge, type JobStatusRow } from "../../backup/status.js";
import { lookAtOtherSites } from "../../backup/peer-records.js";
import { failedParts, type SiteReach } from "../../backup/reachability.js";
import { readArchiveStatuses, type JudgedArchive } from "../../backup/pitr.js";
import type { SiteName } from "../../inventory/index.js";
import { errorMessage } from "../../util/errors.js";
import { quoteArg } from "../../hosts/quote.js";
import { textTable } from "../../util/table.js";
import { listRuns, type RunSummary } from "./history.js";
import { readJournal } from "./journal.js";
import type { Measurement } from "./measure.js";
import type { Runbook } from "./model.js";
import { planRunbook } from "./plan.js";
import { replay } from "./replay.js";
import { buildReport } from "./report.js";
import type { RunReport } from "./report-model.js";
import { loadRun } from "./runner.js";
import type { RecoveredHost, RestoredDatabase } from "./steps/types.js";

/**
 * `dcctl dr readiness`: one answer per service — could it fail over now? A service is ready when every primary host
 * that carries it has a backup policy producing jobs, none of those jobs is broken (over RPO, never backed up, last
 * run failed, repository unreadable), each of its replicated databases streams to its standby within RPO, a secondary
 * host stands ready to take over each of its primary hosts, and its last drill met RPO and RTO within the cadence of
 * its tier (drTiers[].drillEveryDays).
 *
 * The services: those the primary's hosts list (`services:`), except on the management-and-backup hosts — each site
 * runs its own control plane (rest-server, restic, dcctl), which is never failed over — and every `service:` label of
 * the runbooks given and of the runs in the history. A label's hosts are the primary hosts its steps recovered (the
 * sources of its restores, the primaries of its promoted standbys); an inventory service is touched by a drill when
 * the drill measured it by name or recovered one of its hosts (the portal's restore proves lab-db-01's database server).
 * Drills are the runs towards the secondary (drills and failovers); failbacks prove nothing about failing over.
 *
 * `readiness()` is pure over its input; `collectReadinessInput()` gathers the input the way the CLI does.
 */

export interface DrillSummary {
  runId: string;
  kind: string;
  runbook: string;
  /** When the run started: RPO is counted from there, and the next drill is due from there. */
  at: string;
  status: "ok" | "failed" | "interrupted" | "missed";
  /** The strictest tier the touching measurements were judged against. */
  tier?: number;
  /** The worst of the measurements that touch the service (several when a drill recovered several of its hosts). */
  rpoMinutes?: number;
  rtoMinutes?: number;
  rpoTargetMinutes?: number;
  rtoTargetMinutes?: number;
  rpoMet?: boolean;
  rtoMet?: boolean;
  /** The report's service labels this summary is made of. */
  measurements: string[];
  dir: string;
}

export interface ReplicaReadiness {
  standby: string;
  primary: string;
  health: string;
  lagSeconds?: number;
  rpoSeconds: number;
  ok: boolean;
  measuredAt?: string;
}

export interface ServiceReadiness {
  service: string;
  tier?: number;
  /** The primary hosts that carry it. */
  hosts: string[];
  ready: boolean;
  /** Empty when ready; each names what is missing. */
  reasons: string[];
  protection: {
    backupPolicy: boolean;
    replicas: ReplicaReadiness[];
    /** A secondary host to take each primary host over. */
    standbyCapacity: boolean;
    standbyHosts: string[];
  };
  /** The newest drill touching the service. */
  lastDrill?: DrillSummary;
  /** The newest drill whose measurement of the service met both targets. */
  lastGoodDrill?: DrillSummary;
  drillEveryDays: number;
  /** lastGoodDrill + drillEveryDays; absent when no drill ever met the targets. */
  drillDueAt?: string;
  /** No good drill within drillEveryDays (or none at all). */
  overdue: boolean;
  brokenJobs: { job: string; state: string; reason: string }[];
  /** While another site does not answer: could it fail over now, with what data, at what RPO, by which command. */
  failoverNow?: FailoverNow;
}

/**
 * The night shift's question, answered at the surviving site while the other does not answer. Towards the secondary
 * (the primary lost): per primary host, the data this site holds of it — its replica, complete up to the last moment
 * it heard from the primary, and its newest copy in this site's repository — and the RPO a failover now would have
 * (from the loss to the oldest host's newest data) against the tier's. Seen from the primary with the secondary lost:
 * there is nowhere to fail over to.
 */
export interface FailoverNow {
  /** The site that does not answer, and the first probe that found it so. */
  lost: SiteName;
  lostSince: string;
  possible: boolean;
  /** Why not, when it cannot. */
  blockers: string[];
  /**
   * `archiveUpTo`: the newest point this site's point-in-time archive of the host reaches (as last measured, never past
   * the loss). A failover does not restore from it: `dcctl restore --at` does, so it is said beside, not counted in.
   */
  hosts: { host: string; replica?: string; replicaUpTo?: string; copyUpTo?: string; archiveUpTo?: string; takeover: string[] }[];
  /** The data a failover now would have: every host's best, the oldest of them. */
  dataUpTo?: string;
  rpoMinutes?: number;
  rpoTargetMinutes?: number;
  rpoMet?: boolean;
  /** What to run, at this site. */
  command?: string;
}

/** One DR run as readiness reads it: its report's per-service measurements and what each label's steps recovered. */
export interface DrillRun {
  runId: string;
  runbook: string;
  kind: string;
  /** The site it moved (or tested moving) service to. */
  to: string;
  at: string;
  status: DrillSummary["status"];
  dir: string;
  measurements: Measurement[];
  /** Per service label, the primary hosts whose data or role its steps recovered. */
  recovers: Record<string, string[]>;
}

export interface ReadinessInput {
  sites: Sites;
  /** Every job the policies and the inventory produce: a host without one has no backup. */
  jobs: BackupJob[];
  /** `backupStatus` rows of the jobs of the services' hosts. */
  backup: JobStatusRow[];
  /** The replication pairs of the services' hosts, as measured. */
  replicas: PairStatus[];
  drills: DrillRun[];
  /** Runbooks whose `service:` labels count even before they ran. */
  runbooks?: Runbook[];
  now: Date;
  /** The other sites as probed: one that does not answer turns each answer into "could it fail over now". */
  reach?: SiteReach[];
  /** The failover runbook the command should name, when not the default. */
  failoverRunbook?: string;
  /** This site's point-in-time archives as last measured here (backup/pitr.ts's record). */
  archives?: Pick<JudgedArchive, "host" | "latest">[];
}

const DAY_MS = 86_400_000;

/** Per service, the primary hosts that carry it: the inventory's, then what labelled steps recovered. */
export function serviceHosts(sites: Sites, drills: DrillRun[], runbooks: Runbook[] = []): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const add = (service: string, hosts: Iterable<string>) => {
    let set = out.get(service);
    if (!set) out.set(service, (set = new Set()));
    for (const h of hosts) set.add(h);
  };
  for (const h of sites.primary.hosts) if (h.role !== "backup") for (const s of h.services) add(s, [h.name]);
  for (const rb of runbooks) for (const [service, hosts] of Object.entries(plannedRecovers(rb, sites))) add(service, hosts);
  for (const d of towardsSecondary(drills)) {
    for (const m of d.measurements) add(m.service, []);
    for (const [service, hosts] of Object.entries(d.recovers)) add(service, hosts);
  }
  return out;
}

/** What each label of a runbook would recover, from its plan: restore sources, standbys' primaries, primary targets. */
function plannedRecovers(runbook: Runbook, sites: Sites): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const primary = new Set(sites.primary.hosts.map((h) => h.name));
  for (const p of planRunbook(runbook, sites)) {
    const service = p.step.service;
    if (service === undefined) continue;
    const from = typeof p.step.with.from === "string" ? p.step.with.from : undefined;
    const hosts = p.hosts.map((h) => (p.step.type === "restore-db" || p.step.type === "restore-pitr" ? (from ?? h.standbyFor ?? h.name) : h.site === "primary" ? h.name : h.standbyFor)).filter((n): n is string => n !== undefined && primary.has(n));
    out[service] = [...new Set([...(out[service] ?? []), ...hosts])];
  }
  return out;
}

const towardsSecondary = (drills: DrillRun[]): DrillRun[] => drills.filter((d) => d.to === "secondary");

export function readiness(input: ReadinessInput): ServiceReadiness[] {
  const { sites, now } = input;
  const byService = serviceHosts(sites, input.drills, input.runbooks);
  const primaryHost = new Map(sites.primary.hosts.map((h) => [h.name, h]));
  const pairs = replicationPairs(sites);
  const drills = towardsSecondary(input.drills).sort((a, b) => Date.parse(b.at) - Date.parse(a.at) || b.runId.localeCompare(a.runId));
  const out: ServiceReadiness[] = [];

  for (const [service, names] of byService) {
    const hosts = [...names].map((n) => primaryHost.get(n)).filter((h): h is Host => h !== undefined);
    const reasons: string[] = [];

    const unprotected = hosts.filter((h) => !input.jobs.some((j) => j.host === h.name));
    for (const h of unprotected) reasons.push(`no backup job for ${h.name} (its policy ${h.backupPolicy} has no source it runs)`);

    const brokenJobs = hosts.flatMap((h) => input.jobs.filter((j) => j.host === h.name)).flatMap((j) => brokenJob(j, input.backup.find((r) => r.job === j.id)));
    for (const b of brokenJobs) reasons.push(`backup ${b.job}: ${b.reason}`);

    const replicas = hosts.flatMap((h) => pairs.filter((p) => p.primary.name === h.name)).map((p) => replicaOf(p, input.replicas.find((s) => s.pair === p.name)));
    for (const r of replicas.filter((x) => !x.ok)) {
      reasons.push(
        r.health === "streaming"
          ? `replica ${r.standby} of ${r.primary} lags ${describeLag(r)}, over the RPO of ${formatAge(r.rpoSeconds / 60)}`
          : `replica ${r.standby} of ${r.primary} is ${r.health === "unknown" ? "not measured" : r.health}`,
      );
    }

    const standbyHosts = new Set<string>();
    let standbyCapacity = true;
    for (const h of hosts) {
      const takers = takeoverHosts(sites, h, service);
      for (const t of takers) standbyHosts.add(t.name);
      if (!takers.length) {
        standbyCapacity = false;
        reasons.push(`no secondary host to take over ${h.name} (no standbyFor: ${h.name}, no activeOnly ${h.role} host with ${h.services.includes(service) ? service : h.services.join("/") || "its services"})`);
      }
    }

    const touching = drills.map((d) => summaryFor(d, service, sites)).filter((s): s is DrillSummary => s !== undefined);
    const lastDrill = touching[0];
    const lastGoodDrill = touching.find(isGood);
    // A label no inventory host carries takes the tier its drills measured it against.
    const tiers = hosts.length ? hosts.map((h) => h.drTier) : (lastDrill?.tier === undefined ? [] : [lastDrill.tier]);
    const tier = tiers.length ? Math.min(...tiers) : undefined;
    const tierDef = tier === undefined ? undefined : (sites.primary.drTiers.find((t) => t.tier === tier) ?? sites.secondary.drTiers.find((t) => t.tier === tier));
    const drillEveryDays = tierDef?.drillEveryDays ?? DEFAULT_DRILL_EVERY_DAYS;
    const due = lastGoodDrill ? Date.parse(lastGoodDrill.at) + drillEveryDays * DAY_MS : undefined;
    const overdue = due === undefined || now.getTime() > due;

    if (!lastDrill) reasons.push("never drilled");
    else if (!isGood(lastDrill)) reasons.push(`last drill ${lastDrill.runId} (${day(lastDrill.at)}, ${lastDrill.status}) ${missed(lastDrill)}`);
    if (lastGoodDrill && overdue) reasons.push(`drill overdue: the last good one was ${day(lastGoodDrill.at)}, due again by ${day(new Date(due ?? 0).toISOString())} (every ${drillEveryDays} days)`);

    const r: ServiceReadiness = {
      service,
      ...(tier !== undefined ? { tier } : {}),
      hosts: hosts.map((h) => h.name),
      ready: reasons.length === 0,
      reasons,
      protection: { backupPolicy: unprotected.length === 0, replicas, standbyCapacity, standbyHosts: [...standbyHosts] },
      drillEveryDays,
      overdue,
      brokenJobs,
    };
    if (lastDrill) r.lastDrill = lastDrill;
    if (lastGoodDrill) r.lastGoodDrill = lastGoodDrill;
    const lost = input.reach?.find((x) => !x.reachable);
    if (lost) r.failoverNow = failoverNow(input, lost, service, hosts, tierDef?.rpoMinutes);
    if (due !== undefined) r.drillDueAt = new Date(due).toISOString();
    out.push(r);
  }
  return out.sort((a, b) => (a.tier ?? Infinity) - (b.tier ?? Infinity) || a.service.localeCompare(b.service));
}

function brokenJob(job: BackupJob, row: JobStatusRow | undefined): ServiceReadiness["brokenJobs"] {
  if (!row) return [{ job: job.id, state: "unknown", reason: "its status was not read" }];
  const out: ServiceReadiness["brokenJobs"] = [];
  if (row.state !== "ok") {
    const never = row.items.filter((i) => i.state === "none").map((i) => i.item);
    const late = row.items.filter((i) => i.state === "over-rpo").map((i) => `${i.item} ${formatAge(i.ageMinutes)} old`);
    const what =
      row.state === "unknown"
        ? `repository ${row.judgedBy ?? row.repository} could not be read${row.error ? `: ${row.error}` : ""}`
        : [never.length ? `never backed up: ${never.join(", ")}` : "", late.length ? `over its RPO of ${formatAge(row.rpoMinutes)}: ${late.join(", ")}` : ""].filter(Boolean).join("; ");
    out.push({ job: job.id, state: row.state, reason: what });
  }
  // Failover restores from the secondary's copies: one over the RPO there is a gap in protection, even when the
  // primary's repository is fresh.
  if (row.copyWarning) out.push({ job: job.id, state: "copy", reason: row.copyWarning });
  // A failed last run with older snapshots still within RPO: broken now, late soon.
  // A run that died (killed) counts as a failed one.
  if (row.lastRun?.startsWith("failed") || row.lastRun?.startsWith("killed")) out.push({ job: job.id, state: "failed", reason: `last run ${row.lastRun.split(" ")[0] ?? "failed"}${row.lastError ? `: ${row.lastError}` : ` (${row.lastRun})`}` });
  return out;
}

function failoverNow(input: ReadinessInput, lost: SiteReach, service: string, hosts: Host[], rpoTargetMinutes: number | undefined): FailoverNow {
  const lostSince = lost.unreachableSince ?? lost.probedAt;
  const base = { lost: lost.site, lostSince };
  if (lost.site !== "primary") {
    return { ...base, possible: false, blockers: [`the ${lost.site} site, where it would fail over to, is unreachable since ${lostSince}`], hosts: [] };
  }
  const lossAt = Date.parse(lostSince);
  const blockers: string[] = [];
  const pairs = replicationPairs(input.sites);
  const perHost = hosts.map((h) => {
    const takeover = takeoverHosts(input.sites, h, service).map((t) => t.name);
    if (!takeover.length) blockers.push(`no secondary host to take over ${h.name}`);
    const out: FailoverNow["hosts"][number] = { host: h.name, takeover };
    let best: number | undefined;
    for (const p of pairs.filter((x) => x.primary.name === h.name)) {
      const s = input.replicas.find((x) => x.pair === p.name);
      out.replica = p.name;
      // The standby answered and says how far behind it is: it holds everything up to then (never past the loss).
      if (s && s.health !== "unreachable" && s.health !== "not-a-replica" && s.lagSeconds !== undefined) {
        const upTo = Math.min(Date.parse(s.measuredAt) - s.lagSeconds * 1000, lossAt);
        out.replicaUpTo = new Date(upTo).toISOString();
        best = Math.max(best ?? upTo, upTo);
      }
    }
    const rows = input.jobs.filter((j) => j.host === h.name).map((j) => input.backup.find((r) => r.job === j.id));
    // A job's newest is its oldest item's newest: the point up to which all of the host's copy is whole.
    const copies = rows.map((r) => (r?.newest && r.state !== "unknown" ? Date.parse(r.newest.time) : undefined));
    if (copies.length && copies.every((c): c is number => c !== undefined)) {
      const upTo = Math.min(...copies, lossAt);
      out.copyUpTo = new Date(upTo).toISOString();
      best = Math.max(best ?? upTo, upTo);
    }
    const archived = input.archives?.find((a) => a.host === h.name)?.latest;
    if (archived) out.archiveUpTo = new Date(Math.min(Date.parse(archived), lossAt)).toISOString();
    if (best === undefined) blockers.push(`no data of ${h.name} at this site: no copy in its repository${out.replica ? `, and replica ${out.replica} did not say how far it is` : ""}`);
    return { out, best };
  });
  const bests = perHost.map((x) => x.best);
  const r: FailoverNow = { ...base, possible: blockers.length === 0, blockers, hosts: perHost.map((x) => x.out) };
  if (bests.length && bests.every((b): b is number => b !== undefined)) {
    const upTo = Math.min(...bests);
    r.dataUpTo = new Date(upTo).toISOString();
    r.rpoMinutes = Math.max(0, (lossAt - upTo) / 60_000);
    if (rpoTargetMinutes !== undefined) {
      r.rpoTargetMinutes = rpoTargetMinutes;
      r.rpoMet = r.rpoMinutes <= rpoTargetMinutes;
    }
  }
  if (r.possible) r.command = failoverCommand(lostSince, input.failoverRunbook);
  return r;
}

/** The command that fails over to this site, with the moment of the loss as the RPO's reference. */
export function failoverCommand(lostSince: string, runbook?: string): string {
  return `dcctl dr failover --to secondary --failed-at ${lostSince}${runbook ? ` --runbook ${quoteArg(runbook)}` : ""}`;
}

function replicaOf(pair: ReplicationPair, s: PairStatus | undefined): ReplicaReadiness {
  if (!s) return { standby: pair.standby.name, primary: pair.primary.name, health: "unknown", rpoSeconds: pair.rpoSeconds, ok: false };
  return {
    standby: pair.standby.name,
    primary: pair.primary.name,
    health: s.health,
    ...(s.lagSeconds !== undefined ? { lagSeconds: s.lagSeconds } : {}),
    rpoSeconds: s.rpoSeconds,
    ok: s.ok,
    measuredAt: s.measuredAt,
  };
}

/**
 * The secondary hosts that would take a primary host over: its warm standby (standbyFor), and the failover-only hosts
 * (activeOnly) of its role that carry the service — or, for a host a labelled step recovered, one of its services.
 */
function takeoverHosts(sites: Sites, host: Host, service: string): Host[] {
  const wanted = host.services.includes(service) ? [service] : host.services;
  return sites.secondary.hosts.filter((s) => s.standbyFor === host.name || (s.activeOnly && s.role === host.role && s.services.some((x) => wanted.includes(x))));
}

/** The run's measurements that touch the service, folded into one summary (the worst figure of each); none: undefined. */
function summaryFor(d: DrillRun, service: string, sites: Sites): DrillSummary | undefined {
  const carries = (name: string) => sites.primary.hosts.some((h) => h.name === name && h.services.includes(service));
  const ms = d.measurements.filter((m) => m.service === service || (d.recovers[m.service] ?? []).some(carries));
  if (!ms.length) return undefined;
  const worst = (f: (m: Measurement) => number | undefined) => {
    const v = ms.map(f).filter((x): x is number => x !== undefined);
    return v.length ? Math.max(...v) : undefined;
  };
  const tightest = (f: (m: Measurement) => number | undefined) => {
    const v = ms.map(f).filter((x): x is number => x !== undefined);
    return v.length ? Math.min(...v) : undefined;
  };
  // Met only when every touching measurement says so; one that could not tell leaves it untold.
  const all = (f: (m: Measurement) => boolean | undefined) => (ms.some((m) => f(m) === false) ? false : ms.every((m) => f(m) === true) ? true : undefined);
  const s: DrillSummary = { runId: d.runId, kind: d.kind, runbook: d.runbook, at: d.at, status: d.status, measurements: ms.map((m) => m.service), dir: d.dir };
  const fields: [keyof DrillSummary, number | boolean | undefined][] = [
    ["tier", tightest((m) => m.tier)],
    ["rpoMinutes", worst((m) => m.rpoMinutes)],
    ["rtoMinutes", worst((m) => m.rtoMinutes)],
    ["rpoTargetMinutes", tightest((m) => m.rpoTargetMinutes)],
    ["rtoTargetMinutes", tightest((m) => m.rtoTargetMinutes)],
    ["rpoMet", all((m) => m.rpoMet)],
    ["rtoMet", all((m) => m.rtoMet)],
  ];
  for (const [k, v] of fields) if (v !== undefined) Object.assign(s, { [k]: v });
  return s;
}

const isGood = (s: DrillSummary): boolean => s.rpoMet === true && s.rtoMet === true;

function missed(s: DrillSummary): string {
  const parts: string[] = [];
  for (const [what, v, target, met] of [
    ["RPO", s.rpoMinutes, s.rpoTargetMinutes, s.rpoMet],
    ["RTO", s.rtoMinutes, s.rtoTargetMinutes, s.rtoMet],
  ] as const) {
    if (met === false) parts.push(`missed ${what}: ${v ?? "?"} min > ${target ?? "?"} min target`);
    else if (met === undefined) parts.push(v === undefined ? `did not measure ${what}` : `has no ${what} target`);
  }
  return parts.join(", ");
}

const day = (iso: string): string => iso.slice(0, 10);

/**
 * The runs of the history as readiness reads them, newest first. Each run's report.json (rebuilt from its journal
 * when the run never got to write one) gives the measurements; the journal gives what each labelled step recovered.
 * A run still running is left out (its figures are not final), and so is one whose journal cannot be read.
 */
export function loadDrillRuns(sites: Sites, env: NodeJS.ProcessEnv = process.env, onNote: (line: string) => void = () => undefined): DrillRun[] {
  const out: DrillRun[] = [];
  for (const run of listRuns(env)) {
    const status = run.status;
    if (status === "running" || status === "unreadable") continue;
    try {
      out.push(drillRun({ ...run, status }, sites, env));
    } catch (e) {
      onNote(`note: DR run ${run.runId} is not counted: ${errorMessage(e)}`);
    }
  }
  return out;
}

function drillRun(run: RunSummary & { status: DrillSummary["status"] }, sites: Sites, env: NodeJS.ProcessEnv): DrillRun {
  let report: RunReport;
  try {
    report = JSON.parse(readFileSync(join(run.dir, "report.json"), "utf8")) as RunReport;
  } catch {
    report = buildReport(run.dir, loadRun(run.runId, sites, env).runbook, sites);
  }
  const results = replay(readJournal(join(run.dir, "journal.jsonl")).records).results;
  const primary = new Map(sites.primary.hosts.map((h) => [h.name, h]));
  const secondary = new Map(sites.secondary.hosts.map((h) => [h.name, h]));
  const recovers: Record<string, Set<string>> = {};
  for (const step of report.steps) {
    if (!step.service) continue;
    const set = (recovers[step.service] ??= new Set());
    const data = results.get(step.id)?.data;
    for (const r of (data?.restored as RestoredDatabase[] | undefined) ?? []) set.add(r.sourceHost);
    for (const r of (data?.recovered as RecoveredHost[] | undefined) ?? []) set.add(r.primary);
    for (const name of step.hosts) {
      if (primary.has(name)) set.add(name);
      const standbyFor = secondary.get(name)?.standbyFor;
      if (standbyFor !== undefined) set.add(standbyFor);
    }
  }
  return {
    runId: run.runId,
    runbook: report.runbook,
    kind: report.kind,
    to: report.to,
    at: report.startedAt || run.startedAt,
    status: run.status,
    dir: run.dir,
    measurements: report.measurements.services,
    recovers: Object.fromEntries(Object.entries(recovers).map(([k, v]) => [k, [...v].filter((n) => primary.has(n))])),
  };
}

export interface CollectOptions {
  sites: Sites;
  config: BackupConfig;
  /** Default: the jobs of the policies file and the inventory. */
  jobs?: BackupJob[];
  runbooks?: Runbook[];
  /** The runbooks as the operator named them: a failover one is named in the command to run. */
  runbookFiles?: { ref: string; runbook: Runbook }[];
  now?: Date;
  env?: NodeJS.ProcessEnv;
  /** Lines for the operator (runs not counted). */
  onNote?: (line: string) => void;
}

/**
 * Everything readiness needs, gathered at this site: the DR history of this machine, the backup status of the
 * services' hosts' jobs, and their replicas measured now with bounded probes (PROBE_TIMEOUT_MS each) and recorded as
 * `replication status` records them — a live figure, because the last-status.json of this site holds only what this
 * site last measured, which may be days old or empty (the drills run at the secondary, the backups at the primary).
 * A job whose repository this site has not configured is judged by its copies in this site's own repository (at the
 * secondary: what `backup replicate` brought, which is what a failover restores from).
 */
export async function collectReadinessInput(o: CollectOptions): Promise<{ input: ReadinessInput; reconciled: Reconciled[] }> {
  const { sites, config } = o;
  const now = o.now ?? new Date();
  const jobs = o.jobs ?? expandJobs(sites, loadPolicies());
  const drills = loadDrillRuns(sites, o.env, o.onNote);
  const hosts = new Set([...serviceHosts(sites, drills, o.runbooks).values()].flatMap((s) => [...s]));
  const mine = jobs.filter((j) => hosts.has(j.host)).map((j) => (config.repositories[j.repository] ? j : { ...j, repository: config.site }));
  const all = replicationPairs(sites);
  const pairs = all.filter((p) => hosts.has(p.primary.name));
  // The replicas, the other sites and (then) the repositories side by side: each bounded, none waits on another.
  const replicas = measurePairs(config, pairs, { record: true, known: all });
  replicas.catch(() => undefined);
  const others = await lookAtOtherSites(config, sites);
  const status = await backupStatus(mine, config, now, replicas, { reach: others.reach, peerRuns: others.peers.then((all) => all.map((p) => p.jobs)), sites });
  const failoverRunbook = o.runbookFiles?.find((f) => f.runbook.kind === "failover")?.ref;
  const input: ReadinessInput = { sites, jobs, backup: status.rows, replicas: await replicas, drills, ...(o.runbooks ? { runbooks: o.runbooks } : {}), now, reach: others.reach, ...(failoverRunbook ? { failoverRunbook } : {}), archives: readArchiveStatuses(config) };
  return { input, reconciled: status.reconciled };
}

/** The Prometheus textfile beside the backup metrics: config.metricsFile's folder, dcctl_dr.prom. */
export function readinessMetricsPath(config: Pick<BackupConfig, "metricsFile">): string {
  return join(dirname(config.metricsFile), "dcctl_dr.prom");
}

const METRICS: Gauge<ServiceReadiness>[] = [
  { name: "dcctl_dr_ready", help: "1 when the service is ready to fail over (dcctl dr readiness: protection, and a good drill within its cadence)", value: (s) => (s.ready ? 1 : 0) },
  { name: "dcctl_dr_last_drill_timestamp_seconds", help: "Unix time of the service's last drill that met its RPO and RTO; 0 when none has", value: (s) => (s.lastGoodDrill ? Date.parse(s.lastGoodDrill.at) / 1000 : 0) },
  { name: "dcctl_dr_drill_overdue", help: "1 when no drill met the service's targets within its tier's drillEveryDays", value: (s) => (s.overdue ? 1 : 0) },
];

export function renderReadinessMetrics(list: ServiceReadiness[], measuredAt: Date): string {
  const measured: Gauge<Date>[] = [{ name: "dcctl_dr_measured_timestamp_seconds", help: "When dcctl dr readiness last looked", value: (d) => d.getTime() / 1000 }];
  return [...renderGauges(METRICS, list, (s) => ({ service: s.service })), ...renderGauges(measured, [measuredAt], () => ({}))].join("\n") + "\n";
}

/** Rewrites dcctl_dr.prom atomically (the backup metrics' writer); returns its path. */
export function writeReadinessMetrics(config: Pick<BackupConfig, "metricsFile">, list: ServiceReadiness[], measuredAt: Date): string {
  const path = readinessMetricsPath(config);
  writeAtomic(path, renderReadinessMetrics(list, measuredAt));
  return path;
}

function drillText(s: DrillSummary | undefined): string {
  if (!s) return "-";
  const fig = (v: number | undefined, t: number | undefined) => `${v ?? "?"}/${t ?? "?"}`;
  return `${day(s.at)} RPO ${fig(s.rpoMinutes, s.rpoTargetMinutes)} RTO ${fig(s.rtoMinutes, s.rtoTargetMinutes)} min`;
}

function dueText(s: ServiceReadiness): string {
  if (!s.drillDueAt) return "OVERDUE (never)";
  return s.overdue ? `OVERDUE since ${day(s.drillDueAt)}` : day(s.drillDueAt);
}

/** The table `dcctl dr readiness` prints. */
export function readinessTable(list: ServiceReadiness[]): string {
  return textTable(
    ["SERVICE", "TIER", "READY", "LAST GOOD DRILL (RPO/RTO vs target)", "DRILL DUE", "REASONS"],
    list.map((s) => [s.service, s.tier === undefined ? "-" : String(s.tier), s.ready ? "yes" : "NO", drillText(s.lastGoodDrill), dueText(s), s.reasons.join("; ")]),
  );
}

/** "can fail over, RPO 2.1 min (target 15 min, met)" or "CANNOT fail over: …": a service's answer during an outage. */
export function failoverText(f: FailoverNow): string {
  if (!f.possible) return `CANNOT fail over: ${f.blockers.join("; ")}`;
  const rpo = f.rpoMinutes === undefined ? "RPO unknown" : `RPO ${f.rpoMinutes.toFixed(1)} min`;
  const target = f.rpoTargetMinutes === undefined ? "" : ` (target ${f.rpoTargetMinutes} min, ${f.rpoMet ? "met" : "MISSED"})`;
  return `can fail over, ${rpo}${target}`;
}

/** What a failover now would have of each host: "lab-db-01: replica to 02:00:11Z, copy to 01:05:00Z". */
export function failoverData(f: FailoverNow): string {
  return f.hosts
    .map((h) => `${h.host}: ${[h.replicaUpTo ? `replica ${h.replica ?? ""} complete to ${h.replicaUpTo}` : "", h.copyUpTo ? `newest copy ${h.copyUpTo}` : "", h.archiveUpTo ? `point-in-time archive to ${h.archiveUpTo} (dcctl restore --at)` : ""].filter(Boolean).join(", ") || "nothing here"}`)
    .join("; ");
}

/**
 * `dcctl dr readiness` while another site does not answer: a headline naming it and since when, the command to run,
 * then per service its answer now and the data it would have.
 */
export function outageReport(list: ServiceReadiness[], lost: SiteReach): string {
  const lines = [`${lost.site.toUpperCase()} SITE UNREACHABLE since ${lost.unreachableSince ?? lost.probedAt}: judged by what this site holds.`, `(${failedParts(lost) || "no part answered"})`];
  const command = list.map((s) => s.failoverNow?.command).find((c) => c !== undefined);
  if (command) lines.push(`To fail over, run at this site: ${command}`);
  lines.push(
    textTable(
      ["SERVICE", "TIER", "FAIL OVER NOW", "DATA IT WOULD HAVE"],
      list.map((s) => [s.service, s.tier === undefined ? "-" : String(s.tier), s.failoverNow ? failoverText(s.failoverNow) : "-", s.failoverNow ? failoverData(s.failoverNow) : "-"]),
    ),
  );
  return lines.join("\n");
}
