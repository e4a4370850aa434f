import { join } from "node:path";
import { userInfo } from "node:os";
import type { Argv, CommandModule } from "yargs";
import { loadSites, type SiteName, type Sites } from "../inventory/index.js";
import {
  listRuns,
  loadRun,
  loadRunbook,
  planEntries,
  planRunbook,
  planText,
  progressFor,
  resumeRun,
  silentProgress,
  startRun,
  stateDir,
  type InfraDriver,
  type Runbook,
  type RunOutcome,
} from "../runbooks/engine/index.js";
import { configuredServices, optionalBackupConfig } from "../runbooks/engine/services.js";
import { confirmAction } from "../util/confirm.js";
import { DcctlError, InputError } from "../util/errors.js";

/** `dcctl dr plan|drill|failover|failback|resume|history`: the DR engine (runbooks/engine) behind thin commands. */

interface CommonArgs {
  json: boolean;
}
interface PlanArgs extends CommonArgs {
  runbook: string;
}
interface RunArgs extends CommonArgs {
  runbook?: string;
  yes: boolean;
  to?: SiteName;
  "failed-at"?: string;
  planned?: boolean;
}
interface ResumeArgs extends CommonArgs {
  runId: string;
  yes: boolean;
  rerun: string[];
  skip: string[];
}

const operator = (): string => process.env.SUDO_USER || userInfo().username;

function json<T>(y: Argv<T>): Argv<T & CommonArgs> {
  return y.option("json", { type: "boolean", default: false, describe: "machine-readable output" }) as unknown as Argv<T & CommonArgs>;
}

/** The Automation API driver of the infra steps: the site stacks, with the Pulumi state `dcctl infra` uses. */
function infraDriver(): InfraDriver {
  return {
    async up(site, mode) {
      // The stacks bring the Pulumi SDK: loaded only when a runbook reaches an infra step.
      const [{ localBackend, projectName }, { policyPackDir, siteStack }, { clearStaleStackLocks, refuseHalfCreated, engineFailure }] = await Promise.all([
        import("../stacks/automation.js"),
        import("../stacks/infra.js"),
        import("../stacks/guards.js"),
      ]);
      const backend = localBackend(join(stateDir(), "pulumi"));
      const notes = clearStaleStackLocks(backend.dir, projectName, site);
      const stack = await siteStack(site, { backend, mode });
      await refuseHalfCreated(stack, site, backend.dir);
      const res = await stack.up({ policyPacks: [policyPackDir] }).catch((e: unknown) => {
        throw engineFailure(e, `pulumi up of stack ${site}`);
      });
      return [...notes, `stack ${site} dr:mode=${mode}: ${res.summary.result}, changes ${JSON.stringify(res.summary.resourceChanges ?? {})}`];
    },
    // The drill copies go with the stack's return to standby.
    async downDrill(site) {
      return this.up(site, "standby");
    },
  };
}

/** What a destructive runbook will change, in one sentence for the confirmation question. */
function changes(runbook: Runbook, sites: Sites): string {
  const parts: string[] = [];
  for (const e of planEntries(planRunbook(runbook, sites))) {
    const hosts = e.hosts.map((h) => h.name).join(", ");
    if (e.type === "fence") parts.push(`stop writes on ${hosts}`);
    if (e.type === "restore-db") parts.push(`restore over databases on ${hosts}`);
    if (e.type === "promote") parts.push(`promote standbys on ${hosts}`);
    if (e.type === "infra") parts.push(e.actions[0] ?? "run pulumi up");
    if (e.type === "dns") parts.push(`switch DNS: ${e.actions.filter((a) => a.startsWith("point")).join("; ")}`);
    if (e.type === "command") parts.push(`run ${e.id} on ${hosts || "the DR runner"}`);
  }
  return `${runbook.kind} to the ${runbook.to} site with runbook ${runbook.name}: ${parts.join("; ")}`;
}

async function confirmRun(runbook: Runbook, sites: Sites, yes: boolean): Promise<string> {
  if (runbook.kind === "drill") return "not needed (drill: non-disruptive)";
  await confirmAction({ yes, action: changes(runbook, sites), expect: runbook.to });
  return yes ? `--yes given by ${operator()}` : `${operator()} typed "${runbook.to}" at a terminal`;
}

function finish(outcome: RunOutcome, asJson: boolean): void {
  if (asJson) process.stdout.write(JSON.stringify(outcome, null, 2) + "\n");
  if (outcome.status !== "ok") {
    throw new DcctlError(`run ${outcome.runId} failed: ${outcome.message ?? "see the journal"} (report: ${outcome.reportFiles[0] ?? outcome.runDir})`);
  }
}

async function execute(runbook: Runbook, text: string, sites: Sites, args: RunArgs): Promise<void> {
  let failedAt: Date | undefined;
  if (args["failed-at"] !== undefined) {
    failedAt = new Date(args["failed-at"]);
    if (Number.isNaN(failedAt.getTime())) throw new InputError([`dcctl: --failed-at ${args["failed-at"]}: not a time (use ISO 8601, e.g. 2026-11-22T05:40:00Z)`]);
  }
  const confirmedBy = await confirmRun(runbook, sites, args.yes);
  const services = configuredServices(optionalBackupConfig(), infraDriver());
  try {
    const outcome = await startRun({
      runbook,
      runbookText: text,
      sites,
      services,
      progress: args.json ? silentProgress() : progressFor(),
      operator: operator(),
      confirmedBy,
      ...(failedAt ? { failedAt } : {}),
      // Coming back is planned by nature: both sites answer, and nothing written at the secondary may be lost.
      ...((args.planned ?? runbook.kind === "failback") ? { planned: true } : {}),
    });
    finish(outcome, args.json);
  } finally {
    await services.close();
  }
}

function runCommand(kind: "drill" | "failover" | "failback"): CommandModule<object, RunArgs> {
  const to: SiteName | undefined = kind === "failover" ? "secondary" : kind === "failback" ? "primary" : undefined;
  return {
    command: kind,
    describe:
      kind === "drill"
        ? "non-disruptive DR test at the secondary, then clean-up and a report"
        : kind === "failover"
          ? "move the services to the secondary (asks unless --yes)"
          : "move the services back to the primary (asks unless --yes)",
    builder: (y) => {
      let b = json(y)
        .option("runbook", { type: "string", describe: `a name under runbooks/ or a YAML file (default: ${kind})` })
        .option("yes", { type: "boolean", default: false, describe: "do not ask for confirmation" });
      if (to) b = b.option("to", { type: "string", choices: [to], demandOption: true, describe: "the site that takes over" }) as typeof b;
      if (kind === "failover") b = b.option("failed-at", { type: "string", describe: "when the primary failed (ISO 8601), the reference for RPO; default now" }) as typeof b;
      if (kind !== "drill") {
        b = b
          .option("planned", { type: "boolean", describe: `a planned switchover: stop the writes first (every primary must answer), let every replica apply all of them, then promote: nothing is lost${kind === "failback" ? " (default for failback; --no-planned to go on without a site that does not answer)" : ""}` })
          .conflicts("planned", "failed-at") as typeof b;
      }
      return b as unknown as Argv<RunArgs>;
    },
    handler: async (args) => {
      const sites = loadSites();
      const { runbook, text } = loadRunbook(args.runbook ?? kind, sites);
      if (runbook.kind !== kind) throw new InputError([`${runbook.file}: runbook ${runbook.name} is a ${runbook.kind}, not a ${kind}`]);
      if (to && runbook.to !== to) throw new InputError([`${runbook.file}: runbook ${runbook.name} moves service to ${runbook.to}, not ${to}`]);
      await execute(runbook, text, sites, args);
    },
  };
}

const plan: CommandModule<object, PlanArgs> = {
  command: "plan",
  describe: "what the runbook would do, step by step, touching nothing",
  builder: (y) => json(y).option("runbook", { type: "string", demandOption: true, describe: "a name under runbooks/ or a YAML file" }) as unknown as Argv<PlanArgs>,
  handler: (args) => {
    const sites = loadSites();
    const { runbook } = loadRunbook(args.runbook, sites);
    const planned = planRunbook(runbook, sites);
    if (args.json) {
      const head = { name: runbook.name, kind: runbook.kind, to: runbook.to, scope: runbook.scope, parallel: runbook.parallel, file: runbook.file };
      process.stdout.write(JSON.stringify({ ...head, steps: planEntries(planned) }, null, 2) + "\n");
    } else {
      process.stdout.write(planText(runbook, planned).join("\n") + "\n");
    }
  },
};

const resume: CommandModule<object, ResumeArgs> = {
  command: "resume <runId>",
  describe: "continue a run from its journal (never repeats a step that ended well)",
  builder: (y) =>
    json(y)
      .positional("runId", { type: "string", demandOption: true, describe: "the run id (see dcctl dr history)" })
      .option("yes", { type: "boolean", default: false, describe: "do not ask for confirmation (failover/failback)" })
      .option("rerun", { type: "string", array: true, default: [], describe: "run this cut-off, non-idempotent step again" })
      .option("skip", { type: "string", array: true, default: [], describe: "count this cut-off step as done (by hand)" }) as unknown as Argv<ResumeArgs>,
  handler: async (args) => {
    const sites = loadSites();
    const { runbook } = loadRun(args.runId, sites);
    const confirmedBy = await confirmRun(runbook, sites, args.yes);
    const services = configuredServices(optionalBackupConfig(), infraDriver());
    try {
      const outcome = await resumeRun({
        runId: args.runId,
        rerun: args.rerun,
        skip: args.skip,
        sites,
        services,
        progress: args.json ? silentProgress() : progressFor(),
        operator: operator(),
        confirmedBy,
      });
      finish(outcome, args.json);
    } finally {
      await services.close();
    }
  },
};

const history: CommandModule<object, CommonArgs> = {
  command: "history",
  describe: "the DR runs on this machine, newest first",
  builder: (y) => json(y),
  handler: (args) => {
    const runs = listRuns();
    if (args.json) {
      process.stdout.write(JSON.stringify(runs, null, 2) + "\n");
      return;
    }
    if (!runs.length) {
      process.stdout.write(`no DR runs under ${join(stateDir(), "dr", "runs")}\n`);
      return;
    }
    for (const r of runs) {
      const hint = r.status === "interrupted" ? `  (dcctl dr resume ${r.runId})` : "";
      process.stdout.write(`${r.runId.padEnd(38)} ${r.kind.padEnd(9)} ${r.runbook.padEnd(12)} ${r.status.padEnd(11)} ${r.steps.done}/${r.steps.total} steps  ${r.operator}${hint}\n`);
    }
  },
};

export const drCommands: CommandModule<object, object> = {
  command: "dr <command>",
  describe: "disaster recovery: plan, drill, fail over, fail back, resume, history",
  builder: (y) =>
    y
      .command(plan)
      .command(runCommand("drill"))
      .command(runCommand("failover"))
      .command(runCommand("failback"))
      .command(resume)
      .command(history)
      .demandCommand(1),
  handler: () => undefined,
};


