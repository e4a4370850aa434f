import type { NotifyResult } from "../notify/index.js";
import { DcctlError, ExitCode, errorMessage } from "../util/errors.js";
import type { BackupJob } from "./jobs.js";
import { notifyFailedBackupRun } from "./notices/backup-run.js";
import { notifyFailedOperation, type FailedOperation } from "./notices/operation.js";
import { outcomeOf } from "./op-record.js";
import type { BackupConfig } from "./repositories.js";
import { runJobs, type RunOptions, type RunOutcome } from "./run.js";

/**
 * Backup work as timers run it, with nobody reading its output: SIGTERM (systemd stopping the unit) or Ctrl-C stops
 * it, and a failure is told through the site's notification channels. The CLI and the bench both come through here,
 * so that they stop and notify alike.
 */

/** SIGTERM or SIGINT, while work runs: the signal aborts it; `stoppedBy` says which came. */
export function stopOnSignals(): { signal: AbortSignal; stoppedBy: () => NodeJS.Signals | undefined; release: () => void } {
  const stop = new AbortController();
  let by: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    by ??= sig;
    stop.abort();
  };
  process.on("SIGTERM", onSignal).on("SIGINT", onSignal);
  return { signal: stop.signal, stoppedBy: () => by, release: () => void process.off("SIGTERM", onSignal).off("SIGINT", onSignal) };
}

/** The exit code of work a signal stopped: 130 for SIGINT, 143 for SIGTERM. */
export function stoppedExitCode(by: NodeJS.Signals): ExitCode {
  return by === "SIGINT" ? ExitCode.interrupted : ExitCode.terminated;
}

export interface UnattendedRun {
  outcome: RunOutcome;
  /** How the failure notice went, when one was sent (a run with failed jobs, at a site with channels). */
  notified: NotifyResult[];
  /** The signal that stopped the run, if one did. */
  stoppedBy?: NodeJS.Signals;
}

/**
 * Runs the jobs (runJobs) under the process's stop signals, then sends one notice when jobs failed. However the
 * notice goes, the run's exit code stays the jobs' own; what to say about a stop is the caller's (see stoppedExitCode).
 */
export async function runJobsUnattended(jobs: BackupJob[], opts: Omit<RunOptions, "signal">): Promise<UnattendedRun> {
  const stop = stopOnSignals();
  let outcome: RunOutcome;
  try {
    outcome = await runJobs(jobs, { ...opts, signal: stop.signal });
  } finally {
    stop.release();
  }
  const notified = await notifyFailedBackupRun(opts.config, outcome);
  const stoppedBy = stop.stoppedBy();
  return { outcome, notified, ...(stoppedBy ? { stoppedBy } : {}) };
}

/** What a replicate, prune or verify is about, for its failure notice. */
export type Operation = Pick<FailedOperation, "op" | "repository" | "from" | "recordPath">;

/**
 * Runs a replicate, prune or verify: a signal stops it (exit 130/143), and a failure, a stall or a stop is notified
 * through the site's channels before it is reported (`onNotified` hears how that went). A lock held by another run
 * (exit 3) or bad input (exit 2) did no work and is not notified.
 */
export async function noticed<T>(config: BackupConfig, what: Operation, work: (signal: AbortSignal) => Promise<T>, onNotified: (results: NotifyResult[]) => void = () => undefined): Promise<T> {
  const stop = stopOnSignals();
  const startedAt = new Date().toISOString();
  try {
    return await work(stop.signal);
  } catch (e) {
    if (e instanceof DcctlError && (e.exitCode === ExitCode.badInput || e.exitCode === ExitCode.locked)) throw e;
    const notified = await notifyFailedOperation(config, { ...what, outcome: outcomeOf(e, stop.signal), error: errorMessage(e), startedAt, finishedAt: new Date().toISOString() });
    if (notified.length) onNotified(notified);
    const by = stop.stoppedBy();
    if (by) throw new DcctlError(`stopped by ${by}: ${errorMessage(e)}`, stoppedExitCode(by));
    throw e;
  } finally {
    stop.release();
  }
}
