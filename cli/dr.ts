import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
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
  forService,
  leavesProduction,
  type InfraDriver,
  type Runbook,
  type RunOutcome,
} from "../runbooks/engine/index.js";
import { configuredServices, optionalBackupConfig } from "../runbooks/engine/services.js";
import { checkRecoverPoint } from "../runbooks/engine/recover.js";
import type { RecoverPoint } from "../runbooks/engine/steps/types.js";
import { parsePointInTime } from "../databases/pitr.js";
import { backupConfigPath } from "../backup/repositories.js";
import { runChanges } from "../runbooks/engine/confirm.js";
import { collectReadinessInput, outageReport, readiness, readinessTable, writeReadinessMetrics } from "../runbooks/engine/readiness.js";
import { loadBackupConfig } from "../backup/repositories.js";
import { describeReconciled } from "../backup/run-ledger.js";
import { print, printJson } from "./print.js";
import { confirmAction } from "../util/confirm.js";
import { DcctlError, ExitCode, InputError } from "../util/errors.js";
import type { Lang } from "../util/i18n.js";
import { operatorLang } from "./lang.js";
import { existingRunDir, verifyLines, verifyReport } from "../runbooks/engine/verify-report.js";
import { reportPdf } from "../runbooks/engine/report-html.js";
import { outputFile } from "./inputs.js";
import { parseInstant } from "../util/instant.js";
import { operatorName, type ApprovalRecord, type GatedAction } from "../backup/approval/index.js";
import type { BackupConfig } from "../backup/repositories.js";
import { approvalLine, gate } from "./approvals.js";

/** `dcctl dr plan|drill|failover|failback|resume|history|verify-report|report`: the DR engine (runbooks/engine) behind thin commands. */

interface CommonArgs {
  json: boolean;
  /** The global --lang (cli/main.ts). */
  lang?: string;
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
  "discard-diverged"?: boolean;
  approval?: string;
}
interface ResumeArgs extends CommonArgs {
  runId: string;
  yes: boolean;
  rerun: string[];
  skip: string[];
  "discard-diverged": boolean;
  approval?: string;
}

const DISCARD_DIVERGED =
  "reprotect steps rebuild a former primary even where it holds writes past where its new primary's history forked: they are kept in the run folder (diverged/HOST/) and reported as data loss; without it such a step stops the run, exit 5";

// The OS user; root's SUDO_USER only (backup/approval/identity.ts): the same name four eyes counts.
const operator = (): string => operatorName();

const APPROVAL_OPTION = { type: "string", describe: "the code of the approved request for exactly this run (four eyes: the site's approval:, docs/operator/approvals.md)" } as const;

/**
 * A failover or failback as four eyes match it: the runbook (by name and by its text's digest: an edited runbook is
 * another action), the site it moves service to, and every flag that changes what it does.
 */
function runAction(runbook: Runbook, text: string, sites: Sites, args: RunArgs, config: BackupConfig, lang: Lang): GatedAction {
  return {
    action: `dr ${runbook.kind}`,
    site: config.site,
    target: `site ${runbook.to}`,
    args: {
      runbook: runbook.name,
      runbookSha256: createHash("sha256").update(text).digest("hex"),
      planned: args.planned ?? runbook.kind === "failback",
      failedAt: args["failed-at"] ?? null,
      discardDiverged: args["discard-diverged"] ?? false,
    },
    change: runChanges(runbook, sites, lang),
  };
}

/** Where the run's approval goes beside its journal: a line on the terminal naming both people. */
function sayApproval(approval: ApprovalRecord | undefined, asJson: boolean): void {
  if (approval && !asJson) process.stdout.write(approvalLine(approval) + "\n");
}

function json<T>(y: Argv<T>): Argv<T & CommonArgs> {
  return y.option("json", { type: "boolean", default: false, describe: "machine-readable output" }) as unknown as Argv<T & CommonArgs>;
}

/** The Automation API driver of the infra steps: the site stacks, with the Pulumi state `dcctl infra` uses. */
function infraDriver(): InfraDriver {
  return {
    async up(site, mode) {
      // The stacks bring the Pulumi SDK: loaded only when a runbook reaches an infra step.
      const [{ localBackend }, { upSiteStack }] = await Promise.all([import("../stacks/automation.js"), import("../stacks/up.js")]);
      const notes: string[] = [];
      const res = await upSiteStack(site, { backend: localBackend(join(stateDir(), "pulumi")), mode, onNote: (n) => notes.push(n) });
      return [...notes, `stack ${site} dr:mode=${mode}: ${res.summary.result}, changes ${JSON.stringify(res.summary.resourceChanges ?? {})}`];
    },
    // The drill copies go with the stack's return to standby.
    async downDrill(site) {
      return this.up(site, "standby");
    },
  };
}

/** Asks (or takes --yes); returns how it was confirmed, for the journal, which stays in English. */
async function confirmRun(runbook: Runbook, sites: Sites, yes: boolean, lang: Lang): Promise<string> {
  if (runbook.kind === "drill") return "not needed (drill: non-disruptive)";
  if (runbook.kind === "recover") return "not needed (recover: scratch copies beside production)";
  await confirmAction({ yes, action: runChanges(runbook, sites, lang), expect: runbook.to, lang });
  return yes ? `--yes given by ${operator()}` : `${operator()} typed "${runbook.to}" at a terminal`;
}

function finish(outcome: RunOutcome, asJson: boolean): void {
  if (asJson) process.stdout.write(JSON.stringify(outcome, null, 2) + "\n");
  if (outcome.status === "missed") {
    throw new DcctlError(`run ${outcome.runId} completed but ${outcome.message ?? "missed its targets"} (report: ${outcome.reportFiles[0] ?? outcome.runDir})`, ExitCode.targetsMissed);
  }
  if (outcome.status !== "ok") {
    throw new DcctlError(`run ${outcome.runId} failed: ${outcome.message ?? "see the journal"} (report: ${outcome.reportFiles[0] ?? outcome.runDir})`, outcome.exitCode);
  }
}

async function execute(runbook: Runbook, text: string, sites: Sites, args: RunArgs, recover?: { service: string; before: RecoverPoint }): Promise<void> {
  let failedAt: Date | undefined;
  if (args["failed-at"] !== undefined) {
    const parsed = parseInstant(String(args["failed-at"]));
    if (!(parsed instanceof Date)) throw new InputError([`dcctl: --failed-at ${String(args["failed-at"])}: ${parsed.problem}`]);
    failedAt = parsed;
  }
  const config = optionalBackupConfig();
  const lang = operatorLang(args.lang, config);
  const confirmedBy = await confirmRun(runbook, sites, args.yes, lang);
  // After the operator's own confirmation, in addition to it; a drill changes nothing and needs none.
  const approval = leavesProduction(runbook.kind) || !config ? undefined : gate(config, runAction(runbook, text, sites, args, config, lang), args);
  sayApproval(approval, args.json);
  // Before anything starts: a point the archive does not cover is bad input, with nothing touched.
  if (recover) {
    if (!config) throw new DcctlError(`dr recover needs the backup config (${backupConfigPath()}; set DCCTL_REPOS_FILE)`);
    for (const line of await checkRecoverPoint(runbook, recover.service, sites, config, recover.before)) if (!args.json) process.stderr.write(`${line}\n`);
  }
  const services = configuredServices(config, infraDriver());
  try {
    const outcome = await startRun({
      lang,
      runbook,
      runbookText: text,
      sites,
      services,
      progress: args.json ? silentProgress() : progressFor(),
      operator: operator(),
      confirmedBy,
      ...(approval ? { approval } : {}),
      ...(failedAt ? { failedAt } : {}),
      ...(recover ? { before: recover.before, service: recover.service } : {}),
      ...(args["discard-diverged"] ? { discardDiverged: true } : {}),
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
      if (kind !== "failback") {
        b = b.option("failed-at", {
          type: "string",
          describe:
            kind === "drill"
              ? "the moment of the simulated failure (ISO 8601 with offset), the reference for RPO; default the drill's start"
              : "when the primary failed (ISO 8601 with offset), the reference for RPO; default the first probe of a primary host that went unanswered in this run, else the run's start",
        }) as typeof b;
      }
      if (kind !== "drill") {
        b = b
          .option("planned", { type: "boolean", describe: `a planned switchover: stop the writes first (every primary must answer), let every replica apply all of them, then promote: nothing is lost${kind === "failback" ? " (default for failback; --no-planned to go on without a site that does not answer)" : ""}` })
          .conflicts("planned", "failed-at")
          .option("discard-diverged", { type: "boolean", describe: DISCARD_DIVERGED })
          .option("approval", APPROVAL_OPTION) as typeof b;
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

interface RecoverArgs extends RunArgs {
  service: string;
  before: string;
}

const recoverCommand: CommandModule<object, RecoverArgs> = {
  command: "recover",
  describe: "bring a service's databases back from the point-in-time archive to just before --before, into scratch copies on the isolated drill network; checked, with what they hold and what they lack; production is not changed",
  builder: (y) =>
    json(y)
      .option("service", { type: "string", demandOption: true, describe: "the service, as the runbook's steps label it (service:)" })
      .option("before", { type: "string", demandOption: true, describe: "the moment the damage began (ISO 8601 with offset): every transaction committed before it, none at or after it" })
      .option("runbook", { type: "string", describe: "a name under runbooks/ or a YAML file of kind recover (default: recover)" }) as unknown as Argv<RecoverArgs>,
  handler: async (args) => {
    const before = { at: parsePointInTime(args.before, "--before"), text: args.before.trim() };
    const sites = loadSites();
    const { runbook, text } = loadRunbook(args.runbook ?? "recover", sites);
    if (runbook.kind !== "recover") throw new InputError([`${runbook.file}: runbook ${runbook.name} is a ${runbook.kind}, not a recover`]);
    await execute(forService(runbook, args.service), text, sites, { ...args, yes: false }, { service: args.service, before });
  },
};

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
      .option("skip", { type: "string", array: true, default: [], describe: "count this cut-off step as done (by hand)" })
      .option("discard-diverged", { type: "boolean", default: false, describe: DISCARD_DIVERGED })
      .option("approval", APPROVAL_OPTION) as unknown as Argv<ResumeArgs>,
  handler: async (args) => {
    const sites = loadSites();
    const { runbook, state } = loadRun(args.runId, sites);
    // Said before anything is asked for: a completed run needs neither a confirmation nor an approval.
    if (state.end?.status === "ok") throw new DcctlError(`run ${args.runId} already completed; nothing to resume`);
    const config = optionalBackupConfig();
    // The prompt speaks the operator's language; the report keeps the language the run started with.
    const lang = operatorLang(args.lang, config);
    const confirmedBy = await confirmRun(runbook, sites, args.yes, lang);
    // A resume carries a failover or failback on: it needs its own approval, as the start did.
    const approval =
      leavesProduction(runbook.kind) || !config
        ? undefined
        : gate(
            config,
            {
              action: "dr resume",
              site: config.site,
              target: `run ${args.runId}`,
              args: { kind: runbook.kind, to: runbook.to, rerun: [...args.rerun].sort(), skip: [...args.skip].sort(), discardDiverged: args["discard-diverged"] },
              change: `resume ${runChanges(runbook, sites, lang)}`,
            },
            args,
          );
    sayApproval(approval, args.json);
    const services = configuredServices(config, infraDriver());
    try {
      const outcome = await resumeRun({
        runId: args.runId,
        rerun: args.rerun,
        skip: args.skip,
        ...(args["discard-diverged"] ? { discardDiverged: true } : {}),
        sites,
        services,
        progress: args.json ? silentProgress() : progressFor(),
        operator: operator(),
        confirmedBy,
        ...(approval ? { approval } : {}),
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
      process.stdout.write(`${r.runId.padEnd(38)} ${r.kind.padEnd(9)} ${r.runbook.padEnd(12)} ${r.status.padEnd(11)} ${r.steps.done}/${r.steps.total} steps  ${r.operator}${r.approvedBy ? ` (approved by ${r.approvedBy})` : ""}${hint}\n`);
    }
  },
};

interface ReadinessArgs extends CommonArgs {
  runbook: string[];
}

const readinessCommand: CommandModule<object, ReadinessArgs> = {
  command: "readiness",
  describe: "per service: could it fail over now? backups, replicas, standbys, and a good drill within its tier's drillEveryDays; writes dcctl_dr.prom; exit 4 if any is not ready, 6 if the other site does not answer (then: can each fail over now, and how)",
  builder: (y) =>
    json(y).option("runbook", { type: "string", array: true, default: [], describe: "also count the services this runbook labels before it ever ran (the history's runs count anyway)" }) as unknown as Argv<ReadinessArgs>,
  handler: async (args) => {
    const sites = loadSites();
    const config = loadBackupConfig();
    const files = args.runbook.map((r) => {
      const { path, runbook } = loadRunbook(r, sites);
      return { ref: path, runbook };
    });
    const runbooks = files.map((f) => f.runbook);
    const now = new Date();
    const note = (line: string) => void process.stderr.write(line + "\n");
    const { input, reconciled } = await collectReadinessInput({ sites, config, runbooks, runbookFiles: files, now, onNote: note });
    for (const r of reconciled) note(describeReconciled(r));
    const list = readiness(input);
    writeReadinessMetrics(config, list, now);
    const lost = input.reach?.find((r) => !r.reachable);
    if (args.json) printJson(list);
    else if (lost) print(outageReport(list, lost));
    else print(list.length ? readinessTable(list) : "no services: no primary host lists services, and no DR run or --runbook labels any");
    if (lost) {
      const can = list.filter((s) => s.failoverNow?.possible);
      const command = can[0]?.failoverNow?.command;
      throw new DcctlError(`the ${lost.site} site is unreachable since ${lost.unreachableSince ?? lost.probedAt}: ${can.length} of ${list.length} services can fail over now${command ? ` (run: ${command})` : ""}`, ExitCode.siteUnreachable);
    }
    const notReady = list.filter((s) => !s.ready);
    const first = notReady[0];
    if (first) throw new DcctlError(`${notReady.length} of ${list.length} services not ready to fail over (first: ${first.service}: ${first.reasons[0] ?? "?"})`, ExitCode.partial);
  },
};

interface VerifyArgs extends CommonArgs {
  runId: string;
  head?: string;
}

const verifyReportCommand: CommandModule<object, VerifyArgs> = {
  command: "verify-report <runId>",
  describe: "check a run's report against its hash-chained journal, one line per check; exit 1 if any fails",
  builder: (y) =>
    json(y)
      .positional("runId", { type: "string", demandOption: true, describe: "the run id (see dcctl dr history)" })
      .option("head", { type: "string", describe: "the chain head (sha256:…) printed at the end of the run or sent in its notification: the journal must contain it" }) as unknown as Argv<VerifyArgs>,
  handler: (args) => {
    // A head that is no hash at all is a mistyped flag (exit 2), not a journal that fails to contain it (exit 1).
    if (args.head !== undefined && !/^(sha256:)?[0-9a-f]{64}$/i.test(args.head)) throw new InputError([`dcctl dr verify-report: --head ${args.head} is not a chain head: sha256: and 64 hex digits, as the run printed it`]);
    const outcome = verifyReport(existingRunDir(args.runId), { ...(args.head !== undefined ? { head: args.head } : {}), currentSites: () => loadSites() });
    if (args.json) printJson(outcome);
    else print(verifyLines(outcome).join("\n"));
    const failed = outcome.checks.filter((c) => c.status === "failed");
    const first = failed[0];
    if (first) throw new DcctlError(`run ${args.runId}: ${failed.length} of ${outcome.checks.length} checks failed (first: ${first.check}: ${first.detail})`);
  },
};

interface ReportArgs extends CommonArgs {
  runId: string;
  pdf?: string;
}

const reportCommand: CommandModule<object, ReportArgs> = {
  command: "report <runId>",
  describe: "print a run's report.md (--json: report.json), or print report.html to a PDF with a headless Chromium (--pdf FILE)",
  builder: (y) =>
    json(y)
      .positional("runId", { type: "string", demandOption: true, describe: "the run id (see dcctl dr history)" })
      .option("pdf", { type: "string", describe: "write the report as a PDF to this file (needs chromium on PATH or DCCTL_CHROMIUM)" }) as unknown as Argv<ReportArgs>,
  handler: async (args) => {
    const dir = existingRunDir(args.runId);
    if (args.pdf !== undefined) {
      // Before a browser starts: it would only fail after a second or more, in its own words.
      outputFile("dcctl dr report", "pdf", args.pdf);
      await reportPdf(dir, args.pdf);
      print(`wrote ${args.pdf}`);
      return;
    }
    const file = join(dir, args.json ? "report.json" : "report.md");
    if (!existsSync(file)) throw new DcctlError(`run ${args.runId} has no ${file} yet`);
    process.stdout.write(readFileSync(file, "utf8"));
  },
};

export const drCommands: CommandModule<object, object> = {
  // Its command and description are in ./commands.ts, which lists the groups without loading them.
  builder: (y) =>
    y
      .command(plan)
      .command(runCommand("drill"))
      .command(runCommand("failover"))
      .command(runCommand("failback"))
      .command(recoverCommand)
      .command(resume)
      .command(history)
      .command(verifyReportCommand)
      .command(reportCommand)
      .command(readinessCommand)
      .demandCommand(1),
  handler: () => undefined,
};


