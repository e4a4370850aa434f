import { hostname } from "node:os";
import type { RepositoryName } from "../policies.js";
import type { BackupConfig } from "../repositories.js";
import { notifyAll, type Message, type NotifyResult } from "../../notify/index.js";

/**
 * The message a failed `backup replicate`, `backup prune` or `backup verify` sends: these run from timers with nobody
 * reading their output, and a replicate cut by an outage is exactly what leaves the secondary without recent copies.
 * A run that found its lock held (exit 3) or was given bad input (exit 2) sends nothing: it did no work to report.
 */
export interface FailedOperation {
  op: "replicate" | "prune" | "verify";
  /** The repository worked on: replicate's destination. */
  repository: RepositoryName;
  /** replicate's source repository. */
  from?: RepositoryName;
  /** "stalled": a time limit stopped it; "stopped": a signal did. */
  outcome: "failed" | "stalled" | "stopped";
  /** The error, one line. */
  error: string;
  startedAt: string;
  finishedAt: string;
  /** Where the outcome is kept (op-record.ts, verify-record.ts). */
  recordPath?: string;
}

const WHAT: Record<FailedOperation["op"], (f: FailedOperation) => string> = {
  replicate: (f) => `replicate from repository ${f.from ?? "?"} to ${f.repository}`,
  prune: (f) => `prune of repository ${f.repository}`,
  verify: (f) => `verify (restic check) of repository ${f.repository}`,
};

const NEXT: Record<FailedOperation["op"], string> = {
  replicate: "The secondary holds no copy of the snapshots made since the last replicate that succeeded. Once both repositories answer, run: dcctl backup replicate --to secondary (the next scheduled run does the same).",
  prune: "Nothing was lost: a prune that stops leaves the repository as restic wrote it. Retention was not applied; run: dcctl backup prune once the repository answers.",
  verify: "The repository was not proven readable this time. Run: dcctl backup verify once it answers; if restic found errors, see restic's troubleshooting guide before pruning.",
};

export function failedOperationMessage(config: BackupConfig, f: FailedOperation, host: string = hostname()): Message {
  const verb = f.outcome === "stalled" ? "STALLED" : f.outcome === "stopped" ? "STOPPED" : "FAILED";
  const seconds = Math.round((Date.parse(f.finishedAt) - Date.parse(f.startedAt)) / 100) / 10;
  const run = `${f.op}-${f.startedAt.replace(/[-:]/g, "").replace(/\..*$/, "")}-${process.pid}`;
  const lines = [
    `The ${WHAT[f.op](f)} ${f.outcome === "failed" ? "failed" : f.outcome === "stalled" ? "was stopped by its time limit" : "was stopped by a signal"} at the ${config.site} site (dcctl on ${host}, ${f.startedAt} to ${f.finishedAt}, ${seconds} s).`,
    "",
    `Why: ${f.error}`,
    "",
    NEXT[f.op],
    "",
    "Check with: dcctl backup status",
  ];
  if (f.recordPath) lines.push(`Record: ${f.recordPath}`);
  if (config.notify?.consoleUrl) lines.push(`Console: ${config.notify.consoleUrl}/`);
  const link = config.notify?.consoleUrl ? `${config.notify.consoleUrl}/` : f.recordPath;
  return {
    event: "failure",
    subject: `[dcctl] ${f.op} ${verb} at ${config.site}: ${f.op === "replicate" ? `${f.from ?? "?"} -> ${f.repository}` : `repository ${f.repository}`}`,
    text: lines.join("\n") + "\n",
    ...(link ? { link } : {}),
    run,
    status: "failed",
  };
}

/** Sends {@link failedOperationMessage} on the site's channels; [] when it has none or does not want failures. Never throws. */
export async function notifyFailedOperation(config: BackupConfig, f: FailedOperation, opts: { timeoutMs?: number } = {}): Promise<NotifyResult[]> {
  return notifyAll(config.notify, failedOperationMessage(config, f), opts);
}
