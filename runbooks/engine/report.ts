import { writeAtomic } from "../../util/files.js";
import { join } from "node:path";
import { SITE_NAMES, type SiteName, type Sites } from "../../inventory/index.js";
import { DEFAULT_LANG, type Lang } from "../../util/i18n.js";
import { readJournal, type JournalRecord } from "./journal.js";
import { measure } from "./measure.js";
import { failureReference } from "./failure.js";
import type { PlannedStep, Runbook } from "./model.js";
import { planRunbook } from "./plan.js";
import { replay } from "./replay.js";
import { deviationItems, reportMarkdown as markdownOf } from "./report-doc.js";
import { reportHtml } from "./report-html.js";
import { renderDeviation } from "./report-texts.js";
import type { CheckOutcome } from "./steps/verify.js";
import type { PointInTimeRecovered, RecoveredHost, RestoredDatabase } from "./steps/types.js";
import type { Evidence, PointInTimeReport, RestoredSnapshot, RunReport, StepReport } from "./report-model.js";

export interface BuildOptions {
  /** Build from the first `upToSeq` records only: what the report looked like when that record was the last. */
  upToSeq?: number;
  /** The journal path to print (a run folder moved elsewhere still names the path its report was written with). */
  journalLabel?: string;
}

export function buildReport(dir: string, runbook: Runbook, sites: Sites, opts: BuildOptions = {}): RunReport {
  const journal = join(dir, "journal.jsonl");
  const all = readJournal(journal).records;
  const records = opts.upToSeq === undefined ? all : all.slice(0, opts.upToSeq);
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
    if (h?.decision) s.decision = { decision: h.decision.decision, reason: h.decision.reason, by: h.decision.by };
    return s;
  });

  const checks: RunReport["checks"] = [];
  // A restore-pitr step checks the copy it brought up itself: its checks are data checks as a verify step's are.
  for (const p of planned.filter((x) => x.step.type === "verify" || x.step.type === "restore-pitr")) {
    const end = state.steps.get(p.step.id)?.lastEnd;
    for (const c of (end?.data.checks as CheckOutcome[] | undefined) ?? []) checks.push({ step: p.step.id, ...c });
  }
  const restored = [...state.results.values()].flatMap((r) => (r.data.restored as RestoredDatabase[] | undefined) ?? []);
  const recovered = [...state.results.values()].flatMap((r) => (r.data.recovered as RecoveredHost[] | undefined) ?? []);
  const measurements = measure(planned, state, records, sites, runbook.to);
  const failure = failureReference(records);
  const cleanup = [...state.steps.entries()].filter(([, h]) => h.cleanup).map(([step, h]) => ({ step, status: h.cleanup?.status ?? "", notes: h.cleanup?.notes ?? [], ...(h.cleanup?.message ? { message: h.cleanup.message } : {}) }));
  const resumedBy = records.filter((r) => r.type === "run-resume").map((r) => ({ at: r.at, operator: r.operator, confirmedBy: r.confirmedBy, ...(r.approval ? { approval: r.approval } : {}) }));
  const last = records[records.length - 1];

  const report: RunReport = {
    format: 2,
    runId: state.start.runId,
    runbook: state.start.runbook,
    kind: state.start.kind,
    to: state.start.to,
    file: state.start.file,
    operator: state.start.operator,
    confirmedBy: state.start.confirmedBy,
    ...(state.start.approval ? { approval: state.start.approval } : {}),
    host: state.start.host,
    startedAt: state.start.at,
    failedAt: failure.at,
    ...(failure.from ? { failure: { from: failure.from, ...(failure.host ? { host: failure.host } : {}) } } : {}),
    status: state.end?.targetsMissed?.length && state.end.status === "ok" ? "missed" : (state.end?.status ?? "interrupted"),
    lang: state.start.lang ?? DEFAULT_LANG,
    resumes: state.resumes,
    resumedBy,
    steps,
    checks,
    restored,
    recovered,
    measurements,
    cleanup,
    deviations: [],
    runNotes: records.flatMap((r) => (r.type === "note" && !r.step ? [r.message] : [])),
    evidence: { standard: "ISO/IEC 27001:2022", continuity: { control: "A.5.30", targetsCompared: 0, targetsMissed: [], deviations: 0 }, backup: { control: "A.8.13", restored: [], prechecked: [], sites: [] }, redundancy: { control: "A.8.14", promoted: 0 } },
    journal: opts.journalLabel ?? journal,
    journalRecords: records.length,
  };
  const pointInTime = pointInTimeOf(planned, state, sites, runbook.to);
  if (pointInTime.length) report.pointInTime = pointInTime;
  if (state.start.planned) report.planned = writesStopped(planned, records);
  if (runbook.kind === "drill") {
    report.primaryTouchedBy = planned.filter((p) => p.step.type !== "precheck" && p.hosts.some((h) => h.site === "primary")).map((p) => p.step.id);
  }
  // The run-end record: what follows it (the end-of-run notification's note) is not part of the run's duration.
  if (state.end) report.endedAt = state.end.at;
  if (state.end?.message) report.message = state.end.message;
  if (state.end?.targetsMissed?.length) report.targetsMissed = state.end.targetsMissed;
  if (last?.hash) report.journalHead = { seq: last.seq, hash: last.hash };
  if (state.start.runbookSha256) report.runbookSha256 = state.start.runbookSha256;
  const inventory = [...records].reverse().find((r) => (r.type === "run-start" || r.type === "run-resume") && r.inventorySha256);
  if (inventory && (inventory.type === "run-start" || inventory.type === "run-resume") && inventory.inventorySha256) report.inventorySha256 = inventory.inventorySha256;
  report.deviations = deviationItems(report).map((d) => renderDeviation("en", d));
  report.evidence = evidenceOf(report, planned, state, sites);
  return report;
}

/** What the restore-pitr steps that ended well recovered, each gap against the RPO of its source's tier. */
function pointInTimeOf(planned: PlannedStep[], state: ReturnType<typeof replay>, sites: Sites, to: SiteName): PointInTimeReport[] {
  const hosts = [...sites.primary.hosts, ...sites.secondary.hosts];
  return planned
    .filter((p) => p.step.type === "restore-pitr")
    .flatMap((p) =>
      ((state.results.get(p.step.id)?.data.pointInTime as PointInTimeRecovered[] | undefined) ?? []).map((r) => {
        const tier = hosts.find((h) => h.name === r.sourceHost)?.drTier;
        const target = tier === undefined ? undefined : (sites[to].drTiers.find((t) => t.tier === tier) ?? sites.primary.drTiers.find((t) => t.tier === tier));
        return {
          step: p.step.id,
          ...(p.step.service ? { service: p.step.service } : {}),
          ...r,
          ...(tier === undefined ? {} : { tier }),
          ...(target ? { rpoTargetMinutes: target.rpoMinutes, ...(r.gapSeconds === undefined ? {} : { rpoMet: r.gapSeconds <= target.rpoMinutes * 60 }) } : {}),
        };
      }),
    );
}

const isSite = (name: string): name is SiteName => (SITE_NAMES as readonly string[]).includes(name);

/** The repository a recovering step reads, as its runbook parameters name it (the step modules' default: secondary). */
function repositoryOf(p: PlannedStep): string {
  const w = p.step.with;
  const raw = p.step.type === "promote" ? (w.fallback as Record<string, unknown> | undefined)?.repository : w.repository;
  return typeof raw === "string" ? raw : "secondary";
}

function evidenceOf(r: RunReport, planned: PlannedStep[], state: ReturnType<typeof replay>, sites: Sites): Evidence {
  const endOf = (id: string) => state.steps.get(id)?.lastEnd;
  const restored: RestoredSnapshot[] = planned
    .filter((p) => p.step.type === "restore-db" || p.step.type === "promote")
    .flatMap((p) => {
      const end = endOf(p.step.id);
      if (end?.status !== "ok") return [];
      return ((end.data.restored as RestoredDatabase[] | undefined) ?? []).map((d) => ({ ...d, step: p.step.id, repository: repositoryOf(p), at: end.at }));
    });
  const prechecked = planned
    .filter((p) => p.step.type === "precheck" && endOf(p.step.id)?.status === "ok")
    .map((p) => {
      const end = endOf(p.step.id);
      return { step: p.step.id, repository: repositoryOf(p), at: end?.at ?? "", stale: (end?.notes ?? []).some((n) => n.includes("STALE")) };
    });
  const backupSites = SITE_NAMES.filter((s) => [...restored.map((x) => x.repository), ...prechecked.map((x) => x.repository)].some((repo) => isSite(repo) && repo === s));

  const backup: Evidence["backup"] = { control: "A.8.13", restored, prechecked, sites: backupSites };
  const restoreSteps = planned.filter((p) => p.step.type === "restore-db" && state.steps.has(p.step.id));
  if (r.kind === "drill" && restoreSteps.length) {
    const ends = restoreSteps.map((p) => endOf(p.step.id));
    const passed = r.checks.filter((c) => c.ok).length;
    const ok = ends.every((e) => e?.status === "ok") && r.checks.length > 0 && passed === r.checks.length;
    const at = ends.flatMap((e) => (e ? [e.at] : [])).sort().pop() ?? r.startedAt;
    backup.restoreTest = { at, result: ok ? "ok" : "failed", checksPassed: passed, checksTotal: r.checks.length };
  }

  // Where a check ran: on its step's host it names, or for an HTTP check on the inventory host its URL names.
  const to = isSite(r.to) ? r.to : "secondary";
  const byAddress = new Map<string, { name: string; site: SiteName }>();
  for (const site of SITE_NAMES) {
    for (const h of sites[site].hosts) {
      byAddress.set(h.name, { name: h.name, site });
      byAddress.set(h.ip, { name: h.name, site });
    }
  }
  const served = { hosts: new Set<string>(), steps: new Set<string>(), checks: 0, at: "" };
  for (const c of r.checks.filter((x) => x.ok)) {
    const p = planned.find((x) => x.step.id === c.step);
    if (!p) continue;
    const url = /^GET (\S+)/.exec(c.check)?.[1];
    const onHost = p.hosts.filter((h) => c.check.startsWith(`${h.name} `)).map((h) => ({ name: h.name, site: h.site }));
    const atUrl = url && URL.canParse(url) ? byAddress.get(new URL(url).hostname) : undefined;
    const here = (onHost.length ? onHost : atUrl ? [atUrl] : []).filter((w) => w.site === to);
    if (!here.length) continue;
    served.checks++;
    for (const w of here) served.hosts.add(w.name);
    served.steps.add(c.step);
    const at = endOf(c.step)?.at ?? "";
    if (at > served.at) served.at = at;
  }
  const redundancy: Evidence["redundancy"] = { control: "A.8.14", promoted: r.recovered.filter((x) => x.path === "promoted").length };
  if (served.checks) redundancy.served = { site: to, hosts: [...served.hosts], steps: [...served.steps], checks: served.checks, at: served.at };

  const compared = [...r.measurements.services, r.measurements.overall].flatMap((m) => [
    ...(m.rpoMet === undefined ? [] : [{ service: m.service, measure: "RPO" as const, met: m.rpoMet }]),
    ...(m.rtoMet === undefined ? [] : [{ service: m.service, measure: "RTO" as const, met: m.rtoMet }]),
  ]);
  const continuity: Evidence["continuity"] = {
    control: "A.5.30",
    targetsCompared: compared.length,
    targetsMissed: compared.filter((x) => !x.met).map((x) => ({ service: x.service, measure: x.measure })),
    deviations: r.deviations.length,
  };
  return { standard: "ISO/IEC 27001:2022", continuity, backup, redundancy };
}

/** From the first fence that ended well to the last verify that passed: the writes' pause in a switchover. */
function writesStopped(planned: PlannedStep[], records: JournalRecord[]): NonNullable<RunReport["planned"]> {
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

/** report.md of a report, in the report's language unless told otherwise. */
export function reportMarkdown(r: RunReport, lang: Lang = r.lang): string {
  return markdownOf(r, lang);
}


/** The three files of a report, as writeReport writes them and verify-report rebuilds them. */
export function reportFiles(r: RunReport): { "report.json": string; "report.md": string; "report.html": string } {
  return { "report.json": JSON.stringify(r, null, 2) + "\n", "report.md": reportMarkdown(r), "report.html": reportHtml(r, r.lang) };
}

/** Writes report.json, report.md and report.html into the run folder; returns their paths, report.md first. */
export async function writeReport(dir: string, runbook: Runbook, sites: Sites): Promise<string[]> {
  const files = reportFiles(buildReport(dir, runbook, sites));
  const written: string[] = [];
  for (const name of ["report.md", "report.html", "report.json"] as const) {
    writeAtomic(join(dir, name), files[name], 0o640);
    written.push(join(dir, name));
  }
  return written;
}
