import { appendFileSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { errorMessage } from "../util/errors.js";
import { isRunning, procStat } from "../util/process.js";
import { runTag, type BackupJob } from "./jobs.js";
import { jobExitStatus, writeDeadRunReport, type JobResult } from "./report.js";
import { backupStatePaths } from "./state-paths.js";
import { DEFAULT_STALL_MS, type RepositoryName } from "./policies.js";
import { resticFor, type BackupConfig } from "./repositories.js";
import { makeDir } from "../util/dirs.js";

/**
 * The ledger of backup runs that have not been reconciled yet: `<state>/backup/runs/<run id>.jsonl`, one line when a
 * run starts (its pid, jobs and the repositories it may write to), one per snapshot dcctl accepted as good, one per
 * job it finished. A run whose process is gone without its report (SIGKILL, an OOM kill, a crash) is recorded by
 * whoever looks next (status, console, readiness, the next run): its unfinished jobs as killed. Every snapshot
 * a run makes carries `run:<id>`; any such snapshot that the ledger does not list as accepted is a leftover of a
 * failed or interrupted run and is forgotten — when the run ends, or, for a run that died, by the next run, status
 * or replicate. The ledger only ever forgets what its own run tagged, so a lost ledger costs nothing already good.
 */

interface LedgerStart {
  type: "start";
  run: string;
  pid: number;
  /** The process's start time (clock ticks since boot, /proc): a pid taken over by another process is not the run. */
  pidStart?: string;
  at?: string;
  repositories: RepositoryName[];
  /** The jobs the run was given: a dead run's unfinished ones are recorded as killed. */
  jobs?: LedgerJob[];
}
interface LedgerAccepted {
  type: "accepted";
  snapshot: string;
}
/** A job the run finished, with its result: recorded as it was if the run dies before its report. */
interface LedgerFinished {
  type: "finished";
  result: JobResult;
}
/** Someone found the run dead and recorded its jobs: nobody records them again. */
interface LedgerRecorded {
  type: "recorded";
  by: number;
  at: string;
}
type LedgerLine = LedgerStart | LedgerAccepted | LedgerFinished | LedgerRecorded;
type LedgerJob = Pick<JobResult, "job" | "host" | "site" | "policy" | "repository">;

/** What reconciling found and did, for a note on the output. */
export interface Reconciled {
  run: string;
  /** The repository checked for leftovers; absent on the note that records a dead run's jobs. */
  repository?: RepositoryName;
  forgotten: string[];
  error?: string;
  /** The jobs of a dead run that had not finished, now recorded as killed. */
  killed?: string[];
  pid?: number;
}

function ledgerDir(config: Pick<BackupConfig, "stateDir">): string {
  return join(config.stateDir, "backup", "runs");
}

/** Where a run keeps its ledger while it has not been reconciled (under a control plane's state folder). */
/** What dcctl's run ids look like (run.ts): anything else is no run, and never becomes a file name. */
export const RUN_ID = /^\d{8}T\d{6}-\d+$/;

export function runLedgerFile(config: Pick<BackupConfig, "stateDir">, runId: string): string {
  return join(ledgerDir(config), `${runId}.jsonl`);
}

export class RunLedger {
  private readonly file: string;

  constructor(
    private readonly config: BackupConfig,
    readonly runId: string,
    jobs: BackupJob[],
    private readonly stallMs = DEFAULT_STALL_MS,
  ) {
    this.file = runLedgerFile(config, runId);
    makeDir(ledgerDir(config));
    const pidStart = procStat(process.pid)?.start;
    this.append({
      type: "start",
      run: runId,
      pid: process.pid,
      ...(pidStart ? { pidStart } : {}),
      at: new Date().toISOString(),
      repositories: [...new Set(jobs.map((j) => j.repository))],
      jobs: jobs.map((j) => ({ job: j.id, host: j.host, site: j.site, policy: j.policy, repository: j.repository })),
    });
  }

  accepted(snapshotId: string): void {
    this.append({ type: "accepted", snapshot: snapshotId });
  }

  finished(result: JobResult): void {
    this.append({ type: "finished", result });
  }

  /**
   * At the end of the run: forgets whatever it tagged but did not accept, then drops its ledger. When every job
   * succeeded each snapshot it made was accepted, so there is nothing to look for (and no listing to pay for).
   * Repositories in `skip` (a job stalled on them) are left to the next run: a frozen one would stall this too.
   */
  async close(allAccepted: boolean, skip: ReadonlySet<RepositoryName> = new Set()): Promise<Reconciled[]> {
    // The run writes its own report: a ledger kept for a repository that did not answer is not a dead run's.
    this.append({ type: "recorded", by: process.pid, at: new Date().toISOString() });
    if (!allAccepted) return reconcileFile(this.config, this.file, this.stallMs, skip);
    rmSync(this.file, { force: true });
    return [];
  }

  private append(line: LedgerLine): void {
    appendFileSync(this.file, JSON.stringify(line) + "\n");
  }
}

/** The ledgers of runs whose process is gone (crashed or killed), with their start lines. */
function deadLedgers(config: BackupConfig): { file: string; start?: LedgerStart }[] {
  let names: string[];
  try {
    names = readdirSync(ledgerDir(config)).filter((n) => n.endsWith(".jsonl"));
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const file = join(ledgerDir(config), name);
    const start = readLedger(file).find((l): l is LedgerStart => l.type === "start");
    return start && start.pid !== process.pid && runs(start) ? [] : [{ file, ...(start ? { start } : {}) }];
  });
}

/**
 * Records the runs that died without their report (see recordDead): local files only, no repository asked, so a
 * view that must answer at once (status, console) can call it even when it leaves the leftovers for later.
 */
export async function recordDeadRuns(config: BackupConfig): Promise<Reconciled[]> {
  const out: Reconciled[] = [];
  for (const { file, start } of deadLedgers(config)) {
    if (!start?.jobs) continue;
    const killed = await recordDead(config, file, start).catch((e: unknown) => ({ error: errorMessage(e) }));
    if (Array.isArray(killed)) out.push({ run: start.run, forgotten: [], killed, pid: start.pid });
    else if (killed) out.push({ run: start.run, forgotten: [], pid: start.pid, error: `could not record it as killed: ${killed.error}` });
  }
  return out;
}

/**
 * Reconciles the ledgers of runs whose process is gone (crashed or killed): first records them (recordDeadRuns:
 * whoever looks sees the run as killed at once, even when a repository does not answer), then forgets what they
 * tagged but did not accept (see RunLedger).
 */
export async function reconcileDeadRuns(config: BackupConfig, stallMs = DEFAULT_STALL_MS): Promise<Reconciled[]> {
  const out = await recordDeadRuns(config);
  for (const { file } of deadLedgers(config)) out.push(...(await reconcileFile(config, file, stallMs)));
  return out;
}

/** Whether the run's process is still the one that wrote the ledger, and running (a zombie holds nothing). */
function runs(start: LedgerStart): boolean {
  if (!isRunning(start.pid)) return false;
  return start.pidStart === undefined || procStat(start.pid)?.start === start.pidStart;
}

/**
 * Records a dead run: the jobs it finished with their results, the others as killed (from the run's start until
 * its ledger was last written, its last sign of life), in the job state, the metrics and a report of the run. Returns
 * the killed jobs' ids; undefined when the run was recorded before (by this or another process).
 */
async function recordDead(config: BackupConfig, file: string, start: LedgerStart): Promise<string[] | undefined> {
  const recorded = () => readLedger(file).some((l) => l.type === "recorded");
  if (recorded()) return undefined;
  const lines = readLedger(file);
  const finished = new Map(lines.flatMap((l) => (l.type === "finished" ? [[l.result.job, l.result] as const] : [])));
  const startedAt = start.at ?? new Date(statSync(file).birthtimeMs || statSync(file).mtimeMs).toISOString();
  const lastSign = new Date(statSync(file).mtimeMs);
  const killed: string[] = [];
  const results: JobResult[] = (start.jobs ?? []).map((j) => {
    const done = finished.get(j.job);
    if (done) return done;
    killed.push(j.job);
    return {
      ...j,
      status: "killed",
      startedAt,
      finishedAt: lastSign.toISOString(),
      durationSeconds: Math.max(0, (lastSign.getTime() - Date.parse(startedAt)) / 1000),
      snapshots: [],
      bytesAdded: 0,
      filesNew: 0,
      filesChanged: 0,
      error: `run ${start.run} (pid ${start.pid}) died before this job finished (killed or crashed); nothing it had begun is kept`,
    };
  });
  const run = { id: start.run, startedAt, finishedAt: lastSign.toISOString(), exitCode: jobExitStatus("killed") };
  const wrote = await writeDeadRunReport(backupStatePaths(config), run, results, () => {
    if (recorded()) return false;
    appendFileSync(file, JSON.stringify({ type: "recorded", by: process.pid, at: new Date().toISOString() } satisfies LedgerRecorded) + "\n");
    return true;
  });
  return wrote ? killed : undefined;
}

async function reconcileFile(config: BackupConfig, file: string, stallMs: number, skip: ReadonlySet<RepositoryName> = new Set()): Promise<Reconciled[]> {
  const lines = readLedger(file);
  const start = lines.find((l): l is LedgerStart => l.type === "start");
  if (!start) {
    rmSync(file, { force: true });
    return [];
  }
  const accepted = new Set(lines.flatMap((l) => (l.type === "accepted" ? [l.snapshot] : [])));
  const out: Reconciled[] = [];
  let clean = true;
  for (const repository of start.repositories) {
    if (skip.has(repository)) {
      clean = false;
      out.push({ run: start.run, repository, forgotten: [], error: "not looked at: a job of this run stalled on it; the next run or replicate looks" });
      continue;
    }
    try {
      const restic = resticFor(config, repository, { stallMs });
      const stray = (await restic.snapshots({ tags: [runTag(start.run)] })).filter((s) => !accepted.has(s.id)).map((s) => s.id);
      if (stray.length) {
        await restic.forgetIds(stray);
        out.push({ run: start.run, repository, forgotten: stray });
      }
    } catch (e) {
      // Kept for the next look: the repository may answer then.
      clean = false;
      out.push({ run: start.run, repository, forgotten: [], error: errorMessage(e) });
    }
  }
  if (clean) rmSync(file, { force: true });
  return out;
}

function readLedger(file: string): LedgerLine[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const lines: LedgerLine[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      lines.push(JSON.parse(line) as LedgerLine);
    } catch {
      // A line cut by a crash mid-write: what it would have said is not needed to find the leftovers.
    }
  }
  return lines;
}

/** One line per reconciled run, for stderr notes. */
export function describeReconciled(r: Reconciled): string {
  if (r.killed) return `note: backup run ${r.run} (pid ${r.pid ?? "?"}) died before it finished; recorded as killed: ${r.killed.join(", ") || "none of its jobs (all had finished)"}`;
  if (r.repository === undefined) return `note: backup run ${r.run} (pid ${r.pid ?? "?"}) died before it finished; ${r.error ?? ""}`;
  if (r.error) return `note: could not check run ${r.run}'s leftovers in repository ${r.repository}: ${r.error}`;
  return `note: forgot ${r.forgotten.length} snapshot${r.forgotten.length === 1 ? "" : "s"} that run ${r.run} left unfinished in repository ${r.repository} (${r.forgotten.map((id) => id.slice(0, 8)).join(", ")})`;
}
