import type { Argv, CommandModule } from "yargs";
// lab/lab.js brings the stacks and the Pulumi SDK: loaded only when a lab command runs.
const lab = () => import("../lab/lab.js");
import { labDir } from "../lab/state.js";
import { DcctlError, ExitCode } from "../util/errors.js";

/** `dcctl lab up|down|status`: the two-site data centre on this machine. */

interface UpArgs {
  size: number;
  seed: number;
  provision: boolean;
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
      .option("provision", { type: "boolean", default: true, describe: "apply both site stacks to the lab's vCenters" }) as unknown as Argv<UpArgs>,
  handler: async (args) => {
    if (!(args.size > 0)) throw new DcctlError("--size must be a positive number of megabytes", ExitCode.badInput);
    const dir = labDir();
    const { labUp } = await lab();
    const state = await labUp({ dir, sizeMb: args.size, seed: args.seed, provision: args.provision, log: say });
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
    const { state, services } = labStatus(labDir());
    if (args.json) say(JSON.stringify({ phase: state?.phase ?? "down", services }, null, 2));
    else if (!state) say("the lab is not running (start it with `dcctl lab up`)");
    else {
      say(`lab ${state.phase}, supervisor pid ${state.supervisorPid}, started ${state.startedAt}`);
      for (const s of services) say(`  ${s.running ? "running" : "DOWN   "}  ${s.name.padEnd(28)} ${`${s.address}:${s.port}`.padEnd(18)} pid ${s.pid}`);
    }
    if (!state || services.some((s) => !s.running)) process.exitCode = ExitCode.failed;
  },
};

export const labCommands: CommandModule<object, object> = {
  command: "lab <command>",
  describe: "the local two-site lab: up, down, status",
  builder: (y) => y.command(up).command(down).command(status).demandCommand(1),
  handler: () => undefined,
};
