import type { NotifyResult } from "../notify/index.js";
import { errorMessage } from "../util/errors.js";
import { keepsLedger, listJudged } from "./arrival-ledger.js";
import { limitsOf, type BackupConfig } from "./repositories.js";
import { REPOSITORY_NAMES, type RepositoryName } from "./policies.js";
import type { JobResult } from "./report.js";
import { runLookup } from "./run-evidence.js";
import { distrustedRow, isTrusted, type DistrustedSnapshot } from "./trust.js";

/**
 * A backup run's own snapshots, judged as soon as the run has recorded them: the repository this site keeps is
 * listed once more, so its arrival ledger judges the newcomers there and then — plausible (trust.ts) and not
 * suspicious (anomaly.ts, against the job's history) — and a snapshot that fails is told at once on the `failure`
 * channel and to the SOC (arrival-ledger.ts does both, once per snapshot), not at whatever listing comes next. Only
 * this site's records are read for the run check: the run's own are here, and a newcomer of another site's run stays
 * pending until a view that reads that site's records (status, prune) — a backup never waits on the WAN for it. A
 * repository another site keeps is judged there, at its next listing.
 */

export interface RunJudgement {
  /** The run's snapshots this site does not trust, with why. */
  distrusted: DistrustedSnapshot[];
  /** What could not be judged now, one line each. */
  notes: string[];
  /** How telling the site's channels of them went (arrival-ledger.ts tells each once). */
  notified: NotifyResult[];
}

/** `stalled`: repositories a job of the run stalled on, not listed again now (the listing would wait out its limit). */
export async function judgeRunSnapshots(config: BackupConfig, results: readonly JobResult[], o: { signal?: AbortSignal; stalled?: readonly RepositoryName[] } = {}): Promise<RunJudgement> {
  const made = new Map<RepositoryName, Set<string>>();
  for (const r of results) {
    const name = REPOSITORY_NAMES.find((n) => n === r.repository);
    if (!name || !r.snapshots.length) continue;
    const ids = made.get(name) ?? new Set<string>();
    for (const id of r.snapshots) ids.add(id);
    made.set(name, ids);
  }
  const out: RunJudgement = { distrusted: [], notes: [], notified: [] };
  for (const [name, ids] of made) {
    if (o.stalled?.includes(name)) {
      out.notes.push(`repository ${name} stalled in this run: its ${ids.size} new snapshot${ids.size === 1 ? " is" : "s are"} judged at its next listing`);
      continue;
    }
    if (!keepsLedger(config, name)) {
      out.notes.push(`repository ${name}: its ${ids.size} new snapshot${ids.size === 1 ? " is" : "s are"} judged by the ${config.repositories[name]?.owner ?? name} site, which keeps it, at its next listing`);
      continue;
    }
    try {
      const listing = await listJudged(config, name, { runs: runLookup(config), timeoutMs: limitsOf(config).listingMs, onNotified: (r) => out.notified.push(...r), ...(o.signal ? { signal: o.signal } : {}) });
      if (!listing.byArrival) {
        out.notes.push(`repository ${name}: the new snapshots were not judged: ${listing.ledgerError ?? "no arrival ledger"}`);
        continue;
      }
      for (const s of listing.snapshots) if (ids.has(s.id) && !isTrusted(s)) out.distrusted.push(distrustedRow(name, s));
    } catch (e) {
      out.notes.push(`repository ${name}: the new snapshots were not judged (the next listing will): ${errorMessage(e)}`);
    }
  }
  return out;
}
