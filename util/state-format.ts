import { existsSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DcctlError } from "./errors.js";

/**
 * The format of a state folder ($DCCTL_STATE_DIR: Pulumi state, run ledgers, verify records, replication readings,
 * DR journals), so that an upgrade reads what the release before it wrote and a downgrade never guesses. The folder
 * carries `format.json`; each change of any file's layout raises STATE_FORMAT by one and adds a migration below,
 * which brings a folder from the format before it, once, on the first start of the newer dcctl (install.sh starts it,
 * `dcctl doctor --only state`), and records it with its note in the mark, which doctor shows. Nothing is printed on
 * an ordinary start: a scheduler's log is no place for it. An older dcctl that finds a newer format refuses with one
 * line instead of misreading it.
 */

export const STATE_FORMAT = 1;

interface FormatMark {
  format: number;
  /** The dcctl that last wrote the mark. */
  dcctl: string;
  /** Every migration this folder went through, oldest first. */
  migrations: AppliedMigration[];
}

export interface AppliedMigration {
  from: number;
  to: number;
  at: string;
  dcctl: string;
  note: string;
}

interface Migration {
  /** The format it produces, from the one before. */
  to: number;
  /** What it did, for the note. */
  note: string;
  run(dir: string): void;
}

const MIGRATIONS: Migration[] = [
  {
    to: 1,
    // dcctl up to 0.2.0 kept no mark; its files are read as they are: journals without a hash chain read as "not
    // chained" (dr verify-report), ledgers and records have not changed their fields since.
    note: "state of dcctl 0.2 or older: marked as format 1, no file rewritten (DR journals from before the hash chain read as not chained)",
    run: () => undefined,
  },
];

const MARK = "format.json";

function readMark(dir: string): FormatMark | undefined {
  const file = join(dir, MARK);
  if (!existsSync(file)) return undefined;
  let mark: unknown;
  try {
    mark = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new DcctlError(`${file}: cannot read the state format (${e instanceof Error ? e.message : String(e)}); restore it from a backup of the state folder`);
  }
  const m = mark as Partial<FormatMark>;
  if (typeof m.format !== "number" || !Number.isInteger(m.format) || m.format < 1) throw new DcctlError(`${file}: no valid "format" in it`);
  return { format: m.format, dcctl: typeof m.dcctl === "string" ? m.dcctl : "unknown", migrations: Array.isArray(m.migrations) ? m.migrations : [] };
}

export interface FormatCheck {
  format: number;
  /** The migrations the folder went through, those of this start included. */
  migrations: AppliedMigration[];
}

/**
 * Brings the state folder to this dcctl's format before a command reads it. Throws, naming both versions, when the
 * folder is newer than this dcctl. A folder that is absent or empty is left as it is (nothing to read, and a command
 * that writes nothing, such as `dr plan`, leaves nothing behind): `markNewState` marks it once this dcctl has written
 * to it. A folder this user cannot write is checked but left unmarked (a read-only operator's `dcctl backup status`).
 */
export function ensureStateFormat(dir: string, version: string): FormatCheck {
  if (!isDir(dir)) return { format: STATE_FORMAT, migrations: [] };
  const mark = readMark(dir);
  const from = mark?.format ?? 0;
  const done = mark?.migrations ?? [];
  if (from > STATE_FORMAT) {
    throw new DcctlError(`the state in ${dir} has format ${from} (written by dcctl ${mark?.dcctl}); this dcctl ${version} reads format ${STATE_FORMAT} or older: use dcctl ${mark?.dcctl} or newer`);
  }
  if (from === STATE_FORMAT || (!mark && readdirSync(dir).length === 0)) return { format: STATE_FORMAT, migrations: done };
  const applied: AppliedMigration[] = [];
  for (const m of MIGRATIONS.filter((x) => x.to > from && x.to <= STATE_FORMAT)) {
    m.run(dir);
    applied.push({ from: m.to - 1, to: m.to, at: new Date().toISOString(), dcctl: version, note: m.note });
  }
  return writeMark(dir, version, [...done, ...applied]) ? { format: STATE_FORMAT, migrations: [...done, ...applied] } : { format: from, migrations: done };
}

/** After a command: a folder that was empty or absent when it started and holds what it wrote gets this format's mark. */
export function markNewState(dir: string, version: string): void {
  if (!isDir(dir) || existsSync(join(dir, MARK)) || readdirSync(dir).length === 0) return;
  writeMark(dir, version, []);
}

function writeMark(dir: string, version: string, migrations: AppliedMigration[]): boolean {
  try {
    const file = join(dir, MARK);
    const next: FormatMark = { format: STATE_FORMAT, dcctl: version, migrations };
    writeFileSync(`${file}.partial`, JSON.stringify(next, null, 2) + "\n");
    renameSync(`${file}.partial`, file);
    return true;
  } catch {
    return false;
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
