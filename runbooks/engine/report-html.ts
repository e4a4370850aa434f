import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { DcctlError, errorMessage } from "../../util/errors.js";
import { isLang, type Lang } from "../../util/i18n.js";
import { run } from "../../util/process.js";
import type { RunReport } from "./report-model.js";
import { reportDocument, type Block, type Cell, type ReportDocument } from "./report-doc.js";
import { reportTranslator } from "./report-texts.js";

/**
 * report.html: the report as one self-contained page — inline CSS, no script, no font, image or link to fetch — for
 * the duty room's screens (1366×768 and up), for printing (A4, tables not split inside a row) and for the web
 * console. It is rendered from the same document as report.md (report-doc.ts), so the two never disagree; a missed
 * target is red *and* says so in words.
 */

const CSS = `
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:#eef0f3;color:#1b1d21;font:15px/1.5 "Noto Sans","DejaVu Sans","Segoe UI",Arial,sans-serif}
main{max-width:1280px;margin:0 auto;padding:20px 28px 28px;background:#fff;min-height:100vh}
header{border-bottom:3px solid #1f4e79;padding-bottom:10px;margin-bottom:8px}
h1{font-size:22px;line-height:1.3;margin:0;color:#1f4e79}
.badge{display:inline-block;margin-left:8px;padding:1px 10px;border-radius:3px;font-size:16px;vertical-align:2px;border:2px solid}
.badge.good{color:#0a5d1c;border-color:#0a5d1c;background:#e5f3e8}
.badge.bad{color:#9b0000;border-color:#9b0000;background:#fde9e9}
h2{font-size:18px;margin:26px 0 8px;padding-bottom:3px;border-bottom:1px solid #c5cad3;color:#1f4e79}
h3{font-size:16px;margin:16px 0 4px}
p{margin:8px 0}
ul{margin:4px 0 8px;padding-left:22px}
li{margin:2px 0}
.wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:6px 0;font-size:14px}
th,td{border:1px solid #c5cad3;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#e8ecf2;font-weight:600}
tr:nth-child(even) td{background:#f8f9fb}
td.bad,tr:nth-child(even) td.bad{color:#9b0000;background:#fdecec;font-weight:700}
td.good{color:#0a5d1c}
code{font:13px/1.4 "DejaVu Sans Mono",Consolas,monospace;background:#f0f2f5;padding:0 3px;border-radius:2px;overflow-wrap:anywhere}
.label{margin:12px 0 0}
footer{margin-top:26px;padding-top:8px;border-top:1px solid #c5cad3;font-size:13px;color:#3d424a;overflow-wrap:anywhere}
footer p{margin:4px 0}
a{color:#1f4e79}
@page{size:A4;margin:14mm 12mm}
@media print{
body{background:#fff;font-size:10.5pt}
main{max-width:none;padding:0;min-height:0}
.wrap{overflow:visible}
table{font-size:9.5pt}
tr,li,.label{break-inside:avoid}
h2,h3,.label{break-after:avoid}
thead{display:table-header-group}
td.bad,tr:nth-child(even) td.bad{background:none}
.console{display:none}
}
`.trim();

const escapeHtml = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

/**
 * The two inline marks report texts use, as Markdown would show them: `code` and **strong**. A backslash-escaped
 * character (the run's data, report-doc.ts's escapeInline) is set aside first and shown as itself.
 */
function inline(text: string): string {
  // Set aside between two private-use characters, which no report text uses (removed from it, should one).
  const kept: string[] = [];
  const marked = text.replace(/[\uE000\uE001]/g, "").replace(/\\([\\`*_[\]<>#])/g, (_m, c: string) => `\uE000${kept.push(c) - 1}\uE001`);
  return escapeHtml(marked)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/\uE000(\d+)\uE001/g, (_m, i: string) => escapeHtml(kept[Number(i)] ?? ""));
}

function cell(c: Cell): string {
  return `<td${c.tone ? ` class="${c.tone}"` : ""}>${inline(c.text)}</td>`;
}

function block(b: Block): string {
  switch (b.kind) {
    case "heading":
      return `<h${b.level}>${inline(b.text)}</h${b.level}>`;
    case "paragraph":
      return `<p>${inline(b.text)}</p>`;
    case "list":
      return `<ul>\n${b.items.map((i) => `<li>${inline(i)}</li>`).join("\n")}\n</ul>`;
    case "notes":
      return `<p class="label">${inline(b.label)}</p>\n<ul>\n${b.items.map((i) => `<li>${inline(i)}</li>`).join("\n")}\n</ul>`;
    case "table":
      return [
        '<div class="wrap"><table>',
        `<thead><tr>${b.head.map((h) => `<th>${inline(h)}</th>`).join("")}</tr></thead>`,
        "<tbody>",
        ...b.rows.map((row) => `<tr>${row.map(cell).join("")}</tr>`),
        "</tbody></table></div>",
      ].join("\n");
    case "footer":
      return `<footer>\n${b.lines.map((l) => `<p>${inline(l)}</p>`).join("\n")}\n</footer>`;
  }
}

export interface HtmlOptions {
  /** A link back to the web console's page of the run (the only link the page may carry). */
  consoleLink?: { href: string; text: string };
}

/** The page of a rendered report document. */
export function renderHtml(doc: ReportDocument, runId: string, opts: HtmlOptions = {}): string {
  const t = reportTranslator(doc.lang);
  const title = doc.title.replace(/\*\*/g, "");
  // The status ends the title ("…: OK"); on the page it is a badge that reads the same printed in black and white.
  const heading = title.endsWith(doc.status.text) ? title.slice(0, -doc.status.text.length).replace(/:\s*$/, "") : undefined;
  const console = opts.consoleLink ? `\n<p class="console"><a href="${escapeHtml(opts.consoleLink.href)}">${escapeHtml(opts.consoleLink.text)}</a></p>` : "";
  return [
    "<!DOCTYPE html>",
    `<html lang="${doc.lang}">`,
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>\n${CSS}\n</style>`,
    "</head>",
    "<body>",
    "<main>",
    `<header>${console}`,
    heading === undefined ? `<h1>${escapeHtml(title)}</h1>` : `<h1>${escapeHtml(heading)}: <span class="badge ${doc.status.tone}">${escapeHtml(doc.status.text)}</span></h1>`,
    "</header>",
    ...doc.blocks.map(block),
    `<p><small>${inline(t("html.generated", { runId }))}</small></p>`,
    "</main>",
    "</body>",
    "</html>",
    "",
  ].join("\n");
}

/** The report's page in a language (the web console may show a run in the reader's language, not the run's). */
export function reportHtml(report: RunReport, lang: Lang = report.lang, opts: HtmlOptions = {}): string {
  return renderHtml(reportDocument(report, lang), report.runId, opts);
}

/**
 * A run folder's report as a page, from its report.json (for `dcctl serve`: /runs/<runId>). Reports written before
 * dcctl 0.2.0 render too, without the parts they lack.
 */
export function runReportHtml(runDir: string, lang?: Lang, opts: HtmlOptions = {}): string {
  const path = join(runDir, "report.json");
  let report: RunReport;
  try {
    report = JSON.parse(readFileSync(path, "utf8")) as RunReport;
  } catch (e) {
    throw new DcctlError(`cannot read the report ${path}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`);
  }
  const own = typeof report.lang === "string" && isLang(report.lang) ? report.lang : "en";
  return reportHtml({ ...report, lang: own }, lang ?? own, opts);
}

/**
 * Prints report.html to a PDF with a headless Chromium (`DCCTL_CHROMIUM`, else `chromium` on PATH): on demand only
 * (`dcctl dr report RUN --pdf OUT`), never during a run — a browser start costs a second or more.
 */
export async function reportPdf(runDir: string, out: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const html = join(runDir, "report.html");
  if (!existsSync(html)) throw new DcctlError(`${html} is missing: the run's report was written before dcctl 0.2.0 or not at all`);
  const browser = env.DCCTL_CHROMIUM || "chromium";
  const target = resolve(out);
  const args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer", `--print-to-pdf=${target}`, pathToFileURL(resolve(html)).href];
  let res;
  try {
    res = await run(browser, args, { timeoutMs: 120_000 });
  } catch {
    throw new DcctlError(`cannot start ${browser} to print the PDF (install Debian's chromium, or set DCCTL_CHROMIUM)`);
  }
  if (res.code !== 0 || !existsSync(target)) {
    const last = res.stderr.trim().split("\n").filter((l) => !/dbus|Fontconfig/i.test(l)).pop() ?? `exit ${res.code}`;
    throw new DcctlError(`${browser} could not print ${html} to ${out}: ${last}`);
  }
}
