import { readFileSync } from "node:fs";
import { join } from "node:path";
import { errorMessage } from "../util/errors.js";
import { writeAtomic } from "../util/files.js";
import type { RepositoryName } from "./policies.js";
import type { BackupConfig } from "./repositories.js";
import { ResticInterruptedError, ResticStalledError } from "../restic/index.js";

/**
 * What `backup replicate` and `backup prune` leave behind, as `backup verify` does (verify-record.ts):
 * `<stateDir>/backup/<op>/<repository>.json`, the outcome of the last run of each, failed or not, so that a stalled or
 * failed run is on record for the console, for status and for an auditor even when nobody read its output. A run
 * that could not have its lock ran nothing and records nothing.
 */
export type RecordedOp = "replicate" | "prune";

export interface OpRecord {
  op: RecordedOp;
  /** The repository worked on: replicate's destination, the pruned one. */
  repository: RepositoryName;
  startedAt: string;
  /** When it ended (ISO). */
  at: string;
  ok: boolean;
  /** "stalled": a time limit stopped it; "stopped": a signal did (SIGTERM from systemd, Ctrl-C). */
  outcome: "ok" | "failed" | "stalled" | "stopped";
  /** Why it failed, one line. */
  message?: string;
  durationSeconds: number;
  /** What it did, e.g. the snapshots copied. */
  detail?: Record<string, unknown>;
}

export function opRecordPath(config: Pick<BackupConfig, "stateDir">, op: RecordedOp, repository: RepositoryName): string {
  return join(config.stateDir, "backup", op, `${repository}.json`);
}

/** The last run of `op` on a repository from this machine; undefined when there is none (or it cannot be read). */
export function lastOp(config: Pick<BackupConfig, "stateDir">, op: RecordedOp, repository: RepositoryName): OpRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(opRecordPath(config, op, repository), "utf8")) as Partial<OpRecord>;
    // A record another version wrote, or a hand-edited one, is no proof: better none than a wrong "ok".
    return r.op === op && r.repository === repository && typeof r.at === "string" && typeof r.ok === "boolean" ? (r as OpRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** How a failure is recorded: a limit's stop, a signal's, or anything else. */
export function outcomeOf(e: unknown, signal?: AbortSignal): Exclude<OpRecord["outcome"], "ok"> {
  if (e instanceof ResticStalledError) return "stalled";
  if (e instanceof ResticInterruptedError || signal?.aborted) return "stopped";
  return "failed";
}

/** Runs `fn` and records its outcome either way; the error is thrown on after it is recorded. */
export async function recordOp<T>(
  config: Pick<BackupConfig, "stateDir">,
  op: RecordedOp,
  repository: RepositoryName,
  fn: () => Promise<T>,
  detail: (result: T) => Record<string, unknown>,
  signal?: AbortSignal,
): Promise<T> {
  const started = Date.now();
  const base = { op, repository, startedAt: new Date(started).toISOString() };
  const ended = () => ({ at: new Date().toISOString(), durationSeconds: Math.round((Date.now() - started) / 100) / 10 });
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    writeRecord(config, { ...base, ...ended(), ok: false, outcome: outcomeOf(e, signal), message: errorMessage(e) });
    throw e;
  }
  writeRecord(config, { ...base, ...ended(), ok: true, outcome: "ok", detail: detail(result) });
  return result;
}

function writeRecord(config: Pick<BackupConfig, "stateDir">, record: OpRecord): void {
  writeAtomic(opRecordPath(config, record.op, record.repository), JSON.stringify(record, null, 1) + "\n");
}
