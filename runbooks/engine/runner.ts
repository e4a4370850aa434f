import { randomBytes } from "node:crypto";
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { allHosts, type Sites } from "../../inventory/index.js";
import { DcctlError, ExitCode, errorMessage } from "../../util/errors.js";
import { formatDuration } from "./duration.js";
import { listRuns } from "./history.js";
import { Journal, inventoryCopyName, readJournal, sha256, type MissedTarget, type RunStartRecord } from "./journal.js";
import { failureReference } from "./failure.js";
import { measure } from "./measure.js";
import { runbookOfRun } from "./load.js";
import { acquireLock, type HeldLock } from "./lock.js";
import type { PlannedStep, Runbook } from "./model.js";
import { isIdempotent, planRunbook } from "./plan.js";
import type { Progress } from "./progress.js";
import { cleanupDue, replay, type Replay } from "./replay.js";
import { expandArgv } from "./steps/argv-vars.js";
import { buildReport, writeReport } from "./report.js";
import { notifyRunEnd } from "./steps/notify.js";
import { emitRunEnded, emitRunStarted, servicesWithFeed } from "./feed.js";
import { describeDelivery, type NotifyResult } from "../../notify/index.js";
import { locksDir, newRunId, runDir as runDirOf } from "./state.js";
import { StepFailure, stepModules, type DrServices, type RecoverPoint, type StepContext, type StepResult } from "./steps/index.js";
import { lastLine, shown } from "./steps/on-hosts.js";
import { makeDir } from "../../util/dirs.js";
import { syncDir } from "../../util/files.js";
import type { Lang } from "../../util/i18n.js";
import type { ApprovalRecord } from "../../backup/approval/request.js";

/**
 * Runs a runbook: priority groups in order, the steps of a group in parallel (up to the runbook's limit) once their
 * dependencies ended well, each step framed by fsynced `start` and `end` journal records. The first failure stops
 * new steps (running ones finish). A drill then undoes what it created, whatever happened before.
 */

export interface EngineOptions {
  sites: Sites;
  services: DrServices;
  progress: Progress;
  /** Who runs it (the report names them). */
  operator: string;
  env?: NodeJS.ProcessEnv;
  /** Rebuild former primaries even where they hold writes past the fork (kept first; reported as data loss). */
  discardDiverged?: boolean;
}

export interface StartOptions extends EngineOptions {
  runbook: Runbook;
  /** The runbook's text, kept in the run folder so that a resume runs exactly what was started. */
  runbookText: string;
  confirmedBy: string;
  /** The second operator's approval (four eyes), when the site requires one: recorded in the run-start record. */
  approval?: ApprovalRecord;
  /** When the failure happened, as the operator says; default: the first unanswered probe of a primary, else now (failure.ts). */
  failedAt?: Date;
  /** A planned switchover (see RunStartRecord.planned). */
  planned?: boolean;
  /** A recover's point (`dcctl dr recover --before`): also the reference for RPO. */
  before?: RecoverPoint;
  /** The service the run is for: `runbook` is the part of the runbook's text that concerns it (forService). */
  service?: string;
  /** The language of the report (recorded in the journal, so that a rebuild reads the same); default en. */
  lang?: Lang;
}

export interface ResumeOptions extends EngineOptions {
  runId: string;
  /** Steps cut off by a crash that the operator says to run again / to count as done. */
  rerun?: string[];
  skip?: string[];
  confirmedBy: string;
  /** The approval of this resume (four eyes), recorded in its run-resume record. */
  approval?: ApprovalRecord;
}

export interface RunOutcome {
  runId: string;
  runDir: string;
  /** missed: every step ended well, but an RPO or RTO target was missed (see targetsMissed). */
  status: "ok" | "failed" | "missed";
  message?: string;
  targetsMissed?: MissedTarget[];
  reportFiles: string[];
  /** The journal's last record: the anchor `dcctl dr verify-report --head` checks the journal against. */
  journalHead: { seq: number; hash: string };
  /** How the end-of-run message went, per channel, when the site has channels (backup config `notify:`). */
  notified?: NotifyResult[];
  /** The exit code a failed step asked for (5: it would discard what it was not told to), else absent. */
  exitCode?: ExitCode;
}

/** The runbook a run was started with, and what its journal says, for `dr resume` to decide what to ask. */
export function loadRun(runId: string, sites: Sites, env: NodeJS.ProcessEnv = process.env): { runbook: Runbook; state: Replay; dir: string } {
  if (!/^[A-Za-z0-9_.-]+$/.test(runId)) throw new DcctlError(`not a run id: ${runId}`, ExitCode.badInput);
  const dir = runDirOf(runId, env);
  // An id that names no run is bad input (a typo), not a failed operation.
  if (!existsSync(dir)) throw new DcctlError(`no DR run ${runId} in ${dirname(dir)} (see dcctl dr history)`, ExitCode.badInput);
  const state = replay(readJournal(join(dir, "journal.jsonl")).records);
  let text: string;
  try {
    text = readFileSync(join(dir, "runbook.yaml"), "utf8");
  } catch {
    throw new DcctlError(`run ${runId}: its runbook copy ${join(dir, "runbook.yaml")} is missing`);
  }
  return { runbook: runbookOfRun(join(dir, "runbook.yaml"), text, sites, state.start), state, dir };
}

function writeDurably(path: string, text: string): void {
  const fd = openSync(path, "wx", 0o640);
  writeSync(fd, text);
  fsyncSync(fd);
  closeSync(fd);
}

/**
 * Keeps the inventory a run plans with beside its journal, named by its digest, so that its report can be rebuilt
 * (dcctl dr verify-report) after the inventory changed; returns the digest for the journal.
 */
function keepInventory(dir: string, sites: Sites): string {
  const text = JSON.stringify(sites, null, 2) + "\n";
  const digest = sha256(text);
  if (!existsSync(join(dir, inventoryCopyName(digest)))) writeDurably(join(dir, inventoryCopyName(digest)), text);
  return digest;
}


export async function startRun(o: StartOptions): Promise<RunOutcome> {
  const now = o.services.now();
  const runId = newRunId(o.runbook.kind, now, randomBytes(2).toString("hex"));
  const lock = await acquireLock(locksDir(o.env), o.runbook.scope, runId);
  try {
    refuseOverCutOffRun(o.runbook.scope, o.env);
    const dir = runDirOf(runId, o.env);
    makeDir(dir);
    writeDurably(join(dir, "runbook.yaml"), o.runbookText);
    const inventorySha256 = keepInventory(dir, o.sites);
    const journal = new Journal(join(dir, "journal.jsonl"), o.services.now);
    const start: RunStartRecord = {
      type: "run-start",
      runId,
      runbook: o.runbook.name,
      kind: o.runbook.kind,
      to: o.runbook.to,
      scope: o.runbook.scope,
      file: o.runbook.file,
      failedAt: (o.failedAt ?? o.before?.at ?? now).toISOString(),
      failedAtFrom: o.failedAt || o.before ? "operator" : "run-start",
      ...(o.planned ? { planned: true } : {}),
      ...(o.before ? { before: o.before.text } : {}),
      ...(o.service ? { service: o.service } : {}),
      operator: o.operator,
      confirmedBy: o.confirmedBy,
      ...(o.approval ? { approval: o.approval } : {}),
      host: hostname(),
      pid: process.pid,
      lang: o.lang ?? "en",
      runbookSha256: sha256(o.runbookText),
      inventorySha256,
    };
    journal.append(start);
    syncDir(dir);
    noteTakeover(journal, lock);
    o.progress.line(`run ${runId}: ${o.runbook.kind} with runbook ${o.runbook.name}; journal ${journal.path}`);
    emitRunStarted(o.services.feed, { runbook: o.runbook, runId, chain: journal.chainHead, resumed: false, confirmedBy: o.confirmedBy, ...(o.approval ? { approver: o.approval.approvedBy } : {}) });
    return await new Execution(o, o.runbook, runId, dir, journal, replay(readJournal(journal.path).records), o.approval?.approvedBy).go();
  } finally {
    lock.release();
  }
}

/**
 * A run of the scope that a crash cut off has left its work behind (scratch databases, a drill portal, a half-moved
 * service). A new run beside it could check that work instead of its own and pass without having run, so it is
 * refused, with the command that finishes the old one (a drill's resume also cleans up).
 */
function refuseOverCutOffRun(scope: string, env: NodeJS.ProcessEnv | undefined): void {
  const cut = listRuns(env).find((r) => r.scope === scope && r.status === "interrupted");
  if (cut) {
    throw new DcctlError(
      `run ${cut.runId} (${cut.kind}, ${cut.steps.done} of ${cut.steps.total} steps done) in scope ${scope} was cut off and has not been finished; finish it first: dcctl dr resume ${cut.runId}`,
      ExitCode.locked,
    );
  }
}

type Decision = { step: string; decision: "rerun" | "skip"; reason: string; by: string };

/**
 * The resume rule: a step that ended well is never run again; one that a crash cut off (or that failed) runs again
 * only when its type is idempotent or the operator said so (--rerun), or is counted as done by hand (--skip);
 * otherwise resuming stops and asks (exit 5) before writing anything.
 */
function decide(o: ResumeOptions, runbook: Runbook, state: Replay): Decision[] {
  const planned = planRunbook(runbook, o.sites);
  const ids = new Set(planned.map((p) => p.step.id));
  for (const id of [...(o.rerun ?? []), ...(o.skip ?? [])]) {
    if (!ids.has(id)) throw new DcctlError(`run ${o.runId} has no step "${id}"`, ExitCode.badInput);
  }
  const decisions: Decision[] = [];
  const undecided: string[] = [];
  for (const p of planned) {
    const h = state.steps.get(p.step.id);
    if (!h || (h.state !== "cut-off" && h.state !== "failed")) continue;
    const how = h.state === "cut-off" ? "was cut off (started, never ended)" : "failed";
    if (o.skip?.includes(p.step.id)) decisions.push({ step: p.step.id, decision: "skip", reason: `${how}; operator: done by hand`, by: o.operator });
    else if (o.rerun?.includes(p.step.id)) decisions.push({ step: p.step.id, decision: "rerun", reason: `${how}; operator: run again`, by: o.operator });
    else if (isIdempotent(p)) decisions.push({ step: p.step.id, decision: "rerun", reason: `${how}; ${p.step.type} is idempotent`, by: "dcctl (resume rule)" });
    else undecided.push(`${p.step.id} [${p.step.type}] ${how}`);
  }
  if (undecided.length) {
    throw new DcctlError(
      `run ${o.runId}: ${undecided.join("; ")} and is not idempotent: check its hosts, then resume with --rerun <step> to run it again or --skip <step> if it is done`,
      ExitCode.notConfirmed,
    );
  }
  return decisions;
}

export async function resumeRun(o: ResumeOptions): Promise<RunOutcome> {
  const first = loadRun(o.runId, o.sites, o.env);
  if (first.state.end?.status === "ok") throw new DcctlError(`run ${o.runId} already completed; nothing to resume`);
  // Asked before the lock is taken, so that a refusal leaves everything (journal and lock) as it was.
  decide(o, first.runbook, first.state);
  const lock = await acquireLock(locksDir(o.env), first.runbook.scope, o.runId);
  try {
    // Read again under the lock: another resume may have moved the run on meanwhile.
    const { runbook, state, dir } = loadRun(o.runId, o.sites, o.env);
    if (state.end?.status === "ok") throw new DcctlError(`run ${o.runId} already completed; nothing to resume`);
    const decisions = decide(o, runbook, state);
    const journal = new Journal(join(dir, "journal.jsonl"), o.services.now);
    const inventorySha256 = keepInventory(dir, o.sites);
    syncDir(dir);
    journal.append({ type: "run-resume", operator: o.operator, confirmedBy: o.confirmedBy, ...(o.approval ? { approval: o.approval } : {}), pid: process.pid, inventorySha256 });
    noteTakeover(journal, lock);
    // What a restore killed with the run left (a temporary database the size of a dump) goes before anything runs again.
    const settled = await o.services.restorer?.settleLeft?.(allHosts(o.sites)).catch((e: unknown) => [`could not settle what killed restores left: ${errorMessage(e)}`]);
    for (const message of settled ?? []) {
      journal.append({ type: "note", message });
      o.progress.line(`note: ${message}`);
    }
    for (const d of decisions) journal.append({ type: "decision", ...d });
    o.progress.line(`run ${o.runId}: resuming ${runbook.kind} with runbook ${runbook.name}`);
    emitRunStarted(o.services.feed, { runbook, runId: o.runId, chain: journal.chainHead, resumed: true, confirmedBy: o.confirmedBy, ...(o.approval ? { approver: o.approval.approvedBy } : {}) });
    return await new Execution(o, runbook, o.runId, dir, journal, replay(readJournal(journal.path).records), o.approval?.approvedBy).go();
  } finally {
    lock.release();
  }
}

function noteTakeover(journal: Journal, lock: HeldLock): void {
  if (lock.tookOver) journal.append({ type: "note", message: `took over the lock of run ${lock.tookOver.runId} (pid ${lock.tookOver.pid} is gone)` });
}

class Execution {
  private readonly planned: PlannedStep[];
  private readonly results: Map<string, StepResult>;
  private readonly completed = new Set<string>();
  private readonly running = new Set<string>();
  /** The exit code of the first failed step that named one other than 1. */
  private exitCode: ExitCode | undefined;
  /** The engine's services, with what the SOC is told of on the way (feed.ts). */
  private readonly services: DrServices;

  constructor(
    private readonly o: EngineOptions,
    private readonly runbook: Runbook,
    private readonly runId: string,
    private readonly dir: string,
    private readonly journal: Journal,
    private readonly initial: Replay,
    /** The second operator who approved this run (four eyes), for what the SOC is told of its end. */
    private readonly approver?: string,
  ) {
    this.planned = planRunbook(runbook, o.sites);
    this.services = servicesWithFeed(o.services, runId);
    this.results = new Map(initial.results);
    for (const [id, h] of initial.steps) if (h.state === "done" || h.state === "skipped") this.completed.add(id);
  }

  async go(): Promise<RunOutcome> {
    if (this.o.discardDiverged) this.journal.append({ type: "note", message: `--discard-diverged given: former primaries are rebuilt even where they hold writes past the fork (kept in the run folder, reported as data loss)` });
    let failure: string | undefined;
    try {
      failure = await this.steps();
    } catch (err) {
      failure = errorMessage(err);
    }
    // A recover keeps what it brought back for the operator to inspect (and promote); one that failed leaves nothing.
    if (this.runbook.kind === "drill" || (this.runbook.kind === "recover" && failure)) {
      const cleanupFailure = await this.cleanup();
      if (cleanupFailure) failure = failure ? `${failure}; and ${cleanupFailure}` : cleanupFailure;
    }
    const status = failure ? "failed" : "ok";
    // A run whose every step ended well but that missed a target is not headed OK: it is told so, and says which.
    const missed = failure ? [] : this.targetsMissed();
    // The run-end message is a failure's; what was missed is in its own field, which the report says in its language.
    this.journal.append({ type: "run-end", status, ...(failure ? { message: failure } : {}), ...(missed.length ? { targetsMissed: missed } : {}) });
    const message = failure ?? (missed.length ? missedMessage(missed) : undefined);
    // Told before the report is written, so that the report also covers the note of how the telling went.
    const told = await notifyRunEnd(this.o.services.notify, () => buildReport(this.dir, this.runbook, this.o.sites), this.runbook.kind, this.dir);
    if (told.note) this.journal.append(told.note);
    const reportFiles = await writeReport(this.dir, this.runbook, this.o.sites);
    const journalHead = this.journal.chainHead;
    this.journal.close();
    emitRunEnded(this.o.services.feed, { runbook: this.runbook, runId: this.runId, chain: journalHead, status: missed.length ? "missed" : status, ...(message ? { message } : {}), ...(reportFiles[0] ? { reportFile: reportFiles[0] } : {}), ...(this.approver ? { approver: this.approver } : {}) });
    this.o.progress.line(failure ? `run ${this.runId} FAILED: ${failure}` : missed.length ? `run ${this.runId} completed, TARGETS MISSED: ${message ?? ""}` : `run ${this.runId} completed`);
    this.o.progress.line(`report: ${reportFiles.join(", ")}`);
    if (told.results.length) this.o.progress.line(describeDelivery(told.results));
    // The anchor: whoever rewrites the journal later can recompute its chain, not this line in the operator's log.
    this.o.progress.line(`journal: ${this.journal.path}, ${journalHead.seq} records, chain head sha256:${journalHead.hash}`);
    this.o.progress.close();
    return {
      runId: this.runId,
      runDir: this.dir,
      status: missed.length ? "missed" : status,
      ...(message ? { message } : {}),
      ...(failure && this.exitCode !== undefined ? { exitCode: this.exitCode } : {}),
      ...(missed.length ? { targetsMissed: missed } : {}),
      reportFiles,
      journalHead,
      ...(told.results.length ? { notified: told.results } : {}),
    };
  }

  /** The RPO and RTO targets the journal so far shows missed, per service and overall, as the report measures them. */
  private targetsMissed(): MissedTarget[] {
    const records = readJournal(this.journal.path).records;
    const { overall, services } = measure(this.planned, replay(records), records, this.o.sites, this.runbook.to);
    return [...services, overall].flatMap((m) => [
      ...(m.rpoMet === false ? [{ service: m.service, measure: "RPO" as const, minutes: m.rpoMinutes ?? 0, targetMinutes: m.rpoTargetMinutes ?? 0, ...(m.tier !== undefined ? { tier: m.tier } : {}) }] : []),
      ...(m.rtoMet === false ? [{ service: m.service, measure: "RTO" as const, minutes: m.rtoMinutes ?? 0, targetMinutes: m.rtoTargetMinutes ?? 0, ...(m.tier !== undefined ? { tier: m.tier } : {}) }] : []),
    ]);
  }

  /** Runs the groups in order; returns the first failure's message, or undefined when every step ended well. */
  private async steps(): Promise<string | undefined> {
    for (const group of this.runbook.groups) {
      const ids = new Set(group.steps.map((s) => s.id));
      const pending = this.planned.filter((p) => ids.has(p.step.id) && !this.completed.has(p.step.id));
      if (pending.length === 0) continue;
      this.o.progress.line(`group ${group.name}: ${pending.length} step${pending.length === 1 ? "" : "s"}`);
      const failure = await this.group(pending);
      if (failure) return failure;
    }
    return undefined;
  }

  private async group(pending: PlannedStep[]): Promise<string | undefined> {
    let failure: string | undefined;
    const tasks = new Map<string, Promise<void>>();
    while (pending.length || tasks.size) {
      if (!failure) {
        for (const p of [...pending]) {
          if (tasks.size >= this.runbook.parallel) break;
          if (!p.step.dependsOn.every((d) => this.completed.has(d))) continue;
          pending.splice(pending.indexOf(p), 1);
          const task = this.step(p).then((err) => {
            tasks.delete(p.step.id);
            // Steps running beside the first failure finish: their failures are named too (each may hold what to do).
            if (err) failure = `${failure ? `${failure}; and ` : ""}step ${p.step.id} (${p.step.type}, ${p.step.where}) failed: ${err}`;
          });
          tasks.set(p.step.id, task);
        }
        this.o.progress.running([...tasks.keys()]);
      }
      if (tasks.size === 0) {
        // Nothing runs and nothing can start: only possible after a failure (the loader rejects cycles).
        if (!failure) failure = `steps ${pending.map((p) => p.step.id).join(", ")} wait for steps that did not end well`;
        break;
      }
      await Promise.race(tasks.values());
    }
    return failure;
  }

  private context(p: PlannedStep, signal: AbortSignal): StepContext {
    return {
      runId: this.runId,
      runDir: this.dir,
      runbook: this.runbook,
      sites: this.o.sites,
      services: this.services,
      // Read again for each step: a fence that found the primary not answering moves it (failure.ts).
      failedAt: new Date(failureReference(readJournal(this.journal.path).records).at),
      planned: this.initial.start.planned === true,
      ...(this.initial.start.before ? { before: { at: new Date(this.initial.start.before), text: this.initial.start.before } } : {}),
      discardDiverged: this.o.discardDiverged === true,
      results: this.results,
      signal,
      log: (line) => this.o.progress.line(`  ${p.step.id}: ${line}`),
      writeReport: () => writeReport(this.dir, this.runbook, this.o.sites),
    };
  }

  /** One step with its retries; resolves with the failure message, or undefined when it ended well. */
  private async step(p: PlannedStep): Promise<string | undefined> {
    const { id, type } = p.step;
    const m = stepModules[type];
    const before = this.initial.steps.get(id)?.starts ?? 0;
    for (let attempt = 1; ; attempt++) {
      const n = before + attempt;
      this.journal.append({ type: "step-start", step: id, attempt: n, hosts: p.hosts.map((h) => h.name) });
      this.o.progress.line(`start ${id} [${type}]${p.hosts.length ? ` on ${p.hosts.map((h) => h.name).join(", ")}` : ""}${n > 1 ? ` (attempt ${n})` : ""}`);
      const t0 = Date.now();
      const controller = new AbortController();
      try {
        const result = await withTimeout(m.run(p, this.context(p, controller.signal)), p.step.timeoutMs, controller, id);
        const durationMs = Date.now() - t0;
        this.journal.append({ type: "step-end", step: id, attempt: n, status: "ok", durationMs, notes: result.notes, data: result.data });
        this.results.set(id, result);
        this.completed.add(id);
        this.o.progress.line(`ok    ${id} in ${formatDuration(durationMs)}`);
        for (const note of result.notes) this.o.progress.line(`      ${note}`);
        return undefined;
      } catch (err) {
        const durationMs = Date.now() - t0;
        const message = errorMessage(err);
        const data = err instanceof StepFailure ? err.data : {};
        this.journal.append({ type: "step-end", step: id, attempt: n, status: "failed", durationMs, message, notes: [], data });
        if (attempt <= p.step.retries) {
          this.o.progress.line(`retry ${id}: ${message}`);
          continue;
        }
        this.o.progress.line(`FAIL  ${id} after ${formatDuration(durationMs)}: ${message}`);
        if (err instanceof DcctlError && err.exitCode !== ExitCode.failed) this.exitCode ??= err.exitCode;
        return message;
      }
    }
  }

  /** Drills: undo, newest first, what each started step created; every step is tried even when one fails. */
  private async cleanup(): Promise<string | undefined> {
    const state = replay(readJournal(this.journal.path).records);
    const failed: string[] = [];
    for (const p of [...this.planned].reverse()) {
      const m = stepModules[p.step.type];
      if (!m.hasCleanup && !p.step.cleanup) continue;
      if (!cleanupDue(state.steps.get(p.step.id))) continue;
      this.journal.append({ type: "cleanup-start", step: p.step.id });
      this.o.progress.line(`clean up after ${p.step.id}`);
      const notes: string[] = [];
      try {
        const controller = new AbortController();
        const ctx = this.context(p, controller.signal);
        notes.push(...(await withTimeout(m.cleanup(p, ctx, this.results.get(p.step.id)), p.step.timeoutMs, controller, `${p.step.id} clean-up`)));
        if (p.step.cleanup) notes.push(...(await this.cleanupCommand(p, p.step.cleanup.argv)));
        this.journal.append({ type: "cleanup-end", step: p.step.id, status: "ok", notes });
        for (const note of notes) this.o.progress.line(`      ${note}`);
      } catch (err) {
        this.journal.append({ type: "cleanup-end", step: p.step.id, status: "failed", notes, message: errorMessage(err) });
        failed.push(`${p.step.id}: ${errorMessage(err)}`);
        this.o.progress.line(`FAIL  clean-up of ${p.step.id}: ${errorMessage(err)}`);
      }
    }
    return failed.length ? `clean-up incomplete (${failed.join("; ")}); see the journal, then resume the run to try again` : undefined;
  }

  private async cleanupCommand(p: PlannedStep, rawArgv: string[]): Promise<string[]> {
    const argv = expandArgv(rawArgv, { runId: this.runId, kind: p.kind });
    const targets = p.hosts.length ? p.hosts.map((h) => ({ name: h.name, exec: this.o.services.executorFor(h) })) : [{ name: "DR runner", exec: this.o.services.local }];
    const notes: string[] = [];
    for (const t of targets) {
      const res = await t.exec.run(argv, { timeoutMs: p.step.timeoutMs });
      if (res.code !== 0) throw new DcctlError(`${t.name}: \`${shown(argv)}\` failed (exit ${res.code}): ${lastLine(res.stderr)}`);
      notes.push(`${t.name}: ran \`${shown(argv)}\``);
    }
    return notes;
  }
}

/** "portal RPO 28.1 min against 15 min (tier 1); overall RPO …": the run-end message of a run that missed targets. */
export function missedMessage(missed: MissedTarget[]): string {
  const one = (m: MissedTarget) => `${m.service} ${m.measure} ${m.minutes} min against ${m.targetMinutes} min${m.tier !== undefined ? ` (tier ${m.tier})` : ""}`;
  // "overall" repeats the worst service's figure: named only when no service label carries that measure's miss.
  const named = missed.filter((m) => m.service !== "overall" || !missed.some((x) => x.service !== "overall" && x.measure === m.measure));
  return `missed ${named.length === 1 ? "a target" : `${named.length} targets`}: ${named.map(one).join("; ")}`;
}

/** Rejects when `ms` pass first, and aborts the step's signal so that it can give up its work. */
function withTimeout<T>(work: Promise<T>, ms: number, controller: AbortController, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new DcctlError(`${what} did not finish within ${formatDuration(ms)} (its timeout)`));
    }, ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
