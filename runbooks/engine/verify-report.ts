import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Sites } from "../../inventory/index.js";
import { DcctlError, ExitCode, errorMessage } from "../../util/errors.js";
import { CHAINED_SINCE, GENESIS, chainedParts, inventoryCopyName, readJournalText, sha256 } from "./journal.js";
import { runbookOfRun } from "./load.js";
import { buildReport, reportFiles } from "./report.js";
import type { RunReport } from "./report-model.js";
import { runDir } from "./state.js";

/**
 * `dcctl dr verify-report`: is a run's report what its journal says, and is the journal what was written?
 *
 *  - the chain: every record's hash is recomputed from its line and its `prev` must be the hash of the record before;
 *    an edited, removed, inserted or reordered record breaks it at the first bad seq;
 *  - report.json's journalHead must be a record of that chain;
 *  - an anchored head (--head: printed at the end of the run, sent in its notification) must be one too — the chain
 *    alone proves nothing against someone who rewrites the whole journal and recomputes every hash, the anchor does;
 *  - the runbook and inventory copies must be the ones the journal recorded;
 *  - report.json, report.md and report.html are rebuilt from the journal and compared with the files, line by line.
 */

export type CheckStatus = "ok" | "failed" | "not chained" | "skipped";

export interface VerifyCheck {
  check: string;
  status: CheckStatus;
  detail: string;
  /** The first record that does not verify. */
  seq?: number;
}

export interface VerifyOutcome {
  runId: string;
  dir: string;
  ok: boolean;
  checks: VerifyCheck[];
}

export interface ChainVerdict {
  /** Records read (a torn last line, cut by a crash, is not one). */
  records: number;
  /** Each record's link in the chain, by seq - 1. */
  links: string[];
  /** The first record carrying a hash; undefined when none does. */
  chainedFrom?: number;
  problem?: { seq: number; line: number; message: string };
  tornTail: boolean;
}

/** Recomputes a journal's chain from its text, stopping at the first record that does not verify. */
export function verifyChain(text: string): ChainVerdict {
  const lines = text.split("\n");
  const v: ChainVerdict = { records: 0, links: [], tornTail: false };
  let prev = GENESIS;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (line.trim() === "") continue;
    const seq = v.records + 1;
    const fail = (message: string) => {
      v.problem = { seq, line: i + 1, message };
      return v;
    };
    let rec: { seq?: unknown; prev?: unknown; hash?: unknown };
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      // A crash can cut the last line short (the work it announced never began); anywhere else it is damage.
      if (i >= lines.length - 2 && !text.endsWith("\n")) {
        v.tornTail = true;
        break;
      }
      return fail(`line ${i + 1} is not JSON: the record was edited or damaged`);
    }
    if (rec.seq !== seq) {
      if (typeof rec.seq === "number" && rec.seq > seq) return fail(`line ${i + 1} holds seq ${rec.seq} where seq ${seq} was expected: record ${seq} was removed`);
      return fail(`line ${i + 1} holds seq ${String(rec.seq)} where seq ${seq} was expected: a record was inserted, repeated or reordered`);
    }
    const parts = chainedParts(line);
    if (!parts) {
      if (rec.hash !== undefined) return fail(`its hash is not where the writer puts it (the last field): the record was edited`);
      if (v.chainedFrom !== undefined) return fail(`it has no hash though the chain begins at seq ${v.chainedFrom}: the record was inserted or its hash removed`);
      prev = sha256(`${prev}\n${line}`);
    } else {
      v.chainedFrom ??= seq;
      if (rec.prev !== prev) {
        return fail(
          seq === 1
            ? "its prev is not the chain's start: records before it were removed"
            : `its prev does not match the hash of seq ${seq - 1}: seq ${seq - 1} was rewritten, or records were removed, inserted or reordered`,
        );
      }
      if (sha256(`${prev}\n${parts.body}`) !== parts.hash) return fail("its hash does not match its content: the record was edited");
      prev = parts.hash;
    }
    v.records = seq;
    v.links.push(prev);
  }
  return v;
}

const short = (hash: string) => `sha256:${hash}`;
const records = (n: number) => `${n} record${n === 1 ? "" : "s"}`;

/** The first line where two texts differ, quoted briefly from both. */
export function firstDifference(expected: string, actual: string): string | undefined {
  if (expected === actual) return undefined;
  const a = expected.split("\n");
  const b = actual.split("\n");
  const quote = (s: string | undefined) => (s === undefined ? "(end of file)" : JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}…` : s));
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `line ${i + 1} differs: the journal gives ${quote(a[i])}, the file has ${quote(b[i])}`;
  }
  return "the files differ";
}

export interface VerifyOptions {
  /** An anchored chain head (hex, with or without "sha256:"), from the end of the run or its notification. */
  head?: string;
  /** The inventory to rebuild with when the run kept no copy of its own (runs before dcctl 0.2.0). */
  currentSites: () => Sites;
}

export function verifyReport(dir: string, opts: VerifyOptions): VerifyOutcome {
  const runId = basename(dir);
  const checks: VerifyCheck[] = [];
  const add = (check: string, status: CheckStatus, detail: string, seq?: number) => checks.push({ check, status, detail, ...(seq !== undefined ? { seq } : {}) });
  const journalPath = join(dir, "journal.jsonl");
  const text = readJournalText(journalPath);

  const chain = verifyChain(text);
  const torn = chain.tornTail ? "; the last line was cut short by a crash and is not counted" : "";
  if (chain.problem) {
    add("journal chain", "failed", `first bad record: seq ${chain.problem.seq} (line ${chain.problem.line}): ${chain.problem.message}`, chain.problem.seq);
  } else if (chain.chainedFrom === undefined) {
    add("journal chain", "not chained", `${records(chain.records)}, not chained (written before dcctl ${CHAINED_SINCE}): nothing to recompute${torn}`);
  } else {
    const before = chain.chainedFrom > 1 ? `; records 1-${chain.chainedFrom - 1} are not chained (written before dcctl ${CHAINED_SINCE}) but sealed by seq ${chain.chainedFrom}` : "";
    add("journal chain", "ok", `${records(chain.records)}, head ${short(chain.links[chain.records - 1] ?? "")}${before}${torn}`);
  }
  const seqOf = (hash: string) => chain.links.indexOf(hash) + 1;

  if (opts.head !== undefined) {
    const head = opts.head.replace(/^sha256:/, "").toLowerCase();
    const at = seqOf(head);
    if (!/^[0-9a-f]{64}$/.test(head)) add("anchored head", "failed", `--head ${opts.head} is not a sha256 (64 hex digits)`);
    else if (!at) add("anchored head", "failed", `${short(head)} is no record of the journal${chain.problem ? ` as far as it verifies (to seq ${chain.records})` : ""}: the journal was rewritten or cut short`);
    else add("anchored head", "ok", at === chain.records ? `seq ${at}, the journal's last record` : `seq ${at}; ${records(chain.records - at)} written after it (a resume, or a note after the notification)`);
  }

  // The report's head first: the copies to check are those the journal named up to it.
  let headCheck: VerifyCheck | undefined;
  const headIs = (status: CheckStatus, detail: string, seq?: number) => void (headCheck = { check: "report head", status, detail, ...(seq !== undefined ? { seq } : {}) });
  const onDisk = (name: string) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), "utf8") : undefined);
  const jsonText = onDisk("report.json");
  let written: Partial<RunReport> | undefined;
  try {
    written = jsonText === undefined ? undefined : (JSON.parse(jsonText) as Partial<RunReport>);
  } catch {
    written = undefined;
  }
  const chained = chain.chainedFrom !== undefined;
  let upTo: number | undefined;
  if (jsonText === undefined) headIs("failed", "report.json is missing");
  else if (!written) headIs("failed", "report.json is not JSON: it was edited or damaged");
  else if (!written.journalHead) {
    if (chained) headIs("failed", "report.json names no journalHead though the journal is chained: it was edited");
    else headIs("not chained", "report.json names no journalHead: the journal is not chained");
  } else {
    const { seq, hash } = written.journalHead;
    const link = chain.links[seq - 1];
    if (link === undefined) headIs("failed", `report.json names seq ${seq} (${short(hash)}) but the journal verifies only to seq ${chain.records}: records were removed from its end${chain.problem ? " or the chain breaks before it" : ""}`, chain.records + 1);
    else if (link !== hash) headIs("failed", `report.json names ${short(hash)} for seq ${seq}, the journal's seq ${seq} is ${short(link)}`, seq);
    else {
      upTo = seq;
      headIs("ok", seq === chain.records ? `seq ${seq} ${short(hash)}, the journal's last record` : `seq ${seq} ${short(hash)}; the journal has ${records(chain.records - seq)} after it (the run went on after this report)`);
    }
  }

  // What the journal recorded about the copies, read from the records that verify, up to the report's head.
  let start: { runbookSha256?: string; service?: string } | undefined;
  let lastInventory: string | undefined;
  for (const line of text.split("\n").filter((l) => l.trim() !== "").slice(0, upTo ?? chain.records)) {
    const r = safeParse(line);
    if (r?.type === "run-start") start = r;
    if ((r?.type === "run-start" || r?.type === "run-resume") && typeof r.inventorySha256 === "string") lastInventory = r.inventorySha256;
  }

  const runbookFile = join(dir, "runbook.yaml");
  const runbookText = existsSync(runbookFile) ? readFileSync(runbookFile, "utf8") : undefined;
  if (runbookText === undefined) add("runbook copy", "failed", `${runbookFile} is missing`);
  else if (!start?.runbookSha256) add("runbook copy", "skipped", `not recorded in the journal (written before dcctl ${CHAINED_SINCE})`);
  else if (sha256(runbookText) !== start.runbookSha256) add("runbook copy", "failed", `runbook.yaml is not the file the run started with (sha256 ${sha256(runbookText)}, the journal recorded ${start.runbookSha256})`);
  else add("runbook copy", "ok", `sha256 ${start.runbookSha256}`);

  let sites: Sites | undefined;
  if (lastInventory) {
    const file = join(dir, inventoryCopyName(lastInventory));
    const copy = existsSync(file) ? readFileSync(file, "utf8") : undefined;
    if (copy === undefined) add("inventory copy", "failed", `${file} is missing`);
    else if (sha256(copy) !== lastInventory) add("inventory copy", "failed", `${basename(file)} is not the inventory the run planned with (sha256 ${sha256(copy)}, the journal recorded ${lastInventory})`);
    else {
      sites = JSON.parse(copy) as Sites;
      add("inventory copy", "ok", `sha256 ${lastInventory}`);
    }
  } else {
    add("inventory copy", "skipped", `no copy recorded (written before dcctl ${CHAINED_SINCE}): the reports are rebuilt with the current inventory`);
  }

  if (headCheck) checks.push(headCheck);

  // An old report (before the format with journalHead) cannot be rebuilt by this dcctl; a chained one must be.
  const oldFormat = written !== undefined && written.format === undefined && !chained;
  if (oldFormat) {
    for (const name of ["report.json", "report.md", "report.html"]) add(name, "skipped", `written by dcctl before ${CHAINED_SINCE}: its format is not rebuilt`);
  } else {
    let rebuilt: ReturnType<typeof reportFiles> | undefined;
    try {
      if (runbookText === undefined) throw new Error("no runbook copy to rebuild with");
      const inventory = sites ?? opts.currentSites();
      const runbook = runbookOfRun(runbookFile, runbookText, inventory, start ?? {});
      // A run folder copied elsewhere still prints the journal path its report was written with.
      const label = written?.journal && basename(dirname(written.journal)) === runId && basename(written.journal) === "journal.jsonl" ? written.journal : undefined;
      rebuilt = reportFiles(buildReport(dir, runbook, inventory, { ...(upTo !== undefined ? { upToSeq: upTo } : chain.problem ? { upToSeq: chain.records } : {}), ...(label ? { journalLabel: label } : {}) }));
    } catch (e) {
      for (const name of ["report.json", "report.md", "report.html"]) add(name, "failed", `cannot be rebuilt from the journal: ${errorMessage(e)}`);
    }
    if (rebuilt) {
      for (const name of ["report.json", "report.md", "report.html"] as const) {
        const file = onDisk(name);
        if (file === undefined) add(name, "failed", `${name} is missing`);
        else {
          const diff = firstDifference(rebuilt[name], file);
          add(name, diff ? "failed" : "ok", diff ? `edited: ${diff}` : "as rebuilt from the journal");
        }
      }
    }
  }
  return { runId, dir, ok: checks.every((c) => c.status !== "failed"), checks };
}

function safeParse(line: string): { type?: string; runbookSha256?: string; inventorySha256?: string } | undefined {
  try {
    return JSON.parse(line) as { type?: string };
  } catch {
    return undefined;
  }
}

/** The folder of a run that exists; a bad or unknown id is bad input (a typo), like `dcctl dr resume`'s. */
export function existingRunDir(runId: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(runId)) throw new DcctlError(`not a run id: ${runId}`, ExitCode.badInput);
  const dir = runDir(runId, env);
  if (!existsSync(join(dir, "journal.jsonl"))) throw new DcctlError(`no DR run ${runId} in ${dirname(dir)} (see dcctl dr history)`, ExitCode.badInput);
  return dir;
}

/** One line per check, for people. */
export function verifyLines(o: VerifyOutcome): string[] {
  const mark: Record<CheckStatus, string> = { ok: "ok", failed: "FAILED", "not chained": "not chained", skipped: "--" };
  return o.checks.map((c) => `${mark[c.status].padEnd(11)} ${c.check}: ${c.detail}`);
}
