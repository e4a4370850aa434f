import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Sites } from "../../inventory/index.js";
import { formatDuration } from "./duration.js";
import { readJournal, type JournalRecord } from "./journal.js";
import { measure, type Measurement } from "./measure.js";
import type { Runbook } from "./model.js";
import { planRunbook } from "./plan.js";
import { replay } from "./replay.js";
import type { CheckOutcome } from "./steps/verify.js";
import type { RecoveredHost, RestoredDatabase } from "./steps/types.js";

/** report.json: everything report.md says, for machines. Built from the journal only, so it can be rebuilt any time. */
export interface RunReport {
  runId: string;
  runbook: string;
  kind: string;
  to: string;
  file: string;
  operator: string;
  confirmedBy: string;
  host: string;
  startedAt: string;
  failedAt: string;
  endedAt?: string;
  status: "ok" | "failed" | "interrupted";
  message?: string;
  /** A planned switchover: when the fence stopped the writes, and for how long until service was verified again. */
  planned?: { writesStoppedAt?: string; writesStoppedMs?: number };
  resumes: number;
  steps: StepReport[];
  checks: (CheckOutcome & { step: string })[];
  restored: RestoredDatabase[];
  /** How each standby came up (promote steps): promoted replica or restored from the repository, and why. */
  recovered: RecoveredHost[];
  measurements: { overall: Measurement; services: Measurement[] };
  cleanup: { step: string; status: string; notes: string[]; message?: string }[];
  deviations: string[];
  /** Drills: steps whose targets include a primary host (precheck only reads the repository about them). */
  primaryTouchedBy?: string[];
  journal: string;
}

export interface StepReport {
  id: string;
  type: string;
  group: string;
  service?: string;
  hosts: string[];
  status: "ok" | "failed" | "skipped" | "cut-off" | "not run";
  attempts: number;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  notes: string[];
  message?: string;
}

export function buildReport(dir: string, runbook: Runbook, sites: Sites): RunReport {
  const journal = join(dir, "journal.jsonl");
  const { records } = readJournal(journal);
  const state = replay(records);
  const planned = planRunbook(runbook, sites);
  const firstStart = new Map<string, string>();
  for (const r of records) if (r.type === "step-start" && !firstStart.has(r.step)) firstStart.set(r.step, r.at);

  const steps: StepReport[] = planned.map((p) => {
    const h = state.steps.get(p.step.id);
    const end = h?.lastEnd;
    const status = !h ? "not run" : h.state === "done" ? "ok" : h.state === "pending" ? "not run" : h.state;
    const startedAt = firstStart.get(p.step.id);
    const s: StepReport = { id: p.step.id, type: p.step.type, group: p.group, hosts: p.hosts.map((x) => x.name), status, attempts: h?.starts ?? 0, notes: end?.notes ?? [] };
    if (p.step.service) s.service = p.step.service;
    if (startedAt) s.startedAt = startedAt;
    if (end) {
      s.endedAt = end.at;
      s.durationMs = end.durationMs;
      if (end.message) s.message = end.message;
    }
    if (h?.decision) s.notes = [...s.notes, `operator decision: ${h.decision.decision} (${h.decision.reason}, by ${h.decision.by})`];
    return s;
  });

  const checks: RunReport["checks"] = [];
  for (const p of planned.filter((x) => x.step.type === "verify")) {
    const end = state.steps.get(p.step.id)?.lastEnd;
    for (const c of (end?.data.checks as CheckOutcome[] | undefined) ?? []) checks.push({ step: p.step.id, ...c });
  }
  const restored = [...state.results.values()].flatMap((r) => (r.data.restored as RestoredDatabase[] | undefined) ?? []);
  const recovered = [...state.results.values()].flatMap((r) => (r.data.recovered as RecoveredHost[] | undefined) ?? []);
  const measurements = measure(planned, state, records, sites, runbook.to);
  const cleanup = [...state.steps.entries()].filter(([, h]) => h.cleanup).map(([step, h]) => ({ step, status: h.cleanup?.status ?? "", notes: h.cleanup?.notes ?? [], ...(h.cleanup?.message ? { message: h.cleanup.message } : {}) }));

  const report: RunReport = {
    runId: state.start.runId,
    runbook: state.start.runbook,
    kind: state.start.kind,
    to: state.start.to,
    file: state.start.file,
    operator: state.start.operator,
    confirmedBy: state.start.confirmedBy,
    host: state.start.host,
    startedAt: state.start.at,
    failedAt: state.start.failedAt,
    status: state.end?.status ?? "interrupted",
    resumes: state.resumes,
    steps,
    checks,
    restored,
    recovered,
    measurements,
    cleanup,
    deviations: deviations(steps, measurements, cleanup, records, state.resumes),
    journal,
  };
  if (state.start.planned) report.planned = writesStopped(planned, records);
  if (runbook.kind === "drill") {
    report.primaryTouchedBy = planned.filter((p) => p.step.type !== "precheck" && p.hosts.some((h) => h.site === "primary")).map((p) => p.step.id);
  }
  if (state.end) report.endedAt = records[records.length - 1]?.at ?? state.end.at;
  if (state.end?.message) report.message = state.end.message;
  return report;
}

/** From the first fence that ended well to the last verify that passed: the writes' pause in a switchover. */
function writesStopped(planned: ReturnType<typeof planRunbook>, records: JournalRecord[]): NonNullable<RunReport["planned"]> {
  const endOf = (type: string) =>
    records
      .filter((r): r is Extract<JournalRecord, { type: "step-end" }> => r.type === "step-end" && r.status === "ok" && planned.some((p) => p.step.id === r.step && p.step.type === type))
      .map((r) => Date.parse(r.at));
  const fences = endOf("fence");
  const verifies = endOf("verify");
  if (!fences.length) return {};
  const stopped = Math.min(...fences);
  return { writesStoppedAt: new Date(stopped).toISOString(), ...(verifies.length ? { writesStoppedMs: Math.max(...verifies) - stopped } : {}) };
}

function deviations(steps: StepReport[], m: RunReport["measurements"], cleanup: RunReport["cleanup"], records: JournalRecord[], resumes: number): string[] {
  const out: string[] = [];
  for (const s of steps) {
    if (s.status === "failed") out.push(`step ${s.id} failed: ${s.message ?? "no message"}`);
    if (s.status === "cut-off") out.push(`step ${s.id} was cut off (started, never ended)`);
    if (s.status === "skipped") out.push(`step ${s.id} was skipped by an operator decision`);
    if (s.attempts > 1) out.push(`step ${s.id} needed ${s.attempts} attempts`);
    for (const n of s.notes) if (/STALE|unreachable/.test(n)) out.push(`step ${s.id}: ${n}`);
  }
  for (const x of [m.overall, ...m.services]) {
    if (x.rpoMet === false) out.push(`${x.service}: RPO ${x.rpoMinutes} min exceeds the tier ${x.tier} target of ${x.rpoTargetMinutes} min`);
    if (x.rtoMet === false) out.push(`${x.service}: RTO ${x.rtoMinutes} min exceeds the tier ${x.tier} target of ${x.rtoTargetMinutes} min`);
  }
  if (m.overall.rtoMinutes === undefined) out.push("RTO not measured: no verify step passed");
  for (const c of cleanup) if (c.status !== "ok") out.push(`clean-up after ${c.step} failed: ${c.message ?? ""}`);
  if (resumes) out.push(`the run was resumed ${resumes} time${resumes === 1 ? "" : "s"} (see the journal for why)`);
  for (const r of records) if (r.type === "note" && !r.step) out.push(r.message);
  return out;
}

const fmt = (v: number | undefined, unit = "min") => (v === undefined ? "—" : `${v} ${unit}`);
const met = (v: boolean | undefined) => (v === undefined ? "—" : v ? "met" : "**missed**");

export function reportMarkdown(r: RunReport): string {
  const L: string[] = [];
  const title = r.kind === "drill" ? "DR drill" : r.kind === "failover" ? "Failover" : "Failback";
  L.push(`# ${title} ${r.runId}: ${r.status.toUpperCase()}`, "");
  L.push(
    `Runbook **${r.runbook}** (${r.file}) ${r.kind === "drill" ? `tested recovery at the **${r.to}** site without moving any service` : `moved service to the **${r.to}** site`}. It was started by ${r.operator} on ${r.host} at ${r.startedAt}` +
      (r.endedAt ? ` and ended at ${r.endedAt} (${formatDuration(Date.parse(r.endedAt) - Date.parse(r.startedAt))})` : " and has not ended (interrupted: resume it with `dcctl dr resume " + r.runId + "`)") +
      `. Confirmation: ${r.confirmedBy}. RPO is counted from ${r.failedAt}.`,
  );
  if (r.message) L.push("", `Outcome: ${r.message}`);
  if (r.planned) {
    L.push(
      "",
      `Planned switchover: writes stopped at ${r.planned.writesStoppedAt ?? "— (no fence ended well)"}` +
        (r.planned.writesStoppedMs !== undefined ? ` until service was verified again, ${formatDuration(r.planned.writesStoppedMs)} later; every replica had applied all of them before it was promoted.` : "."),
    );
  }
  if (r.primaryTouchedBy) {
    L.push(
      "",
      r.primaryTouchedBy.length
        ? `Primary site: steps ${r.primaryTouchedBy.join(", ")} addressed primary hosts.`
        : "Primary site: untouched. No step of this drill addressed a primary host (precheck only read the repository about them).",
    );
  }
  L.push("", "## RPO and RTO against the DR tiers", "", "| service | tier | RPO | target | | RTO | target | |", "|---|---|---|---|---|---|---|---|");
  for (const m of [...r.measurements.services, r.measurements.overall]) {
    L.push(`| ${m.service} | ${m.tier ?? "—"} | ${fmt(m.rpoMinutes)} | ${fmt(m.rpoTargetMinutes)} | ${met(m.rpoMet)} | ${fmt(m.rtoMinutes)} | ${fmt(m.rtoTargetMinutes)} | ${met(m.rtoMet)} |`);
  }
  L.push("", "RPO: the failure (or drill) start minus the time the recovered data is complete up to (a restored snapshot's time; for a promoted replica, when it last had all of its primary's writes). RTO: the run's start until the last verify step that passed.");
  if (r.recovered.length) {
    L.push("", "## How each standby took over", "", "| standby | of | engine | path | data complete up to | why |", "|---|---|---|---|---|---|");
    for (const x of r.recovered) L.push(`| ${x.host} | ${x.primary} | ${x.engine} | ${x.path === "promoted" ? "replica promoted" : "restored from the repository"} | ${x.dataAsOf ?? "—"} | ${x.reason.replaceAll("|", "\\|")} |`);
  }
  const measuredLoss = r.measurements.services.filter((m) => m.measuredLossMinutes !== undefined);
  if (measuredLoss.length) {
    L.push("", "## Measured data loss", "", "| service | writes lost | records lost | RPO computed above |", "|---|---|---|---|");
    for (const m of measuredLoss) L.push(`| ${m.service} | ${fmt(m.measuredLossMinutes)} | ${m.lostRecords ?? "—"} | ${fmt(m.rpoMinutes)} |`);
    L.push("", "Writes lost: the last record written at the lost site minus the newest one that reached the target (data-loss steps).");
  }
  L.push("", "## Steps", "", "| # | step | type | hosts | status | attempts | took |", "|---|---|---|---|---|---|---|");
  r.steps.forEach((s, i) => L.push(`| ${i + 1} | ${s.id} | ${s.type} | ${s.hosts.join(", ") || "DR runner"} | ${s.status} | ${s.attempts} | ${s.durationMs === undefined ? "—" : formatDuration(s.durationMs)} |`));
  for (const s of r.steps.filter((x) => x.notes.length || x.message)) {
    L.push("", `**${s.id}**`);
    for (const n of s.notes) L.push(`- ${n}`);
    if (s.message) L.push(`- error: ${s.message}`);
  }
  if (r.restored.length) {
    L.push("", "## Data restored", "");
    for (const d of r.restored) L.push(`- ${d.database} of ${d.sourceHost} → ${d.targetDatabase} on ${d.targetHost}, snapshot ${d.snapshotId} taken ${d.snapshotTime}`);
  }
  if (r.checks.length) {
    L.push("", "## Data checks", "", "| step | check | expected | got | |", "|---|---|---|---|---|");
    for (const c of r.checks) L.push(`| ${c.step} | ${c.check.replaceAll("|", "\\|")} | ${c.expected} | ${c.got.replaceAll("|", "\\|")} | ${c.ok ? "ok" : "**FAILED**"} |`);
  }
  if (r.cleanup.length) {
    L.push("", "## Clean-up", "");
    for (const c of r.cleanup) L.push(`- ${c.step}: ${c.status}${c.message ? ` — ${c.message}` : ""}${c.notes.length ? ` (${c.notes.join("; ")})` : ""}`);
  }
  L.push("", "## Deviations", "");
  if (r.deviations.length) for (const d of r.deviations) L.push(`- ${d}`);
  else L.push("None: every step ended well at the first attempt and the targets were met.");
  L.push("", `Journal: ${r.journal}`, "");
  return L.join("\n");
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w", 0o640);
  writeSync(fd, text);
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
}

/** Writes report.json and report.md into the run folder; returns their paths. */
export async function writeReport(dir: string, runbook: Runbook, sites: Sites): Promise<string[]> {
  const r = buildReport(dir, runbook, sites);
  const json = join(dir, "report.json");
  const md = join(dir, "report.md");
  writeAtomically(json, JSON.stringify(r, null, 2) + "\n");
  writeAtomically(md, reportMarkdown(r));
  return [md, json];
}
