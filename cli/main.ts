#!/usr/bin/env node
import yargs from "yargs";
import { hideBin } from "yargs/helpers";
import { DcctlError, ExitCode, InputError, errorMessage } from "../util/errors.js";
import { LANGS } from "../util/i18n.js";
import { ensureStateFormat, markNewState } from "../util/state-format.js";
import { stateDir } from "../util/state.js";
import { commandEnd } from "../util/command-end.js";
import { dcctlVersion } from "../util/tools.js";
import { groupsFor } from "./commands.js";
import { checkCommandLine, describeParseFailure } from "./inputs.js";

/**
 * The CLI is thin: each command group parses its flags, calls one library function and prints.
 * Every failure ends here as one line on stderr (all lines for bad input) and a documented exit code.
 */
export async function main(argv: string[]): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const operands = argv.indexOf("--") < 0 ? argv : argv.slice(0, argv.indexOf("--"));
  const wantsHelp = operands.includes("--help") || operands.includes("help");
  const cli = yargs(argv)
    .scriptName("dcctl")
    .usage("$0 <command>\n\nInfrastructure as code, backups and disaster recovery for a two-site data centre.")
    .strict()
    .demandCommand(1, "name a command; see dcctl --help")
    .recommendCommands()
    .option("lang", { type: "string", choices: LANGS, global: true, describe: "language of reports, prompts and the console: en or vi (default: $DCCTL_LANG, the repositories file's lang, en)" })
    .wrap(wantsHelp ? Math.min(110, process.stdout.columns ?? 110) : null)
    .version(dcctlVersion())
    .completion("completion", "print the bash or zsh completion script for dcctl (by $SHELL)")
    .epilogue("Exit codes: 0 ok, 1 failed, 2 bad input, 3 locked by another run, 4 some jobs failed, 5 not confirmed, 6 DR targets missed, 7 the other site is unreachable, 8 approval required.")
    .exitProcess(false)
    .fail((msg: string | undefined, err: Error | undefined) => {
      if (err) throw err;
      throw new InputError([describeParseFailure(msg ?? "bad arguments", operands)]);
    })
    // Before yargs validates (a repeated --lang is "given twice", not "not one of en, vi"), for every command.
    .middleware(checkCommandLine, true);
  for (const group of await groupsFor(argv)) cli.command(group);
  const selfOnly = operands.some((a) => a === "--version" || a === "completion" || a === "--get-yargs-completions");
  // The other site's forced command (cli/peer-records.ts) reads this site's records and writes nothing, not even the mark.
  const readsOnly = selfOnly || operands.find((a) => !a.startsWith("-")) === "peer-records";
  if (!wantsHelp && !readsOnly) {
    try {
      // An upgrade's first start brings the state folder to this release's format; a downgrade stops here.
      ensureStateFormat(stateDir(), dcctlVersion());
    } catch (err) {
      return report(err);
    }
  }
  if (!wantsHelp) skipHelpLayout(cli);
  try {
    await cli.parseAsync();
  } catch (err) {
    exitCode = report(err);
    // A destructive action refused (not confirmed, or a guard): the SOC hears of it too.
    if (err instanceof DcctlError && err.exitCode === ExitCode.notConfirmed) (await import("./feed.js")).tellRefusal(operands, err.message);
  }
  // What the command started and must get a bounded chance to finish: the SOC feed's delivery of its events.
  for (const line of await commandEnd()) process.stderr.write(`note: ${line}\n`);
  if (!readsOnly) markNewState(stateDir(), dcctlVersion());
  return exitCode || (process.exitCode as number | undefined) || ExitCode.ok;
}

/**
 * yargs lays out the whole help text as soon as a command's handler has started, to have it should the command fail;
 * our .fail() never shows it, and the layout (~20 ms of measuring text) would come before every command's own work.
 * Unwrapped (.wrap(null) above) it costs less; skipped, nothing. Through yargs' internal methods, so looked up with
 * care: a yargs without them only makes the layout happen again.
 */
function skipHelpLayout(cli: unknown): void {
  type Internals = { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } };
  const usage = (cli as Internals).getInternalMethods?.().getUsageInstance?.();
  if (typeof usage?.cacheHelpMessage === "function") usage.cacheHelpMessage = () => undefined;
}

function report(err: unknown): number {
  if (err instanceof InputError) {
    for (const line of err.problems) process.stderr.write(line + "\n");
    return err.exitCode;
  }
  if (err instanceof DcctlError) {
    process.stderr.write(`dcctl: ${err.message}\n`);
    return err.exitCode;
  }
  process.stderr.write(`dcctl: ${errorMessage(err)}\n`);
  if (process.env.DCCTL_DEBUG && err instanceof Error) process.stderr.write(`${err.stack ?? ""}\n`);
  return ExitCode.failed;
}

// `dcctl … | head`: a reader that stops early is not an error of ours.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});
const code = await main(hideBin(process.argv));
process.exitCode = code;
