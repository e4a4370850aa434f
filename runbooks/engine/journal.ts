import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from "node:fs";
import { DcctlError } from "../../util/errors.js";
import type { RunbookKind } from "./model.js";

/**
 * The run journal: append-only JSON lines, each fsynced before the work it announces begins, so that after a crash
 * the file tells exactly which steps began and which ended. Nothing ever rewrites or truncates it.
 */

export interface RunStartRecord {
  type: "run-start";
  runId: string;
  runbook: string;
  kind: RunbookKind;
  to: string;
  scope: string;
  /** The runbook file it was loaded from; its text is kept as runbook.yaml next to the journal. */
  file: string;
  /** The reference time for RPO: when the failure happened (failover) or the drill began. */
  failedAt: string;
  /** A planned switchover: the primary's writes are stopped first and every replica catches up before promotion. */
  planned?: boolean;
  operator: string;
  /** How the destructive run was confirmed: "--yes", "typed <word> at a terminal", or "not needed (drill)". */
  confirmedBy: string;
  host: string;
  pid: number;
}

export interface RunResumeRecord {
  type: "run-resume";
  operator: string;
  confirmedBy: string;
  pid: number;
}

export interface StepStartRecord {
  type: "step-start";
  step: string;
  attempt: number;
  hosts: string[];
}

export interface StepEndRecord {
  type: "step-end";
  step: string;
  attempt: number;
  status: "ok" | "failed";
  durationMs: number;
  message?: string;
  notes: string[];
  data: Record<string, unknown>;
}

/** An operator's answer about a step a crash cut off: run it again, or count it as done by hand. */
export interface DecisionRecord {
  type: "decision";
  step: string;
  decision: "rerun" | "skip";
  reason: string;
  by: string;
}

export interface NoteRecord {
  type: "note";
  step?: string;
  message: string;
}

export interface CleanupStartRecord {
  type: "cleanup-start";
  step: string;
}

export interface CleanupEndRecord {
  type: "cleanup-end";
  step: string;
  status: "ok" | "failed";
  notes: string[];
  message?: string;
}

export interface RunEndRecord {
  type: "run-end";
  status: "ok" | "failed";
  message?: string;
}

export type JournalBody =
  | RunStartRecord
  | RunResumeRecord
  | StepStartRecord
  | StepEndRecord
  | DecisionRecord
  | NoteRecord
  | CleanupStartRecord
  | CleanupEndRecord
  | RunEndRecord;

/** A record as stored: its body plus a sequence number and the time it was written. */
export type Stamped<T> = T & { seq: number; at: string };
export type JournalRecord = Stamped<JournalBody>;

export class Journal {
  private fd: number;
  private seq: number;

  /** Opens (creating if needed) a journal for appending; `seq` continues after the records already there. */
  constructor(
    readonly path: string,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.seq = existsSync(path) ? readJournal(path).records.length : 0;
    this.fd = openSync(path, "a", 0o640);
  }

  /** Writes one record and waits for it to reach the disk. */
  append(body: JournalBody): JournalRecord {
    const record = { seq: ++this.seq, at: this.now().toISOString(), ...body } as JournalRecord;
    writeSync(this.fd, JSON.stringify(record) + "\n");
    fsyncSync(this.fd);
    return record;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/**
 * Reads a journal. A crash can cut the very last line short: such a torn tail is reported, not an error, because the
 * step it announced did not begin (the record is written and synced before the work starts).
 */
export function readJournal(path: string): { records: JournalRecord[]; tornTail: boolean } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new DcctlError(`no journal at ${path}`);
  }
  const lines = text.split("\n");
  const records: JournalRecord[] = [];
  let tornTail = false;
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      records.push(JSON.parse(line) as JournalRecord);
    } catch {
      if (i >= lines.length - 2) tornTail = true;
      else throw new DcctlError(`${path}:${i + 1}: the journal line is not JSON; the journal is damaged`);
    }
  });
  return { records, tornTail };
}
