import { loadSites, type SiteName, type Sites, type SshEndpoint } from "../inventory/index.js";
import { InputError } from "../util/errors.js";
import { dumpSnapshotItem } from "../databases/registry.js";
import { FILES_TAG } from "./sources/files.js";
import type { KeepPolicy } from "../restic/index.js";
import type { AnomalySettings } from "./anomaly.js";
import { checkInventoryPolicies, loadPolicies, type Policies, type PitrPolicy, type RepositoryName, type SourceSpec } from "./policies.js";

/**
 * A backup job: one inventory host under its policy. The id `<host>/<policy>` is what schedulers pass to
 * `dcctl backup run --job`, what the run report and metrics are labelled with, and a tag on every snapshot.
 */
export interface BackupJob {
  id: string;
  host: string;
  site: SiteName;
  policy: string;
  ssh: SshEndpoint;
  /** The policy's sources that apply to this host: database sources only where `services` lists that server. */
  sources: SourceSpec[];
  repository: RepositoryName;
  schedule: string;
  retention: KeepPolicy;
  rpoMinutes: number;
  limitUploadKiB: number;
  randomizedDelaySec: number;
  stallMs: number;
  /** The policy's point-in-time archiving, for the host's database servers whose engine has it. */
  pitr?: PitrPolicy;
  /** How its snapshots are scored against their history (backup/anomaly.ts); the defaults when absent. */
  anomaly?: AnomalySettings;
  /** Prune never removes one of its snapshots younger than this at the site keeping it (policies.ts minAge). */
  minAgeMs: number;
  /** How late after its claimed time one of its snapshots can arrive and still be plausible (policies.ts arrivalLag). */
  arrivalLagMs: number;
}

/** The tags every snapshot of a job carries; `job:<id>` is how status and prune find a job's snapshots. */
export function jobTags(job: BackupJob): string[] {
  return ["dcctl", `job:${job.id}`];
}

/** The tag naming the run that made a snapshot: how a failed or interrupted run's leftovers are found. */
export function runTag(runId: string): string {
  return `run:${runId}`;
}

/** The run a snapshot's tags name (runTag), if any. */
export function runOfTags(tags: readonly string[] | undefined): string | undefined {
  return tags?.find((t) => t.startsWith("run:"))?.slice(4) || undefined;
}

/** The job a snapshot's tags name (`job:<id>`), if any. */
export function jobOfTags(tags: readonly string[] | undefined): string | undefined {
  return tags?.find((t) => t.startsWith("job:"))?.slice(4) || undefined;
}

/** The item of its job a snapshot belongs to, from the tags the sources give it: "files", or "<engine>/<database>". */
export function snapshotItem(tags: readonly string[]): string | undefined {
  if (tags.includes(FILES_TAG)) return "files";
  return dumpSnapshotItem(tags);
}

/**
 * Expands policies × inventory hosts into jobs, in inventory order. Hosts that exist only after a failover
 * (activeOnly) have no jobs: in normal operation there is nothing there to back up.
 * Throws InputError (file:line) for a policy the inventory names but the policies file does not define.
 */
export function expandJobs(sites: Sites, policies: Policies): BackupJob[] {
  const problems = checkInventoryPolicies(sites, policies);
  if (problems.length) throw new InputError(problems);
  const jobs: BackupJob[] = [];
  for (const site of [sites.primary, sites.secondary]) {
    for (const host of site.hosts) {
      if (host.activeOnly) continue;
      const policy = policies.policies.get(host.backupPolicy);
      if (!policy) continue;
      const sources = policy.sources.filter((s) => s.kind === "files" || host.services.includes(s.kind));
      if (sources.length === 0) continue;
      jobs.push({
        id: `${host.name}/${policy.name}`,
        host: host.name,
        site: site.site,
        policy: policy.name,
        ssh: { ...host.ssh },
        sources,
        repository: policy.repository,
        schedule: policy.schedule,
        retention: { ...policy.retention },
        rpoMinutes: policy.rpoMinutes,
        limitUploadKiB: policy.limitUploadKiB,
        randomizedDelaySec: policy.randomizedDelaySec,
        stallMs: policy.stallMs,
        ...(policy.pitr ? { pitr: policy.pitr } : {}),
        anomaly: policy.anomaly,
        minAgeMs: policy.minAgeMs,
        arrivalLagMs: policy.arrivalLagMs ?? policies.defaultArrivalLagMs,
      });
    }
  }
  return jobs;
}

/** Jobs from the default (or $DCCTL_SITES_DIR / $DCCTL_POLICIES_FILE) inventory and policies. */
export function loadJobs(): BackupJob[] {
  return expandJobs(loadSites(), loadPolicies());
}

/**
 * The jobs a `--job`/`--all`/`--site` selection names. `--job` takes a job id or a host name (a host has one job).
 * An unknown name is bad input, with the closest ids suggested by the caller's listing.
 */
export function selectJobs(jobs: BackupJob[], sel: { job?: string; all?: boolean; site?: SiteName; host?: string }): BackupJob[] {
  let chosen = jobs;
  if (sel.site) chosen = chosen.filter((j) => j.site === sel.site);
  if (sel.host) chosen = chosen.filter((j) => j.host === sel.host);
  if (sel.job !== undefined) {
    const id = sel.job;
    chosen = chosen.filter((j) => j.id === id || j.host === id);
    if (chosen.length === 0) {
      throw new InputError([`dcctl backup: no job "${id}"${sel.site ? ` at site ${sel.site}` : ""} (see dcctl backup jobs)`]);
    }
  } else if (!sel.all && !sel.site && !sel.host) {
    throw new InputError(["dcctl backup: name a job with --job, or use --all"]);
  }
  return chosen;
}
