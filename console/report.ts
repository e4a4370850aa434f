import { createHash } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { listRuns, runDir, type RunSummary } from "../runbooks/engine/index.js";
import { runReportHtml } from "../runbooks/engine/report-html.js";
import { errorMessage } from "../util/errors.js";
import type { Lang } from "../util/i18n.js";

/**
 * A DR run's report for /runs/:runId: the engine's report page (runbooks/engine/report-html.ts), rendered from the
 * run's report.json in the console's language. That page is self-contained, with its CSS inline and no script; the
 * console allows exactly that CSS by its hash.
 */

export interface RunPage {
  run: RunSummary;
  /** The whole page, when the run has a report. */
  html?: string;
  /** CSP sources for the page's inline <style> blocks ('sha256-…'). */
  styleHashes: string[];
  /** Why the report could not be shown. */
  error?: string;
}

/** Run ids as the engine makes them (20261122T060102Z-drill-3f9a); anything else never reaches the file system. */
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The CSP hash source of each inline <style> of a page. */
export function styleHashes(html: string): string[] {
  return [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => `'sha256-${createHash("sha256").update(m[1] ?? "").digest("base64")}'`);
}

/** The run and its report page, or undefined when this machine has no such run. */
export function runPage(runId: string, lang: Lang, back: { href: string; text: string }, env: NodeJS.ProcessEnv = process.env): RunPage | undefined {
  if (!RUN_ID.test(runId) || runId.includes("..")) return undefined;
  const dir = runDir(runId, env);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return undefined;
  const run = listRuns(env).find((r) => r.runId === runId);
  if (!run) return undefined;
  // A run that was cut off before its first report step has a journal and no report yet.
  if (!existsSync(join(dir, "report.json"))) return { run, styleHashes: [] };
  try {
    const html = runReportHtml(dir, lang, { consoleLink: back });
    return { run, html, styleHashes: styleHashes(html) };
  } catch (e) {
    return { run, styleHashes: [], error: errorMessage(e) };
  }
}
