/**
 * The catalogue of the events dcctl sends to the province's SOC (notify/event-feed.ts): one stable ID per kind of
 * event, its severity and what it means. docs/operator/soc-events.md is the same catalogue for the SOC's analysts
 * (test/unit/soc-events.test.ts holds the two together). An ID never changes meaning and is never reused: a SOC's
 * rules match on it (the syslog MSGID, journald's DCCTL_EVENT_ID). New kinds take new IDs in their block:
 *   10xx backups and their repositories · 11xx restores · 20xx DR runs · 21xx replication
 *   30xx four-eyes approvals · 31xx refusals · 40xx snapshots the secondary does not trust · 50xx console access
 *   90xx the feed itself
 */

/** RFC 5424's severities, by their syslog keywords; the number is the syslog severity code. */
export const SEVERITIES = { emerg: 0, alert: 1, crit: 2, err: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;
export type Severity = keyof typeof SEVERITIES;

/**
 * How an action ended, or what the event says of it. `started` opens an action whose end is another event;
 * `locked`: another run held what it needed, so it did nothing; `missed`: a DR run whose steps all ended well but
 * that missed an RPO or RTO target; `refused`: a guard or a person said no; `detected`: an alarm about data.
 */
export const OUTCOMES = ["started", "ok", "failed", "stalled", "stopped", "locked", "missed", "refused", "requested", "granted", "detected"] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface CatalogueEntry {
  id: `DCCTL-${number}`;
  /** What the event is, in a few words: the message's start and the SD parameter `action`. */
  title: string;
  /** The severity when it ends well; a failure raises it (severityOf). */
  severity: Severity;
  /** When it is sent and what it tells, for the SOC's analyst. */
  meaning: string;
  /** Its own structured-data parameters, beside those every event carries (EVENT_FIELDS). */
  fields: Record<string, string>;
  /** Who sends it: a module of this release, or the work that will (IDs given ahead so that it is wired by one call). */
  emittedBy: string;
}

/** What every event carries, as structured-data parameters (syslog) and DCCTL_* fields (journald). */
export const EVENT_FIELDS: Record<string, string> = {
  uid: "the event's own id (a UUID): the same on every resend, so a collector can drop a duplicate",
  site: "the site whose dcctl acted (primary, secondary)",
  user: "the OS user dcctl ran as",
  sudoUser: "the user who ran it through sudo (SUDO_USER), when one did",
  approver: "the second operator who approved the action (four eyes), when one did",
  action: "what was done: the catalogue title",
  target: "what it was done to: a job, a repository, a host and database, a runbook's scope",
  run: "the run id: a backup run's, a DR run's (dr history), a replicate's or prune's",
  outcome: `how it ended: ${OUTCOMES.join(", ")}`,
  chainSeq: "DR runs: the number of records in the run's hash-chained journal when the event was sent",
  chainHead: "DR runs: the journal's chain head then (sha256:…), which `dcctl dr verify-report --head` checks",
};

export const CATALOGUE = {
  "backup.job": {
    id: "DCCTL-1001",
    title: "backup job ended",
    severity: "info",
    meaning: "One job of a `dcctl backup run` ended: its snapshots were kept (ok), or nothing of it was (failed, stopped), or another run had its host or repository (locked).",
    fields: { host: "the inventory host backed up", repository: "the repository written", snapshots: "the snapshots kept, comma-separated", bytesAdded: "bytes added to the repository", filesNew: "new files", filesChanged: "changed files", error: "why it failed" },
    emittedBy: "backup/unattended.ts (every `backup run`)",
  },
  "backup.replicate": {
    id: "DCCTL-1002",
    title: "replicate ended",
    severity: "info",
    meaning: "`dcctl backup replicate` copied the snapshots the secondary's repository lacked, or failed, stalled or was stopped (nothing is removed either way).",
    fields: { from: "the source repository", copied: "snapshots copied", alreadyThere: "snapshots the destination had", error: "why it failed" },
    emittedBy: "backup/unattended.ts",
  },
  "backup.prune": {
    id: "DCCTL-1003",
    title: "prune ended",
    severity: "notice",
    meaning: "`dcctl backup prune` forgot snapshots by retention and removed their data from the site's own repository: data is deleted, so it is a notice even when it went well.",
    fields: { removed: "snapshots forgotten", pruned: "whether unreferenced data was removed", error: "why it failed" },
    emittedBy: "backup/unattended.ts",
  },
  "backup.forget": {
    id: "DCCTL-1004",
    title: "snapshots forgotten",
    severity: "notice",
    meaning: "Snapshots were forgotten by name (not by retention), e.g. forged ones an operator removes: which, and by whom.",
    fields: { snapshots: "the snapshots forgotten, comma-separated", repository: "the repository" },
    emittedBy: "reserved for `backup forget` (four eyes, issue 24)",
  },
  "backup.verify": {
    id: "DCCTL-1005",
    title: "verify ended",
    severity: "info",
    meaning: "`dcctl backup verify` (restic check) proved the repository readable, or found errors.",
    fields: { subset: "the part of the data read back", sizeBytes: "the repository's size", snapshots: "snapshots in it", error: "what restic found" },
    emittedBy: "backup/unattended.ts",
  },
  "backup.unlock": {
    id: "DCCTL-1006",
    title: "repository locks removed",
    severity: "notice",
    meaning: "`dcctl backup unlock` removed restic locks; with removeAll, also the locks of runs that may be alive.",
    fields: { removed: "how many locks", removeAll: "whether live processes' locks were removed too", locks: "the locks, as the command named them" },
    emittedBy: "cli/backup.ts (`backup unlock`)",
  },
  "restore.started": {
    id: "DCCTL-1101",
    title: "restore started",
    severity: "notice",
    meaning: "`dcctl restore` began to write a database or a path from a backup (or a point-in-time archive) onto a host.",
    fields: { source: "the host whose backup is restored", kind: "database, path or point-in-time", snapshot: "the snapshot named (or latest)", targetHost: "where it is written", overwrite: "whether it may replace what is there" },
    emittedBy: "cli/restore.ts",
  },
  "restore.ended": {
    id: "DCCTL-1102",
    title: "restore ended",
    severity: "notice",
    meaning: "The restore ended: what was written where, or why not.",
    fields: { source: "as above", kind: "as above", snapshot: "the snapshot restored", targetHost: "as above", replaced: "whether it replaced an existing database", error: "why it failed" },
    emittedBy: "cli/restore.ts",
  },
  "dr.drill.started": { id: "DCCTL-2001", title: "DR drill started", severity: "info", meaning: "A drill began (or was resumed: resumed=true) at the secondary.", fields: drFields(), emittedBy: "runbooks/engine/runner.ts" },
  "dr.drill.ended": { id: "DCCTL-2002", title: "DR drill ended", severity: "info", meaning: "A drill ended, with its journal's chain head.", fields: drEndFields(), emittedBy: "runbooks/engine/runner.ts" },
  "dr.failover.started": { id: "DCCTL-2003", title: "DR failover started", severity: "warning", meaning: "A failover began (or was resumed): services move to the other site.", fields: drFields(), emittedBy: "runbooks/engine/runner.ts" },
  "dr.failover.ended": { id: "DCCTL-2004", title: "DR failover ended", severity: "warning", meaning: "A failover ended, with its journal's chain head.", fields: drEndFields(), emittedBy: "runbooks/engine/runner.ts" },
  "dr.failback.started": { id: "DCCTL-2005", title: "DR failback started", severity: "notice", meaning: "A failback began (or was resumed): services move back to the primary.", fields: drFields(), emittedBy: "runbooks/engine/runner.ts" },
  "dr.failback.ended": { id: "DCCTL-2006", title: "DR failback ended", severity: "notice", meaning: "A failback ended, with its journal's chain head.", fields: drEndFields(), emittedBy: "runbooks/engine/runner.ts" },
  "dr.recover.started": { id: "DCCTL-2007", title: "DR recover started", severity: "warning", meaning: "`dcctl dr recover` began to bring a service back to its clean point before an attack.", fields: drFields(), emittedBy: "runbooks/engine/runner.ts" },
  "dr.recover.ended": { id: "DCCTL-2008", title: "DR recover ended", severity: "warning", meaning: "`dcctl dr recover` ended.", fields: drEndFields(), emittedBy: "runbooks/engine/runner.ts" },
  "replication.setup": {
    id: "DCCTL-2101",
    title: "replication set up",
    severity: "notice",
    meaning: "A standby was made (or found to be) a replica of its primary: `dcctl replication setup`, or a DR run's reprotect step. A replica seeded anew replaces what the standby held.",
    fields: { primary: "the host followed", standby: "the host that follows", engine: "postgresql or mariadb", result: "what was done (kept, seeded, rewound…)", error: "why it failed" },
    emittedBy: "backup/replication (setup), runbooks/engine/services.ts (reprotect)",
  },
  "replication.promote": {
    id: "DCCTL-2102",
    title: "standby promoted",
    severity: "warning",
    meaning: "A standby was promoted to a primary that takes writes (a failover's or failback's promote step).",
    fields: { pair: "the replication pair", engine: "postgresql or mariadb", result: "what the engine said it did", error: "why it failed" },
    emittedBy: "runbooks/engine/services.ts",
  },
  "approval.requested": {
    id: "DCCTL-3001",
    title: "approval requested",
    severity: "notice",
    meaning: "An operator asked for a second operator's approval of a destructive action; the request's code and what it would change.",
    fields: { ...approvalFields(), change: "what the action would change, as the operator was asked" },
    emittedBy: "cli/approvals.ts (the gate of every gated action)",
  },
  "approval.granted": { id: "DCCTL-3002", title: "approval granted", severity: "notice", meaning: "Another operator approved the request (approver names them).", fields: approvalFields(), emittedBy: "cli/approvals.ts (`dcctl approve`)" },
  "approval.refused": {
    id: "DCCTL-3003",
    title: "approval refused",
    severity: "warning",
    meaning: "An approval was refused: a self-approval, an expired request, one not this operator's to approve, or the approver said no (declined).",
    fields: { ...approvalFields(), reason: "why, in a word (self-approval, expired, not-approver, declined…)" },
    emittedBy: "cli/approvals.ts (`dcctl approve`)",
  },
  "action.refused": {
    id: "DCCTL-3101",
    title: "action refused",
    severity: "warning",
    meaning: "dcctl refused an action: a destructive one not confirmed (exit 5), or a guard that stopped it (four eyes without a valid approval, exit 8; a trust check).",
    fields: { command: "the command line's words (dcctl never takes a secret on it), or the gated action", reason: "the refusal, as the operator saw it, or four eyes' word for it (pending, expired, mismatch, used…)", guard: "the guard that refused: four eyes, …", code: "four eyes: the request's code" },
    emittedBy: "cli/main.ts (every exit 5), cli/approvals.ts (four eyes' gate, exit 8); trust guards to come",
  },
  "snapshot.implausible": {
    id: "DCCTL-4001",
    title: "implausible snapshot",
    severity: "alert",
    meaning: "A snapshot claims a time the secondary cannot believe (in the future, far from its arrival, older than the job's others, or with no run the primary's ledger knows): quarantined, never counted as a good backup.",
    fields: { snapshot: "its id", repository: "where it is", job: "the job it claims", claimedTime: "the time it claims", firstSeen: "when this site first saw it", reason: "which check it failed" },
    emittedBy: "backup/arrival-ledger.ts: the listing at the site keeping the repository that first judges it (status, the console, prune, a restore), once per snapshot",
  },
  "snapshot.suspicious": {
    id: "DCCTL-4002",
    title: "suspicious snapshot",
    severity: "crit",
    meaning: "A snapshot's changes look like ransomware (a jump in new and changed files, bytes added, incompressible data): restores and drills take the one before it.",
    fields: { snapshot: "its id", repository: "where it is", job: "its job", score: "its anomaly score", threshold: "the job's threshold" },
    emittedBy: "backup/arrival-ledger.ts, once a suspicious verdict is recorded for a snapshot (addDistrust, from backup/anomaly.ts's score); reserved until then",
  },
  "snapshot.accepted": {
    id: "DCCTL-4003",
    title: "distrusted snapshot accepted",
    severity: "warning",
    meaning: "An operator trusted a snapshot the site had judged implausible or suspicious (`dcctl backup accept`): from now on it counts as a good backup, takes a place in retention and can be restored as the newest. Where four eyes is on, `approver` names the second operator.",
    fields: { snapshot: "its id", repository: "where it is", overruled: "what it had been judged (kind: reason; …)", reason: "why the operator says it is real" },
    emittedBy: "cli/backup.ts (`backup accept`)",
  },
  "console.login": {
    id: "DCCTL-5001",
    title: "console login with a token",
    severity: "notice",
    meaning: "Someone opened the duty room's console with its token (`?token=`): a session cookie was given.",
    fields: { client: "the client's address", console: "the console's address" },
    emittedBy: "console/server.ts",
  },
  "console.login-refused": {
    id: "DCCTL-5002",
    title: "console login refused",
    severity: "warning",
    meaning: "A request brought a wrong console token. At most one event per client address a minute; attempts counts them.",
    fields: { client: "the client's address", console: "the console's address", attempts: "wrong tokens from that address since the last such event" },
    emittedBy: "console/server.ts",
  },
  "feed.damaged": {
    id: "DCCTL-9001",
    title: "event spool damaged",
    severity: "warning",
    meaning: "The spool held the torn start of an event (a crash of the machine while it was written); that event is lost, the ones before and after it are not.",
    fields: { bytes: "the torn bytes' length" },
    emittedBy: "notify/event-spool.ts",
  },
} as const satisfies Record<string, CatalogueEntry>;

export type EventKind = keyof typeof CATALOGUE;

function drFields(): Record<string, string> {
  return { kind: "drill, failover, failback or recover", runbook: "the runbook's name", to: "the site that takes over", resumed: "true when `dr resume` continued it", confirmedBy: "how the operator confirmed it" };
}

function drEndFields(): Record<string, string> {
  return { ...drFields(), message: "a failure's or a missed target's message", reportFile: "the report written" };
}

function approvalFields(): Record<string, string> {
  return { code: "the request's short code", request: "the action requested", requestedBy: "who asked", expires: "when the request lapses" };
}

/** The outcomes that raise an event's severity: a failure to err, a stop or refusal to warning. */
const RAISED: Partial<Record<Outcome, Severity>> = { failed: "err", stalled: "err", stopped: "warning", locked: "warning", missed: "warning", refused: "warning" };

/** The event's severity: its kind's, raised by an outcome that went wrong (never lowered). */
export function severityOf(kind: EventKind, outcome: Outcome): Severity {
  const base: Severity = CATALOGUE[kind].severity;
  const raised = RAISED[outcome];
  return raised !== undefined && SEVERITIES[raised] < SEVERITIES[base] ? raised : base;
}

/** The catalogue entry of an ID (DCCTL-1001), for a reader of the spool or a collector's message. */
export function kindOfId(id: string): EventKind | undefined {
  return (Object.keys(CATALOGUE) as EventKind[]).find((k) => CATALOGUE[k].id === id);
}

/** One event as the spool keeps it (one JSON line) and the senders turn it into a syslog message or a journal entry. */
export interface FeedEvent {
  /** The record's format. */
  v: 1;
  /** Its own id (a UUID): a resend carries the same one. */
  uid: string;
  /** The catalogue ID, e.g. DCCTL-1001. */
  id: string;
  kind: EventKind;
  /** When it was emitted (ISO, UTC). */
  at: string;
  severity: Severity;
  site: string;
  /** The machine dcctl ran on, and its process. */
  host: string;
  pid: number;
  /** The dcctl release that emitted it. */
  version: string;
  user: string;
  sudoUser?: string;
  approver?: string;
  action: string;
  target: string;
  run?: string;
  outcome: Outcome;
  /** One line for a person. */
  message: string;
  /** DR runs: the journal's records so far and its chain head (sha256 hex). */
  chain?: { seq: number; hash: string };
  /** The kind's own fields (CatalogueEntry.fields), as text. */
  data?: Record<string, string>;
}
