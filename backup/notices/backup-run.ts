import { hostname } from "node:os";
import type { BackupConfig } from "../repositories.js";
import type { RunOutcome } from "../run.js";
import { notifyAll, type Message, type NotifyResult } from "../../notify/index.js";

/**
 * The message a backup run with failed jobs sends: one per run, however many jobs failed, so that a night of
 * failures is one mail per timer and not one per job. Locked jobs are named but do not trigger it: another run has
 * them, and that run reports its own result.
 */
export function failedBackupMessage(config: BackupConfig, outcome: RunOutcome, host: string = hostname()): Message | undefined {
  const failed = outcome.results.filter((r) => r.status === "failed");
  if (failed.length === 0) return undefined;
  const total = outcome.results.length;
  const locked = outcome.results.filter((r) => r.status === "locked");
  const ok = total - failed.length - locked.length;
  const link = config.notify?.consoleUrl ? `${config.notify.consoleUrl}/` : outcome.reportPath;
  const lines = [
    `${failed.length} of ${total} backup job${total === 1 ? "" : "s"} failed in run ${outcome.id} at the ${config.site} site (dcctl on ${host}, ${outcome.startedAt} to ${outcome.finishedAt}, exit ${outcome.exitCode}).`,
    "",
    "Failed:",
    ...failed.map((r) => `  ${r.job} on ${r.host} -> repository ${r.repository}: ${r.error ?? "no error line"}`),
  ];
  if (locked.length) lines.push("", "Not run, locked by another run:", ...locked.map((r) => `  ${r.job}: ${r.error ?? "locked"}`));
  lines.push("", ok === 0 ? "No job of this run succeeded." : ok === 1 ? "The other job succeeded." : `The other ${ok} jobs succeeded.`);
  // Nothing of a failed job is kept as a good snapshot; the age against the RPO is what tells how urgent this is.
  lines.push("", "Check with: dcctl backup status");
  if (outcome.reportPath) lines.push(`Report: ${outcome.reportPath}`);
  if (config.notify?.consoleUrl) lines.push(`Console: ${config.notify.consoleUrl}/`);
  return {
    event: "failure",
    subject: `[dcctl] backup FAILED at ${config.site}: ${failed.length} of ${total} job${total === 1 ? "" : "s"} (run ${outcome.id})`,
    text: lines.join("\n") + "\n",
    ...(link ? { link } : {}),
    run: outcome.id,
    status: "failed",
  };
}

/** Sends {@link failedBackupMessage} when a job failed and the site has channels; [] otherwise. Never throws. */
export async function notifyFailedBackupRun(config: BackupConfig, outcome: RunOutcome, opts: { timeoutMs?: number } = {}): Promise<NotifyResult[]> {
  const message = failedBackupMessage(config, outcome);
  return message ? notifyAll(config.notify, message, opts) : [];
}
