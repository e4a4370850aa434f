import type { Sites } from "../../inventory/index.js";
import type { JournalRecord } from "./journal.js";
import type { PlannedStep } from "./model.js";
import type { Replay } from "./replay.js";
import type { PointInTimeRecovered, RecoveredHost, RestoredDatabase } from "./steps/types.js";
import type { DataLoss } from "./steps/data-loss.js";
import { failureReference } from "./failure.js";
import type { DivergedWrites } from "../../databases/replication.js";

/**
 * RPO and RTO as a run measured them, per service (the steps' `service:` labels) and overall:
 *  - RPO: how much data was lost — the failure (failure.ts: the operator's time, else the first unanswered probe of a
 *    primary, else the run's start) minus the time the recovered data is complete up to:
 *    a restored snapshot's time, or for a promoted replica the moment it last had everything (its lag at the failure);
 *  - RTO: how long service was away — the run's start until the last verify step that passed.
 * Each is compared with the targets of the strictest DR tier among the hosts the service's steps address.
 */
export interface Measurement {
  service: string;
  tier?: number;
  rpoMinutes?: number;
  rpoTargetMinutes?: number;
  rtoMinutes?: number;
  rtoTargetMinutes?: number;
  rpoMet?: boolean;
  rtoMet?: boolean;
  /** What a `data-loss` step measured: the writes missing at the target, in minutes and (when countable) records. */
  measuredLossMinutes?: number;
  lostRecords?: number;
  /**
   * Writes a `reprotect` step discarded (a former primary's, past the fork, as told by --discard-diverged): how many,
   * the first and last commit time, and where each kept copy is.
   */
  discardedWrites?: number;
  discardedFrom?: string;
  discardedTo?: string;
  discardedKept?: string[];
}

const minutes = (ms: number) => Math.round((ms / 60_000) * 100) / 100;

export function measure(planned: PlannedStep[], state: Replay, records: JournalRecord[], sites: Sites, to: "primary" | "secondary"): { overall: Measurement; services: Measurement[] } {
  const failedAt = Date.parse(failureReference(records).at);
  const startedAt = Date.parse(state.start.at);
  const endAt = new Map<string, number>();
  for (const r of records) if (r.type === "step-end" && r.status === "ok") endAt.set(r.step, Date.parse(r.at));

  const one = (service: string, steps: PlannedStep[]): Measurement => {
    // A service's tier is its data's: a restore into a restore-test server serves the tier of the host it came from.
    const tiers = steps.flatMap((p) => {
      const data = state.results.get(p.step.id)?.data;
      const sources = [
        ...((data?.restored as RestoredDatabase[] | undefined) ?? []).map((r) => r.sourceHost),
        ...((data?.recovered as RecoveredHost[] | undefined) ?? []).map((r) => r.primary),
        ...((data?.pointInTime as PointInTimeRecovered[] | undefined) ?? []).map((r) => r.sourceHost),
      ];
      const known = sources.flatMap((name) => [...sites.primary.hosts, ...sites.secondary.hosts].filter((h) => h.name === name).map((h) => h.drTier));
      return known.length ? known : p.hosts.map((h) => h.drTier);
    });
    const tier = tiers.length ? Math.min(...tiers) : undefined;
    const target = tier === undefined ? undefined : (sites[to].drTiers.find((t) => t.tier === tier) ?? sites.primary.drTiers.find((t) => t.tier === tier));
    const recovering = steps.filter((p) => p.step.type === "restore-db" || p.step.type === "promote");
    const restored = recovering.flatMap((p) => (state.results.get(p.step.id)?.data.restored as RestoredDatabase[] | undefined) ?? []);
    const promoted = recovering
      .flatMap((p) => (state.results.get(p.step.id)?.data.recovered as RecoveredHost[] | undefined) ?? [])
      .filter((r): r is RecoveredHost & { dataAsOf: string } => r.path === "promoted" && r.dataAsOf !== undefined);
    const verifies = steps.filter((p) => p.step.type === "verify" && endAt.has(p.step.id)).map((p) => endAt.get(p.step.id) ?? 0);
    const m: Measurement = { service, ...(tier !== undefined ? { tier } : {}) };
    // A snapshot taken after the reference time (a failback backs up the secondary once its writers stopped, within
    // the run) lost nothing: 0, not a negative RPO.
    const asOf = [...restored.map((r) => r.snapshotTime), ...promoted.map((r) => r.dataAsOf)];
    if (asOf.length) m.rpoMinutes = minutes(Math.max(0, ...asOf.map((t) => failedAt - Date.parse(t))));
    if (verifies.length) m.rtoMinutes = minutes(Math.max(...verifies) - startedAt);
    const losses = steps.filter((p) => p.step.type === "data-loss").flatMap((p) => (state.results.get(p.step.id)?.data.dataLoss as DataLoss[] | undefined) ?? []);
    if (losses.length) {
      m.measuredLossMinutes = minutes(Math.max(...losses.map((l) => l.lostMs)));
      const counted = losses.filter((l) => l.lostRecords !== undefined).map((l) => l.lostRecords ?? 0);
      if (counted.length) m.lostRecords = Math.max(...counted);
    }
    Object.assign(m, discardedBy(steps, state));
    if (target) {
      m.rpoTargetMinutes = target.rpoMinutes;
      m.rtoTargetMinutes = target.rtoMinutes;
      if (m.rpoMinutes !== undefined) m.rpoMet = m.rpoMinutes <= target.rpoMinutes;
      if (m.rtoMinutes !== undefined) m.rtoMet = m.rtoMinutes <= target.rtoMinutes;
    }
    return m;
  };

  const labels = [...new Set(planned.map((p) => p.step.service).filter((s): s is string => s !== undefined))];
  const services = labels.map((s) => one(s, planned.filter((p) => p.step.service === s)));
  const overall = { ...one("overall", planned.filter((p) => p.step.type === "restore-db" || p.step.type === "promote" || p.step.type === "verify")), ...discardedBy(planned, state) };
  return { overall, services };
}

/** What the reprotect steps among `steps` discarded, summed. */
function discardedBy(steps: PlannedStep[], state: Replay): Pick<Measurement, "discardedWrites" | "discardedFrom" | "discardedTo" | "discardedKept"> {
  const d = steps.filter((p) => p.step.type === "reprotect").flatMap((p) => (state.results.get(p.step.id)?.data.diverged as DivergedWrites[] | undefined) ?? []);
  if (!d.length) return {};
  const from = d.map((x) => x.firstAt).filter((x): x is string => x !== undefined).sort();
  const to = d.map((x) => x.lastAt).filter((x): x is string => x !== undefined).sort();
  return {
    discardedWrites: d.reduce((n, x) => n + x.writes, 0),
    ...(from[0] ? { discardedFrom: from[0] } : {}),
    ...(to.length ? { discardedTo: to[to.length - 1] } : {}),
    discardedKept: d.map((x) => x.kept),
  };
}
