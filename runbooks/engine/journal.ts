import { createHash } from "node:crypto";
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { DcctlError } from "../../util/errors.js";
import type { Lang } from "../../util/i18n.js";
import type { RunbookKind } from "./model.js";
import type { ApprovalRecord } from "../../backup/approval/request.js";

/**
 * The run journal: append-only JSON lines, each fsynced before the work it announces begins, so that after a crash
 * the file tells exactly which steps began and which ended. Nothing rewrites it; the one cut is a torn last line (a
 * crash mid-write), which announced nothing because its work only begins after the write is synced: the next opening
 * moves its bytes to `journal.jsonl.torn-<time>` before appending, so the next record starts on a line of its own.
 *
 * Each record is hash-chained to the one before it: `prev` is the previous record's hash (64 zeros for the first)
 * and `hash`, always the last field, is sha256(prev + "\n" + the line as written without its `hash` field). The
 * hash covers the exact bytes on disk, so verifying it needs no canonical JSON, only the line's text
 * (runbooks/engine/verify-report.ts). Journals written before the chain have no hashes; such a record still links
 * into the chain of the records after it (its link is sha256(prev + "\n" + its whole line)), so a resumed old run
 * seals its unchained start too.
 */

/** The dcctl release from which journals are hash-chained: older runs are "not chained", not tampered. */
export const CHAINED_SINCE = "0.2.0";
export const GENESIS = "0".repeat(64);

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
  /**
   * Where failedAt comes from: the operator (--failed-at), or the run's start, which the first probe of a primary
   * that went unanswered in this run then replaces (see failure.ts). Absent before: failedAt is taken as it is.
   */
  failedAtFrom?: "operator" | "run-start";
  /** A planned switchover: the primary's writes are stopped first and every replica catches up before promotion. */
  planned?: boolean;
  /** A recover's point (`--before`), as the operator gave it: the data is brought back to just before it. */
  before?: string;
  /** The one service of the runbook the run is for (`--service`): its steps and those labelled with none. */
  service?: string;
  operator: string;
  /** How the destructive run was confirmed: "--yes", "typed <word> at a terminal", or "not needed (drill)". */
  confirmedBy: string;
  /** Four eyes (the site's approval:): who asked, who approved, what and when; absent where none was required. */
  approval?: ApprovalRecord;
  host: string;
  pid: number;
  /** The language of report.md and report.html, so that a rebuild gives the same text (absent before: en). */
  lang?: Lang;
  /** sha256 of runbook.yaml, the copy kept beside the journal (absent before dcctl 0.2.0). */
  runbookSha256?: string;
  /** sha256 of the inventory the run planned with, kept beside the journal as sites-<first 16 hex>.json. */
  inventorySha256?: string;
}

export interface RunResumeRecord {
  type: "run-resume";
  operator: string;
  confirmedBy: string;
  /** The approval this resume used, as for the start. */
  approval?: ApprovalRecord;
  pid: number;
  /** The inventory the resumed run planned with (it may have changed since the start); see RunStartRecord. */
  inventorySha256?: string;
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
  /** Every step ended well (no message), but these RPO/RTO targets were missed: the run is headed "targets missed", not OK. */
  targetsMissed?: MissedTarget[];
}

/** A target a run measured and missed: a service's RPO or RTO against its DR tier's. */
export interface MissedTarget {
  service: string;
  measure: "RPO" | "RTO";
  minutes: number;
  targetMinutes: number;
  tier?: number;
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

/** A record as stored: its body plus a sequence number, the time it was written and its chain link. */
export type Stamped<T> = T & { seq: number; at: string; prev?: string; hash?: string };
export type JournalRecord = Stamped<JournalBody>;

/** The inventory copy a run keeps beside its journal, named by its digest (a resume may plan with another one). */
export function inventoryCopyName(digest: string): string {
  return `sites-${digest.slice(0, 16)}.json`;
}

export const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex");

/** A chained line: everything before `,"hash":"…"}` is the hashed text (closed again with its brace). */
const CHAINED_LINE = /^(.*),"hash":"([0-9a-f]{64})"\}$/;

/** A line's text as it was hashed, and the hash it carries; undefined for a line written before the chain. */
export function chainedParts(line: string): { body: string; hash: string } | undefined {
  const m = CHAINED_LINE.exec(line);
  return m?.[1] !== undefined && m[2] !== undefined ? { body: `${m[1]}}`, hash: m[2] } : undefined;
}

/** The link a line adds to the chain after `prev`: its stored hash when chained, else the hash of its whole text. */
export function linkOf(prev: string, line: string): string {
  return chainedParts(line)?.hash ?? sha256(`${prev}\n${line}`);
}

export class Journal {
  private fd: number;
  private seq: number;
  private head: string;

  /** Opens (creating if needed) a journal for appending; `seq` and the chain continue after the records there. */
  constructor(
    readonly path: string,
    private readonly now: () => Date = () => new Date(),
  ) {
    if (existsSync(path)) setTornTailAside(path, now());
    const tail = existsSync(path) ? journalTail(path) : { records: 0, head: GENESIS };
    this.seq = tail.records;
    this.head = tail.head;
    this.fd = openSync(path, "a", 0o640);
  }

  /** Writes one record, chained to the one before, and waits for it to reach the disk. */
  append(body: JournalBody): JournalRecord {
    const unhashed = JSON.stringify({ seq: this.seq + 1, at: this.now().toISOString(), ...body, prev: this.head });
    const hash = sha256(`${this.head}\n${unhashed}`);
    const line = `${unhashed.slice(0, -1)},"hash":"${hash}"}`;
    writeSync(this.fd, line + "\n");
    fsyncSync(this.fd);
    this.seq++;
    this.head = hash;
    return JSON.parse(line) as JournalRecord;
  }

  /** The last record written: what the operator and the notification quote as the run's anchor. */
  get chainHead(): { seq: number; hash: string } {
    return { seq: this.seq, hash: this.head };
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
  return parseJournal(readJournalText(path), path);
}

export function readJournalText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    throw new DcctlError(`no journal at ${path}`);
  }
}

/** How many records a journal holds and the link of its last one, as written (the writer continues from it). */
function setTornTailAside(path: string, at: Date): void {
  const bytes = readFileSync(path);
  const end = bytes.lastIndexOf(0x0a) + 1;
  if (end === bytes.length) return;
  const aside = `${path}.torn-${at.toISOString().replace(/[:.]/g, "")}`;
  writeFileSync(aside, bytes.subarray(end), { mode: 0o640 });
  truncateSync(path, end);
}

function journalTail(path: string): { records: number; head: string } {
  const text = readJournalText(path);
  const { records } = parseJournal(text, path);
  let head = GENESIS;
  for (const line of text.split("\n").filter((l) => l.trim() !== "").slice(0, records.length)) head = linkOf(head, line);
  return { records: records.length, head };
}

export function parseJournal(text: string, path: string): { records: JournalRecord[]; tornTail: boolean } {
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
