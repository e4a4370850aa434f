import { join, resolve } from "node:path";
import type { ErrorObject } from "ajv";
import { drTierOf, hostLocation, siteSourceFile, standbyFor, type Host, type Site, type Sites } from "../inventory/index.js";
import { parseYamlSource, displayPath, readYamlFile, type DataPath, type YamlSource } from "../inventory/yaml-source.js";
import { cachedYaml } from "../util/yaml-cache.js";
import { MAX_DURATION_TEXT, formatSpan, parseDuration, parseSpan } from "../util/duration.js";
import { InputError, errorMessage } from "../util/errors.js";
import { repoRoot } from "../util/tools.js";
import { schemaValidator, type SchemaSpec } from "../util/validator.js";
import { DB_ENGINES, enginesOf, type DbEngine } from "../databases/registry.js";
import type { KeepPolicy } from "../restic/index.js";
import { READ_DATA_SUBSET_FORMS, validReadDataSubset } from "../restic/subset.js";
import { CronError, longestGap, parseCron } from "./cron.js";
import { ANOMALY_PARTS, DEFAULT_ANOMALY, type AnomalySettings } from "./anomaly.js";

/**
 * The backup policies (backup/policies.yaml): what each inventory `backupPolicy` name means. Loaded and checked like
 * the inventory: every problem is one `file:line: message` line, and a policy named in the inventory but not
 * defined here is reported at the host's line in the site file.
 */

export const REPOSITORY_NAMES = ["primary", "secondary"] as const;
export type RepositoryName = (typeof REPOSITORY_NAMES)[number];

export interface FilesSourceSpec {
  kind: "files";
  /** Absolute paths on the host. */
  paths: string[];
  /** restic/tar exclude patterns; a pattern starting with "/" is anchored at the root. */
  excludes: string[];
}

export interface DatabaseSourceSpec {
  /** A registered database engine (databases/registry.ts). */
  kind: DbEngine;
}

export type SourceSpec = FilesSourceSpec | DatabaseSourceSpec;

export interface Policy {
  name: string;
  description: string;
  sources: SourceSpec[];
  /** 5-field cron expression (checked). */
  schedule: string;
  retention: KeepPolicy;
  rpoMinutes: number;
  repository: RepositoryName;
  /** restic --limit-upload, KiB/s; 0 means no limit. */
  limitUploadKiB: number;
  randomizedDelaySec: number;
  /** A job that makes no progress for this long fails (restic stopped, nothing saved). */
  stallMs: number;
  /** `file:line` of the schedule, for refusals of what is made from it (a function: finding lines parses the YAML). */
  scheduleAt: () => string;
  /** Continuous archiving of the jobs' database servers for point-in-time recovery, when the policy asks for it. */
  pitr?: PitrPolicy;
  /** How its jobs' snapshots are scored against their history (backup/anomaly.ts). */
  anomaly: AnomalySettings;
  /**
   * Prune never removes a snapshot that reached the site keeping it less than this long ago, whatever retention
   * says (backup/retention.ts); below DEFAULT_MIN_AGE_MS it is shortened, which prune says (minAgeShortened).
   */
  minAgeMs: number;
  /** `file:line` of `minAge`, or the file alone when the policy does not set it. */
  minAgeAt: () => string;
  /**
   * How long after the time it claims a real snapshot can first be seen at the site that keeps it: one that claims
   * to be older than that when it arrives is implausible (backup/trust.ts). Absent: the policies' default.
   */
  arrivalLagMs?: number;
}

/** A policy's `pitr:`: base backups on a schedule, the changes between them streamed as they are written. */
export interface PitrPolicy {
  /** 5-field cron expression (checked) of the base backups. */
  baseBackup: string;
  /** How far back a restore can reach: base backups older than the newest one before this window are removed. */
  recoveryWindowDays: number;
  baseBackupAt: () => string;
}

/** One task of the cycle besides the backups (`backup schedule` writes it at each site that runs it). */
export interface CycleTask {
  /** 5-field cron expression (checked). */
  schedule: string;
  /** `file:line` of the schedule; the file alone when it is the default (a function: finding lines parses the YAML). */
  at: () => string;
}

/** What each site schedules besides its backups, from the policies file's `cycle:` (every field has a default). */
export interface BackupCycle {
  replicate: CycleTask;
  prune: CycleTask;
  /** `subset`: restic --read-data-subset of each check. */
  verify: CycleTask & { subset: string };
}

/**
 * The defaults: replicate hourly at :20, after db-hourly's window (:05, spread over 5 min) and the end of every daily
 * window; prune nightly at 04:40, once the last daily window (app-daily, 02:00 + 1 h) and the weekly one are over;
 * verify weekly, Sunday 05:10, 10 % of the data each time.
 */
export const DEFAULT_CYCLE = { replicate: "20 * * * *", prune: "40 4 * * *", verify: "10 5 * * 0", verifySubset: "10%" } as const;

/** A job's stall limit when its policy names none: long enough for a slow pg_dump to send its first bytes. */
export const DEFAULT_STALL_MS = 5 * 60_000;
/** How many days back a point-in-time restore reaches when a policy's `pitr:` does not say. */
export const DEFAULT_RECOVERY_WINDOW_DAYS = 7;

/** Prune's floor when a policy names none: a week in which whoever notices an intrusion can still find every copy. */
export const DEFAULT_MIN_AGE_MS = 7 * 86_400_000;
/** Beyond the longest wait for a replicate: a long backup, a slow copy, a WAN down for most of a day. */
export const ARRIVAL_LAG_SLACK_MS = 86_400_000;

export interface Policies {
  file: string;
  policies: Map<string, Policy>;
  cycle: BackupCycle;
  /**
   * How late a real snapshot can arrive when its policy does not say (arrivalLag): the longest gap between two runs
   * of `cycle.replicate` plus ARRIVAL_LAG_SLACK_MS.
   */
  defaultArrivalLagMs: number;
}

interface RawPolicy {
  description?: string;
  sources: ({ kind: "files"; paths: string[]; excludes?: string[] } | { kind: DbEngine })[];
  schedule: string;
  retention: KeepPolicy;
  rpoMinutes: number;
  repository: RepositoryName;
  limitUploadKiB?: number;
  randomizedDelaySec?: number;
  stallTimeout?: string | number;
  pitr?: { baseBackup: string; recoveryWindowDays?: number };
  anomaly?: { threshold?: number; weights?: Partial<AnomalySettings["weights"]> };
  minAge?: string | number;
  arrivalLag?: string | number;
}

interface RawCycle {
  replicate?: { schedule?: string };
  prune?: { schedule?: string };
  verify?: { schedule?: string; subset?: string };
}

const count = { type: "integer", minimum: 1 } as const;
const cronText = { type: "string", minLength: 1 } as const;
const cycleTask = (what: string, cron: string) =>
  ({ type: "object", additionalProperties: false, description: what, properties: { schedule: { ...cronText, default: cron, description: "When, as a 5-field cron expression." } } }) as const;
const weight = (what: string) =>
  ({ type: "number", minimum: 0, default: 1, description: `The weight of ${what} in the score (0: left out).` }) as const;
const keep = (what: string) => ({ ...count, description: `Keep the newest snapshot of each of the last N ${what}.` });
const schema = {
  type: "object",
  additionalProperties: false,
  required: ["policies"],
  properties: {
    cycle: {
      type: "object",
      additionalProperties: false,
      description: "What each site schedules besides its backups (`backup schedule`); every field has a default.",
      properties: {
        replicate: cycleTask("`backup replicate --to secondary`, at the primary, after the backup windows.", DEFAULT_CYCLE.replicate),
        prune: cycleTask("`backup prune` at each site, of the repository that site owns.", DEFAULT_CYCLE.prune),
        verify: {
          type: "object",
          additionalProperties: false,
          description: "`backup verify` at each site, of its own repository.",
          properties: {
            schedule: { ...cronText, default: DEFAULT_CYCLE.verify, description: "When, as a 5-field cron expression." },
            subset: { type: "string", minLength: 1, default: DEFAULT_CYCLE.verifySubset, description: "restic check --read-data-subset of each check." },
          },
        },
      },
    },
    policies: {
      type: "object",
      minProperties: 1,
      description: "The backup policies by name (lower-case letters, digits, hyphens): hosts name one as backupPolicy.",
      propertyNames: { pattern: "^[a-z0-9][a-z0-9-]*$" },
      additionalProperties: {
        type: "object",
        additionalProperties: false,
        description: "A policy: each host that names it gets a job of it.",
        required: ["sources", "schedule", "retention", "rpoMinutes", "repository"],
        properties: {
          description: { type: "string", description: "Free text for people." },
          sources: {
            type: "array",
            minItems: 1,
            description: "What each job backs up: files by path, or the host's databases of an engine; each kind at most once.",
            items: {
              type: "object",
              required: ["kind"],
              properties: { kind: { enum: ["files", ...DB_ENGINES] } },
              if: { properties: { kind: { const: "files" } } },
              then: {
                additionalProperties: false,
                required: ["paths"],
                properties: {
                  kind: { const: "files" },
                  paths: { type: "array", minItems: 1, items: { type: "string", pattern: "^/" } },
                  excludes: { type: "array", items: { type: "string", minLength: 1 } },
                },
              },
              else: { additionalProperties: false, properties: { kind: { enum: [...DB_ENGINES] } } },
            },
          },
          schedule: { ...cronText, description: "When the policy's jobs run, as a 5-field cron expression (one that never fires is refused)." },
          retention: {
            type: "object",
            additionalProperties: false,
            minProperties: 1,
            description: "What `backup prune` keeps (restic forget --keep-*); at least one.",
            properties: {
              keepLast: { ...count, description: "Keep the last N snapshots." },
              keepHourly: keep("hours"),
              keepDaily: keep("days"),
              keepWeekly: keep("weeks"),
              keepMonthly: keep("months"),
              keepYearly: keep("years"),
            },
          },
          rpoMinutes: { type: "number", exclusiveMinimum: 0, description: "The newest good snapshot may be this old; `backup status` flags a job over it." },
          repository: { enum: [...REPOSITORY_NAMES], description: "The repository the jobs write to (the repositories file says where it is)." },
          limitUploadKiB: { type: "integer", minimum: 0, default: 0, description: "restic --limit-upload in KiB/s; 0: no limit." },
          randomizedDelaySec: { type: "integer", minimum: 0, default: 0, description: "Seconds of random delay before a job starts, to spread one window's jobs (systemd RandomizedDelaySec; crontabs ignore it)." },
          stallTimeout: { type: ["string", "number"], default: "5m", description: "A job that makes no progress this long (90s, 5m; or seconds) is stopped and fails." },
          anomaly: {
            type: "object",
            additionalProperties: false,
            description:
              "How each snapshot of the policy's jobs is scored against the earlier snapshots of its job, host and paths: a jump in the files and the bytes rewritten, and in new data that no longer compresses, as ransomware leaves them (docs/operator/backups.md).",
            properties: {
              threshold: { type: "number", minimum: 0, maximum: 1, default: DEFAULT_ANOMALY.threshold, description: "A snapshot whose score (0–1) is above this is suspicious; 1: never." },
              weights: {
                type: "object",
                additionalProperties: false,
                description: "The weights of the three signs in the score (a weighted geometric mean); at least one above 0.",
                properties: {
                  files: weight("the share of the files rewritten or replaced"),
                  bytes: weight("the share of the bytes rewritten"),
                  incompressible: weight("the loss of compression of the new data"),
                },
              },
            },
          },
          minAge: {
            type: ["string", "number"],
            default: formatSpan(DEFAULT_MIN_AGE_MS),
            description:
              "`backup prune` never removes a snapshot that reached the site keeping it less than this long ago (7d, 36h; 0: no floor), whatever the retention says. Shorter than the default, prune warns that it is shortened.",
          },
          arrivalLag: {
            type: ["string", "number"],
            description:
              "How long after the time it claims a real snapshot can first be seen at the site that keeps it (its backup's run, the wait for the next replicate, the copy, an outage between); one that claims to be older when it arrives is implausible: kept, never counted, never pruned by retention. Default: the longest gap between two replicates (cycle.replicate) plus 1d.",
          },
          pitr: {
            type: "object",
            additionalProperties: false,
            required: ["baseBackup"],
            description: "Point-in-time recovery for the jobs' database servers whose engine can archive them: each site's management host streams their changes as they are written and takes base backups (`dcctl pitr`).",
            properties: {
              baseBackup: { ...cronText, description: "When a base backup is taken, as a 5-field cron expression." },
              recoveryWindowDays: { type: "integer", minimum: 1, default: DEFAULT_RECOVERY_WINDOW_DAYS, description: "How many days back a restore can reach; older base backups and changes are removed." },
            },
          },
        },
      },
    },
  },
} as const;

/** The policies file's schema as the build compiles it (util/validator.ts). */
export const POLICIES_SCHEMA: SchemaSpec = { name: "policies", schema, options: { allErrors: true, strict: false } };
const validator = schemaValidator<{ policies: Record<string, RawPolicy>; cycle?: RawCycle }>(POLICIES_SCHEMA);

/** $DCCTL_POLICIES_FILE, or backup/policies.yaml of this checkout. */
export function policiesFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.DCCTL_POLICIES_FILE ? resolve(env.DCCTL_POLICIES_FILE) : join(repoRoot, "backup", "policies.yaml");
}

/** Reads and checks the policies file; throws InputError with every problem as `file:line: message`. */
export function loadPolicies(path: string = policiesFilePath()): Policies {
  let text: string;
  try {
    text = readYamlFile(path);
  } catch (e) {
    throw new InputError([`${displayPath(path)}: cannot read the backup policies: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`]);
  }
  return parsePolicies(path, text);
}

export function parsePolicies(path: string, text: string): Policies {
  const source: YamlSource = cachedYaml(path, text, parseYamlSource, displayPath);
  if (source.syntaxProblems.length) throw new InputError(source.syntaxProblems);
  const data: unknown = source.data;
  const validate = validator();
  if (!validate(data)) {
    // An error inside propertyNames repeats, without the name, what the propertyNames error itself says.
    const errors = (validate.errors ?? []).filter((e) => (e as ErrorObject & { propertyName?: string }).propertyName === undefined);
    throw new InputError(sorted(source, errors.map((e) => describe(e))));
  }
  const problems: { path: DataPath; message: string }[] = [];
  const checkCron = (path: DataPath, what: string, text: string): void => {
    try {
      parseCron(text);
    } catch (e) {
      if (!(e instanceof CronError)) throw e;
      problems.push({ path, message: `${what}: ${e.message}` });
    }
  };
  // Lines are found on demand only: a policies file read from the cache is parsed again to find them (yaml-cache.ts).
  const at = (path: DataPath) => (): string => `${source.displayPath}:${source.lineOf(path)}`;
  const policies = new Map<string, Policy>();
  for (const [name, raw] of Object.entries(data.policies)) {
    checkCron(["policies", name, "schedule"], `policy ${name}: schedule`, raw.schedule);
    if (raw.pitr) checkCron(["policies", name, "pitr", "baseBackup"], `policy ${name}: pitr.baseBackup`, raw.pitr.baseBackup);
    const kinds = raw.sources.map((s) => s.kind);
    const repeated = kinds.filter((k, i) => kinds.indexOf(k) !== i);
    if (repeated.length) problems.push({ path: ["policies", name, "sources"], message: `policy ${name}: source kind ${repeated[0] ?? ""} is listed twice (merge its paths)` });
    const anomaly: AnomalySettings = { threshold: raw.anomaly?.threshold ?? DEFAULT_ANOMALY.threshold, weights: { ...DEFAULT_ANOMALY.weights, ...raw.anomaly?.weights } };
    if (ANOMALY_PARTS.every((p) => anomaly.weights[p] === 0)) problems.push({ path: ["policies", name, "anomaly", "weights"], message: `policy ${name}: anomaly.weights: at least one weight must be above 0 (to never flag a snapshot, set anomaly.threshold: 1)` });
    const stallMs = raw.stallTimeout === undefined ? DEFAULT_STALL_MS : parseDuration(raw.stallTimeout);
    if (stallMs === undefined) problems.push({ path: ["policies", name, "stallTimeout"], message: `policy ${name}: stallTimeout: not a duration (e.g. 90s, 5m, 1h; at most ${MAX_DURATION_TEXT})` });
    const minAgeMs = raw.minAge === undefined ? DEFAULT_MIN_AGE_MS : parseSpan(raw.minAge);
    if (minAgeMs === undefined) problems.push({ path: ["policies", name, "minAge"], message: `policy ${name}: minAge: not a span of time (e.g. 7d, 36h, 0)` });
    const arrivalLagMs = raw.arrivalLag === undefined ? undefined : parseSpan(raw.arrivalLag);
    if (raw.arrivalLag !== undefined && !arrivalLagMs) problems.push({ path: ["policies", name, "arrivalLag"], message: `policy ${name}: arrivalLag: not a span of time above 0 (e.g. 1d, 36h)` });
    policies.set(name, {
      name,
      description: raw.description ?? "",
      sources: raw.sources.map((s): SourceSpec => (s.kind === "files" ? { kind: "files", paths: [...s.paths], excludes: [...(s.excludes ?? [])] } : { kind: s.kind })),
      schedule: raw.schedule,
      retention: { ...raw.retention },
      rpoMinutes: raw.rpoMinutes,
      repository: raw.repository,
      limitUploadKiB: raw.limitUploadKiB ?? 0,
      randomizedDelaySec: raw.randomizedDelaySec ?? 0,
      stallMs: stallMs ?? DEFAULT_STALL_MS,
      minAgeMs: minAgeMs ?? DEFAULT_MIN_AGE_MS,
      minAgeAt: raw.minAge === undefined ? () => source.displayPath : at(["policies", name, "minAge"]),
      ...(arrivalLagMs ? { arrivalLagMs } : {}),
      scheduleAt: at(["policies", name, "schedule"]),
      anomaly,
      ...(raw.pitr
        ? { pitr: { baseBackup: raw.pitr.baseBackup, recoveryWindowDays: raw.pitr.recoveryWindowDays ?? DEFAULT_RECOVERY_WINDOW_DAYS, baseBackupAt: at(["policies", name, "pitr", "baseBackup"]) } }
        : {}),
    });
  }
  const taskOf = (task: "replicate" | "prune" | "verify", fallback: string): CycleTask => {
    const schedule = data.cycle?.[task]?.schedule;
    if (schedule === undefined) return { schedule: fallback, at: () => source.displayPath };
    const path = ["cycle", task, "schedule"];
    checkCron(path, `cycle.${task}.schedule`, schedule);
    return { schedule, at: at(path) };
  };
  const subset = data.cycle?.verify?.subset ?? DEFAULT_CYCLE.verifySubset;
  if (!validReadDataSubset(subset)) problems.push({ path: ["cycle", "verify", "subset"], message: `cycle.verify.subset: "${subset}" is not ${READ_DATA_SUBSET_FORMS}` });
  const cycle: BackupCycle = {
    replicate: taskOf("replicate", DEFAULT_CYCLE.replicate),
    prune: taskOf("prune", DEFAULT_CYCLE.prune),
    verify: { ...taskOf("verify", DEFAULT_CYCLE.verify), subset },
  };
  if (problems.length) throw new InputError(sorted(source, problems));
  return { file: source.displayPath, policies, cycle, defaultArrivalLagMs: longestGap(parseCron(cycle.replicate.schedule)) + ARRIVAL_LAG_SLACK_MS };
}

/**
 * Every backupPolicy named in the inventory must be a defined policy; otherwise `site-file:line: …` at the host.
 * Returns the problems (empty when all is well) so callers can add them to their own.
 */
export function checkInventoryPolicies(sites: Sites, policies: Policies): string[] {
  const problems: string[] = [];
  const known = [...policies.policies.keys()];
  for (const site of [sites.primary, sites.secondary]) {
    for (const host of site.hosts) {
      if (policies.policies.has(host.backupPolicy)) continue;
      const where = hostLocation(site, host.name, "backupPolicy") ?? siteSourceFile(site) ?? site.site;
      problems.push(`${where}: host "${host.name}": backup policy "${host.backupPolicy}" is not defined in ${policies.file} (defined: ${known.join(", ")})`);
    }
  }
  return problems;
}

/**
 * Every database host whose DR tier promises an RPO that none of its protections can meet, as
 * `site-file:line: warning: …` at the host's drTier. A protection is the host's backup policy (its rpoMinutes) and a
 * warm standby on the secondary running the same engine (replication loses seconds, so it meets any tier). Only
 * databases: they hold the data an RPO is about (application servers are rebuilt from templates and hold none the
 * policies promise). Not checked: standbys (their replication protects them only while the primary writes) and
 * activeOnly hosts (they run only after a failover). Hosts whose policy is not defined are left to
 * checkInventoryPolicies.
 */
export function checkRpoPromises(sites: Sites, policies: Policies): string[] {
  return [sites.primary, sites.secondary].flatMap((site) => site.hosts.flatMap((host) => rpoWarning(sites, site, host, policies) ?? []));
}

function rpoWarning(sites: Sites, site: Site, host: Host, policies: Policies): string | undefined {
  const policy = policies.policies.get(host.backupPolicy);
  if (host.role !== "db" || host.activeOnly || host.standbyFor !== undefined || !policy) return undefined;
  const rpo = drTierOf(site, host).rpoMinutes;
  if (policy.rpoMinutes <= rpo) return undefined;
  const gap = replicationGap(sites, site, host);
  if (!gap) return undefined;
  const where = hostLocation(site, host.name, "drTier") ?? siteSourceFile(site) ?? site.site;
  return (
    `${where}: warning: host "${host.name}": DR tier ${host.drTier} promises an RPO of ${rpo} min, ` +
    `but backup policy "${policy.name}" has rpoMinutes ${policy.rpoMinutes}${gap.why}; ${gap.remedy ? `${gap.remedy} or a policy` : "give it a policy"} with rpoMinutes <= ${rpo}`
  );
}

/** Why no standby's replication protects a host (with what would, when one could), or undefined when one does. */
function replicationGap(sites: Sites, site: Site, host: Host): { why: string; remedy?: string } | undefined {
  // Replication is set up from primary databases to the secondary only (dcctl replication setup).
  if (site.site !== "primary") return { why: "" };
  const standby = standbyFor(sites, host.name);
  if (!standby) return { why: " and there is no warm standby", remedy: `add a standby on the secondary (standbyFor: ${host.name})` };
  const engines = enginesOf(host.services);
  if (!engines.length) {
    return {
      why: ` and its services name no database engine for standby "${standby.name}" to replicate`,
      remedy: `add its engine (${DB_ENGINES.join(" or ")}) to its services`,
    };
  }
  const missing = engines.filter((engine) => !standby.services.includes(engine));
  if (!missing.length) return undefined;
  const names = missing.join(", ");
  return { why: ` and its standby "${standby.name}" does not run ${names}`, remedy: `add ${names} to the services of "${standby.name}"` };
}

function describe(err: ErrorObject): { path: DataPath; message: string } {
  const path = err.instancePath
    .split("/")
    .slice(1)
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, "/").replace(/~0/g, "~")));
  const inPolicy = path[0] === "policies" && typeof path[1] === "string";
  const name = inPolicy ? `policy ${String(path[1])}: ` : "";
  const field = (inPolicy ? path.slice(2) : path).map((p) => (typeof p === "number" ? `[${p}]` : `.${p}`)).join("").replace(/^\./, "");
  const at = field ? `${field} ` : "";
  switch (err.keyword) {
    case "additionalProperties":
      return { path: [...path, String(err.params.additionalProperty)], message: `${name}unknown field "${String(err.params.additionalProperty)}"` };
    case "required":
      return { path, message: `${name}${at ? `${field}: ` : ""}missing required field "${String(err.params.missingProperty)}"` };
    case "enum":
      return { path, message: `${name}${at}must be one of: ${(err.params.allowedValues as unknown[]).map(String).join(", ")}` };
    case "propertyNames":
      return { path: [...path, String(err.params.propertyName)], message: `policy name "${String(err.params.propertyName)}" must be lower-case letters, digits and hyphens` };
    case "minProperties":
      return { path, message: path.length === 1 ? "policies: define at least one policy" : `${name}${at}must have at least one entry` };
    case "if":
      // The `then`/`else` branch already said what is wrong.
      return { path, message: "" };
    default:
      return { path, message: `${name}${at}${err.message ?? "is invalid"}` };
  }
}

function sorted(source: YamlSource, problems: { path: DataPath; message: string }[]): string[] {
  const lines = problems
    .filter((p) => p.message)
    .map((p, order) => ({ line: source.lineOf(p.path), order, text: source.problem(p.path, p.message) }))
    .sort((a, b) => a.line - b.line || a.order - b.order)
    .map((p) => p.text);
  return [...new Set(lines)];
}
