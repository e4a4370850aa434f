import type { CleanupEndRecord, DecisionRecord, JournalRecord, RunEndRecord, RunStartRecord, Stamped, StepEndRecord } from "./journal.js";
import type { StepResult } from "./steps/types.js";
import { DcctlError } from "../../util/errors.js";

/**
 * A run as its journal tells it. A step is
 *  - done:     its last attempt has an `end ok` record (or an operator decided to skip it);
 *  - failed:   its last attempt has an `end failed` record;
 *  - cut-off:  its last attempt has a start but no end: the process died while it ran;
 *  - pending:  it never started.
 */
export type StepState = "done" | "skipped" | "failed" | "cut-off" | "pending";

export interface StepHistory {
  state: StepState;
  /** How many times the step was started, over all runs of this journal. */
  starts: number;
  /** Journal sequence number of the latest start: clean-up is due when no clean-up ended well after it. */
  lastStartSeq: number;
  lastEnd?: Stamped<StepEndRecord>;
  decision?: DecisionRecord;
  cleanup?: Stamped<CleanupEndRecord>;
  cleanupStarted: boolean;
}

export interface Replay {
  start: Stamped<RunStartRecord>;
  end?: Stamped<RunEndRecord>;
  resumes: number;
  steps: Map<string, StepHistory>;
  /** Results of the steps that ended well, for later steps (verify reads restore-db's) and the report. */
  results: Map<string, StepResult>;
}

/** Whether a drill still has to undo what this step created. */
export function cleanupDue(h: StepHistory | undefined): boolean {
  if (!h || h.starts === 0) return false;
  return !h.cleanup || h.cleanup.status === "failed" || h.cleanup.seq < h.lastStartSeq;
}

export function replay(records: JournalRecord[]): Replay {
  const first = records[0];
  if (!first || first.type !== "run-start") throw new DcctlError("the journal does not begin with a run-start record");
  const r: Replay = { start: first, resumes: 0, steps: new Map(), results: new Map() };
  const hist = (id: string): StepHistory => {
    let h = r.steps.get(id);
    if (!h) r.steps.set(id, (h = { state: "pending", starts: 0, lastStartSeq: 0, cleanupStarted: false }));
    return h;
  };
  for (const rec of records) {
    switch (rec.type) {
      case "run-resume":
        r.resumes++;
        r.end = undefined;
        break;
      case "step-start": {
        const h = hist(rec.step);
        h.starts++;
        h.lastStartSeq = rec.seq;
        h.state = "cut-off";
        break;
      }
      case "step-end": {
        const h = hist(rec.step);
        h.lastEnd = rec;
        h.state = rec.status === "ok" ? "done" : "failed";
        if (rec.status === "ok") r.results.set(rec.step, { notes: rec.notes, data: rec.data });
        break;
      }
      case "decision": {
        const h = hist(rec.step);
        h.decision = rec;
        if (rec.decision === "skip") h.state = "skipped";
        break;
      }
      case "cleanup-start":
        hist(rec.step).cleanupStarted = true;
        break;
      case "cleanup-end":
        hist(rec.step).cleanup = rec;
        break;
      case "run-end":
        r.end = rec;
        break;
      default:
        break;
    }
  }
  return r;
}
