import { spawn } from "node:child_process";
import type { Argv, CommandModule } from "yargs";
import { SITE_NAMES, type SiteName } from "../inventory/index.js";
// lab/lab.js brings the stacks and the Pulumi SDK: loaded only when a lab command runs.
const lab = () => import("../lab/lab.js");
import { labDir } from "../lab/state.js";
import { parseDuration } from "../util/duration.js";
import { DcctlError, ExitCode } from "../util/errors.js";
import { exitStatus } from "../util/process.js";

/** `dcctl lab up|down|status|fail|heal|wan|exec|shell|console`: the two-site data centre on this machine. */

interface UpArgs {
  size: number;
  seed: number;
  provision: boolean;
  wanMbit: number;
  writeEvery: string;
}
interface SiteArgs {
  site: SiteName;
}
interface ExecArgs extends SiteArgs {
  command?: (string | number)[];
  "--"?: (string | number)[];
}
interface ConsoleArgs extends SiteArgs {
  port: number;
  lang?: string;
}
interface WanArgs {
  mbit: number;
}
interface StatusArgs {
  json: boolean;
}

const say = (line: string) => process.stdout.write(line + "\n");

const up: CommandModule<object, UpArgs> = {
  command: "up",
  describe: "start the lab's servers (vCenter simulators, sshd per host, repositories, databases, portal) and apply both stacks",
  builder: (y: Argv<object>) =>
    y
      .option("size", { type: "number", default: 2, describe: "megabytes of generated data in the lab's databases (seeded once)" })
      .option("seed", { type: "number", default: 2026, describe: "seed of the generated data set" })
      .option("provision", { type: "boolean", default: true, describe: "apply both site stacks to the lab's vCenters" })
      .option("wan-mbit", { type: "number", default: 100, describe: "bandwidth cap of the WAN link between the sites, Mbit/s each way" })
      .option("write-every", { type: "string", default: "1s", describe: "how often the primary's portal files a new dossier (0: never), so that losing the site loses data" }) as unknown as Argv<UpArgs>,
  handler: async (args) => {
    if (!(args.size > 0)) throw new DcctlError("--size must be a positive number of megabytes", ExitCode.badInput);
    if (!(args.wanMbit >= 1 && args.wanMbit <= 100_000)) throw new DcctlError("--wan-mbit must be between 1 and 100000", ExitCode.badInput);
    const writeEveryMs = args.writeEvery === "0" ? 0 : parseDuration(args.writeEvery);
    if (writeEveryMs === undefined || (writeEveryMs > 0 && writeEveryMs < 50)) throw new DcctlError(`--write-every must be 0 or a duration of at least 50ms such as 1s, not "${args.writeEvery}"`, ExitCode.badInput);
    const dir = labDir();
    const { labUp } = await lab();
    const state = await labUp({ dir, sizeMb: args.size, seed: args.seed, provision: args.provision, wanMbit: args.wanMbit, writeEveryMs, log: say });
    say(`lab ready in ${dir}: ${state.services.length} processes; see \`dcctl lab status\`, stop with \`dcctl lab down\``);
  },
};

const down: CommandModule<object, object> = {
  command: "down",
  describe: "stop every process the lab started; its folder (data, repositories, keys) stays",
  handler: async () => {
    const { labDown } = await lab();
    const { stopped } = await labDown(labDir(), say);
    say(stopped ? `lab stopped: ${stopped} processes` : "the lab is not running");
  },
};

const status: CommandModule<object, StatusArgs> = {
  command: "status",
  describe: "each lab process, its address and whether it runs (exit 1 when any is down)",
  builder: (y: Argv<object>) => y.option("json", { type: "boolean", default: false }) as unknown as Argv<StatusArgs>,
  handler: async (args) => {
    const { labStatus } = await lab();
    const { state, services, failed, wanMbit } = labStatus(labDir());
    if (args.json) say(JSON.stringify({ phase: state?.phase ?? "down", failed, wanMbit, services }, null, 2));
    else if (!state) say("the lab is not running (start it with `dcctl lab up`)");
    else {
      say(`lab ${state.phase}, supervisor pid ${state.supervisorPid}, started ${state.startedAt}, WAN ${wanMbit ?? "?"} Mbit/s`);
      say(failed.length ? `FAILED site: ${failed.join(", ")} (WAN cut, its servers frozen; \`dcctl lab heal\` restores it)` : "both sites up");
      for (const s of services) say(`  ${s.running ? "running" : "DOWN   "}  ${s.name.padEnd(28)} ${`${s.address}:${s.port}`.padEnd(18)} pid ${s.pid}`);
    }
    if (!state || services.some((s) => !s.running)) process.exitCode = ExitCode.failed;
  },
};

const siteArg = (y: Argv<object>) => y.positional("site", { choices: SITE_NAMES, demandOption: true, describe: "the lab site" }) as unknown as Argv<SiteArgs>;

const fail: CommandModule<object, SiteArgs> = {
  command: "fail <site>",
  describe: "lose a site: its WAN link cut and its servers frozen, so connections to it hang as in a real outage",
  builder: siteArg,
  handler: async (args) => {
    const { labFail } = await lab();
    await labFail(labDir(), args.site);
    say(`site ${args.site} is down: WAN cut, its servers frozen (undo with \`dcctl lab heal\`)`);
  },
};

const heal: CommandModule<object, object> = {
  command: "heal",
  describe: "undo `lab fail`: thaw the site's servers and restore the WAN link",
  handler: async () => {
    const { labHeal } = await lab();
    const healed = await labHeal(labDir());
    say(healed.length ? `healed: ${healed.join(", ")}; WAN restored` : "no site was failed; WAN restored");
  },
};

const wan: CommandModule<object, WanArgs> = {
  command: "wan",
  describe: "change the bandwidth cap of the running lab's WAN link between the sites, e.g. to replicate over a slow line",
  builder: (y: Argv<object>) => y.option("mbit", { type: "number", demandOption: true, describe: "Mbit/s each way" }) as unknown as Argv<WanArgs>,
  handler: async (args) => {
    if (!(args.mbit >= 1 && args.mbit <= 100_000)) throw new DcctlError("--mbit must be between 1 and 100000", ExitCode.badInput);
    const { labWan } = await lab();
    await labWan(labDir(), args.mbit);
    say(`WAN capped at ${args.mbit} Mbit/s each way`);
  },
};

/** Runs the command on the site's management host, passing the terminal through; exits with its exit code. */
async function onSite(site: SiteName, command: string[]): Promise<void> {
  const { siteCommand } = await lab();
  const { cmd, args, env } = siteCommand(labDir(), site, command);
  const child = spawn(cmd, args, { env, stdio: "inherit" });
  // The terminal's signals reach the child directly; this process only waits for it.
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => child.kill(sig));
  process.exitCode = await new Promise<number>((resolve) => {
    child.once("error", (e) => resolve((say(`dcctl: cannot run ${command[0] ?? ""}: ${e.message}`), ExitCode.failed)));
    // A command killed by a signal ends this one as a shell would say it (SIGKILL, an OOM kill: 137), not as a stop.
    child.once("close", (code, sig) => resolve(exitStatus(code, sig)));
  });
}

const exec: CommandModule<object, ExecArgs> = {
  command: "exec <site> [command..]",
  describe: "run a command on a site's management host (inside the lab, with that site's dcctl settings): dcctl lab exec SITE -- CMD…; `dcctl` as CMD is this dcctl",
  builder: (y: Argv<object>) => siteArg(y).positional("command", { type: "string", array: true }).parserConfiguration({ "populate--": true }) as unknown as Argv<ExecArgs>,
  handler: (args) => {
    const command = [...(args.command ?? []), ...(args["--"] ?? [])].map(String);
    if (command.length === 0) throw new DcctlError("dcctl lab exec: name the command to run after --, e.g. dcctl lab exec secondary -- dcctl dr history", ExitCode.badInput);
    return onSite(args.site, command);
  },
};

const shell: CommandModule<object, SiteArgs> = {
  command: "shell <site>",
  describe: "an interactive shell on a site's management host (inside the lab, with that site's dcctl settings)",
  builder: siteArg,
  handler: (args) => onSite(args.site, [process.env.SHELL ?? "/bin/bash"]),
};

const consoleCommand: CommandModule<object, ConsoleArgs> = {
  command: "console <site>",
  describe: "the site's duty console (dcctl serve on its management host), opened on this machine's 127.0.0.1:PORT until Ctrl-C",
  builder: (y: Argv<object>) => siteArg(y).option("port", { type: "number", default: 8088, describe: "the loopback port (0: any free one)" }) as unknown as Argv<ConsoleArgs>,
  handler: async (args) => {
    if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) throw new DcctlError(`dcctl lab console: --port ${args.port} is not a port number`, ExitCode.badInput);
    const { startLabConsole } = await import("../lab/console.js");
    const running = await startLabConsole(labDir(), args.site, { port: args.port, ...(args.lang ? { lang: args.lang } : {}), log: (l) => process.stderr.write(l + "\n") });
    say(`the ${args.site} site's duty console: ${running.url} (Ctrl-C stops it)`);
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve).once("SIGTERM", resolve);
    });
    await running.close();
  },
};

export const labCommands: CommandModule<object, object> = {
  // Its command and description are in ./commands.ts, which lists the groups without loading them.
  builder: (y) => y.command(up).command(down).command(status).command(fail).command(heal).command(wan).command(exec).command(shell).command(consoleCommand).demandCommand(1),
  handler: () => undefined,
};
