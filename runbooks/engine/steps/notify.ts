import { appendFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { NOTIFY_TIMEOUT_MS, channelNames, channelOutcomes, describeDelivery, notifyAll, wants, type Message, type NotifyConfig, type NotifyResult } from "../../../notify/index.js";
import { DcctlError, errorMessage } from "../../../util/errors.js";
import { formatDuration } from "../duration.js";
import type { RunbookKind } from "../model.js";
import type { RunReport } from "../report-model.js";
import type { Measurement } from "../measure.js";
import { defineStep } from "./types.js";
import { Params } from "./params.js";
import { lastLine, shown } from "./on-hosts.js";
import { makeDir } from "../../../util/dirs.js";

/**
 * `notify`: tells people. Sends the message through the site's channels (the backup config's `notify:` e-mail and
 * webhook), appends a JSON line to a notification log, and/or runs a configured command on the DR runner with
 * {message} and {run} replaced in its arguments. A channel that cannot deliver is a note, not a failed step: the
 * failover goes on when the mail server is down. Also here: the message every run sends when it ends (runner.ts).
 */
interface NotifyParams {
  message: string;
  log?: string;
  command?: string[];
}

const KIND_TITLE: Record<RunbookKind, string> = { drill: "DR drill", failover: "DR failover", failback: "DR failback", recover: "DR recover" };

export const notifyStep = defineStep<NotifyParams>({
  type: "notify",
  // A second copy of a message after a crash is harmless; a missing one is not.
  idempotent: true,
  parse(raw) {
    const p = new Params(raw);
    p.only("message", "log", "command");
    // Without log or command the site's channels carry it; whether there are any is known only where the run runs.
    return p.result({ message: p.string("message", true), log: p.string("log"), command: p.argv("command") });
  },
  plan(_p, params) {
    const lines = [`send "${params.message}" by e-mail and webhook, as the backup config's notify: section says${params.log || params.command ? " (when it has one)" : ""}`];
    if (params.log) lines.push(`append "${params.message}" to ${params.log}`);
    if (params.command) lines.push(`run \`${shown(params.command)}\` with the message`);
    return lines;
  },
  async run(p, params, ctx) {
    const notes: string[] = [];
    const channels = ctx.services.notify;
    if (!params.log && !params.command && !channels) {
      throw new DcctlError("nobody to tell: the step has neither with.log nor with.command, and the backup config has no notify: section (smtp, webhook)");
    }
    if (params.log) {
      makeDir(dirname(params.log));
      const line = { at: ctx.services.now().toISOString(), run: ctx.runId, runbook: ctx.runbook.name, step: p.step.id, message: params.message };
      appendFileSync(params.log, JSON.stringify(line) + "\n");
      notes.push(`appended to ${params.log}`);
    }
    if (channels && !wants(channels, p.kind)) notes.push(`not sent to ${channelNames(channels).join(" or ")}: notify.on leaves out ${p.kind}`);
    else if (channels) {
      const message: Message = {
        event: p.kind,
        subject: `[dcctl] ${KIND_TITLE[p.kind]} ${ctx.runId} at ${ctx.runbook.to}: ${params.message}`,
        text: [params.message, "", `Run ${ctx.runId}, runbook ${ctx.runbook.name}, step ${p.step.id}, on ${hostname()} at ${ctx.services.now().toISOString()}.`, ...linkLines(channels, ctx.runId, ctx.runDir)].join("\n") + "\n",
        link: runLink(channels, ctx.runId, ctx.runDir),
        run: ctx.runId,
        status: "running",
      };
      notes.push(describeDelivery(await notifyAll(channels, message, { timeoutMs: Math.min(p.step.timeoutMs, NOTIFY_TIMEOUT_MS) })));
    }
    if (params.command) {
      const argv = params.command.map((a) => a.replaceAll("{message}", params.message).replaceAll("{run}", ctx.runId));
      const res = await ctx.services.local.run(argv, { timeoutMs: p.step.timeoutMs });
      if (res.code !== 0) throw new DcctlError(`\`${shown(argv)}\` failed (exit ${res.code}): ${lastLine(res.stderr)}`);
      notes.push(`sent with ${argv[0] ?? ""}`);
    }
    return { notes, data: {} };
  },
});

/** The console's page of the run when the site names its console; else the report file in the run folder. */
function runLink(config: NotifyConfig, runId: string, runDir: string): string {
  return config.consoleUrl ? `${config.consoleUrl}/runs/${encodeURIComponent(runId)}` : join(runDir, "report.html");
}

function linkLines(config: NotifyConfig, runId: string, runDir: string): string[] {
  return ["", `Report: ${runLink(config, runId, runDir)}`, ...(config.consoleUrl ? [`Run folder: ${runDir}`] : [])];
}

const minutes = (v: number | undefined) => (v === undefined ? "not measured" : `${v} min`);
const verdict = (met: boolean | undefined) => (met === undefined ? "" : met ? ", met" : ", MISSED");

/** "portal (tier 1): RPO 12.5 min (target 15 min, met); RTO 3.2 min (target 60 min, MISSED)". */
function measurementLine(m: Measurement): string {
  const target = (v: number | undefined, met: boolean | undefined) => (v === undefined ? " (no target)" : ` (target ${v} min${verdict(met)})`);
  return `  ${m.service}${m.tier !== undefined ? ` (tier ${m.tier})` : ""}: RPO ${minutes(m.rpoMinutes)}${target(m.rpoTargetMinutes, m.rpoMet)}; RTO ${minutes(m.rtoMinutes)}${target(m.rtoTargetMinutes, m.rtoMet)}`;
}

const MAX_DEVIATIONS = 12;

/** The message a DR run sends when it ends: kind, id and result in the subject; RPO/RTO per service in the body. */
export function runEndMessage(report: RunReport, kind: RunbookKind, runDir: string, config: NotifyConfig): Message {
  const result = report.status === "ok" ? "OK" : report.status === "missed" ? "TARGETS MISSED" : report.status.toUpperCase();
  const took = report.endedAt ? ` (took ${formatDuration(Date.parse(report.endedAt) - Date.parse(report.startedAt))})` : "";
  const lines = [
    `${KIND_TITLE[kind]} ${report.runId} at the ${report.to} site: ${result}`,
    `Runbook ${report.runbook} (${report.file}), started by ${report.operator} on ${report.host} at ${report.startedAt}${report.endedAt ? `, ended ${report.endedAt}${took}` : ""}.`,
  ];
  if (report.message) lines.push(`Outcome: ${report.message}`);
  lines.push("", "RPO and RTO against the DR tiers:", ...[...report.measurements.services, report.measurements.overall].map(measurementLine));
  if (report.deviations.length) {
    lines.push("", "Deviations:", ...report.deviations.slice(0, MAX_DEVIATIONS).map((d) => `  - ${d}`));
    if (report.deviations.length > MAX_DEVIATIONS) lines.push(`  … and ${report.deviations.length - MAX_DEVIATIONS} more in the report`);
  }
  lines.push(...linkLines(config, report.runId, runDir), `Report files: ${join(runDir, "report.md")}, ${join(runDir, "report.json")}`);
  // The chain head as of the run's end, outside the machine: an anchor for `dcctl dr verify-report --head`.
  const head = report.journalHead;
  lines.push(`Journal: ${report.journal}${head ? ` (chain head at record ${head.seq}: sha256:${head.hash})` : ""}`);
  return {
    event: kind,
    subject: `[dcctl] ${KIND_TITLE[kind]} ${report.runId} ${result} at ${report.to}`,
    text: lines.join("\n") + "\n",
    link: runLink(config, report.runId, runDir),
    run: report.runId,
    status: report.status === "ok" ? "ok" : "failed",
  };
}

/**
 * A delivered end-of-run message is journaled under this tag: not a step id (ids cannot hold parentheses), so the
 * report does not count it among the deviations; a failed one is a run-level note, which the report does list.
 */
export const END_OF_RUN_NOTE = "(end-of-run notification)";

/**
 * Sends the end-of-run message when the site has channels for this kind, and says what to journal about it.
 * Never throws: whatever goes wrong here is a note, and the run's result stays what its steps made it.
 */
export async function notifyRunEnd(
  config: NotifyConfig | undefined,
  report: () => RunReport,
  kind: RunbookKind,
  runDir: string,
): Promise<{ results: NotifyResult[]; note?: { type: "note"; step?: string; message: string } }> {
  if (!wants(config, kind)) return { results: [] };
  try {
    const results = await notifyAll(config, runEndMessage(report(), kind, runDir, config));
    const ok = results.every((r) => r.ok);
    const message = `end-of-run message ${ok ? "sent" : "NOT delivered everywhere"}: ${channelOutcomes(results)}`;
    return { results, note: ok ? { type: "note", step: END_OF_RUN_NOTE, message } : { type: "note", message } };
  } catch (err) {
    return { results: [], note: { type: "note", message: `end-of-run message not sent: ${errorMessage(err)}` } };
  }
}
