import { readFileSync } from "node:fs";
import { join } from "node:path";
import { withLock } from "../util/lock.js";
import { renderGauges, type Gauge } from "../util/prometheus.js";
import { writeAtomic } from "../util/files.js";

/**
 * What a backup run leaves behind for machines: a JSON-lines report per run, and a Prometheus textfile (for
 * node_exporter's textfile collector) with the latest figures of every job ever run from this machine. Both are
 * written to a temporary file and renamed into place, so a reader never sees half a file.
 */

/** killed: the run's process died before the job finished (SIGKILL, an OOM kill, a crash); found by the next look. */
export type JobStatus = "ok" | "failed" | "locked" | "killed";

export interface JobResult {
  job: string;
  host: string;
  site: string;
  policy: string;
  repository: string;
  status: JobStatus;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  /** Ids of the snapshots this run made (one per source item). */
  snapshots: string[];
  bytesAdded: number;
  filesNew: number;
  filesChanged: number;
  /** One line, for failed and locked jobs. */
  error?: string;
  /** Which restic ran on the job's host, when restic ran there: the host's own, or dcctl's copy (and whether pushed now). */
  resticOnHost?: string;
  /** Each item the job backed up (or tried to): what `backup status` expects to find a snapshot of. */
  items?: ItemResult[];
}

export interface ItemResult {
  /** "files", or "<engine>/<database>"; or the source kind when its items could not be listed. */
  name: string;
  status: "ok" | "failed";
  snapshot?: string;
  error?: string;
}

/** The exit status a job reports in metrics and JSON: the dcctl exit code it would have alone. */
export function jobExitStatus(status: JobStatus): number {
  return status === "ok" ? 0 : status === "locked" ? 3 : status === "killed" ? 137 : 1;
}


/** One JSON object per line: a `run` header, then one `job` line per job. */
export function renderJsonLines(run: { id: string; startedAt: string; finishedAt: string; exitCode: number }, results: JobResult[]): string {
  const lines = [JSON.stringify({ type: "run", ...run, jobs: results.length })];
  for (const r of results) lines.push(JSON.stringify({ type: "job", run: run.id, ...r }));
  return lines.join("\n") + "\n";
}

/** Per job: the last run and the time of the last success, kept between runs so metrics survive single-job runs. */
export interface JobState {
  last: JobResult;
  lastSuccessTimestamp?: number;
}

export type MetricsState = Record<string, JobState>;

export function mergeState(state: MetricsState, results: JobResult[]): MetricsState {
  const next: MetricsState = { ...state };
  for (const r of results) {
    const previous = state[r.job]?.lastSuccessTimestamp;
    // A run that found the job locked did nothing: it must not hide the figures of the run that held the lock.
    if (r.status === "locked" && state[r.job]) continue;
    // A dead run found late must not hide a run of the job that ended after it.
    const known = state[r.job]?.last.finishedAt;
    if (known !== undefined && Date.parse(known) > Date.parse(r.finishedAt)) continue;
    next[r.job] = { last: r, lastSuccessTimestamp: r.status === "ok" ? Date.parse(r.finishedAt) / 1000 : previous };
  }
  return next;
}

/** A job's figures with its name: one sample per job and gauge. */
type JobRow = { job: string; s: JobState };

const METRICS: Gauge<JobRow>[] = [
  { name: "dcctl_backup_last_success_timestamp_seconds", help: "Unix time the job last finished successfully.", value: ({ s }) => s.lastSuccessTimestamp },
  { name: "dcctl_backup_last_run_timestamp_seconds", help: "Unix time the job's last run finished.", value: ({ s }) => Date.parse(s.last.finishedAt) / 1000 },
  { name: "dcctl_backup_duration_seconds", help: "Duration of the job's last run.", value: ({ s }) => s.last.durationSeconds },
  { name: "dcctl_backup_bytes_added", help: "Bytes the job's last run added to the repository.", value: ({ s }) => s.last.bytesAdded },
  { name: "dcctl_backup_files_new", help: "New files in the job's last run.", value: ({ s }) => s.last.filesNew },
  { name: "dcctl_backup_exit_status", help: "0 ok, 1 failed, 3 locked, 137 killed (its run died before it finished), for the job's last run.", value: ({ s }) => jobExitStatus(s.last.status) },
];

/** Prometheus text exposition format, sorted by job for stable diffs. */
export function renderPrometheus(state: MetricsState): string {
  const rows = Object.keys(state).sort().flatMap((job): JobRow[] => (state[job] ? [{ job, s: state[job] }] : []));
  const labels = ({ job, s }: JobRow) => ({ job, host: s.last.host, policy: s.last.policy, repository: s.last.repository });
  return renderGauges(METRICS, rows, labels).join("\n") + "\n";
}

export interface ReportPaths {
  /** The folder of per-run JSON-lines reports. */
  reportsDir: string;
  /** The job state the metrics are rendered from. */
  stateFile: string;
  metricsFile: string;
  /** Where the lock serialising state updates lives. */
  locksDir: string;
}

/**
 * Writes the run's JSON-lines report (`run-<id>.jsonl`, and `last-run.jsonl`), then merges the results into the job
 * state and rewrites the metrics file, under a lock so that concurrent runs of different jobs do not lose each
 * other's figures. Returns the report's path.
 */
/** A run's JSON-lines report in a reports folder. */
export function runReportFile(reportsDir: string, runId: string): string {
  return join(reportsDir, `run-${runId}.jsonl`);
}

export async function writeRunReport(paths: ReportPaths, run: { id: string; startedAt: string; finishedAt: string; exitCode: number }, results: JobResult[]): Promise<string> {
  const body = renderJsonLines(run, results);
  const reportPath = runReportFile(paths.reportsDir, run.id);
  writeAtomic(reportPath, body);
  writeAtomic(join(paths.reportsDir, "last-run.jsonl"), body);
  await recordResults(paths, results);
  return reportPath;
}

/**
 * A run that died, as whoever found it records it: its own report (`run-<id>.jsonl`; last-run.jsonl stays the last
 * run that ended) and its jobs' results in the job state and the metrics. `still` is asked under the metrics lock,
 * so that of two finders at once only one records.
 */
export async function writeDeadRunReport(paths: ReportPaths, run: { id: string; startedAt: string; finishedAt: string; exitCode: number }, results: JobResult[], still: () => boolean): Promise<boolean> {
  return withLock(paths.locksDir, "metrics", { mode: "exclusive", waitMs: 60_000, what: "the metrics file" }, async () => {
    if (!still()) return false;
    writeAtomic(runReportFile(paths.reportsDir, run.id), renderJsonLines(run, results));
    mergeInto(paths, results);
    return true;
  });
}

/** Merges results into the job state and rewrites the metrics file, under the lock that serialises both. */
async function recordResults(paths: ReportPaths, results: JobResult[]): Promise<void> {
  await withLock(paths.locksDir, "metrics", { mode: "exclusive", waitMs: 60_000, what: "the metrics file" }, async () => mergeInto(paths, results));
}

function mergeInto(paths: ReportPaths, results: JobResult[]): void {
  const state = mergeState(readState(paths.stateFile), results);
  writeAtomic(paths.stateFile, JSON.stringify(state, null, 1) + "\n");
  writeAtomic(paths.metricsFile, renderPrometheus(state));
}

export function readState(file: string): MetricsState {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as MetricsState;
  } catch {
    return {};
  }
}

/** A parsed sample of a Prometheus text file; for tests and `backup status`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A strict parser of the subset of the text format we write; throws on any line it does not understand. */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  text.split("\n").forEach((line, i) => {
    if (line === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) return;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line);
    if (!m) throw new Error(`line ${i + 1}: not a Prometheus sample: ${line}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? "";
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
    let pos = 0;
    while (pos < body.length) {
      re.lastIndex = pos;
      const l = re.exec(body);
      if (!l) throw new Error(`line ${i + 1}: bad labels: ${body}`);
      labels[l[1] ?? ""] = (l[2] ?? "").replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
      pos = re.lastIndex;
    }
    samples.push({ name: m[1] ?? "", labels, value: Number(m[3]) });
  });
  return samples;
}
