import { readFileSync } from "node:fs";
import type { Sites } from "../inventory/index.js";
import { errorMessage } from "../util/errors.js";
import { PEER_READ_MS, readPeerRunRecords } from "./peer-records.js";
import { otherSites, type SiteReach } from "./reachability.js";
import { runReportFile } from "./report.js";
import type { BackupConfig } from "./repositories.js";
import { RUN_ID, runLedgerFile } from "./run-ledger.js";
import { backupStatePaths } from "./state-paths.js";
import type { RunEvidence } from "./trust.js";

/**
 * Which snapshots a backup run made, by its records: its report (`reports/run-<id>.jsonl`, the snapshots of each
 * job), or while it runs its ledger (`runs/<id>.jsonl`, each snapshot it accepted). A run is recorded where it ran:
 * this site's records are read from disk, the other sites' from their management hosts (peer-records.ts), only those
 * that answer (reachability.ts). This is what the "no-run" rule of trust.ts asks.
 *
 * The records are as good as the site that keeps them: an intruder with root at the primary can write a run's
 * report naming the snapshot they forged, and then this check passes (docs/operator/threat-model.md).
 */

/** The evidence in a report's and a ledger's lines of one run; undefined when there are none. */
export function evidenceOf(text: string, where: string): RunEvidence | undefined {
  const snapshots = new Set<string>();
  let report = false;
  let ledger = false;
  let ended = false;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    let l: { type?: unknown; snapshots?: unknown; snapshot?: unknown; result?: { snapshots?: unknown } };
    try {
      l = JSON.parse(line) as typeof l;
    } catch {
      continue;
    }
    const add = (ids: unknown) => {
      if (Array.isArray(ids)) for (const id of ids) if (typeof id === "string") snapshots.add(id);
    };
    if (l.type === "run") report = true;
    else if (l.type === "job") add(l.snapshots);
    else if (l.type === "start") ledger = true;
    else if (l.type === "accepted" && typeof l.snapshot === "string") snapshots.add(l.snapshot);
    else if (l.type === "finished") add(l.result?.snapshots);
    else if (l.type === "recorded") ended = true;
  }
  if (!report && !ledger) return undefined;
  return { found: true, snapshots, complete: report || ended, where };
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

export interface RunLookupOptions {
  /** The inventory, to reach the other sites' management hosts; without it only this site's records are read. */
  sites?: Sites;
  /** The other sites as just probed: one that does not answer is not asked (its runs stay unknown, not absent). */
  reach?: SiteReach[];
  ms?: number;
}

/** A lookup of runs' records, for ArrivalContext.runs. */
export type RunLookup = (runIds: readonly string[]) => Promise<Map<string, RunEvidence>>;

/** Looks runs up in this site's records, then in those of every other site that answers. */
export function runLookup(config: BackupConfig, o: RunLookupOptions = {}): RunLookup {
  return async (runIds) => {
    const out = new Map<string, RunEvidence>();
    const missing: string[] = [];
    for (const run of new Set(runIds)) {
      if (!RUN_ID.test(run)) {
        out.set(run, { found: false, definitive: true, where: "not the form of a dcctl run id" });
        continue;
      }
      const own = evidenceOf(readText(runReportFile(backupStatePaths(config).reportsDir, run)) + "\n" + readText(runLedgerFile(config, run)), `this site's records`);
      if (own) out.set(run, own);
      else missing.push(run);
    }
    if (!missing.length) return out;
    const others = otherSites(config);
    const read: string[] = [];
    const unread: string[] = [];
    await Promise.all(
      others.map(async (site) => {
        const reach = o.reach?.find((r) => r.site === site);
        if (!o.sites || (reach && !reach.reachable)) {
          unread.push(`the ${site} site's records not read${reach ? ": it does not answer" : ""}`);
          return;
        }
        try {
          const texts = await readPeerRunRecords(config, o.sites, site, missing, o.ms ?? PEER_READ_MS);
          read.push(site);
          for (const run of missing) {
            const ev = evidenceOf(texts.get(run) ?? "", `the ${site} site's records`);
            if (ev && !out.get(run)?.found) out.set(run, ev);
          }
        } catch (e) {
          unread.push(`the ${site} site's records not read: ${errorMessage(e)}`);
        }
      }),
    );
    const where = [`this site's records${read.length ? `, the ${read.join(" and ")} site's` : ""}`, ...unread].join("; ");
    for (const run of missing) if (!out.has(run)) out.set(run, { found: false, definitive: unread.length === 0, where });
    return out;
  };
}
