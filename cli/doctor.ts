import type { Argv, CommandModule } from "yargs";
import { CHECK_NAMES, doctor, type CheckName } from "../backup/doctor.js";
import { ExitCode, InputError } from "../util/errors.js";
import { print, printJson } from "./print.js";

/** `dcctl doctor`: a management host's readiness to run dcctl, one line per check. Exit 1 when any check fails. */

interface DoctorArgs {
  only?: string[];
  json: boolean;
}

export const doctorCommand: CommandModule<object, DoctorArgs> = {
  command: "doctor",
  describe: "check this management host before first use: state, tools, config, SSH, repositories, clock, disk",
  builder: (y: Argv<object>): Argv<DoctorArgs> =>
    y
      .option("only", { type: "string", array: true, describe: `run only these checks: ${CHECK_NAMES.join(", ")}` })
      .option("json", { type: "boolean", default: false, describe: "print the checks as JSON" })
      .epilogue("Exit status: 0 nothing failed (warnings allowed), 1 some check failed, 2 bad flags."),
  handler: async (args) => {
    const only = args.only?.flatMap((o) => o.split(",")).filter(Boolean);
    const unknown = only?.filter((o) => !(CHECK_NAMES as readonly string[]).includes(o)) ?? [];
    if (unknown.length) throw new InputError([`dcctl doctor: --only ${unknown.join(",")}: not a check (one of ${CHECK_NAMES.join(", ")})`]);
    const lines = await doctor(only ? { only: only as CheckName[] } : {});
    if (args.json) printJson(lines);
    else for (const l of lines) print(`${l.state === "ok" ? "ok  " : l.state === "warn" ? "warn" : "FAIL"}  ${l.check.padEnd(12)} ${l.what}${l.fix ? ` — ${l.fix}` : ""}`);
    process.exitCode = lines.some((l) => l.state === "fail") ? ExitCode.failed : ExitCode.ok;
  },
};
