import { readdirSync } from "node:fs";
import { DcctlError, errorMessage } from "../../util/errors.js";
import { join } from "node:path";
import { readJournal } from "./journal.js";
import { replay } from "./replay.js";
import { lockHolder } from "./lock.js";
import { locksDir, runsDir } from "./state.js";

/** One line of `dcctl dr history`. */
export interface RunSummary {
  runId: string;
  runbook: string;
  kind: string;
  to: string;
  /** The lock scope it ran in. */
  scope: string;
  operator: string;
  /** The second operator who approved the run (four eyes), when the site required one. */
  approvedBy?: string;
  startedAt: string;
  endedAt?: string;
  /**
   * running: a live process holds the run's lock; interrupted: no end and nobody runs it (`dcctl dr resume`);
   * missed: every step ended well but an RPO or RTO target was missed.
   */
  status: "ok" | "failed" | "missed" | "running" | "interrupted" | "unreadable";
  steps: { done: number; total: number };
  message?: string;
  dir: string;
}

/** Every run under the state folder, newest first, read from the journals alone (no runbook or inventory needed). */
export function listRuns(env: NodeJS.ProcessEnv = process.env): RunSummary[] {
  const dir = runsDir(env);
  let runIds: string[];
  try {
    runIds = readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return [];
    // A state folder that is a file, or unreadable: say so, never "no DR runs".
    throw new DcctlError(`cannot read the DR runs in ${dir}: ${code ?? errorMessage(e)} (check DCCTL_STATE_DIR)`);
  }
  const out: RunSummary[] = [];
  for (const runId of runIds.sort().reverse()) {
    const runDir = join(dir, runId);
    try {
      const { records } = readJournal(join(runDir, "journal.jsonl"));
      const st = replay(records);
      const done = [...st.steps.values()].filter((h) => h.state === "done" || h.state === "skipped").length;
      const s: RunSummary = {
        runId,
        runbook: st.start.runbook,
        kind: st.start.kind,
        to: st.start.to,
        scope: st.start.scope,
        operator: st.start.operator,
        ...(st.start.approval ? { approvedBy: st.start.approval.approvedBy } : {}),
        startedAt: st.start.at,
        status: st.end?.status === "ok" && st.end.targetsMissed?.length ? "missed" : (st.end?.status ?? (lockHolder(locksDir(env), st.start.scope) === runId ? "running" : "interrupted")),
        steps: { done, total: st.steps.size },
        dir: runDir,
      };
      if (st.end) s.endedAt = st.end.at;
      if (st.end?.message) s.message = st.end.message;
      out.push(s);
    } catch (err) {
      out.push({ runId, runbook: "?", kind: "?", to: "?", scope: "?", operator: "?", startedAt: "", status: "unreadable", steps: { done: 0, total: 0 }, message: String(err), dir: runDir });
    }
  }
  return out;
}
