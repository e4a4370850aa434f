import { appendFileSync } from "node:fs";
import { dirname } from "node:path";
import { DcctlError } from "../../../util/errors.js";
import { defineStep } from "./types.js";
import { Params } from "./params.js";
import { lastLine, shown } from "./on-hosts.js";
import { makeDir } from "../../../util/dirs.js";

/**
 * `notify`: tells people. Appends a JSON line to a notification log and/or runs a configured command on the DR
 * runner with {message} and {run} replaced in its arguments (e.g. a mail or chat client).
 */
interface NotifyParams {
  message: string;
  log?: string;
  command?: string[];
}

export const notifyStep = defineStep<NotifyParams>({
  type: "notify",
  // A second copy of a message after a crash is harmless; a missing one is not.
  idempotent: true,
  parse(raw) {
    const p = new Params(raw);
    p.only("message", "log", "command");
    const value = { message: p.string("message", true), log: p.string("log"), command: p.argv("command") };
    if (!value.log && !value.command) p.problems.push({ path: ["with"], message: "notify needs with.log (a file) or with.command (an argument vector)" });
    return p.result(value);
  },
  plan(_p, params) {
    const lines: string[] = [];
    if (params.log) lines.push(`append "${params.message}" to ${params.log}`);
    if (params.command) lines.push(`run \`${shown(params.command)}\` with the message`);
    return lines;
  },
  async run(p, params, ctx) {
    const notes: string[] = [];
    if (params.log) {
      makeDir(dirname(params.log));
      const line = { at: ctx.services.now().toISOString(), run: ctx.runId, runbook: ctx.runbook.name, step: p.step.id, message: params.message };
      appendFileSync(params.log, JSON.stringify(line) + "\n");
      notes.push(`appended to ${params.log}`);
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
