import { join, resolve } from "node:path";
import { stateDir } from "../util/state.js";
import type { Argv, CommandModule } from "yargs";
// What every backup command reads (the inventory, policies and repositories file) is imported here; what only one
// command uses (the engine, status, SSH, notifications) that command imports as it runs: see cli/commands.ts.
import { SITE_NAMES, findHost, loadSites, type SiteName, type Sites } from "../inventory/index.js";
import { expandJobs, loadJobs, selectJobs, type BackupJob } from "../backup/jobs.js";
import { loadPolicies, REPOSITORY_NAMES, type RepositoryName } from "../backup/policies.js";
import { loadBackupConfig, repository, resticFor, type BackupConfig } from "../backup/repositories.js";
import { MAX_DURATION_TEXT, parseDuration } from "../util/duration.js";
import { renderCrontab, renderSystemd, siteSchedule, writeSchedule } from "../backup/schedule.js";
import { READ_DATA_SUBSET_FORMS, validReadDataSubset } from "../restic/subset.js";
import type { JobStatusRow } from "../backup/status.js";
import type { AnomalyScore } from "../backup/anomaly.js";
import { progressFor, silentProgress } from "../util/progress.js";
import type { ResticLock } from "../restic/index.js";
import { DcctlError, ExitCode, InputError, errorMessage } from "../util/errors.js";
import { makeDir } from "../util/dirs.js";
import { textTable } from "../util/table.js";
import { print, printJson } from "./print.js";
import { boundedNumber, outputFolder, waitSeconds } from "./inputs.js";
import type { PairStatus } from "../backup/replication/index.js";

/**
 * `dcctl backup …`: the jobs the policies and the inventory produce, and what schedulers and operators do with them.
 * No command here prompts: they are run by timers. Exit codes: 0 ok, 1 failed, 2 bad input, 3 locked by another run,
 * 4 some jobs failed (run) or are over their RPO (status), 7 another site is unreachable (status: judged by what this
 * site holds), 8 an approval is required (four eyes), 9 the repository this site keeps holds snapshots it does not
 * trust (status, prune).
 */


function siteOption(value: string | undefined): SiteName | undefined {
  if (value === undefined) return undefined;
  const site = SITE_NAMES.find((s) => s === value);
  if (!site) throw new InputError([`dcctl backup: unknown site "${value}" (expected one of: ${SITE_NAMES.join(", ")})`]);
  return site;
}

/** The site this machine serves, from its repositories file; without one, --site must say it. */
function siteOfThisMachine(): SiteName {
  try {
    return loadBackupConfig().site;
  } catch {
    throw new InputError(["dcctl backup schedule: name the site with --site (no repositories file says which site this machine serves)"]);
  }
}


/** What a replicate, prune or verify is about, for its failure notice. */
type Operation = import("../backup/unattended.js").Operation;

/** The work as timers run it (backup/unattended.ts: stopped by a signal, a failure notified), the notice's delivery on stderr. */
async function noticed<T>(config: BackupConfig, what: Operation, work: (signal: AbortSignal) => Promise<T>, detail?: (result: T) => Record<string, string | number | boolean | undefined>): Promise<T> {
  const [{ noticed: run }, { describeDelivery }] = await Promise.all([import("../backup/unattended.js"), import("../notify/index.js")]);
  return run(config, what, work, (notified) => process.stderr.write(`note: ${describeDelivery(notified)}\n`), detail);
}

function sourcesText(job: BackupJob): string {
  return job.sources.map((s) => (s.kind === "files" ? `files(${s.paths.join(",")})` : s.kind)).join(" ");
}

interface JobsArgs {
  json: boolean;
  site?: string;
}

const jobsCommand: CommandModule<object, JobsArgs> = {
  command: "jobs",
  describe: "list the jobs that backup/policies.yaml and the inventory produce",
  builder: (y: Argv<object>): Argv<JobsArgs> =>
    y.option("json", { type: "boolean", default: false, describe: "print the jobs as JSON" }).option("site", { type: "string", describe: "only the jobs of this site's hosts" }),
  handler: (args) => {
    const site = siteOption(args.site);
    const jobs = loadJobs().filter((j) => !site || j.site === site);
    if (args.json) return printJson(jobs);
    print(textTable(["JOB", "SITE", "REPOSITORY", "SCHEDULE", "RPO", "SOURCES"], jobs.map((j) => [j.id, j.site, j.repository, j.schedule, `${j.rpoMinutes}m`, sourcesText(j)])));
  },
};

interface RunArgs {
  job?: string;
  all: boolean;
  site?: string;
  "dry-run": boolean;
  json: boolean;
  wait: number;
  concurrency?: number;
  "stall-timeout"?: string;
}

const runCommand: CommandModule<object, RunArgs> = {
  command: "run",
  describe: "run one job (--job) or all of them (--all); exit 0 ok, 1 failed, 3 locked by another run, 4 some failed",
  builder: (y: Argv<object>): Argv<RunArgs> =>
    y
      .option("job", { type: "string", describe: "a job id (<host>/<policy>) or a host name" })
      .option("all", { type: "boolean", default: false, describe: "every job (of --site, when given)" })
      .option("site", { type: "string", describe: `only jobs of this site's hosts (${SITE_NAMES.join(", ")})` })
      .option("dry-run", { type: "boolean", default: false, describe: "print what would run; touch nothing" })
      .option("json", { type: "boolean", default: false, describe: "print the run report as JSON" })
      .option("wait", { type: "number", default: 0, describe: "seconds to wait for a lock held by another run before giving up (exit 3)" })
      .option("concurrency", { type: "number", describe: "jobs at once per site (default: the config's, 4)" })
      .option("stall-timeout", { type: "string", describe: "fail a job that makes no progress for this long, e.g. 90s, 5m (default: its policy's stallTimeout, 5m)" })
      .example("$0 backup run --job qn-db-01/db-hourly", "what a systemd timer runs")
      .example("$0 backup run --all --site primary --json", "every job of the primary, machine-readable"),
  handler: async (args) => {
    if ((args.job === undefined) === !args.all) throw new InputError(["dcctl backup run: name a job with --job, or use --all (not both)"]);
    // The repositories file's concurrency has the same bounds (backup/repositories.ts).
    if (args.concurrency !== undefined) boundedNumber("dcctl backup run", "concurrency", args.concurrency, { min: 1, max: 64, whole: true, unit: "jobs at once per site" });
    waitSeconds("dcctl backup run", args.wait);
    const stallMs = args["stall-timeout"] === undefined ? undefined : parseDuration(args["stall-timeout"]);
    if (args["stall-timeout"] !== undefined && stallMs === undefined) throw new InputError([`dcctl backup run: --stall-timeout "${args["stall-timeout"]}" is not a duration (e.g. 90s, 5m, 1h; at most ${MAX_DURATION_TEXT})`]);
    const jobs = selectJobs(loadJobs(), { job: args.job, all: args.all, site: siteOption(args.site) });
    // Read before a dry run too: a dry run must fail on a config the real run would refuse.
    const config = loadBackupConfig();
    if (args["dry-run"]) {
      const plan = jobs.map((j) => ({ job: j.id, host: j.host, ssh: `${j.ssh.user}@${j.ssh.host}:${j.ssh.port}`, repository: j.repository, sources: j.sources }));
      if (args.json) return printJson({ dryRun: true, jobs: plan });
      for (const p of plan) print(`would run ${p.job}: ${p.ssh} -> repository ${p.repository}: ${sourcesText(jobs.find((j) => j.id === p.job) as BackupJob)}`);
      return;
    }
    const [{ describeProgress, describeResult }, { runJobsUnattended, stoppedExitCode }, { describeReconciled }, { describeDelivery }] = await Promise.all([
      import("../backup/run.js"),
      import("../backup/unattended.js"),
      import("../backup/run-ledger.js"),
      import("../notify/index.js"),
    ]);
    // A line as each job finishes; on a terminal also a spinner naming the jobs still running.
    const progress = args.json ? silentProgress() : progressFor();
    const active = new Map<string, string>();
    const show = () => progress.running([...active].map(([job, state]) => (state ? `${job} ${state}` : job)));
    // SIGTERM (systemd stopping the unit) or Ctrl-C: stop every restic and source, keep nothing of theirs, report;
    // one notice per run with failed jobs. However it goes, the exit code stays the jobs' own.
    const { outcome, notified, stoppedBy } = await runJobsUnattended(jobs, {
      config,
      concurrency: args.concurrency,
      waitMs: args.wait * 1000,
      stallMs,
      onStart: (j) => {
        if (!process.stdout.isTTY && !args.json) progress.line(`start  ${j.id}`);
        active.set(j.id, "");
        show();
      },
      onProgress: (j, item, p) => {
        active.set(j.id, `${item} ${describeProgress(p)}`);
        show();
      },
      onResult: (r) => {
        active.delete(r.job);
        progress.line(describeResult(r));
        show();
      },
    }).finally(() => progress.close());
    for (const r of outcome.reconciled) process.stderr.write(describeReconciled(r) + "\n");
    if (notified.length) process.stderr.write(`note: ${describeDelivery(notified)}\n`);
    let report: typeof outcome & { notified?: typeof notified; distrusted?: import("../backup/trust.js").DistrustedSnapshot[] } = notified.length ? { ...outcome, notified } : outcome;
    if (!stoppedBy) {
      // What the run made, judged now (plausible, not suspicious): a suspicious backup raises the alarm at once. The
      // exit code stays the jobs' own: the backup was made and kept; status and the views count it out (exit 9 there).
      const [{ judgeRunSnapshots }, { distrustLine }] = await Promise.all([import("../backup/run-judgement.js"), import("../backup/trust.js")]);
      const judged = await judgeRunSnapshots(config, outcome.results, outcome.stalled ? { stalled: outcome.stalled } : {});
      for (const n of judged.notes) process.stderr.write(`note: ${n}\n`);
      for (const d of judged.distrusted) process.stderr.write(`warning: NOT TRUSTED, just made: ${distrustLine(d)}\n`);
      if (judged.notified.length) process.stderr.write(`note: ${describeDelivery(judged.notified)}\n`);
      if (judged.distrusted.length) report = { ...report, distrusted: judged.distrusted };
    }
    if (stoppedBy) {
      if (args.json) printJson(report);
      throw new DcctlError(`stopped by ${stoppedBy}: ${outcome.results.filter((r) => r.status === "ok").length} of ${outcome.results.length} jobs finished before; nothing of the stopped ones was kept (report ${outcome.reportPath ?? "-"})`, stoppedExitCode(stoppedBy));
    }
    if (args.json) printJson(report);
    if (outcome.exitCode !== ExitCode.ok) {
      const bad = outcome.results.filter((r) => r.status !== "ok");
      const first = bad[0];
      const firstLine = first ? `${first.job}: ${first.error ?? first.status}` : "";
      // One line on stderr: the job's own error for a single job; for many, how many and the first, the rest in the report.
      const detail = outcome.results.length === 1 ? firstLine : `${bad.length} of ${outcome.results.length} jobs did not succeed (report ${outcome.reportPath ?? "-"}); first: ${firstLine}`;
      throw new DcctlError(detail, outcome.exitCode);
    }
  },
};

interface SnapshotsArgs {
  host?: string;
  job?: string;
  since?: string;
  json: boolean;
  repository?: string;
}

/** --since: a duration back from now (90m, 24h) or a date (2026-11-20, or an ISO time). */
function sinceOption(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms !== undefined) return now - ms;
  const at = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(at)) throw new InputError([`dcctl backup snapshots: --since "${value}" is neither a duration (90m, 24h) nor a date (2026-11-20)`]);
  return at;
}

function sizeText(bytes: number | undefined): string {
  if (bytes === undefined) return "-";
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

function repositoryOption(value: string | undefined): RepositoryName | undefined {
  if (value === undefined) return undefined;
  const r = REPOSITORY_NAMES.find((n) => n === value);
  if (!r) throw new InputError([`dcctl backup: unknown repository "${value}" (expected one of: ${REPOSITORY_NAMES.join(", ")})`]);
  return r;
}

/** One line of `backup snapshots`; `anomaly` is the snapshot's score against its group's history (backup/anomaly.ts). */
interface SnapshotRow {
  repository: RepositoryName;
  id: string;
  short_id: string;
  time: string;
  host: string;
  job?: string;
  source?: string;
  bytes?: number;
  tags: string[];
  paths: string[];
  anomaly?: Omit<AnomalyScore, "id">;
  /** "trusted", "pending" (its run not checked yet), or the kinds of distrust (backup/trust.ts). */
  trust: string;
  arrival?: import("../backup/trust.js").Arrival;
  distrust?: import("../backup/trust.js").Distrust[];
  pending?: string[];
}

function withoutId({ id: _id, ...rest }: AnomalyScore): Omit<AnomalyScore, "id"> {
  return rest;
}

const snapshotsCommand: CommandModule<object, SnapshotsArgs> = {
  command: "snapshots",
  describe: "list the snapshots dcctl made, in every configured repository (or --repository), each with its anomaly score against its job's history (suspicious above the policy's threshold); exit 4 if one repository could not be read",
  builder: (y: Argv<object>): Argv<SnapshotsArgs> =>
    y
      .option("host", { type: "string", describe: "only this inventory host's snapshots" })
      .option("job", { type: "string", describe: "only this job's snapshots (<host>/<policy>)" })
      .option("since", { type: "string", describe: "only snapshots newer than this: a duration (24h) or a date (2026-11-20)" })
      .option("repository", { type: "string", describe: `${REPOSITORY_NAMES.join(" or ")}` })
      .option("json", { type: "boolean", default: false }),
  handler: async (args) => {
    const since = sinceOption(args.since);
    // A host or job that is not in the inventory would only list nothing, as if it had no backups.
    if (args.host !== undefined && !findHost(loadSites(), args.host)) throw new InputError([`dcctl backup snapshots: --host ${args.host} is no host of the inventory (see dcctl inventory show)`]);
    const jobs = loadJobs();
    if (args.job !== undefined && !jobs.some((j) => j.id === args.job)) throw new InputError([`dcctl backup snapshots: --job ${args.job} is no job of the policies and the inventory (see dcctl backup jobs)`]);
    const config = loadBackupConfig();
    const only = repositoryOption(args.repository);
    const names = REPOSITORY_NAMES.filter((n) => (only ? n === only : config.repositories[n] !== undefined));
    const tags = ["dcctl", ...(args.job ? [`job:${args.job}`] : [])];
    const [{ snapshotItem }, { scoreSnapshots, settingsByJob }, { listJudged }, { describeDistrust, isTrusted }] = await Promise.all([
      import("../backup/status.js"),
      import("../backup/anomaly.js"),
      import("../backup/arrival-ledger.js"),
      import("../backup/trust.js"),
    ]);
    const settingsFor = settingsByJob(jobs);
    // A password file that is not there is bad input (its file:line), before anything is listed.
    for (const name of names) repository(config, name);
    // Judged as every view judges them: in the repository this site keeps, by its arrival ledger (recorded now).
    const listings = await Promise.allSettled(names.map((name) => listJudged(config, name, { filter: { tags, ...(args.host ? { host: args.host } : {}) } }).then((l) => l.snapshots)));
    const rows: SnapshotRow[] = [];
    const failed: string[] = [];
    for (const [i, listing] of listings.entries()) {
      const name = names[i] as RepositoryName;
      // One repository that cannot be read is reported, and the others are still listed.
      if (listing.status === "rejected") {
        failed.push(`repository ${name}: ${errorMessage(listing.reason)}`);
        continue;
      }
      // Each snapshot against the earlier ones of its group in this repository, --since or not.
      const scores = scoreSnapshots(listing.value, { settingsFor });
      for (const s of listing.value) {
        if (since !== undefined && Date.parse(s.time) < since) continue;
        const job = s.tags?.find((t) => t.startsWith("job:"))?.slice(4);
        const score = scores.get(s.id);
        const trust = isTrusted(s) ? (s.pending?.length ? "pending" : "trusted") : [...new Set((s.distrust ?? []).map((d) => d.kind))].join(",");
        rows.push({
          repository: name, id: s.id, short_id: s.short_id, time: s.time, host: s.hostname, job, source: snapshotItem(s.tags ?? []), bytes: s.summary?.total_bytes_processed, tags: s.tags ?? [], paths: s.paths,
          ...(score ? { anomaly: withoutId(score) } : {}),
          trust, ...(s.arrival ? { arrival: s.arrival } : {}), ...(s.distrust?.length ? { distrust: s.distrust } : {}), ...(s.pending?.length ? { pending: s.pending } : {}),
        });
      }
    }
    rows.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    if (args.json) printJson(rows);
    else {
      const anomalyText = (a: SnapshotRow["anomaly"]) => (a?.score === undefined ? "-" : `${a.score.toFixed(2)}${a.verdict === "suspicious" ? " SUSPICIOUS" : ""}`);
      print(
        textTable(
          ["REPOSITORY", "ID", "TIME", "FIRST SEEN", "HOST", "JOB", "SOURCE", "SIZE", "ANOMALY", "TRUST"],
          rows.map((r) => [r.repository, r.short_id, r.time.replace(/\.\d+/, ""), r.arrival?.after ? r.arrival.seen.replace(/\.\d+/, "") : "-", r.host, r.job ?? "", r.source ?? r.paths.join(","), sizeText(r.bytes), anomalyText(r.anomaly), r.trust]),
        ),
      );
      for (const r of rows) if (r.anomaly?.verdict === "suspicious") print(`suspicious: ${r.repository} ${r.short_id} ${r.job ?? r.host} ${r.source ?? ""}: ${r.anomaly.reason}`);
      for (const r of rows) if (r.distrust) print(`${r.repository} ${r.short_id}: ${describeDistrust(r)}`);
    }
    if (failed.length) throw new DcctlError(failed.join("; "), failed.length === names.length ? ExitCode.failed : ExitCode.partial);
  },
};

interface VerifyArgs {
  subset?: string;
  repository?: string;
  json: boolean;
  wait: number;
}

const verifyCommand: CommandModule<object, VerifyArgs> = {
  command: "verify",
  describe: "restic check of this site's repository (or --repository), reading --subset of the data (e.g. 5%, 1/10); the outcome is kept in <stateDir>/backup/verify/<repository>.json",
  builder: (y: Argv<object>): Argv<VerifyArgs> =>
    y
      .option("subset", { type: "string", describe: "restic --read-data-subset: n%, n/t or a size like 500M" })
      .option("repository", { type: "string", describe: `${REPOSITORY_NAMES.join(" or ")} (default: the site's own)` })
      .option("json", { type: "boolean", default: false })
      .option("wait", { type: "number", default: 0, describe: "seconds to wait while a prune holds the repository (exit 3 after)" }),
  handler: async (args) => {
    if (args.subset !== undefined && !validReadDataSubset(args.subset)) {
      throw new InputError([`dcctl backup verify: --subset "${args.subset}" is not ${READ_DATA_SUBSET_FORMS}`]);
    }
    if (!(args.wait >= 0)) throw new InputError(["dcctl backup verify: --wait must be a number of seconds ≥ 0"]);
    const config = loadBackupConfig();
    const name = repositoryOption(args.repository) ?? config.site;
    // Recorded in <stateDir>/backup/verify/<repository>.json, failed or not (backup/verify-record.ts).
    const { verifyRepository, verifyRecordPath } = await import("../backup/verify-record.js");
    const { summary, record } = await noticed(
      config,
      { op: "verify", repository: name, recordPath: verifyRecordPath(config, name) },
      (signal) => verifyRepository(config, name, { subset: args.subset, waitMs: args.wait * 1000, signal }),
      ({ record: r }) => ({ subset: r.subset, sizeBytes: r.sizeBytes, snapshots: r.snapshots }),
    );
    if (record.message) process.stderr.write(`repository ${name}: ${record.message}\n`);
    const size = record.sizeBytes === undefined ? {} : { sizeBytes: record.sizeBytes, snapshots: record.snapshots };
    if (args.json) return printJson({ repository: name, ...summary, ...size });
    print(`repository ${name}: no errors${args.subset ? ` (read ${args.subset} of the data)` : ""}`);
  },
};

interface AcceptArgs {
  snapshot: string;
  reason: string;
  json: boolean;
  approval?: string;
}

const acceptCommand: CommandModule<object, AcceptArgs> = {
  command: "accept",
  describe: "trust a snapshot this site judged implausible, after looking into it (e.g. copies that arrived after a long outage); who and why are kept in the arrival ledger",
  builder: (y: Argv<object>): Argv<AcceptArgs> =>
    y
      .option("snapshot", { type: "string", demandOption: true, describe: "its id (full, short, or 8 or more of its first characters), in the repository this site keeps" })
      .option("reason", { type: "string", demandOption: true, describe: "why it is real, for the record" })
      .option("approval", { type: "string", describe: "the code of the approved request for it (four eyes: the site's approval:)" })
      .option("json", { type: "boolean", default: false }),
  handler: async (args) => {
    const reason = args.reason.trim();
    if (!reason) throw new InputError(["dcctl backup accept: --reason must say why the snapshot is real"]);
    const config = loadBackupConfig();
    const [{ acceptSnapshot, findDistrusted }, { userInfo }, { gate, approvalLine }, { confirmTexts }, { emitEvent }] = await Promise.all([
      import("../backup/arrival-ledger.js"),
      import("node:os"),
      import("./approvals.js"),
      import("./confirm-texts.js"),
      import("../notify/event-feed.js"),
    ]);
    const user = userInfo().username;
    const by = process.env.SUDO_USER && process.env.SUDO_USER !== user ? `${process.env.SUDO_USER} (as ${user})` : user;
    const name = REPOSITORY_NAMES.find((r) => r === config.site);
    if (!name) throw new InputError([`dcctl backup accept: the ${config.site} site keeps no repository`]);
    // Trusting what the site distrusts undoes its quarantine: a second operator sees what it was judged, and agrees.
    const found = findDistrusted(config, name, args.snapshot);
    const overruled = found.distrust.map((d) => `${d.kind}: ${d.reason}`).join("; ");
    const short = found.id.slice(0, 8);
    const approval = gate(
      config,
      { action: "backup accept", site: config.site, target: `snapshot ${short} of repository ${name}`, args: { repository: name, snapshot: found.id, reason }, change: confirmTexts("en")("backup.accept", { snapshot: short, repository: name, overruled }) },
      args,
    );
    if (approval && !args.json) print(approvalLine(approval));
    const done = await acceptSnapshot(config, name, found.id, { by, reason, ...(approval ? { approvedBy: approval.approvedBy } : {}) });
    const was = done.overruled.map((d) => `${d.kind}: ${d.reason}`).join("; ");
    emitEvent(config, "snapshot.accepted", {
      target: `repository ${name}`,
      outcome: "ok",
      ...(approval ? { approver: approval.approvedBy } : {}),
      message: `snapshot ${short} of repository ${name} accepted by ${by}${approval ? ` (approved by ${approval.approvedBy})` : ""}: ${reason}`,
      data: { snapshot: done.id, repository: name, overruled: was, reason },
    });
    if (args.json) return printJson({ repository: name, ...done, by, ...(approval ? { approval } : {}) });
    print(`snapshot ${short} of repository ${name} is trusted from now on (accepted by ${by}${approval ? `, approved by ${approval.approvedBy}` : ""}); it was: ${was}`);
  },
};

interface UnlockArgs {
  repository?: string;
  "remove-all": boolean;
  yes: boolean;
  json: boolean;
  approval?: string;
  /** The global --lang (cli/main.ts). */
  lang?: string;
}

const unlockCommand: CommandModule<object, UnlockArgs> = {
  command: "unlock",
  describe: "remove restic locks left by dead runs of this machine, naming each; --remove-all also removes live ones (asks)",
  builder: (y: Argv<object>): Argv<UnlockArgs> =>
    y
      .option("repository", { type: "string", describe: `${REPOSITORY_NAMES.join(" or ")} (default: the site's own)` })
      .option("remove-all", { type: "boolean", default: false, describe: "also the locks of live processes and other machines: only when you know they are gone" })
      .option("yes", { type: "boolean", default: false, describe: "do not ask before --remove-all" })
      .option("approval", { type: "string", describe: "--remove-all: the code of the approved request for it (four eyes: the site's approval:)" })
      .option("json", { type: "boolean", default: false }),
  handler: async (args) => {
    const config = loadBackupConfig();
    const name = repositoryOption(args.repository) ?? config.site;
    const restic = resticFor(config, name);
    const describeLock = (l: ResticLock) => `${l.exclusive ? "exclusive" : "shared"} lock of pid ${l.pid} on ${l.hostname} since ${l.time.replace(/\.\d+/, "")}`;
    let removed: ResticLock[];
    let approval: import("../backup/approval/index.js").ApprovalRecord | undefined;
    if (args["remove-all"]) {
      removed = await restic.locks();
      if (removed.length) {
        const [{ confirmAction }, { confirmTexts }, { operatorLang }, { gate, approvalLine }] = await Promise.all([import("../util/confirm.js"), import("./confirm-texts.js"), import("./lang.js"), import("./approvals.js")]);
        const lang = operatorLang(args.lang, config);
        await confirmAction({ yes: args.yes, action: confirmTexts(lang)("backup.unlock", { repository: name, locks: removed.map(describeLock).join("; ") }), lang });
        // The locks of the moment are shown to the approver; what is matched is the repository (locks come and go).
        const url = repository(config, name).repo.url.replace(/\/\/[^@/]*@/, "//***@");
        approval = gate(config, { action: "backup unlock --remove-all", site: config.site, target: `repository ${name}`, args: { repository: name, url }, change: confirmTexts("en")("backup.unlock", { repository: name, locks: removed.map(describeLock).join("; ") }) }, args);
        if (approval && !args.json) print(approvalLine(approval));
        await restic.unlock({ removeAll: true });
      }
    } else removed = await restic.clearDeadLocks();
    if (removed.length) {
      const { emitEvent } = await import("../notify/event-feed.js");
      emitEvent(config, "backup.unlock", {
        target: name,
        outcome: "ok",
        ...(approval ? { approver: approval.approvedBy } : {}),
        message: `removed ${removed.length} lock${removed.length === 1 ? "" : "s"} of repository ${name}${args["remove-all"] ? " (--remove-all)" : ""}: ${removed.map(describeLock).join("; ")}`,
        data: { removed: removed.length, removeAll: args["remove-all"], locks: removed.map(describeLock).join("; ") },
      });
    }
    const left = args["remove-all"] ? [] : await restic.locks();
    if (args.json) return printJson({ repository: name, removed, left, ...(approval ? { approval } : {}) });
    if (args["remove-all"] && removed.length) print(`repository ${name}: removed ${removed.length} lock${removed.length === 1 ? "" : "s"}: ${removed.map(describeLock).join("; ")}`);
    if (removed.length === 0) print(`repository ${name}: no lock ${args["remove-all"] ? "" : "of a dead process "}to remove`);
    for (const l of left) print(`kept: ${describeLock(l)} (alive, or of another machine; --remove-all if you know it is gone)`);
  },
};

interface PruneArgs {
  "dry-run": boolean;
  json: boolean;
  wait: number;
  "apply-min-age": boolean;
  approval?: string;
}

const pruneCommand: CommandModule<object, PruneArgs> = {
  command: "prune",
  describe: "forget by each job's retention and prune, in the repository this site owns (never the other site's)",
  builder: (y: Argv<object>): Argv<PruneArgs> =>
    y
      .option("dry-run", { type: "boolean", default: false, describe: "show what would be forgotten" })
      .option("json", { type: "boolean", default: false })
      .option("wait", { type: "number", default: 0, describe: "seconds to wait for running backups (exit 3 after)" })
      .option("apply-min-age", {
        type: "boolean",
        default: false,
        describe: "where four eyes is on (approval:), go by a policy's minAge shorter than the default (otherwise the default floor holds); asks for a second operator's approval",
      })
      .option("approval", { type: "string", describe: "--apply-min-age: the code of the approved request for it" }),
  handler: async (args) => {
    waitSeconds("dcctl backup prune", args.wait);
    if (args.approval !== undefined && !args["apply-min-age"]) throw new InputError(["dcctl backup prune: --approval goes with --apply-min-age (the only part of a prune that asks for one)"]);
    const config = loadBackupConfig();
    const [{ pruneOwnRepository }, { opRecordPath }, { distrustLine }, { minAgeShortened, withDefaultFloor }] = await Promise.all([
      import("../backup/prune.js"),
      import("../backup/op-record.js"),
      import("../backup/trust.js"),
      import("../backup/retention.js"),
    ]);
    const sites = loadSites();
    let jobs = expandJobs(sites, loadPolicies());
    // A shortened floor lets retention remove what arrived days ago, the copies an intruder's work would replace: where
    // four eyes is on, it holds only with an approval; the scheduled prune goes by the default floor meanwhile.
    const shortened = minAgeShortened(jobs);
    const heldBack = shortened.length && config.approval?.required && !args["apply-min-age"] ? shortened : [];
    let approval: import("../backup/approval/index.js").ApprovalRecord | undefined;
    if (heldBack.length) jobs = withDefaultFloor(jobs);
    else if (shortened.length && args["apply-min-age"] && !args["dry-run"]) {
      const [{ gate, approvalLine }, { confirmTexts }, { formatSpan }, { DEFAULT_MIN_AGE_MS }] = await Promise.all([import("./approvals.js"), import("./confirm-texts.js"), import("../util/duration.js"), import("../backup/policies.js")]);
      const floors = shortened.map((m) => `${m.policy}=${formatSpan(m.minAgeMs)}`);
      // The retention of each such policy too: the same floor under another retention removes something else.
      const retention = shortened.map((m) => `${m.policy}=${JSON.stringify(jobs.find((j) => j.policy === m.policy)?.retention ?? {})}`);
      const change = confirmTexts("en")("backup.pruneMinAge", { repository: config.site, default: formatSpan(DEFAULT_MIN_AGE_MS), policies: floors.join(", ") });
      approval = gate(config, { action: "backup prune --apply-min-age", site: config.site, target: `repository ${config.site}`, args: { repository: config.site, minAge: floors, retention }, change }, args);
      if (approval && !args.json) print(approvalLine(approval));
    }
    const prune = (signal: AbortSignal) => pruneOwnRepository(jobs, config, { dryRun: args["dry-run"], waitMs: args.wait * 1000, signal, sites });
    const op = { op: "prune" as const, repository: config.site, recordPath: opRecordPath(config, "prune", config.site), dryRun: args["dry-run"], ...(approval ? { approver: approval.approvedBy } : {}) };
    const result = await noticed(config, op, prune, (r) => ({
      removed: r.jobs.reduce((n, j) => n + j.removed, 0),
      pruned: r.pruned,
    }));
    // A shortened floor is said every time: it is what lets a prune remove what arrived a few days ago.
    for (const m of result.minAgeShortened) process.stderr.write(`warning: ${m.text}\n`);
    for (const m of heldBack) process.stderr.write(`warning: ${m.text}; not applied: this site requires a second operator for it (approval:), so this prune kept the default (dcctl backup prune --apply-min-age asks for it)\n`);
    if (args.json) printJson({ ...result, ...(heldBack.length ? { minAgeNotApplied: heldBack.map((m) => m.policy) } : {}), ...(approval ? { approval } : {}) });
    else {
      for (const j of result.jobs) {
        const aside = [j.young ? `${j.young} younger than minAge` : "", j.quarantined ? `${j.quarantined} not trusted` : "", j.pending ? `${j.pending} with their run not yet checked` : ""].filter(Boolean);
        print(`${j.job}: keep ${j.kept + j.young + j.quarantined + j.pending}${aside.length ? ` (${aside.join(", ")})` : ""}, ${args["dry-run"] ? "would remove" : "removed"} ${j.removed}`);
      }
      print(`repository ${result.repository} (${repository(config, config.site).repo.url.replace(/\/\/[^@/]*@/, "//***@")}): ${result.pruned ? "pruned" : "nothing to prune"}`);
      for (const d of result.distrusted) print(`NOT TRUSTED, kept for investigation: ${distrustLine(d)}`);
    }
    if (result.distrusted.length) {
      throw new DcctlError(`${result.distrusted.length} snapshot${result.distrusted.length === 1 ? " is" : "s are"} not trusted in repository ${result.repository}: kept for investigation, neither kept in a place nor removed by retention (see dcctl backup status)`, ExitCode.distrusted);
    }
  },
};

interface ReplicateArgs {
  to: string;
  json: boolean;
  wait: number;
}

const replicateCommand: CommandModule<object, ReplicateArgs> = {
  command: "replicate",
  describe: "copy the snapshots the secondary's (append-only) repository does not have yet",
  builder: (y: Argv<object>): Argv<ReplicateArgs> =>
    y
      .option("to", { type: "string", demandOption: true, choices: ["secondary"], describe: "the repository to copy to" })
      .option("json", { type: "boolean", default: false })
      .option("wait", { type: "number", default: 0, describe: "seconds to wait for a lock (exit 3 after)" }),
  handler: async (args) => {
    waitSeconds("dcctl backup replicate", args.wait);
    const [{ replicate }, { describeReconciled }, { opRecordPath }] = await Promise.all([import("../backup/replicate.js"), import("../backup/run-ledger.js"), import("../backup/op-record.js")]);
    const config = loadBackupConfig();
    const what = { op: "replicate" as const, repository: "secondary" as const, from: "primary" as const, recordPath: opRecordPath(config, "replicate", "secondary") };
    const result = await noticed(config, what, (signal) => replicate(config, "secondary", { waitMs: args.wait * 1000, signal }), (r) => ({ copied: r.copied.length, alreadyThere: r.alreadyThere }));
    for (const r of result.reconciled) process.stderr.write(describeReconciled(r) + "\n");
    if (args.json) return printJson(result);
    print(`copied ${result.copied.length} snapshot${result.copied.length === 1 ? "" : "s"} from ${result.from} to ${result.to} (${result.alreadyThere} already there)`);
  },
};

interface StatusArgs {
  json: boolean;
  site?: string;
  job?: string;
}

/** The formatters of the status table, from the modules the status command imports as it runs. */
interface StatusTexts {
  describeLag: typeof import("../backup/replication/index.js").describeLag;
  formatAge: typeof import("../backup/status.js").formatAge;
}

/** "2 of 9 jobs within RPO", by what this site trusts. */
function judgedLate(rows: JobStatusRow[]): string {
  const judged = rows.filter((r) => !r.unreachable);
  return `${judged.filter((r) => r.state === "ok").length} of ${judged.length} jobs within RPO by the snapshots it trusts`;
}

/** Why a row is not ok, in a few words: its worst item, and what the last run said. */
function statusWhy(r: JobStatusRow, withCopy = true): string {
  if (r.error) return r.error;
  const bad = r.items.filter((i) => i.state !== "ok").map((i) => `${i.item} ${i.state === "none" ? "never backed up" : i.state}`);
  const distrusted = r.distrusted?.length ? `${r.distrusted.length} snapshot${r.distrusted.length === 1 ? "" : "s"} not trusted` : "";
  return [bad.join(", "), distrusted, r.lastError ? `last run: ${r.lastError}` : "", withCopy ? (r.copyWarning ?? "") : ""].filter(Boolean).join("; ") || "-";
}

/** Where a row was judged, and its copies elsewhere: "secondary; primary: ok 3m" (the other side as extra). */
function copiesText(r: JobStatusRow, formatAge: (m: number | undefined) => string): string {
  const others = (r.copies ?? []).map((c) => `${c.repository}: ${c.state === "unknown" ? "unknown" : `${c.state} ${formatAge(c.ageMinutes)}`}`);
  return [r.judgedBy ?? r.repository, ...others].join("; ");
}

/**
 * The replicas of the jobs' hosts, measured now (each probe bounded to seconds) and recorded as `replication status`
 * would: the REPLICA column shows the live RPO, not an old sample.
 */
async function measureReplicas(config: BackupConfig, jobs: BackupJob[], sites: Sites): Promise<PairStatus[]> {
  const { measurePairs, replicationPairs } = await import("../backup/replication/index.js");
  const all = replicationPairs(sites);
  return measurePairs(config, all.filter((p) => jobs.some((j) => j.host === p.primary.name)), { record: true, known: all });
}

/** The replica beside a job: its health and lag when last measured (`replication status`), and how long ago. */
function replicaText(r: JobStatusRow, { describeLag, formatAge }: StatusTexts): string {
  const x = r.replica;
  if (!x) return "-";
  return `${x.pair} ${x.health}, lag ${describeLag(x)} (${formatAge((Date.now() - Date.parse(x.measuredAt)) / 60_000)} ago)`;
}

const statusCommand: CommandModule<object, StatusArgs> = {
  command: "status",
  describe: "per job and item (each database, the files) the newest trusted snapshot's age against the RPO; exit 4 if any item is over RPO or never backed up, 7 if the other site does not answer (then judged by this site's copies), 9 if a snapshot is not trusted, 1 if a repository cannot be read",
  builder: (y: Argv<object>): Argv<StatusArgs> =>
    y
      .option("json", { type: "boolean", default: false })
      .option("site", { type: "string", describe: "only this site's jobs" })
      .option("job", { type: "string", describe: "one job (id or host): each item, and its last run's result" }),
  handler: async (args) => {
    const site = siteOption(args.site);
    const sites = loadSites();
    const everyJob = expandJobs(sites, loadPolicies());
    const jobs = args.job === undefined ? everyJob.filter((j) => !site || j.site === site) : selectJobs(everyJob, { job: args.job, site });
    const config = loadBackupConfig();
    const [{ backupStatus, formatAge }, { describeLag }, { describeReconciled }, { readState }, { backupStatePaths }, { lookAtOtherSites }, { describeUnreachable }, { archiveLines, readArchiveStatuses }] = await Promise.all([
      import("../backup/status.js"),
      import("../backup/replication/index.js"),
      import("../backup/run-ledger.js"),
      import("../backup/report.js"),
      import("../backup/run.js"),
      import("../backup/peer-records.js"),
      import("../backup/reachability.js"),
      import("../backup/pitr.js"),
    ]);
    // The replicas, the other sites and the repositories side by side: each bounded, none waits on another.
    const replicas = measureReplicas(config, jobs, sites);
    replicas.catch(() => undefined);
    const others = await lookAtOtherSites(config, sites);
    const report = await backupStatus(jobs, config, new Date(), replicas, { reach: others.reach, peerRuns: others.peers.then((all) => all.map((p) => p.jobs)), sites });
    for (const r of report.reconciled) process.stderr.write(describeReconciled(r) + "\n");
    for (const r of report.rows) if (r.warning) process.stderr.write(`warning: ${r.warning}\n`);
    for (const t of report.trust) if (t.ledgerError) process.stderr.write(`warning: repository ${t.repository} judged by the times its snapshots claim: ${t.ledgerError}\n`);
    for (const t of report.trust) if (t.pending) process.stderr.write(`note: repository ${t.repository}: ${t.pending} snapshot${t.pending === 1 ? "" : "s"} whose run's record could not be read yet (the other site did not answer): counted, kept out of retention until checked\n`);
    if (!args.json) for (const lost of report.unreachable) print(`${lost.site.toUpperCase()} SITE UNREACHABLE ${describeUnreachable(lost)}: each job is judged by the copies this site holds`);
    // The point-in-time archives of these jobs' hosts, as their upkeep last measured them here: read, never probed.
    const archives = readArchiveStatuses(config).filter((a) => jobs.some((j) => j.host === a.host));
    if (args.json) printJson({ ...report, archives });
    else if (args.job !== undefined) {
      const last = readState(backupStatePaths(config).stateFile);
      for (const r of report.rows) {
        print(`${r.job}: ${r.state} (RPO ${formatAge(r.rpoMinutes)}, repository ${r.repository})${r.error ? `: ${r.error}` : ""}`);
        print(textTable(["ITEM", "STATE", "AGE", "NEWEST", "LAST RUN"], r.items.map((i) => [i.item, i.state, formatAge(i.ageMinutes), i.newest ? `${i.newest.id} ${i.newest.time.replace(/\.\d+/, "")}` : "-", i.lastError ?? "ok"])));
        const run = last[r.job]?.last;
        print(run ? `last run: ${run.status} at ${run.finishedAt} (${run.durationSeconds.toFixed(1)} s)${run.error ? `: ${run.error}` : ""}` : "last run: none from this machine");
      }
    } else
      print(
        textTable(
          ["JOB", "STATE", "AGE", "RPO", "NEWEST", "REPLICA", "LAST RUN", "JUDGED BY; OTHER COPIES", "WHY"],
          report.rows.map((r) => [r.job, r.state, formatAge(r.ageMinutes), formatAge(r.rpoMinutes), r.newest ? `${r.newest.id} ${r.newest.time.replace(/\.\d+/, "")}` : "-", replicaText(r, { describeLag, formatAge }), r.lastRun ?? "-", copiesText(r, formatAge), r.state === "ok" && !r.lastError && !r.copyWarning && !r.distrusted?.length ? "" : statusWhy(r)]),
        ),
      );
    if (!args.json) for (const line of archiveLines(archives, new Date())) print(line);
    if (!args.json && report.distrusted.length) {
      const { distrustLine } = await import("../backup/trust.js");
      print(`NOT TRUSTED (${report.distrusted.length}): not counted, never restored unless named with --snapshot, kept for investigation`);
      for (const d of report.distrusted) print(`  ${d.repository}: ${distrustLine(d)}`);
    }
    if (report.exitCode !== ExitCode.ok) {
      const late = report.rows.filter((r) => r.state !== "ok");
      const first = late[0];
      const lost = report.unreachable[0];
      const judged = report.rows.filter((r) => !r.unreachable);
      throw new DcctlError(
        report.exitCode === ExitCode.failed
          ? "a repository could not be read"
          : report.exitCode === ExitCode.distrusted
            ? `${report.distrusted.length} snapshot${report.distrusted.length === 1 ? " is" : "s are"} not trusted (${[...new Set(report.distrusted.flatMap((d) => d.distrust.map((x) => x.kind)))].join(", ")}), first: ${report.distrusted[0]?.short_id ?? ""} of ${report.distrusted[0]?.job ?? report.distrusted[0]?.hostname ?? ""}; ${judgedLate(report.rows)}`
          : report.exitCode === ExitCode.siteUnreachable && lost
            ? `the ${lost.site} site is unreachable since ${lost.unreachableSince ?? lost.probedAt}; ${judged.filter((r) => r.state === "ok").length} of ${judged.length} jobs within RPO by the copies this site holds${late.length ? ` (first not: ${first?.job}: ${first ? statusWhy(first, false) : ""})` : ""}`
            : `${late.length} job${late.length === 1 ? " is" : "s are"} over RPO or never backed up${first ? ` (first: ${first.job}: ${statusWhy(first, false)})` : ""}`,
        report.exitCode,
      );
    }
  },
};

interface ScheduleArgs {
  emit: string;
  out: string;
  site?: string;
  dcctl?: string;
}

const scheduleCommand: CommandModule<object, ScheduleArgs> = {
  command: "schedule",
  describe: "write systemd timers (or a crontab) for a site's whole backup cycle: its jobs, replicate (primary), prune, verify, the point-in-time archives' upkeep and base backups, on the policies file's schedules, and the SOC events' delivery every minute",
  builder: (y: Argv<object>): Argv<ScheduleArgs> =>
    y
      .option("emit", { type: "string", demandOption: true, choices: ["systemd", "cron"] })
      .option("out", { type: "string", demandOption: true, describe: "folder to write the units or the crontab into" })
      .option("site", { type: "string", describe: "the site whose cycle to schedule (default: this machine's, from the repositories file); each site's backup server schedules its own" })
      .option("dcctl", { type: "string", describe: "the dcctl command the units run (default: this node and this dcctl)" }),
  handler: async (args) => {
    const site = siteOption(args.site) ?? siteOfThisMachine();
    const policies = loadPolicies();
    const sites = loadSites();
    const all = expandJobs(sites, policies);
    const jobs = all.filter((j) => j.site === site);
    const { archivedDatabases } = await import("../backup/pitr.js");
    const archived = archivedDatabases(sites, all);
    const tasks = siteSchedule(site, jobs, policies, archived);
    if (args.emit === "systemd") {
      const { systemdCalendarProblems } = await import("../backup/systemd-calendar.js");
      const problems = await systemdCalendarProblems(tasks);
      if (problems?.length) throw new InputError(problems);
    }
    // After the policies are known good: a refused schedule leaves no folder behind.
    outputFolder("dcctl backup schedule", "out", args.out);
    const dcctl = args.dcctl ? [args.dcctl] : [process.execPath, resolve(process.argv[1] ?? "dcctl")];
    const env: Record<string, string> = {};
    for (const name of ["DCCTL_REPOS_FILE", "DCCTL_SITES_DIR", "DCCTL_POLICIES_FILE", "DCCTL_STATE_DIR"]) {
      const v = process.env[name];
      if (v) env[name] = resolve(v);
    }
    const logDir = join(stateDir(), "backup", "logs");
    if (args.emit === "cron") makeDir(logDir);
    const files = args.emit === "systemd" ? renderSystemd(tasks, { dcctl, env }) : renderCrontab(tasks, { dcctl, env, logDir });
    const written = writeSchedule(args.out, files);
    const cycle = `${site === "primary" ? "replicate to the secondary, prune and verify" : "prune and verify"} of repository ${site}${archived.length ? `, the point-in-time archive of ${archived.map((a) => a.host.name).join(", ")}` : ""}, and the SOC events' delivery every minute`;
    print(`wrote ${written.length} file${written.length === 1 ? "" : "s"} for site ${site} to ${args.out}: its ${jobs.length} job${jobs.length === 1 ? "" : "s"}, ${cycle}`);
  },
};

export const backupCommands: CommandModule<object, object> = {
  // Its command and description are in ./commands.ts, which lists the groups without loading them.
  builder: (y: Argv<object>): Argv<object> =>
    y
      .command(jobsCommand)
      .command(runCommand)
      .command(snapshotsCommand)
      .command(verifyCommand)
      .command(unlockCommand)
      .command(acceptCommand)
      .command(pruneCommand)
      .command(replicateCommand)
      .command(statusCommand)
      .command(scheduleCommand)
      .demandCommand(1, "name a backup command"),
  handler: () => undefined,
};
