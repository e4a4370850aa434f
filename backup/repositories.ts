import { constants, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { SITE_NAMES, type SiteName } from "../inventory/index.js";
import { displayPath, parseYamlSource, readYamlFile } from "../inventory/yaml-source.js";
import { cachedYaml } from "../util/yaml-cache.js";
import { InputError, errorMessage } from "../util/errors.js";
import { LANGS, type Lang } from "../util/i18n.js";
import { stateDir as dcctlStateDir } from "../util/state.js";
import { schemaValidator, type SchemaSpec } from "../util/validator.js";
import { REPOSITORY_NAMES, type RepositoryName } from "./policies.js";
import { Restic, type ResticOptions, type ResticRepo } from "../restic/index.js";
import { databaseSettings, databaseSettingsSchema, type DatabaseSettings, type RawDatabaseSettings } from "../databases/registry.js";
import { NOTIFY_EVENTS, notifyConfig, type NotifyConfig, type RawNotifyConfig } from "../notify/config.js";
import { SOC_SCHEMA, socConfig, type RawSocConfig, type SocConfig } from "../notify/soc-config.js";
import { DEFAULT_LIMITS, LIMITS_SCHEMA, siteLimits, type RawLimits, type SiteLimits } from "./limits.js";
import { APPROVAL_SCHEMA, approvalSettings, type ApprovalSettings, type RawApproval } from "./approval/config.js";

/**
 * Where the repositories are and how this machine reaches hosts: a small per-machine YAML file, never in the
 * checkout (it names password files), found at $DCCTL_REPOS_FILE or /etc/dcctl/repositories.yaml:
 *
 *   site: primary                 # the site this dcctl runs at: decides which repository `backup prune` may touch
 *   repositories:
 *     primary:   { url: "rest:https://10.10.50.11:8000/primary/",     passwordFile: /etc/dcctl/restic/primary.pass }
 *     secondary: { url: "rest:https://10.20.50.11:8000/secondary/", passwordFile: /etc/dcctl/restic/secondary.pass }
 *   ssh: { keyFile: /etc/dcctl/ssh/id_ed25519, knownHosts: /etc/dcctl/ssh/known_hosts }
 *   localHosts: [qn-bk-03]        # inventory hosts that are this machine: backed up without SSH
 *   stateDir: /var/lib/dcctl      # locks, run reports (default $DCCTL_STATE_DIR or ~/.local/state/dcctl)
 *   metricsFile: /var/lib/prometheus/node-exporter/dcctl_backup.prom
 *   cacheDir: /var/cache/dcctl/restic
 *   concurrency: 4                # jobs at once per site for `backup run --all`
 *   databases:                    # how the database engines log in on the hosts (passwords in files on the host)
 *     <engine>: { port: 5432, ... }           # one section per engine: its fields in databases/<engine>/config.ts
 *     hosts: { qn-db-04: { <engine>: { port: 3307 } } }   # per-host differences
 *     # restic runs on the database host (dump and restore) when the repository is a URL; resticOnHost: false streams
 *     # every dump through dcctl instead, for a host that cannot reach the repository (databases/dump.ts)
 *   hostRestic:                   # restic on the hosts (files jobs, database dumps and restores run it there)
 *     path: /opt/restic/restic    # the hosts' own restic, if not (only) on their PATH; used when 0.17.1 or newer
 *     push: true                  # default: failing that, copy dcctl's restic into the login's ~/.cache; false: fail
 *   lang: vi                      # reports, prompts and the console in Vietnamese (default en; --lang overrides)
 *   replication:                  # the account standbys log in to their primary with (dcctl replication setup)
 *     user: dcctl_replicator
 *     passwordFile: /etc/dcctl/replication.pass   # on this machine, mode 0600
 *   peers:                        # where the other site keeps its state when its management host is this machine
 *     secondary: { stateDir: /var/lib/dcctl }   # (localHosts; default: the same stateDir as here); over SSH, its
 *                                  # `dcctl peer-records serve` names its own (docs/operator/deployment.md)
 *   notify:                       # who is told of failed backup jobs and of DR runs (notify/); optional
 *     smtp: { host: mail.qn.gov.vn, port: 587, secure: false, from: "dcctl <dcctl@qn.gov.vn>", to: [trucban@qn.gov.vn],
 *             user: dcctl, passwordFile: /etc/dcctl/smtp.pass }   # user and passwordFile together or not at all; 0600
 *     webhook: { url: "https://chat.qn.gov.vn/hooks/dr", tokenFile: /etc/dcctl/webhook.token }   # bearer token; 0600
 *     consoleUrl: "https://10.10.50.11:8088"   # where `dcctl serve` answers: messages link <consoleUrl>/runs/<runId>
 *     on: [failure, drill, failover, failback] # which events are sent (default all); failure = a backup job,
 *                                              # replicate, prune or verify failed
 *   soc:                          # the province's SOC: every action's event, RFC 5424 over TLS (notify/soc-config.ts)
 *     collectors: [{ host: soc.qn.gov.vn, caFile: /etc/dcctl/soc/ca.pem, certFile: …, keyFile: … }]
 *     journald: true              # also to journald under systemd (default)
 *   limits:                       # how long restic may take before it is stopped, recorded and notified (backup/limits.ts)
 *     listing: 2m                 # a snapshot listing, lookup or forget answers within this
 *     stall: 10m                  # replicate and prune: progress unchanged this long (restic prints it every 5 s)
 *     replicate: 6h               # the whole of `backup replicate`; likewise prune: 6h, verify: 12h
 *   approval:                     # four eyes: a second operator approves each destructive action (backup/approval/)
 *     required: true
 *     ttl: 30m                    # a request waits this long for its approval, an approval this long for its use
 *     dir: /var/lib/dcctl/approvals   # shared by the operators' group, mode 3770 (default <stateDir>/approvals)
 *     approvers: [lan, minh]      # only these may approve (default: anyone but the one who asked)
 *
 * Each repository is owned by its site: the primary's by the primary, the secondary's by the secondary. The
 * secondary's rest-server runs --append-only, so from the primary it can be written and copied to but not pruned;
 * at the secondary, `url` points at a listener (or the local path) without --append-only, for `backup prune`.
 * Relative paths are resolved against the config file's folder.
 */

export interface RepositoryConfig {
  name: RepositoryName;
  /** The site that owns (and alone prunes) this repository; equal to its name. */
  owner: SiteName;
  repo: ResticRepo;
  /**
   * Why its password file cannot be read, as `file:line: …` of the repositories file: told when the repository is
   * used (repository()), rather than in restic's words after it started, and not to a command that never uses it.
   */
  unreadable?: string;
}

export interface BackupConfig {
  file: string;
  site: SiteName;
  repositories: Partial<Record<RepositoryName, RepositoryConfig>>;
  ssh: { keyFile?: string; knownHosts?: string };
  localHosts: string[];
  stateDir: string;
  metricsFile: string;
  cacheDir?: string;
  concurrency: number;
  databases: DatabaseSettings;
  replication?: { user: string; passwordFile: string };
  /** Which restic runs on the hosts: their own (at `path`, or on their PATH), else dcctl's copy unless `push` is false. */
  hostRestic?: { path?: string; push?: boolean };
  /** The language of reports, prompts and the console at this site, when set (util/i18n.ts). */
  lang?: Lang;
  /** Mail and webhook channels for failed backups and DR runs (notify/). */
  notify?: NotifyConfig;
  /** Where the other sites' control planes keep their state, when their management host is this machine (backup/peer-records.ts). */
  peers?: Partial<Record<SiteName, { stateDir: string }>>;
  /** Time limits of listings, replicate, prune and verify (backup/limits.ts); absent: the defaults. */
  limits?: SiteLimits;
  /** Four eyes on destructive actions (backup/approval/); absent: not required. */
  approval?: ApprovalSettings;
  /** The SOC feed's collectors and journald (notify/soc-config.ts); absent: no feed. */
  soc?: SocConfig;
}


interface RawConfig {
  site: SiteName;
  repositories: Partial<Record<RepositoryName, { url: string; passwordFile: string }>>;
  ssh?: { keyFile?: string; knownHosts?: string };
  localHosts?: string[];
  stateDir?: string;
  metricsFile?: string;
  cacheDir?: string;
  concurrency?: number;
  databases?: RawDatabaseSettings;
  replication?: { user?: string; passwordFile: string };
  hostRestic?: { path?: string; push?: boolean };
  lang?: Lang;
  notify?: RawNotifyConfig;
  peers?: Partial<Record<SiteName, { stateDir: string }>>;
  limits?: RawLimits;
  approval?: RawApproval;
  soc?: RawSocConfig;
}

const text = { type: "string", minLength: 1 } as const;
const port = { type: "integer", minimum: 1, maximum: 65535 } as const;
const notifySchema = {
  type: "object",
  additionalProperties: false,
  description: "Who is told of failed backup jobs, replicate, prune and verify, and of DR runs.",
  properties: {
    smtp: {
      type: "object",
      additionalProperties: false,
      required: ["host", "from", "to"],
      dependentRequired: { user: ["passwordFile"], passwordFile: ["user"] },
      description: "Mail, STARTTLS when the server offers it.",
      properties: {
        host: { ...text, description: "The SMTP server." },
        port: { ...port, description: "Default 465 with secure, else 587." },
        secure: { type: "boolean", description: "TLS from the first byte; default true on port 465." },
        from: { ...text, description: "The sender, e.g. \"dcctl <dcctl@qn.gov.vn>\"." },
        to: { type: "array", minItems: 1, items: text, description: "The recipients." },
        user: { ...text, description: "The SMTP login; with passwordFile or not at all." },
        passwordFile: { ...text, description: "A file holding the SMTP password, mode 0600; with user or not at all." },
      },
    },
    webhook: {
      type: "object",
      additionalProperties: false,
      required: ["url"],
      description: "A JSON POST {event, subject, text, link, run, status} per message.",
      properties: { url: { ...text, description: "Where to POST; named by its origin only in output." }, tokenFile: { ...text, description: "A file holding a bearer token, mode 0600." } },
    },
    consoleUrl: { ...text, description: "Where `dcctl serve` answers: messages link <consoleUrl>/runs/<runId>." },
    on: { type: "array", minItems: 1, items: { enum: [...NOTIFY_EVENTS] }, description: "Which events are sent (default all); failure: a backup job, replicate, prune or verify failed." },
  },
} as const;
const schema = {
  type: "object",
  additionalProperties: false,
  required: ["site", "repositories"],
  properties: {
    site: { enum: [...SITE_NAMES], description: "The site this dcctl runs at: it decides which repository `backup prune` may touch." },
    repositories: {
      type: "object",
      additionalProperties: false,
      minProperties: 1,
      description: "The restic repositories, by the site that owns (and alone prunes) each.",
      properties: Object.fromEntries(
        REPOSITORY_NAMES.map((n) => [
          n,
          {
            type: "object",
            additionalProperties: false,
            required: ["url", "passwordFile"],
            description: "A repository, named after the site that owns it.",
            properties: {
              url: { ...text, description: "A restic repository: rest:https://... (rest-server), or a path on this machine." },
              passwordFile: { ...text, description: "A file holding the repository's password, mode 0600." },
            },
          },
        ]),
      ),
    },
    ssh: {
      type: "object",
      additionalProperties: false,
      description: "How this machine logs in to the hosts.",
      properties: { keyFile: { ...text, description: "The private key (else the SSH agent)." }, knownHosts: { ...text, description: "The pinned known_hosts: an unknown or changed host key stops the job." } },
    },
    localHosts: { type: "array", items: text, description: "Inventory hosts that are this machine: backed up without SSH." },
    stateDir: { ...text, description: "Locks, run reports, DR journals; default $DCCTL_STATE_DIR or ~/.local/state/dcctl." },
    metricsFile: { ...text, description: "The Prometheus textfile of backup runs; default <stateDir>/backup/dcctl_backup.prom." },
    cacheDir: { ...text, description: "restic's cache folder here (RESTIC_CACHE_DIR); default restic's own." },
    concurrency: { type: "integer", minimum: 1, maximum: 64, default: 4, description: "Jobs at once per site for `backup run --all`." },
    // Each engine's section (databases/<engine>/config.ts), at the top and per host.
    databases: databaseSettingsSchema(),
    replication: {
      type: "object",
      additionalProperties: false,
      required: ["passwordFile"],
      description: "The account standbys log in to their primary with (`dcctl replication setup`).",
      properties: { user: { ...text, default: "dcctl_replicator", description: "Its name." }, passwordFile: { ...text, description: "A file on this machine holding its password, mode 0600." } },
    },
    // A path on the hosts, not on this machine: absolute, never resolved against this file's folder.
    hostRestic: {
      type: "object",
      additionalProperties: false,
      description: "Which restic runs on the hosts (files jobs, database dumps and restores run it there).",
      properties: {
        path: { type: "string", pattern: "^/", description: "The hosts' own restic, if not (only) on their PATH; used when 0.17.1 or newer." },
        push: { type: "boolean", default: true, description: "Failing that, copy dcctl's restic into the login's ~/.cache; false: the job fails instead." },
      },
    },
    lang: { enum: [...LANGS], description: "Reports, prompts and the console in this language (default en; --lang and DCCTL_LANG override)." },
    notify: notifySchema,
    peers: {
      type: "object",
      additionalProperties: false,
      description: "Where the other sites keep their state when their management host is this machine (localHosts); over SSH, the forced command `dcctl peer-records serve` on that host names its own.",
      properties: Object.fromEntries(
        SITE_NAMES.map((n) => [n, { type: "object", additionalProperties: false, required: ["stateDir"], description: "The other site's management host.", properties: { stateDir: { ...text, description: "Its stateDir there (a site not listed: the same as this site's)." } } }]),
      ),
    },
    limits: LIMITS_SCHEMA,
    approval: APPROVAL_SCHEMA,
    soc: SOC_SCHEMA,
  },
} as const;

/** The repositories file's schema as the build compiles it (util/validator.ts). */
export const REPOSITORIES_SCHEMA: SchemaSpec = { name: "repositories", schema, options: { allErrors: true, strict: false } };
const validator = schemaValidator<RawConfig>(REPOSITORIES_SCHEMA);

export function backupConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.DCCTL_REPOS_FILE ? resolve(env.DCCTL_REPOS_FILE) : "/etc/dcctl/repositories.yaml";
}

/** The state folder: $DCCTL_STATE_DIR or ~/.local/state/dcctl (as `dcctl infra` uses it). */


/** Reads the backup config; every problem as `file:line: message` (InputError, exit 2). */
export function loadBackupConfig(path: string = backupConfigPath(), env: NodeJS.ProcessEnv = process.env): BackupConfig {
  let body: string;
  try {
    body = readYamlFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const hint = code === "ENOENT" ? " (set DCCTL_REPOS_FILE or create it; see backup/repositories.ts)" : "";
    throw new InputError([`${displayPath(path)}: cannot read the repositories config: ${code ?? errorMessage(e)}${hint}`]);
  }
  const source = cachedYaml(path, body, parseYamlSource, displayPath);
  if (source.syntaxProblems.length) throw new InputError(source.syntaxProblems);
  const data: unknown = source.data;
  const validate = validator();
  if (!validate(data)) {
    throw new InputError(
      (validate.errors ?? []).map((e) => {
        const p = e.instancePath.split("/").slice(1);
        const extra = e.keyword === "additionalProperties" ? ` "${String(e.params.additionalProperty)}"` : "";
        return source.problem(p, `${p.join(".") || "the file"}: ${e.message ?? "is invalid"}${extra}`);
      }),
    );
  }
  const base = dirname(resolve(path));
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  const repositories: BackupConfig["repositories"] = {};
  for (const name of REPOSITORY_NAMES) {
    const r = data.repositories[name];
    // A local-path repository is relative to the config too; rest:, s3: and the like are URLs.
    const url = r && !/^[a-z0-9]+:/.test(r.url) ? abs(r.url) : r?.url;
    if (r && url) repositories[name] = { name, owner: name, repo: { url, passwordFile: abs(r.passwordFile) } };
  }
  const replication = data.replication ? { user: data.replication.user ?? "dcctl_replicator", passwordFile: abs(data.replication.passwordFile) } : undefined;
  const notified = data.notify ? notifyConfig(data.notify, abs) : undefined;
  if (notified?.problems.length) throw new InputError(notified.problems.map((p) => source.problem(p.path, p.message)));
  const notify = notified?.value;
  const soc = data.soc ? socConfig(data.soc, abs) : undefined;
  if (soc?.problems.length) throw new InputError(soc.problems.map((p) => source.problem(p.path, p.message)));
  const limits = siteLimits(data.limits);
  if (limits.problems.length) throw new InputError(limits.problems.map((p) => source.problem(p.path, p.message)));
  const secrets: [string[], string | undefined][] = [
    ...REPOSITORY_NAMES.map((name): [string[], string | undefined] => [["repositories", name, "passwordFile"], repositories[name]?.repo.passwordFile]),
    [["replication", "passwordFile"], replication?.passwordFile],
    [["notify", "smtp", "passwordFile"], notify?.smtp?.passwordFile],
    [["notify", "webhook", "tokenFile"], notify?.webhook?.tokenFile],
  ];
  const exposed = secrets.flatMap(([path, file]) => {
    const mode = file ? secretFileMode(file) : undefined;
    return file && typeof mode === "number" && (mode & 0o077) !== 0
      ? [source.problem(path, `${path.join(".")}: ${file} is readable by others (mode 0${(mode & 0o777).toString(8)}); chmod 600 it`)]
      : [];
  });
  if (exposed.length) throw new InputError(exposed);
  for (const r of Object.values(repositories)) {
    const mode = secretFileMode(r.repo.passwordFile);
    const path = ["repositories", r.name, "passwordFile"];
    const why = typeof mode === "string" ? (mode === "ENOENT" ? "no such file" : mode) : (mode & constants.S_IFMT) !== constants.S_IFREG ? "not a regular file" : undefined;
    if (why) r.unreadable = source.problem(path, `${path.join(".")}: ${r.repo.passwordFile}: ${why}`);
  }
  const stateDir = data.stateDir ? abs(data.stateDir) : dcctlStateDir(env);
  const approval = approvalSettings(data.approval, join(stateDir, "approvals"), abs);
  if (approval.problems.length) throw new InputError(approval.problems.map((p) => source.problem(p.path, p.message)));
  return {
    file: source.displayPath,
    site: data.site,
    repositories,
    ssh: { keyFile: data.ssh?.keyFile ? abs(data.ssh.keyFile) : undefined, knownHosts: data.ssh?.knownHosts ? abs(data.ssh.knownHosts) : undefined },
    localHosts: [...(data.localHosts ?? [])],
    stateDir,
    metricsFile: data.metricsFile ? abs(data.metricsFile) : join(stateDir, "backup", "dcctl_backup.prom"),
    cacheDir: data.cacheDir ? abs(data.cacheDir) : undefined,
    concurrency: data.concurrency ?? 4,
    databases: databaseSettings(data.databases),
    ...(replication ? { replication } : {}),
    ...(data.hostRestic ? { hostRestic: { ...data.hostRestic } } : {}),
    ...(data.lang ? { lang: data.lang } : {}),
    ...(notify ? { notify } : {}),
    ...(data.peers ? { peers: Object.fromEntries(Object.entries(data.peers).map(([site, p]) => [site, { stateDir: abs(p.stateDir) }])) } : {}),
    limits: limits.value,
    ...(approval.value ? { approval: approval.value } : {}),
    ...(soc ? { soc: soc.value } : {}),
  };
}

/** The site's time limits: its repositories file's, or the defaults for a config built without one. */
export function limitsOf(config: Pick<BackupConfig, "limits">): SiteLimits {
  return config.limits ?? DEFAULT_LIMITS;
}

/** The permission bits of a secret file, or the error code when it cannot be looked at. */
function secretFileMode(file: string): number | string {
  try {
    return statSync(file).mode;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? errorMessage(e);
  }
}

/** The configured repository, or a bad-input error naming the config file. */
export function repository(config: BackupConfig, name: RepositoryName): RepositoryConfig {
  const r = config.repositories[name];
  if (!r) throw new InputError([`${config.file}: no "${name}" repository configured (repositories.${name}.url and passwordFile)`]);
  if (r.unreadable) throw new InputError([r.unreadable]);
  return r;
}

/**
 * A restic wrapper for a configured repository; waits up to a minute for a lock another restic holds on it. A listing
 * is bounded by `listingMs`, else by `stallMs` (a job's), else by the site's limits.listing.
 */
export function resticFor(config: BackupConfig, name: RepositoryName, opts: Pick<ResticOptions, "limitUploadKiB" | "stallMs" | "listingMs" | "signal" | "progress" | "onHostRestic"> = {}): Restic {
  const r = repository(config, name);
  const listingMs = opts.listingMs ?? opts.stallMs ?? limitsOf(config).listingMs;
  // Notes (a dead process's lock removed) go where the operator or the scheduler's log sees them, beside the output.
  return new Restic(r.repo, { cacheDir: config.cacheDir, retryLock: "1m", onNote: (line) => void process.stderr.write(line + "\n"), ...(config.hostRestic ? { hostRestic: config.hostRestic } : {}), ...opts, listingMs });
}
