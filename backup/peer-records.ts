import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { SiteName, Sites } from "../inventory/index.js";
import { errorMessage } from "../util/errors.js";
import { writeAtomic } from "../util/files.js";
import { REPOSITORY_NAMES, type RepositoryName } from "./policies.js";
import type { BackupConfig } from "./repositories.js";
import type { JobState, MetricsState } from "./report.js";
import { answerPeerRequest, MAX_RUNS_PER_REQUEST, peerRequestArgv, type PeerRequest, type RecordsAnswer, type RunsAnswer } from "./peer-access.js";
import { describeUnreachable, probeSites, type SiteReach } from "./reachability.js";
import { connectHost } from "../hosts/index.js";
import { lastVerify, type VerifyRecord } from "./verify-record.js";
import { lastLine } from "../util/process.js";

/**
 * What the other site's control plane recorded: the last run of each job it runs and the last verify (with the size)
 * of each repository it checked. Runs and verifies are recorded where they ran; a duty officer at either site needs
 * both, so each view reads the other site's records from its management host over SSH (with a key that can do
 * nothing else there: peer-access.ts), within a few seconds, and keeps the last copy it read
 * (`<stateDir>/peers/<site>.json`): while that site is lost its last records are still shown, with when they were
 * read.
 */

export interface PeerRecords {
  site: SiteName;
  /** When they were read from the site (ISO). */
  readAt: string;
  jobs: MetricsState;
  verify: Partial<Record<RepositoryName, VerifyRecord>>;
}

/**
 * Where a site keeps its state when its management host is this machine: repositories.yaml `peers.<site>.stateDir`,
 * else as here. Over SSH the other host's forced command names its own (peer-access.ts).
 */
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
 * Asks a site's management host (the inventory's backup host there) for its records within `ms`: over SSH, where the
 * key this site holds runs nothing but `dcctl peer-records serve` (peer-access.ts); read here when that host is this
 * machine. A host that does not answer, or refuses, throws.
 */
async function askPeer<R>(config: BackupConfig, sites: Sites, site: SiteName, req: PeerRequest, ms: number): Promise<R> {
  const host = sites[site].hosts.find((h) => h.role === "backup");
  if (!host) throw new Error(`the ${site} site has no management host (role: backup) in the inventory`);
  if (config.localHosts.includes(host.name)) return answerPeerRequest(peerStateDir(config, site), req) as R;
  const exec = connectHost(host, config);
  try {
    const res = await exec.run(peerRequestArgv(req), { timeoutMs: ms });
    if (res.code !== 0) throw new Error(`${host.name} did not give its records (${lastLine(res.stderr) || `exit ${res.code}`})`);
    try {
      return JSON.parse(res.stdout) as R;
    } catch {
      throw new Error(`${host.name} answered with something other than its records: ${JSON.stringify(res.stdout.slice(0, 80))}`);
    }
  } finally {
    await exec.close().catch(() => undefined);
  }
}

function parsed(text: string | null | undefined): unknown {
  if (typeof text !== "string") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Reads a site's records from its management host within `ms`. A file that is not there is an empty record; a host
 * that does not answer throws (the caller shows the cached copy).
 */
export async function readPeerRecords(config: BackupConfig, sites: Sites, site: SiteName, ms: number, now: () => Date = () => new Date()): Promise<PeerRecords> {
  const answer = await askPeer<Partial<RecordsAnswer>>(config, sites, site, { kind: "records" }, ms);
  const jobs = parsed(answer.jobState);
  const verify: PeerRecords["verify"] = {};
  for (const name of REPOSITORY_NAMES) {
    const v = parsed(answer.verify?.[name]) as Partial<VerifyRecord> | undefined;
    if (v && typeof v.at === "string" && typeof v.ok === "boolean" && v.repository === name) verify[name] = v as VerifyRecord;
  }
  const records: PeerRecords = { site, readAt: now().toISOString(), jobs: isJobs(jobs) ? jobs : {}, verify };
  try {
    writeAtomic(cachePath(config, site), JSON.stringify(records) + "\n");
  } catch {
    // Without a cache, an outage shows no records of the lost site; this reading is still good.
  }
  return records;
}

/**
 * What a site's records say of some backup runs: for each run id, the text of its report and of its ledger (while it
 * runs) as they are on that site's management host, "" when it has neither. Asked in batches within `ms` in all; a
 * host that does not answer throws. The ids must be run ids (run-evidence.ts checks them; the other side refuses
 * anything else).
 */
export async function readPeerRunRecords(config: BackupConfig, sites: Sites, site: SiteName, runIds: readonly string[], ms: number): Promise<Map<string, string>> {
  const deadline = Date.now() + ms;
  const out = new Map<string, string>();
  for (let i = 0; i < runIds.length; i += MAX_RUNS_PER_REQUEST) {
    const batch = runIds.slice(i, i + MAX_RUNS_PER_REQUEST);
    const answer = await askPeer<Partial<RunsAnswer>>(config, sites, site, { kind: "runs", runIds: [...batch] }, Math.max(1000, deadline - Date.now()));
    for (const run of batch) out.set(run, typeof answer[run] === "string" ? answer[run] : "");
  }
  return out;
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
