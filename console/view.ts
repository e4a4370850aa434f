import { SITE_NAMES, type SiteName } from "../inventory/index.js";
import type { JobStatusRow } from "../backup/status.js";
import type { PairStatus } from "../backup/replication/index.js";
import { ARCHIVE_STALE_MS } from "../backup/pitr.js";
import type { RunSummary } from "../runbooks/engine/index.js";
import type { FailoverNow, ServiceReadiness } from "../runbooks/engine/readiness.js";
import type { Lang, Translate } from "../util/i18n.js";
import type { ConsoleStatus } from "./status.js";

/**
 * The console's data as the page shows it: every text translated and formatted for the language, every state given
 * a word and a tone (ok, bad, warn, muted), so that the templates only lay it out.
 */

export type Tone = "ok" | "bad" | "warn" | "muted";

export interface Tile {
  label: string;
  value: string;
  tone: Tone;
  title?: string;
}

export interface JobView {
  job: string;
  state: string;
  tone: Tone;
  newest: string;
  age: string;
  rpo: string;
  lastRun: string;
  lastRunTone: Tone;
  /** The items that are not ok, the last run's error and a copy at the secondary over RPO, whole. */
  why?: string;
  /** Where it was judged, when not its own repository. */
  judgedBy?: string;
}

export interface SiteJobs {
  site: SiteName;
  label: string;
  jobs: JobView[];
}

export interface ReplicaView {
  pair: string;
  health: string;
  tone: Tone;
  lag: string;
  rpo: string;
  measured: string;
  notes?: string;
}

export interface ArchiveView {
  host: string;
  receiving: string;
  tone: Tone;
  lag: string;
  rpo: string;
  span: string;
  measured: string;
  notes?: string;
}

export interface RepositoryView {
  name: string;
  location: string;
  size: string;
  verify: string;
  verifyAt?: string;
  tone: Tone;
  /** Why the last verify failed; or that its site does not answer. */
  message?: string;
}

/** At the top of the page while another site does not answer: what the night shift needs first. */
export interface Banner {
  title: string;
  lines: string[];
  /** The command that fails over to this site, when any service can. */
  command?: string;
  commandLabel?: string;
  services: { service: string; answer: string; data: string; tone: Tone }[];
}

export interface ServiceView {
  service: string;
  tier: string;
  ready: string;
  readyTone: Tone;
  lastDrill: string;
  lastDrillHref?: string;
  lastDrillStatus?: string;
  lastDrillTone?: Tone;
  due: string;
  overdue: boolean;
  reasons?: string;
}

export interface RunView {
  runId: string;
  href: string;
  started: string;
  kind: string;
  runbook: string;
  status: string;
  tone: Tone;
  steps: string;
  operator: string;
  message?: string;
}

export interface OverviewView {
  updated: string;
  /** The figures are older than a reading should be, or from before a site was lost. */
  updatedStale: boolean;
  banner?: Banner;
  siteLine: string;
  tiles: Tile[];
  backupNote: string;
  backupError?: string;
  sites: SiteJobs[];
  replicas: ReplicaView[];
  archives: ArchiveView[];
  repositories: RepositoryView[];
  /** Absent until readiness could be judged; then servicesNote says why. */
  services?: ServiceView[];
  servicesNote: string;
  runs: RunView[];
  runsNote?: string;
}

const pad = (n: number) => String(n).padStart(2, "0");

/** HH:MM:SS in this machine's time zone: the duty room's clock. */
export function clock(d: Date): string {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A moment as the language writes it: 2026-11-22 06:01 / 22/11/2026 06:01 (this machine's time zone). */
export function dateTime(iso: string | undefined, lang: Lang): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return lang === "vi" ? `${pad(d.getDate())}/${pad(d.getMonth() + 1)}/${d.getFullYear()} ${time}` : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** One decimal, with the language's decimal mark. */
function decimal(n: number, lang: Lang, digits = 1): string {
  const s = n.toFixed(digits);
  return lang === "vi" ? s.replace(".", ",") : s;
}

export function ageText(minutes: number | undefined, t: Translate, lang: Lang): string {
  if (minutes === undefined) return t("dash");
  if (minutes < 120) return t("age.minutes", { n: Math.round(minutes) });
  if (minutes < 48 * 60) return t("age.hours", { n: decimal(minutes / 60, lang) });
  return t("age.days", { n: decimal(minutes / 1440, lang) });
}

function lagText(s: Pick<PairStatus, "lagSeconds">, t: Translate, lang: Lang): string {
  if (s.lagSeconds === undefined) return t("lagUnknown");
  return s.lagSeconds < 120 ? t("lagSeconds", { n: decimal(s.lagSeconds, lang) }) : t("age.minutes", { n: decimal(s.lagSeconds / 60, lang) });
}

const SEVERITY: Record<JobStatusRow["state"], number> = { unknown: 3, none: 2, "over-rpo": 1, ok: 0 };

/** Stable: jobs of the same state keep the inventory's order. */
function worstFirst(rows: JobStatusRow[]): JobStatusRow[] {
  return rows.map((r, i) => ({ r, i })).sort((a, b) => SEVERITY[b.r.state] - SEVERITY[a.r.state] || a.i - b.i).map((x) => x.r);
}

const JOB_TONE: Record<JobStatusRow["state"], Tone> = { ok: "ok", "over-rpo": "bad", none: "bad", unknown: "warn" };

function jobView(r: JobStatusRow, t: Translate, lang: Lang): JobView {
  const bad = r.items.filter((i) => i.state !== "ok").map((i) => `${i.item}: ${t(`backup.item.${i.state === "none" ? "never" : i.state}`)}`);
  // The state says it for a job whose items all stand alike; otherwise, which of them.
  const mixed = new Set(r.items.map((i) => i.state)).size > 1;
  const first = r.distrusted?.[0];
  const distrusted = first
    ? t("distrusted", { n: r.distrusted?.length ?? 0, kinds: [...new Set((r.distrusted ?? []).flatMap((d) => d.distrust.map((x) => x.kind)))].join(", "), first: `${first.short_id} ${first.distrust[0]?.reason ?? ""}` })
    : undefined;
  const why = [r.error, mixed ? bad.join(", ") : undefined, distrusted, r.lastError, r.copyWarning].filter((x): x is string => !!x).join(" · ");
  const lastStatus = r.lastRun?.split(" ")[0];
  const lastAt = r.lastRun?.replace(/^\S+ at /, "");
  const v: JobView = {
    job: r.job,
    state: t(`state.${r.state}`),
    tone: r.distrusted?.length ? "bad" : JOB_TONE[r.state],
    newest: r.newest ? `${r.newest.id} · ${dateTime(r.newest.time, lang)}` : t("backup.none"),
    age: ageText(r.ageMinutes, t, lang),
    rpo: ageText(r.rpoMinutes, t, lang),
    lastRun: r.lastRun ? `${lastStatus && ["ok", "failed", "skipped", "killed"].includes(lastStatus) ? t(`run.${lastStatus}`) : (lastStatus ?? "")} · ${dateTime(lastAt, lang)}` : t("dash"),
    lastRunTone: !r.lastRun ? "muted" : lastStatus === "ok" ? "ok" : "bad",
  };
  if (why) v.why = why;
  if (r.judgedBy) v.judgedBy = t("judgedBy", { repository: r.judgedBy });
  return v;
}

function sizeText(bytes: number | undefined, t: Translate, lang: Lang): string {
  if (bytes === undefined) return t("dash");
  const [unit, div] = bytes >= 1024 ** 4 ? ["TiB", 1024 ** 4] : bytes >= 1024 ** 3 ? ["GiB", 1024 ** 3] : bytes >= 1024 ** 2 ? ["MiB", 1024 ** 2] : ["KiB", 1024];
  return `${decimal(bytes / div, lang)} ${unit}`;
}

const RUN_TONE: Record<RunSummary["status"], Tone> = { ok: "ok", failed: "bad", missed: "bad", running: "warn", interrupted: "bad", unreadable: "warn" };

function serviceView(s: ServiceReadiness, t: Translate, lang: Lang): ServiceView {
  const d = s.lastDrill;
  const v: ServiceView = {
    service: s.service,
    tier: s.tier === undefined ? t("dash") : String(s.tier),
    ready: s.ready ? t("services.ready") : t("services.notReady"),
    readyTone: s.ready ? "ok" : "bad",
    lastDrill: d ? dateTime(d.at, lang) : t("services.never"),
    due: s.overdue ? t("services.overdue") : dateTime(s.drillDueAt, lang),
    overdue: s.overdue,
  };
  if (d) {
    v.lastDrillHref = `/runs/${encodeURIComponent(d.runId)}`;
    v.lastDrillStatus = t(`runStatus.${d.status}`);
    v.lastDrillTone = RUN_TONE[d.status];
  }
  if (s.reasons.length) v.reasons = s.reasons.join("; ");
  return v;
}

function runView(r: RunSummary, t: Translate, lang: Lang): RunView {
  const v: RunView = {
    runId: r.runId,
    href: `/runs/${encodeURIComponent(r.runId)}`,
    started: dateTime(r.startedAt, lang),
    kind: ["drill", "failover", "failback", "recover"].includes(r.kind) ? t(`kind.${r.kind}`) : r.kind,
    runbook: r.runbook,
    status: t(`runStatus.${r.status}`),
    tone: RUN_TONE[r.status],
    steps: `${r.steps.done}/${r.steps.total}`,
    operator: r.operator,
  };
  if (r.message && r.status !== "ok") v.message = r.message;
  return v;
}

/** The age of the figures to the second while it is short: a header that moves while they are fresh, and only then. */
function readAge(ms: number, t: Translate, lang: Lang): string {
  return ms < 120_000 ? t("lagSeconds", { n: Math.round(ms / 1000) }) : ageText(ms / 60_000, t, lang);
}

/** A reading this old is no longer current: two intervals and a slow reading's worth. */
const STALE_AFTER_MS = 120_000;

function failoverAnswer(f: FailoverNow, t: Translate, lang: Lang): string {
  if (!f.possible) return t("outage.cannot", { why: f.blockers.join("; ") });
  if (f.rpoMinutes === undefined) return t("outage.canUnknown");
  const rpo = ageText(f.rpoMinutes, t, lang);
  if (f.rpoTargetMinutes === undefined) return t("outage.canNoTarget", { rpo });
  return t("outage.can", { rpo, target: ageText(f.rpoTargetMinutes, t, lang), met: t(f.rpoMet ? "outage.met" : "outage.missed") });
}

function failoverData(f: FailoverNow, t: Translate, lang: Lang): string {
  const at = (iso: string) => `${dateTime(iso, lang)}:${pad(new Date(iso).getSeconds())}`;
  const hosts = f.hosts.map((h) => {
    const parts = [
      h.replicaUpTo ? t("outage.replica", { name: h.replica ?? "", time: at(h.replicaUpTo) }) : "",
      h.copyUpTo ? t("outage.copy", { time: at(h.copyUpTo) }) : "",
      h.archiveUpTo ? t("outage.archive", { time: at(h.archiveUpTo) }) : "",
    ].filter(Boolean);
    return `${h.host}: ${parts.join(", ") || t("outage.nothing")}`;
  });
  return [f.dataUpTo ? t("outage.data", { time: at(f.dataUpTo) }) : "", ...hosts].filter(Boolean).join(" · ");
}

function bannerOf(s: ConsoleStatus, t: Translate, lang: Lang, now: Date): Banner | undefined {
  const lost = s.sites.find((x) => !x.reachable);
  if (!lost) return undefined;
  const since = lost.unreachableSince ?? lost.probedAt;
  const banner: Banner = {
    title: t("outage.title", { site: t(`site.${lost.site}`), time: clock(new Date(since)), age: ageText(Math.max(0, now.getTime() - Date.parse(since)) / 60_000, t, lang) }),
    lines: [t("outage.judged"), ...(s.backup.predatesOutage ? [t("outage.predates")] : []), ...(lost.site === "secondary" ? [t("outage.nowhere")] : [])],
    services: (s.services ?? []).flatMap((x) => (x.failoverNow ? [{ service: x.service, answer: failoverAnswer(x.failoverNow, t, lang), data: failoverData(x.failoverNow, t, lang), tone: (x.failoverNow.possible ? (x.failoverNow.rpoMet === false ? "warn" : "ok") : "bad") as Tone }] : [])),
  };
  const command = s.services?.map((x) => x.failoverNow?.command).find((c) => c !== undefined);
  if (command) {
    banner.command = command;
    banner.commandLabel = t("outage.command");
  }
  return banner;
}

export function overviewView(s: ConsoleStatus, t: Translate, lang: Lang, now: Date = new Date()): OverviewView {
  const j = s.summary.jobs;
  const lostSites = s.sites.filter((x) => !x.reachable);
  const tiles: Tile[] = lostSites.map((x) => ({ label: t("siteLost", { site: t(`site.${x.site}`), time: clock(new Date(x.unreachableSince ?? x.probedAt)) }), value: "✕", tone: "bad" as Tone }));
  tiles.push(
    { label: t("summary.jobsOk"), value: `${j.ok}/${j.total}`, tone: j.total && j.ok === j.total ? "ok" : j.total ? "warn" : "muted" },
    { label: t("summary.overRpo"), value: String(j.overRpo), tone: j.overRpo ? "bad" : "ok" },
    { label: t("summary.never"), value: String(j.never), tone: j.never ? "bad" : "ok" },
  );
  if (j.unknown) tiles.push({ label: t("summary.unknown"), value: String(j.unknown), tone: "warn" });
  if (s.summary.distrusted) tiles.push({ label: t("summary.distrusted"), value: String(s.summary.distrusted), tone: "bad", title: t("summary.distrustedTitle") });
  const rp = s.summary.replicas;
  if (rp.ok + rp.notOk) tiles.push({ label: t("summary.pairsOk"), value: `${rp.ok}/${rp.ok + rp.notOk}`, tone: rp.notOk ? "bad" : "ok" });
  const sv = s.summary.services;
  if (sv) {
    tiles.push(
      { label: t("summary.servicesReady"), value: String(sv.ready), tone: sv.ready + sv.notReady === 0 ? "muted" : sv.notReady ? "warn" : "ok" },
      { label: t("summary.servicesNotReady"), value: String(sv.notReady), tone: sv.notReady ? "bad" : "ok" },
      { label: t("summary.drillsOverdue"), value: String(sv.drillsOverdue), tone: sv.drillsOverdue ? "bad" : "ok" },
    );
  } else for (const label of ["summary.servicesReady", "summary.servicesNotReady", "summary.drillsOverdue"]) tiles.push({ label: t(label), value: t("dash"), tone: "muted", title: t("summary.notAvailable") });

  const b = s.backup;
  const readAgeMs = b.at ? Math.max(0, now.getTime() - Date.parse(b.at)) : undefined;
  const stale = readAgeMs === undefined || readAgeMs > STALE_AFTER_MS || b.predatesOutage === true;
  // No tile may stand green on figures that are not current: it says "—"-grey, with why in its title.
  if (stale && b.at) for (const tile of tiles) if (tile.tone === "ok") Object.assign(tile, { tone: "muted", title: t(b.predatesOutage ? "outdated" : "staleMark") });
  const backupNote = b.at
    ? t("backup.asOf", { time: clock(new Date(b.at)), age: ageText(Math.max(0, now.getTime() - Date.parse(b.at)) / 60_000, t, lang) }) + (b.refreshingSince ? ` · ${t("backup.refreshing")}` : "")
    : t("backup.first");

  const view: OverviewView = {
    updated: b.at ? t("updatedAt", { time: clock(new Date(b.at)), age: readAge(readAgeMs ?? 0, t, lang) }) + (stale ? ` · ${t("staleMark")}` : "") : t("updatedNone"),
    updatedStale: stale,
    siteLine: t("thisSite", { site: t(`site.${s.site}`) }),
    tiles,
    backupNote,
    // The worst first: what needs the duty officer is at the top of each site's table.
    sites: SITE_NAMES.map((site) => ({
      site,
      label: t(`site.${site}`),
      jobs: worstFirst(b.jobs.filter((r) => r.site === site))
        .map((r) => jobView(r, t, lang))
        .map((v) => (stale && v.tone === "ok" ? { ...v, tone: "muted" as Tone } : v)),
    })),
    replicas: b.replicas.map((p) => {
      const r: ReplicaView = {
        pair: `${p.standby} ← ${p.primary}`,
        health: t(`replication.healthWord.${p.health}`) + (p.overRpo ? `, ${t("replication.overRpo")}` : ""),
        tone: p.ok ? (stale ? "muted" : "ok") : "bad",
        lag: lagText(p, t, lang),
        rpo: ageText(p.rpoSeconds / 60, t, lang),
        measured: clock(new Date(p.measuredAt)),
      };
      if (!p.ok && p.notes.length) r.notes = p.notes.join("; ");
      return r;
    }),
    archives: s.archives.map((a) => {
      const old = now.getTime() - Date.parse(a.measuredAt) > ARCHIVE_STALE_MS;
      const notes = [...(old ? [t("pitr.stale", { time: dateTime(a.measuredAt, lang) })] : []), ...(a.baseBackups === 0 ? [t("pitr.noBase")] : []), ...a.notes];
      const view: ArchiveView = {
        host: a.host,
        receiving: (a.receiving ? t("pitr.yes") : t("pitr.no")) + (a.receiving && a.lagSeconds !== undefined && a.lagSeconds > a.rpoSeconds ? `, ${t("pitr.overRpo")}` : ""),
        tone: a.ok && !old ? "ok" : "bad",
        lag: lagText(a, t, lang),
        rpo: ageText(a.rpoSeconds / 60, t, lang),
        span: a.earliest && a.latest ? `${dateTime(a.earliest, lang)} – ${dateTime(a.latest, lang)}` : "—",
        measured: dateTime(a.measuredAt, lang),
      };
      if (notes.length) view.notes = notes.join("; ");
      return view;
    }),
    repositories: s.repositories.map((r) => {
      const v = r.verify;
      const verify = !v ? t("repositories.notVerified") : v.ok ? t("repositories.verifyOk") : t("repositories.verifyFailed");
      const view: RepositoryView = { name: r.name, location: r.location, size: sizeText(v?.sizeBytes, t, lang), verify, tone: !v ? "muted" : v.ok ? (stale ? "muted" : "ok") : "bad" };
      if (v) view.verifyAt = `${dateTime(v.at, lang)}${v.subset ? ` · ${t("repositories.subset", { subset: v.subset })}` : ""}`;
      if (v && !v.ok && v.message) view.message = v.message;
      if (r.unreachableSince) view.message = [view.message, t("repoUnreachable", { time: clock(new Date(r.unreachableSince)) })].filter(Boolean).join(" · ");
      return view;
    }),
    servicesNote: s.servicesError ?? t("services.pending"),
    runs: s.runs.map((r) => runView(r, t, lang)),
  };
  if (s.services) view.services = s.services.map((x) => serviceView(x, t, lang));
  const banner = bannerOf(s, t, lang, now);
  if (banner) view.banner = banner;
  if (b.error) view.backupError = t("backup.failed", { message: b.error });
  if (s.runsError) view.runsNote = s.runsError;
  else if (!s.runs.length) view.runsNote = t("history.none");
  else if (s.runsTotal > s.runs.length) view.runsNote = t("history.more", { count: s.runsTotal - s.runs.length });
  return view;
}
