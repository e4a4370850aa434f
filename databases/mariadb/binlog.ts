import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { toolEnv } from "../../util/tools.js";

/**
 * MariaDB's binary log as the point-in-time archive reads it: mariadb-binlog's text of an archived file, read into
 * transactions (GTID event groups) with their positions and times, and which of them a restore to a point replays.
 */

/** One transaction (a GTID event group) of an archived binary log file, as mariadb-binlog prints it. */
export interface BinlogTransaction {
  file: string;
  gtid: string;
  /** Where its GTID event starts, and where its last event ends. */
  start: number;
  end: number;
  /** Its last event's time (COMMIT, or the DDL statement), to the second: the binary log keeps no finer. */
  at: Date;
  committed: boolean;
}

const HEADER = /^#(\d\d)(\d\d)(\d\d) +(\d\d?):(\d\d):(\d\d) server id \d+ +end_log_pos (\d+)\s+(?:CRC32 0x[0-9a-f]+\s+)?(.*)$/;

/**
 * Reads mariadb-binlog's text of one file (TZ=UTC, --base64-output=decode-rows) line by line into its transactions.
 * `from` is where the text starts in the file (its --start-position, or 4): the first GTID event after it starts there.
 */
export class BinlogParser {
  readonly transactions: BinlogTransaction[] = [];
  private prevEnd: number;
  private current: { gtid: string; start: number; ddl: boolean } | undefined;
  private lastAt: Date | undefined;
  private lastEnd: number;

  constructor(
    private readonly file: string,
    from = 4,
  ) {
    this.prevEnd = from;
    this.lastEnd = from;
  }

  private close(at: Date, end: number, committed: boolean): void {
    if (!this.current) return;
    this.transactions.push({ file: this.file, gtid: this.current.gtid, start: this.current.start, end, at, committed });
    this.current = undefined;
  }

  feed(line: string): void {
    const h = HEADER.exec(line);
    if (h) {
      const [, yy = "", mo = "", dd = "", hh = "", mi = "", ss = "", endPos = "", what = ""] = h;
      const at = new Date(Date.UTC(2000 + Number(yy), Number(mo) - 1, Number(dd), Number(hh), Number(mi), Number(ss)));
      const end = Number(endPos);
      const gtid = /^GTID (\d+-\d+-\d+)(.*)$/.exec(what);
      if (gtid) {
        // A group cut short by the next one (never in a sound log) is not a committed transaction.
        this.close(this.lastAt ?? at, this.lastEnd, false);
        this.current = { gtid: gtid[1] ?? "", start: this.prevEnd, ddl: !/\btrans\b/.test(gtid[2] ?? "") };
      } else if (this.current?.ddl && /^Query\b/.test(what)) {
        this.close(at, end, true);
      }
      this.lastAt = at;
      this.lastEnd = end;
      this.prevEnd = end;
      return;
    }
    if (this.current && !this.current.ddl && this.lastAt && /^(COMMIT|ROLLBACK)\b/.test(line)) this.close(this.lastAt, this.lastEnd, true);
  }

  /** The transactions; one left open at the end (a file still being written) is not committed. */
  finish(): BinlogTransaction[] {
    this.close(this.lastAt ?? new Date(0), this.lastEnd, false);
    return this.transactions;
  }
}

export function parseBinlogText(file: string, lines: Iterable<string>, from = 4): BinlogTransaction[] {
  const p = new BinlogParser(file, from);
  for (const l of lines) p.feed(l);
  return p.finish();
}

/** mariadb-binlog over one archived file from a position, its transactions (read as a stream: files can be large). */
export async function transactionsOf(dir: string, file: string, from = 4): Promise<BinlogTransaction[]> {
  const child = spawn("mariadb-binlog", ["--no-defaults", "--base64-output=decode-rows", `--start-position=${from}`, join(dir, file)], { stdio: ["ignore", "pipe", "pipe"], env: toolEnv({ TZ: "UTC" }) });
  child.stderr.resume();
  const closed = new Promise((r) => child.on("close", r));
  const parser = new BinlogParser(file, from);
  for await (const line of createInterface({ input: child.stdout, crlfDelay: Infinity })) parser.feed(line);
  await closed;
  // A file still being written ends in the middle of an event: mariadb-binlog's error there is the end of the file.
  return parser.finish();
}

/**
 * The second replay stops before. The binary log times events to the second (the statement's start): a point on a
 * whole second keeps what is timed before it; within a second, `--at` keeps that second's transactions and
 * `--before` drops them, so that each keeps what it promises of the transactions it can tell apart.
 */
export function stopSecond(target: Date, inclusive: boolean): number {
  const ms = target.getTime();
  const floor = Math.floor(ms / 1000) * 1000;
  if (floor === ms) return ms;
  return inclusive ? floor + 1000 : floor;
}

/** What to replay: the transactions after the base backup before the stop second, and the first one not replayed. */
export function replayPlan(txs: BinlogTransaction[], stopMs: number): { apply: BinlogTransaction[]; next?: BinlogTransaction } {
  const i = txs.findIndex((t) => !t.committed || t.at.getTime() >= stopMs);
  if (i < 0) return { apply: txs };
  const next = txs[i];
  return { apply: txs.slice(0, i), ...(next?.committed ? { next } : {}) };
}
