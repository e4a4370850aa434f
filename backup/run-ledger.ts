import { appendFileSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { errorMessage } from "../util/errors.js";
import { isAlive } from "../util/process.js";
import { runTag } from "./jobs.js";
import { DEFAULT_STALL_MS, type RepositoryName } from "./policies.js";
import { resticFor, type BackupConfig } from "./repositories.js";
import { makeDir } from "../util/dirs.js";

/**
 * The ledger of backup runs that have not been reconciled yet: `<state>/backup/runs/<run id>.jsonl`, one line when a
 * run starts (its pid and the repositories it may write to), one per snapshot dcctl accepted as good. Every snapshot
 * a run makes carries `run:<id>`; any such snapshot that the ledger does not list as accepted is a leftover of a
 * failed or interrupted run and is forgotten — when the run ends, or, for a run that died, by the next run, status
 * or replicate. The ledger only ever forgets what its own run tagged, so a lost ledger costs nothing already good.
 */

interface LedgerStart {
  type: "start";
  run: string;
  pid: number;
  repositories: RepositoryName[];
}
interface LedgerAccepted {
  type: "accepted";
  snapshot: string;
}
type LedgerLine = LedgerStart | LedgerAccepted;

/** What reconciling found and did, for a note on the output. */
export interface Reconciled {
  run: string;
  repository: RepositoryName;
  forgotten: string[];
  error?: string;
}

function ledgerDir(config: BackupConfig): string {
  return join(config.stateDir, "backup", "runs");
}

export class RunLedger {
  private readonly file: string;

  constructor(
    private readonly config: BackupConfig,
    readonly runId: string,
    readonly repositories: RepositoryName[],
    private readonly stallMs = DEFAULT_STALL_MS,
  ) {
    this.file = join(ledgerDir(config), `${runId}.jsonl`);
    makeDir(ledgerDir(config));
    this.append({ type: "start", run: runId, pid: process.pid, repositories });
  }

  accepted(snapshotId: string): void {
    this.append({ type: "accepted", snapshot: snapshotId });
  }

  /**
   * At the end of the run: forgets whatever it tagged but did not accept, then drops its ledger. When every job
   * succeeded each snapshot it made was accepted, so there is nothing to look for (and no listing to pay for).
   * Repositories in `skip` (a job stalled on them) are left to the next run: a frozen one would stall this too.
   */
  async close(allAccepted: boolean, skip: ReadonlySet<RepositoryName> = new Set()): Promise<Reconciled[]> {
    if (!allAccepted) return reconcileFile(this.config, this.file, this.stallMs, skip);
    rmSync(this.file, { force: true });
    return [];
  }

  private append(line: LedgerLine): void {
    appendFileSync(this.file, JSON.stringify(line) + "\n");
  }
}

/** Reconciles the ledgers of runs whose process is gone (crashed or killed): see RunLedger. */
export async function reconcileDeadRuns(config: BackupConfig, stallMs = DEFAULT_STALL_MS): Promise<Reconciled[]> {
  let names: string[];
  try {
    names = readdirSync(ledgerDir(config)).filter((n) => n.endsWith(".jsonl"));
  } catch {
    return [];
  }
  const out: Reconciled[] = [];
  for (const name of names) {
    const file = join(ledgerDir(config), name);
    const start = readLedger(file).find((l): l is LedgerStart => l.type === "start");
    if (start && start.pid !== process.pid && isAlive(start.pid)) continue;
    out.push(...(await reconcileFile(config, file, stallMs)));
  }
  return out;
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
  if (r.error) return `note: could not check run ${r.run}'s leftovers in repository ${r.repository}: ${r.error}`;
  return `note: forgot ${r.forgotten.length} snapshot${r.forgotten.length === 1 ? "" : "s"} that run ${r.run} left unfinished in repository ${r.repository} (${r.forgotten.map((id) => id.slice(0, 8)).join(", ")})`;
}
