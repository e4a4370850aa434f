import type { Argv, CommandModule } from "yargs";
import { loadBackupConfig } from "../backup/repositories.js";
import { DcctlError, ExitCode } from "../util/errors.js";
import { textTable } from "../util/table.js";
import { boundedNumber } from "./inputs.js";
import { print, printJson } from "./print.js";

/**
 * `dcctl events send|status`: the SOC feed's spool (notify/event-spool.ts). `send` is what the schedule runs every
 * minute (the dcctl-events-send unit): it delivers what each collector has not confirmed yet, in order, and is quiet
 * when there was nothing to send. Exit 0 when every collector has all of it; 1 when one could not be reached (the
 * events stay spooled, the next run tries again); 3 when another sender held the spool past --wait.
 */

interface SendArgs {
  json: boolean;
  timeout: number;
  wait: number;
}

/** Less than the schedule's minute, so that one run is over before the next begins. */
const SEND_TIMEOUT_SECONDS = 50;

const sendCommand: CommandModule<object, SendArgs> = {
  command: "send",
  describe: "deliver the spooled events to the soc: collectors of the repositories file, in order; quiet when there is nothing to send",
  builder: (y: Argv<object>): Argv<SendArgs> =>
    y
      .option("json", { type: "boolean", default: false, describe: "print each collector's outcome as JSON" })
      .option("timeout", { type: "number", default: SEND_TIMEOUT_SECONDS, describe: "seconds the whole delivery may take" })
      .option("wait", { type: "number", default: 5, describe: "seconds to wait for another sender (a command delivering its own events) before leaving it to that one" }),
  handler: async (args) => {
    boundedNumber("dcctl events send", "timeout", args.timeout, { min: 1, max: 3600, unit: "seconds" });
    boundedNumber("dcctl events send", "wait", args.wait, { min: 0, max: 3600, unit: "seconds" });
    const config = loadBackupConfig();
    const soc = config.soc;
    if (!soc?.collectors.length) {
      if (args.json) printJson({ collectors: [] });
      return;
    }
    const { deliverEvents } = await import("../notify/event-delivery.js");
    const report = await deliverEvents(config.stateDir, soc, { timeoutMs: args.timeout * 1000, lockWaitMs: args.wait * 1000 });
    if (args.json) printJson(report);
    else for (const c of report.collectors) if (c.sent || c.pending) print(`collector ${c.collector}: sent ${c.sent}, ${c.pending} waiting${c.oldestPending ? ` (oldest from ${c.oldestPending})` : ""}`);
    if (report.damaged) process.stderr.write(`note: the spool holds ${report.damaged} line${report.damaged === 1 ? "" : "s"} torn by a crash, skipped (a DCCTL-9001 event says where)\n`);
    if (report.busy) throw new DcctlError(`another sender holds the event spool (${config.stateDir}/events/locks/send); it delivers these events`, ExitCode.locked);
    const failed = report.collectors.filter((c) => c.error);
    const first = failed[0];
    if (first) throw new DcctlError(`collector ${first.collector}: ${first.error ?? ""}; ${first.pending} event${first.pending === 1 ? "" : "s"} stay spooled and are sent by the next run${failed.length > 1 ? ` (and ${failed.length - 1} more collector${failed.length > 2 ? "s" : ""} failed)` : ""}`);
  },
};

interface StatusArgs {
  json: boolean;
}

const statusCommand: CommandModule<object, StatusArgs> = {
  command: "status",
  describe: "per collector: events waiting, the oldest, the last delivery and the last failure",
  builder: (y: Argv<object>): Argv<StatusArgs> => y.option("json", { type: "boolean", default: false }),
  handler: async (args) => {
    const config = loadBackupConfig();
    const soc = config.soc;
    if (!soc) throw new DcctlError(`${config.file}: no soc: section: dcctl sends no events (see docs/operator/soc-events.md)`);
    const { feedStatus } = await import("../notify/event-delivery.js");
    const { underSystemd } = await import("../notify/journald.js");
    const status = { ...feedStatus(config.stateDir, soc), journald: soc.journald ? (underSystemd() ? "on (this process runs under systemd)" : "on under systemd (this process does not run under it)") : "off" };
    if (args.json) return printJson(status);
    if (!soc.collectors.length) print("no collectors: events go to journald only");
    else
      print(
        textTable(
          ["COLLECTOR", "WAITING", "OLDEST", "SENT", "LAST SENT", "LAST FAILURE"],
          status.collectors.map((c) => [c.collector, String(c.pending), c.oldestPending ?? "-", String(c.sent), c.lastSentAt ?? "-", c.lastError ? `${c.lastFailedAt ?? ""} ${c.lastError}` : "-"]),
        ),
      );
    print(`spool: ${status.spoolFile}, ${status.spooled} event${status.spooled === 1 ? "" : "s"}${status.damaged ? `, ${status.damaged} torn line${status.damaged === 1 ? "" : "s"} skipped` : ""}; journald: ${status.journald}`);
  },
};

export const eventsCommands: CommandModule<object, object> = {
  // Its command and description are in ./commands.ts, which lists the groups without loading them.
  builder: (y: Argv<object>): Argv<object> => y.command(sendCommand).command(statusCommand).demandCommand(1, "name an events command: send or status"),
  handler: () => undefined,
};
