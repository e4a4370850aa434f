import { readFileSync } from "node:fs";
import { join } from "node:path";
import { errorMessage } from "../util/errors.js";
import { withLock } from "../util/lock.js";
import type { RepositoryName } from "./policies.js";
import { writeAtomic } from "../util/files.js";
import { limitsOf, resticFor, type BackupConfig } from "./repositories.js";
import type { CheckSummary } from "../restic/index.js";
import { backupStatePaths } from "./run.js";

/**
 * `dcctl backup verify` and what it leaves behind: `<stateDir>/backup/verify/<repository>.json`, the outcome of the
 * last `restic check` of each repository, so that the console and auditors can say when a repository was last proven
 * readable without running a check themselves.
 */
export interface VerifyRecord {
  repository: RepositoryName;
  /** When the check ended (ISO). */
  at: string;
  /** restic check found no error. */
  ok: boolean;
  /** restic --read-data-subset, when part of the data was read back. */
  subset?: string;
  /** Why the check failed; or, after a good check, why the size could not be measured. */
  message?: string;
  /** `restic stats --mode raw-data` total_size: the bytes the repository holds, after deduplication and compression. */
  sizeBytes?: number;
  /** Snapshots in the repository, from the same stats. */
  snapshots?: number;
  durationSeconds: number;
}

export function verifyRecordPath(config: Pick<BackupConfig, "stateDir">, repository: RepositoryName): string {
  return join(config.stateDir, "backup", "verify", `${repository}.json`);
}

/** The last verify of a repository from this machine; undefined when there is none (or it cannot be read). */
export function lastVerify(config: Pick<BackupConfig, "stateDir">, repository: RepositoryName): VerifyRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(verifyRecordPath(config, repository), "utf8")) as Partial<VerifyRecord>;
    // A record another version wrote, or a hand-edited one, is no proof: better none than a wrong "ok".
    return typeof r.at === "string" && typeof r.ok === "boolean" && r.repository === repository ? (r as VerifyRecord) : undefined;
  } catch {
    return undefined;
  }
}

export interface VerifyOutcome {
  summary?: CheckSummary;
  record: VerifyRecord;
}

/**
 * restic check of one repository under a shared lock (backups may go on; prune may not), then its size; records the
 * outcome either way and throws restic's error after recording a failed check. A lock that cannot be had records
 * nothing: no check ran. The check and the size together are bounded by limits.verify (restic check --json shows no
 * progress to judge a stall by).
 */
export async function verifyRepository(config: BackupConfig, name: RepositoryName, opts: { subset?: string; waitMs?: number; now?: () => Date; signal?: AbortSignal } = {}): Promise<VerifyOutcome> {
  const now = opts.now ?? (() => new Date());
  const restic = resticFor(config, name, { signal: opts.signal });
  const limitMs = limitsOf(config).verifyMs;
  const setting = `limits.verify in ${config.file}`;
  const { locksDir } = backupStatePaths(config);
  return withLock(locksDir, `repo-${name}`, { mode: "shared", waitMs: opts.waitMs ?? 0, what: `repository ${name}` }, async () => {
    const started = now();
    const base = { repository: name, ...(opts.subset ? { subset: opts.subset } : {}) };
    const seconds = () => Math.round((now().getTime() - started.getTime()) / 100) / 10;
    const clock = Date.now();
    const left = () => Math.max(1000, limitMs - (Date.now() - clock));
    let summary: CheckSummary;
    try {
      summary = await restic.check({ readDataSubset: opts.subset, bound: { timeoutMs: left(), setting } });
    } catch (e) {
      writeRecord(config, { ...base, at: now().toISOString(), ok: false, message: errorMessage(e), durationSeconds: seconds() });
      throw e;
    }
    // A second pass over the index and the snapshots' trees, no data read: seconds beside the check itself.
    let size: Pick<VerifyRecord, "sizeBytes" | "snapshots" | "message">;
    try {
      const stats = await restic.stats({ mode: "raw-data", bound: { timeoutMs: left(), setting } });
      size = { sizeBytes: stats.total_size, snapshots: stats.snapshots_count };
    } catch (e) {
      size = { message: `the check found no error; the size was not measured: ${errorMessage(e)}` };
    }
    const record: VerifyRecord = { ...base, at: now().toISOString(), ok: true, ...size, durationSeconds: seconds() };
    writeRecord(config, record);
    return { summary, record };
  });
}

function writeRecord(config: BackupConfig, record: VerifyRecord): void {
  writeAtomic(verifyRecordPath(config, record.repository), JSON.stringify(record, null, 1) + "\n");
}
