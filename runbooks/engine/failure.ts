import type { JournalRecord } from "./journal.js";

/**
 * The moment RPO is counted from. The operator's --failed-at when given. Otherwise the earliest moment in this run
 * that a probe of a primary host went unanswered (a fence step records it): data the primary took until then may be
 * lost, so counting from there never makes the loss look smaller than it could be. Without either, the run's start
 * (a drill, or a primary that still answered).
 *
 * A site-level record of when the primary stopped answering, kept by the views that probe it before any run, would
 * be an earlier and truer default than a probe made by the run itself; it would slot in here, before the probes.
 */
export type FailureFrom = "operator" | "unanswered-probe" | "run-start";

export interface FailureReference {
  at: string;
  /** Absent for journals written before the source was recorded: their failedAt is taken as it is. */
  from?: FailureFrom;
  /** The host whose probe went unanswered (from: unanswered-probe). */
  host?: string;
}

/** A probe of a host that did not answer: what a step records in its data as `unanswered`. */
export interface UnansweredProbe {
  host: string;
  /** When the probe was sent (ISO 8601): from then on the host did not answer. */
  at: string;
}

export function failureReference(records: readonly JournalRecord[]): FailureReference {
  const start = records[0];
  if (!start || start.type !== "run-start") throw new Error("the journal does not begin with a run-start record");
  if (start.failedAtFrom !== "run-start") return { at: start.failedAt, ...(start.failedAtFrom ? { from: start.failedAtFrom } : {}) };
  let first: UnansweredProbe | undefined;
  for (const r of records) {
    if (r.type !== "step-end") continue;
    const probes = r.data.unanswered;
    if (!Array.isArray(probes)) continue;
    for (const p of probes as UnansweredProbe[]) {
      if (typeof p.at === "string" && !Number.isNaN(Date.parse(p.at)) && (!first || Date.parse(p.at) < Date.parse(first.at))) first = p;
    }
  }
  return first ? { at: first.at, from: "unanswered-probe", host: first.host } : { at: start.failedAt, from: "run-start" };
}
