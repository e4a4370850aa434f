import type { Lang } from "../../util/i18n.js";
import { CHAINED_SINCE } from "./journal.js";
import type { Measurement } from "./measure.js";
import type { Deviation, RunReport } from "./report-model.js";
import { confirmationText, fmtDuration, fmtNumber, renderDeviation, reportTranslator, siteName } from "./report-texts.js";

/**
 * One report, two renderings: the report is first laid out as a document — headings, whole translated sentences,
 * tables whose cells know when they say "missed" — and that document is written out as Markdown (report.md) or as
 * HTML (report-html.ts). Both files say the same thing because they come from the same blocks; the HTML can colour a
 * missed target without guessing it back out of Markdown.
 *
 * Text may hold two inline marks, as Markdown writes them: **strong** and `code`. Only the report's own texts make
 * them: every string of the run's data (a service label, a step id, a host, an error message) enters the document
 * escaped as Markdown (`literal`), so a label such as `<img src=x onerror=…>` or `**ok**` is shown as written in
 * report.md as in report.html, never taken for markup.
 */

export type Tone = "good" | "bad";

/** Who asked for and who approved a run (four eyes), for the sentences that name both. */
function approvalVars(a: NonNullable<RunReport["approval"]>): Record<string, string> {
  return { code: a.code, requestedBy: a.requestedBy, requestedAt: a.requestedAt, approvedBy: a.approvedBy, approvedAt: a.approvedAt };
}
export interface Cell {
  text: string;
  tone?: Tone;
}

export type Block =
  | { kind: "heading"; level: 2 | 3; text: string }
  | { kind: "paragraph"; text: string }
  | { kind: "list"; items: string[] }
  /** A label on its own line with its list right below it (a step's notes). */
  | { kind: "notes"; label: string; items: string[] }
  | { kind: "table"; head: string[]; rows: Cell[][] }
  /** The journal line and the copies' digests: the end of the report. */
  | { kind: "footer"; lines: string[] };

export interface ReportDocument {
  lang: Lang;
  title: string;
  status: { text: string; tone: Tone };
  blocks: Block[];
}

export function deviationItems(r: RunReport): Deviation[] {
  const out: Deviation[] = [];
  for (const s of r.steps) {
    if (s.status === "failed") out.push(s.message ? { key: "failed", vars: { id: s.id, message: s.message } } : { key: "failedNoMessage", vars: { id: s.id } });
    if (s.status === "cut-off") out.push({ key: "cutOff", vars: { id: s.id } });
    if (s.status === "skipped") out.push({ key: "skipped", vars: { id: s.id } });
    if (s.attempts > 1) out.push({ key: "attempts", vars: { id: s.id, count: s.attempts } });
    for (const n of s.notes) if (/STALE|unreachable/.test(n)) out.push({ key: "stepNote", vars: { id: s.id, note: n } });
  }
  for (const x of [r.measurements.overall, ...r.measurements.services]) {
    if (x.rpoMet === false) out.push({ key: "rpoMissed", vars: { service: x.service, value: x.rpoMinutes ?? 0, tier: x.tier ?? 0, target: x.rpoTargetMinutes ?? 0 } });
    if (x.discardedWrites && x.service !== "overall") out.push({ key: "discarded", vars: { service: x.service, count: x.discardedWrites, from: x.discardedFrom ?? "?", to: x.discardedTo ?? "?" } });
    if (x.rtoMet === false) out.push({ key: "rtoMissed", vars: { service: x.service, value: x.rtoMinutes ?? 0, tier: x.tier ?? 0, target: x.rtoTargetMinutes ?? 0 } });
  }
  if (r.measurements.overall.rtoMinutes === undefined) out.push({ key: "rtoNotMeasured", vars: {} });
  for (const c of r.cleanup) if (c.status !== "ok") out.push({ key: "cleanupFailed", vars: { step: c.step, message: c.message ?? "" } });
  if (r.resumes) out.push({ key: "resumed", vars: { count: r.resumes } });
  for (const message of r.runNotes) out.push({ key: "note", vars: { message } });
  return out;
}

const KINDS = ["drill", "failover", "failback", "recover"] as const;
type Kind = (typeof KINDS)[number];
const kindOf = (k: string): Kind => KINDS.find((x) => x === k) ?? "failover";

/** The sentence that says where the RPO reference comes from; runs before it was recorded keep their first one. */
const CONFIRMATION = { recorded: "summary.confirmation", operator: "summary.confirmationOperator", "unanswered-probe": "summary.confirmationProbe", "run-start": "summary.confirmationStart" } as const;

const STEP_STATUS = { ok: "ok", failed: "failed", skipped: "skipped", "cut-off": "cutOff", "not run": "notRun" } as const;

export function reportDocument(report: RunReport, lang: Lang): ReportDocument {
  const r = literal(report);
  const t = reportTranslator(lang);
  const num = (v: number) => fmtNumber(lang, v);
  const minutes = (v: number | undefined) => (v === undefined ? "—" : t("unit.minutes", { value: num(v) }));
  const dur = (ms: number) => fmtDuration(lang, ms);
  const site = (name: string) => siteName(lang, name);
  const kind = kindOf(r.kind);
  const current = r.format === 2;
  const blocks: Block[] = [];
  const p = (text: string) => blocks.push({ kind: "paragraph", text });
  const h = (text: string, level: 2 | 3 = 2) => blocks.push({ kind: "heading", level, text });

  const statusText = t(`status.${r.status}`);
  const title = t(`title.${kind}`, { runId: r.runId, status: statusText });

  const ended = r.endedAt
    ? t("summary.ended", { operator: r.operator, host: r.host, startedAt: r.startedAt, endedAt: r.endedAt, duration: dur(Date.parse(r.endedAt) - Date.parse(r.startedAt)) })
    : t("summary.open", { operator: r.operator, host: r.host, startedAt: r.startedAt, runId: r.runId });
  p(
    [
      t(kind === "drill" ? "summary.drill" : kind === "recover" ? "summary.recover" : "summary.move", { runbook: r.runbook, file: r.file, to: site(r.to) }),
      ended,
      t(kind === "recover" ? "summary.confirmationBefore" : CONFIRMATION[r.failure?.from ?? "recorded"], { confirmedBy: confirmationText(lang, r.confirmedBy), failedAt: r.failedAt, host: r.failure?.host ?? "" }),
      ...(r.approval ? [t("summary.approved", approvalVars(r.approval))] : []),
    ].join(" "),
  );
  if (r.message) p(t("outcome", { message: r.message }));
  // "overall" repeats the worst service's figure: named only when no service carries that measure's miss.
  const missed = (r.targetsMissed ?? []).filter((m, _, all) => m.service !== "overall" || !all.some((x) => x.service !== "overall" && x.measure === m.measure));
  if (missed.length) {
    const list = missed.map((m) => renderDeviation(lang, { key: m.measure === "RPO" ? "rpoMissed" : "rtoMissed", vars: { service: m.service, value: m.minutes, tier: m.tier ?? 0, target: m.targetMinutes } }));
    p(t("outcomeMissed", { list: list.join("; ") }));
  }
  if (r.planned) {
    const at = r.planned.writesStoppedAt;
    p(at === undefined ? t("planned.noFence") : r.planned.writesStoppedMs === undefined ? t("planned.stoppedOnly", { at }) : t("planned.stopped", { at, duration: dur(r.planned.writesStoppedMs) }));
  }
  if (r.primaryTouchedBy) p(r.primaryTouchedBy.length ? t("primary.touched", { steps: r.primaryTouchedBy.join(", ") }) : t("primary.untouched"));

  h(t("rpoRto.heading"));
  const met = (v: boolean | undefined): Cell => (v === undefined ? { text: "—" } : v ? { text: t("met"), tone: "good" } : { text: `**${t("missed")}**`, tone: "bad" });
  const serviceName = (m: Measurement) => (m.service === "overall" ? t("rpoRto.overall") : m.service);
  blocks.push({
    kind: "table",
    head: [t("rpoRto.service"), t("rpoRto.tier"), "RPO", t("rpoRto.target"), t("rpoRto.result"), "RTO", t("rpoRto.target"), t("rpoRto.result")],
    rows: [...r.measurements.services, r.measurements.overall].map((m) => [
      { text: serviceName(m) },
      { text: m.tier === undefined ? "—" : String(m.tier) },
      { text: minutes(m.rpoMinutes) },
      { text: minutes(m.rpoTargetMinutes) },
      met(m.rpoMet),
      { text: minutes(m.rtoMinutes) },
      { text: minutes(m.rtoTargetMinutes) },
      met(m.rtoMet),
    ]),
  });
  p(t("rpoRto.explain"));

  if (r.recovered.length) {
    h(t("recovered.heading"));
    blocks.push({
      kind: "table",
      head: [t("recovered.standby"), t("recovered.of"), t("recovered.engine"), t("recovered.path"), t("recovered.asOf"), t("recovered.why")],
      rows: r.recovered.map((x) => [{ text: x.host }, { text: x.primary }, { text: x.engine }, { text: t(x.path === "promoted" ? "recovered.promoted" : "recovered.restored") }, { text: x.dataAsOf ?? "—" }, { text: x.reason }]),
    });
  }

  const measuredLoss = r.measurements.services.filter((m) => m.measuredLossMinutes !== undefined);
  if (measuredLoss.length) {
    h(t("loss.heading"));
    blocks.push({
      kind: "table",
      head: [t("rpoRto.service"), t("loss.writes"), t("loss.records"), t("loss.rpo")],
      rows: measuredLoss.map((m) => [{ text: serviceName(m) }, { text: minutes(m.measuredLossMinutes) }, { text: m.lostRecords === undefined ? "—" : num(m.lostRecords) }, { text: minutes(m.rpoMinutes) }]),
    });
    p(t("loss.explain"));
  }
  const discarded = r.measurements.services.filter((m) => m.discardedWrites !== undefined);
  if (discarded.length) {
    h(t("discarded.heading"));
    blocks.push({
      kind: "table",
      head: [t("rpoRto.service"), t("discarded.writes"), t("discarded.from"), t("discarded.to"), t("discarded.kept")],
      rows: discarded.map((m) => [{ text: serviceName(m) }, { text: `**${num(m.discardedWrites ?? 0)}**`, tone: "bad" }, { text: m.discardedFrom ?? "—" }, { text: m.discardedTo ?? "—" }, { text: (m.discardedKept ?? []).map((k) => `\`${k}\``).join(", ") }]),
    });
    p(t("discarded.explain"));
  }

  if (r.pointInTime?.length) {
    h(t("pitr.heading"));
    blocks.push({
      kind: "table",
      head: [t("rpoRto.service"), t("pitr.server"), t("pitr.asked"), t("pitr.reached"), t("pitr.gap"), t("rpoRto.target"), t("rpoRto.result"), t("pitr.next")],
      rows: r.pointInTime.map((x) => [
        { text: x.service ?? "—" },
        { text: t("pitr.serverText", { engine: x.engine, host: x.sourceHost, database: x.database, target: x.targetHost, port: x.port }) },
        { text: x.asked },
        { text: x.reached ?? "—" },
        { text: x.gapSeconds === undefined ? "—" : t("pitr.seconds", { value: num(x.gapSeconds) }) },
        { text: minutes(x.rpoTargetMinutes) },
        met(x.rpoMet),
        { text: x.firstNotApplied ?? t("pitr.allApplied") },
      ]),
    });
    p(t("pitr.explain"));
  }

  h(t("steps.heading"));
  blocks.push({
    kind: "table",
    head: ["#", t("steps.step"), t("steps.type"), t("steps.hosts"), t("steps.status"), t("steps.attempts"), t("steps.took")],
    rows: r.steps.map((s, i) => [
      { text: String(i + 1) },
      { text: s.id },
      { text: s.type },
      { text: s.hosts.join(", ") || t("steps.runner") },
      { text: t(`stepStatus.${STEP_STATUS[s.status]}`), ...(s.status === "failed" || s.status === "cut-off" ? { tone: "bad" as const } : {}) },
      { text: String(s.attempts) },
      { text: s.durationMs === undefined ? "—" : dur(s.durationMs) },
    ]),
  });
  const noted = r.steps.filter((s) => s.notes.length || s.message || s.decision);
  if (noted.length) p(t("steps.notesQuoted"));
  for (const s of noted) {
    const items = [...s.notes];
    if (s.decision) items.push(t("steps.decision", { decision: t(`decision.${s.decision.decision}`), reason: s.decision.reason, by: s.decision.by }));
    if (s.message) items.push(t("steps.error", { message: s.message }));
    blocks.push({ kind: "notes", label: `**${s.id}**`, items });
  }

  if (r.restored.length) {
    h(t("restored.heading"));
    blocks.push({ kind: "list", items: r.restored.map((d) => t("restored.item", { ...d })) });
  }
  if (r.checks.length) {
    h(t("checks.heading"));
    blocks.push({
      kind: "table",
      head: [t("checks.step"), t("checks.check"), t("checks.expected"), t("checks.got"), t("checks.result")],
      rows: r.checks.map((c) => [{ text: c.step }, { text: c.check }, { text: c.expected }, { text: c.got }, c.ok ? { text: t("checks.ok"), tone: "good" } : { text: `**${t("checks.failed")}**`, tone: "bad" }]),
    });
  }
  if (r.cleanup.length) {
    h(t("cleanup.heading"));
    blocks.push({
      kind: "list",
      items: r.cleanup.map((c) => {
        const vars = { step: c.step, status: c.status === "ok" ? t("cleanup.ok") : c.status === "failed" ? t("cleanup.failed") : c.status, message: c.message ?? "", notes: c.notes.join("; ") };
        return t(c.message ? (c.notes.length ? "cleanup.itemMessageNotes" : "cleanup.itemMessage") : c.notes.length ? "cleanup.itemNotes" : "cleanup.item", vars);
      }),
    });
  }

  h(t("deviations.heading"));
  const deviations = current ? deviationItems(r).map((d) => renderDeviation(lang, d)) : r.deviations;
  if (deviations.length) blocks.push({ kind: "list", items: deviations });
  else p(t("deviations.none"));

  h(t("evidence.heading"));
  if (current) blocks.push(...evidenceBlocks(r, lang, deviations.length));
  else p(t("evidence.unavailable", { version: CHAINED_SINCE }));

  const footer = [
    r.journalHead
      ? t("footer.chained", { path: r.journal, count: r.journalRecords, hash: r.journalHead.hash })
      : t("footer.unchained", { path: r.journal, count: r.journalRecords ?? 0, version: CHAINED_SINCE }),
  ];
  if (r.runbookSha256) footer.push(r.inventorySha256 ? t("footer.digests", { runbook: r.runbookSha256, inventory: r.inventorySha256 }) : t("footer.digestRunbook", { runbook: r.runbookSha256 }));
  blocks.push({ kind: "footer", lines: footer });

  return { lang, title, status: { text: statusText, tone: r.status === "ok" ? "good" : "bad" }, blocks };
}

/** The auditor's section: one heading per control, and what the journal shows for it, or that it shows nothing. */
function evidenceBlocks(r: RunReport, lang: Lang, deviations: number): Block[] {
  const t = reportTranslator(lang);
  const site = (name: string) => siteName(lang, name);
  const e = r.evidence;
  const blocks: Block[] = [{ kind: "paragraph", text: t("evidence.intro") }];
  const control = (heading: string, items: string[]) => blocks.push({ kind: "heading", level: 3, text: heading }, { kind: "list", items });

  const continuity: string[] = [];
  const c = e.continuity;
  if (c.targetsCompared) {
    continuity.push(t("continuity.measured", { met: c.targetsCompared - c.targetsMissed.length, count: c.targetsCompared }));
    const target = (m: { service: string; measure: string }) => t("continuity.target", { service: m.service === "overall" ? t("rpoRto.overallInline") : m.service, measure: m.measure });
    if (c.targetsMissed.length) continuity.push(t("continuity.missed", { list: c.targetsMissed.map(target).join(", ") }));
  } else continuity.push(t("continuity.notMeasured"));
  continuity.push(deviations ? t("continuity.deviations", { count: deviations }) : t("continuity.noDeviations"));
  continuity.push(t("continuity.started", { operator: r.operator, host: r.host, at: r.startedAt, confirmedBy: confirmationText(lang, r.confirmedBy) }));
  if (r.approval) continuity.push(t("continuity.approved", approvalVars(r.approval)));
  for (const x of r.resumedBy) {
    continuity.push(t("continuity.resumed", { operator: x.operator, at: x.at, confirmedBy: confirmationText(lang, x.confirmedBy) }));
    if (x.approval) continuity.push(t("continuity.approved", approvalVars(x.approval)));
  }
  continuity.push(r.endedAt ? t("continuity.ended", { at: r.endedAt, status: t(`status.${r.status}`) }) : t("continuity.notEnded"));
  control(t("evidence.a530"), continuity);

  const backup: string[] = [];
  const b = e.backup;
  for (const x of b.restored) backup.push(t("backup.restored", { ...x }));
  if (!b.restored.length) backup.push(t("backup.noRestore"));
  for (const x of b.prechecked) backup.push(t(x.stale ? "backup.precheckedStale" : "backup.prechecked", { repository: x.repository, at: x.at, step: x.step }));
  const [only] = b.sites;
  if (b.sites.length >= 2) backup.push(t("backup.bothSites"));
  else if (only) backup.push(t("backup.oneSite", { site: site(only), other: site(only === "primary" ? "secondary" : "primary") }));
  else backup.push(t("backup.noSite"));
  if (b.restoreTest) {
    const x = b.restoreTest;
    backup.push(t(x.result === "ok" ? "backup.restoreTestOk" : "backup.restoreTestFailed", { at: x.at, passed: x.checksPassed, count: x.checksTotal }));
  }
  control(t("evidence.a813"), backup);

  const redundancy: string[] = [];
  for (const x of r.recovered) {
    if (x.path === "restored") redundancy.push(t("redundancy.restoredInstead", { host: x.host, primary: x.primary, engine: x.engine, reason: x.reason }));
    else if (x.lagSeconds !== undefined) redundancy.push(t("redundancy.promotedLag", { host: x.host, primary: x.primary, engine: x.engine, lag: fmtNumber(lang, x.lagSeconds) }));
    else redundancy.push(t("redundancy.promoted", { host: x.host, primary: x.primary, engine: x.engine, reason: x.reason }));
  }
  if (!r.recovered.length) redundancy.push(t(r.kind === "drill" ? "redundancy.noPromoteDrill" : "redundancy.noPromote"));
  const s = e.redundancy.served;
  if (s) redundancy.push(t(r.kind === "drill" ? "redundancy.servedDrill" : "redundancy.served", { site: site(s.site), count: s.checks, hosts: s.hosts.join(", "), steps: s.steps.join(", "), at: s.at }));
  else redundancy.push(t("redundancy.notServed", { site: site(r.to) }));
  control(t("evidence.a814"), redundancy);
  return blocks;
}

/**
 * A string of the run's data as Markdown text that shows it as written: on one line, with the characters that would
 * open markup backslash-escaped (an underscore only where it could start or end emphasis: lgsp_docs stays as it is).
 * A `|` is escaped by mdCell, in tables only.
 */
export function escapeInline(text: string): string {
  return text
    .replace(/\s*\n\s*/g, " ")
    .replace(/[\\`*[\]<>]/g, "\\$&")
    .replace(/(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/gu, "\\_")
    .replace(/^#/, "\\#");
}

/** Every string of a value escaped by escapeInline; enum-like strings (status, kind) have nothing to escape. */
function literal<T>(value: T): T {
  if (typeof value === "string") return escapeInline(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => literal(v)) as T;
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, literal(v)])) as T;
  return value;
}

/** Table cells are one line each; a `|` inside one would end it. */
const mdCell = (text: string) => text.replaceAll("|", "\\|").replace(/\s*\n\s*/g, " ");

export function renderMarkdown(doc: ReportDocument): string {
  const out = [`# ${doc.title}`];
  for (const b of doc.blocks) {
    switch (b.kind) {
      case "heading":
        out.push(`${"#".repeat(b.level)} ${b.text}`);
        break;
      case "paragraph":
        out.push(b.text);
        break;
      case "list":
        out.push(b.items.map((i) => `- ${i}`).join("\n"));
        break;
      case "notes":
        out.push([b.label, ...b.items.map((i) => `- ${i}`)].join("\n"));
        break;
      case "table":
        out.push([`| ${b.head.map(mdCell).join(" | ")} |`, `|${b.head.map(() => "---|").join("")}`, ...b.rows.map((row) => `| ${row.map((c) => mdCell(c.text)).join(" | ")} |`)].join("\n"));
        break;
      case "footer":
        out.push(b.lines.join("\n\n"));
        break;
    }
  }
  return out.join("\n\n") + "\n";
}

export function reportMarkdown(r: RunReport, lang: Lang): string {
  return renderMarkdown(reportDocument(r, lang));
}
