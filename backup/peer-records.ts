import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { SiteName, Sites } from "../inventory/index.js";
import { errorMessage } from "../util/errors.js";
import { writeAtomic } from "../util/files.js";
import { REPOSITORY_NAMES, type RepositoryName } from "./policies.js";
import type { BackupConfig } from "./repositories.js";
import { runReportFile, type JobState, type MetricsState } from "./report.js";
import { runLedgerFile } from "./run-ledger.js";
import { describeUnreachable, probeSites, type SiteReach } from "./reachability.js";
import { connectHost } from "../hosts/index.js";
import { backupStatePaths } from "./run.js";
import { lastVerify, verifyRecordPath, type VerifyRecord } from "./verify-record.js";

/**
 * What the other site's control plane recorded: the last run of each job it runs and the last verify (with the size)
 * of each repository it checked. Runs and verifies are recorded where they ran; a duty officer at either site needs
 * both, so each view reads the other site's records from its management host over SSH, within a few seconds, and
 * keeps the last copy it read (`<stateDir>/peers/<site>.json`): while that site is lost its last records are still
 * shown, with when they were read.
 */

export interface PeerRecords {
  site: SiteName;
  /** When they were read from the site (ISO). */
  readAt: string;
  jobs: MetricsState;
  verify: Partial<Record<RepositoryName, VerifyRecord>>;
}

/** Where a site keeps its state on its management host: repositories.yaml `peers.<site>.stateDir`, else as here. */
function peerStateDir(config: BackupConfig, site: SiteName): string {
  return config.peers?.[site]?.stateDir ?? config.stateDir;
}

function cachePath(config: Pick<BackupConfig, "stateDir">, site: SiteName): string {
  return join(config.stateDir, "peers", `${site}.json`);
}

/** The records last read from a site, if any. */
export function cachedPeerRecords(config: Pick<BackupConfig, "stateDir">, site: SiteName): PeerRecords | undefined {
  try {
    const r = JSON.parse(readFileSync(cachePath(config, site), "utf8")) as Partial<PeerRecords>;
    return r.site === site && typeof r.readAt === "string" && r.jobs && r.verify ? (r as PeerRecords) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads a site's records from its management host (the inventory's backup host there) within `ms`. A file that is not
 * there is an empty record; a host that does not answer throws (the caller shows the cached copy).
 */
export async function readPeerRecords(config: BackupConfig, sites: Sites, site: SiteName, ms: number, now: () => Date = () => new Date()): Promise<PeerRecords> {
  const host = sites[site].hosts.find((h) => h.role === "backup");
  if (!host) throw new Error(`the ${site} site has no management host (role: backup) in the inventory`);
  const dir = peerStateDir(config, site);
  const exec = connectHost(host, config);
  try {
    const read = async (path: string): Promise<unknown> => {
      const res = await exec.run(["cat", "--", path], { timeoutMs: ms });
      if (res.code !== 0) return undefined;
      try {
        return JSON.parse(res.stdout) as unknown;
      } catch {
        return undefined;
      }
    };
    const paths = backupStatePaths({ ...config, stateDir: dir });
    const [jobs, ...verifies] = await Promise.all([read(paths.stateFile), ...REPOSITORY_NAMES.map((r) => read(verifyRecordPath({ stateDir: dir }, r)))]);
    const verify: PeerRecords["verify"] = {};
    REPOSITORY_NAMES.forEach((name, i) => {
      const v = verifies[i] as Partial<VerifyRecord> | undefined;
      if (v && typeof v.at === "string" && typeof v.ok === "boolean" && v.repository === name) verify[name] = v as VerifyRecord;
    });
    const records: PeerRecords = { site, readAt: now().toISOString(), jobs: isJobs(jobs) ? jobs : {}, verify };
    try {
      writeAtomic(cachePath(config, site), JSON.stringify(records) + "\n");
    } catch {
      // Without a cache, an outage shows no records of the lost site; this reading is still good.
    }
    return records;
  } finally {
    await exec.close().catch(() => undefined);
  }
}

/**
 * What a site's records say of some backup runs: for each run id, the text of its report and of its ledger (while it
 * runs) as they are on that site's management host, "" when it has neither. Read over one SSH connection within `ms`;
 * a host that does not answer throws. The ids must be run ids (run-evidence.ts checks them): they become file names.
 */
export async function readPeerRunRecords(config: BackupConfig, sites: Sites, site: SiteName, runIds: readonly string[], ms: number): Promise<Map<string, string>> {
  const host = sites[site].hosts.find((h) => h.role === "backup");
  if (!host) throw new Error(`the ${site} site has no management host (role: backup) in the inventory`);
  const dir = { ...config, stateDir: peerStateDir(config, site) };
  const exec = connectHost(host, config);
  const deadline = Date.now() + ms;
  try {
    const out = new Map<string, string>();
    for (const run of runIds) {
      // cat says which of the two is missing on stderr and exits 1; what it printed of the other is what counts.
      const res = await exec.run(["cat", "--", runReportFile(backupStatePaths(dir).reportsDir, run), runLedgerFile(dir, run)], { timeoutMs: Math.max(1000, deadline - Date.now()) });
      out.set(run, res.stdout);
    }
    return out;
  } finally {
    await exec.close().catch(() => undefined);
  }
}

function isJobs(x: unknown): x is MetricsState {
  return typeof x === "object" && x !== null && Object.values(x).every((v) => typeof v === "object" && v !== null && typeof (v as Partial<JobState>).last?.finishedAt === "string");
}

/** Each job's newest last run of these states (this site's first when they finished at the same moment). */
export function newestRuns(states: MetricsState[]): MetricsState {
  const out: MetricsState = {};
  for (const state of states) {
    for (const [job, s] of Object.entries(state)) {
      const had = out[job];
      if (!had || Date.parse(s.last.finishedAt) > Date.parse(had.last.finishedAt)) out[job] = s;
    }
  }
  return out;
}

/** A repository's newest verify: this machine's or one the other sites recorded. */
export function newestVerify(config: Pick<BackupConfig, "stateDir">, name: RepositoryName, peers: PeerRecords[]): VerifyRecord | undefined {
  const all = [lastVerify(config, name), ...peers.map((p) => p.verify[name])].filter((v): v is VerifyRecord => v !== undefined);
  return all.sort((a, b) => Date.parse(b.at) - Date.parse(a.at))[0];
}

/** How long reading another site's records may take, once it answered the probe (beside the listings, not before). */
export const PEER_READ_MS = 15_000;

export interface OtherSites {
  /** Each other site, as just probed. */
  reach: SiteReach[];
  /**
   * Their records: read now from the sites that answer, the last copy of those that do not (with `error`); a promise,
   * so that a view reads them beside its listings.
   */
  peers: Promise<(PeerRecords & { error?: string })[]>;
}

/**
 * What every view asks first: which other sites answer (bounded, at once), then what those that do recorded. `probed`:
 * a probe just made (the console's background one), not made again.
 */
export async function lookAtOtherSites(config: BackupConfig, sites: Sites, probed?: SiteReach[]): Promise<OtherSites> {
  const reach = probed ?? (await probeSites(config, sites));
  const peers = Promise.all(
    reach.map(async (r): Promise<(PeerRecords & { error?: string }) | undefined> => {
      if (r.reachable) {
        try {
          return await readPeerRecords(config, sites, r.site, PEER_READ_MS);
        } catch (e) {
          const cached = cachedPeerRecords(config, r.site);
          return cached ? { ...cached, error: errorMessage(e) } : undefined;
        }
      }
      const cached = cachedPeerRecords(config, r.site);
      return cached ? { ...cached, error: describeUnreachable(r) } : undefined;
    }),
  );
  return { reach, peers: peers.then((all) => all.filter((p): p is PeerRecords & { error?: string } => p !== undefined)) };
}
