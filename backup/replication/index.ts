import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Sites } from "../../inventory/index.js";
import { ExitCode, InputError, errorMessage } from "../../util/errors.js";
import { hostPool, type Executor } from "../../hosts/index.js";
import { ENGINES } from "../../databases/registry.js";
import { withEvents } from "../../notify/event-feed.js";
import { writeAtomic } from "../../util/files.js";
import { renderGauges, type Gauge } from "../../util/prometheus.js";
import type { BackupConfig } from "../repositories.js";
import { replicationPairs, type ReplicationPair } from "./pairs.js";
import type { ReplicaSetupResult, ReplicaStatus, ReplicationAccount, ServerEnd } from "../../databases/replication.js";

export { pairFollowedBy, replicationPairs, reversed, type ReplicationPair } from "./pairs.js";

/** A pair's status as `replication status` reports it: the engine's measurement judged against the tier's RPO. */
export interface PairStatus extends ReplicaStatus {
  pair: string;
  engine: ReplicationPair["engine"];
  primary: string;
  standby: string;
  tier: number;
  rpoSeconds: number;
  /** Streaming and within the RPO. */
  ok: boolean;
  overRpo: boolean;
}

/** How the commands reach hosts; the CLI passes SSH executors from the backup config, tests their own. */
export type HostExecutors = (host: ServerEnd["host"]) => Executor;

/** The pair a standby's name names, or bad input listing the pairs there are. */
export function findPair(sites: Sites, name: string): ReplicationPair {
  const pairs = replicationPairs(sites);
  const pair = pairs.find((p) => p.name === name || p.primary.name === name);
  if (!pair) throw new InputError([`dcctl replication: no replication pair "${name}" (pairs: ${pairs.map((p) => `${p.name} ← ${p.primary.name}`).join(", ") || "none: no secondary host has standbyFor with a database its primary runs"})`]);
  return pair;
}

/** The replication account from the backup config; its password file must be this machine's and 0600 (checked on load). */
export function replicationAccount(config: BackupConfig): ReplicationAccount {
  if (!config.replication) throw new InputError([`${config.file}: no replication account configured (replication.passwordFile, and replication.user, default dcctl_replicator)`]);
  let password: string;
  try {
    password = readFileSync(config.replication.passwordFile, "utf8").trim();
  } catch (e) {
    throw new InputError([`${config.file}: replication.passwordFile ${config.replication.passwordFile}: cannot read it: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`]);
  }
  if (!password) throw new InputError([`${config.file}: replication.passwordFile ${config.replication.passwordFile} is empty`]);
  return { user: config.replication.user, password };
}

/** Where a setup run outside a DR run keeps a former primary's diverged writes: the state folder, by host and time. */
export function divergedKeepDir(config: BackupConfig, host: string, at: Date = new Date()): string {
  return join(config.stateDir, "replication", "diverged", `${host}-${at.toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "")}`);
}

/**
 * Makes the pair's standby its primary's replica. A standby that is a former primary holding writes past the fork is
 * refused (exit 5, the writes kept in `diverged.keepDir`, default divergedKeepDir) unless `diverged.discard`.
 */
export async function setupPair(
  config: BackupConfig,
  pair: ReplicationPair,
  exec: HostExecutors,
  o: { overwrite: boolean; log(line: string): void; diverged?: { keepDir?: string; discard?: boolean } },
): Promise<ReplicaSetupResult> {
  const account = replicationAccount(config);
  const end = (host: ServerEnd["host"]): ServerEnd => ({ host, exec: exec(host) });
  const diverged = { keepDir: o.diverged?.keepDir ?? divergedKeepDir(config, pair.standby.name), discard: o.diverged?.discard ?? false };
  // Told to the SOC either way: a standby seeded anew has had what it held replaced.
  return withEvents(
    config,
    { ended: "replication.setup" },
    { target: pair.standby.name, data: { primary: pair.primary.name, standby: pair.standby.name, engine: pair.engine } },
    () => ENGINES[pair.engine].setupReplica(config, end(pair.primary), end(pair.standby), account, { overwrite: o.overwrite, log: o.log, diverged }),
    (r) => ({ result: r.action }),
  );
}

/** Every pair's status, measured side by side; one that cannot be measured is unreachable, never an exception. */
export async function pairStatuses(config: BackupConfig, pairs: ReplicationPair[], exec: HostExecutors): Promise<PairStatus[]> {
  return Promise.all(
    pairs.map(async (pair) => {
      const measure = async (): Promise<ReplicaStatus> => {
        try {
          return await ENGINES[pair.engine].replicaStatus(config, { host: pair.primary, exec: exec(pair.primary) }, { host: pair.standby, exec: exec(pair.standby) });
        } catch (e) {
          return { health: "unreachable", primaryAnswered: false, notes: [errorMessage(e)], measuredAt: new Date().toISOString() };
        }
      };
      let s = await measure();
      // A live host on a loaded machine can miss one bounded probe (its SSH login alone may take seconds). A second
      // probe tells it from a lost one: it reuses the login the first one started, and costs a lost host one more bound.
      if (!s.primaryAnswered && s.health !== "not-a-replica") s = await measure();
      const overRpo = s.lagSeconds !== undefined && s.lagSeconds > pair.rpoSeconds;
      return { ...s, pair: pair.name, engine: pair.engine, primary: pair.primary.name, standby: pair.standby.name, tier: pair.tier, rpoSeconds: pair.rpoSeconds, overRpo, ok: s.health === "streaming" && !overRpo };
    }),
  );
}

/** Exit 4 when any pair is broken, not replicating or over its RPO (as `backup status` exits for jobs). */
export function statusExitCode(statuses: PairStatus[]): ExitCode {
  return statuses.every((s) => s.ok) ? ExitCode.ok : ExitCode.partial;
}

/** Where the last measurement is kept (read by `backup status` and the DR report), and the Prometheus textfile. */
function replicationPaths(config: BackupConfig): { lastStatus: string; metricsFile: string } {
  return { lastStatus: join(config.stateDir, "replication", "last-status.json"), metricsFile: join(dirname(config.metricsFile), "dcctl_replication.prom") };
}

function readLastStatus(config: BackupConfig): PairStatus[] {
  try {
    return JSON.parse(readFileSync(replicationPaths(config).lastStatus, "utf8")) as PairStatus[];
  } catch {
    return [];
  }
}

/**
 * Keeps the measurement and rewrites the textfile, each atomically. Pairs measured before and not now (a status of
 * one pair) keep their last figures, while they are still pairs of the inventory (`known`).
 */
/**
 * Measures pairs over executors of their own (each probe bounded by PROBE_TIMEOUT_MS, so a lost site costs seconds),
 * closes them, and keeps the figures as `replication status` does unless told not to (the read-only console). No pair:
 * nothing measured, nothing written.
 * `known`: every pair of the inventory, so that the record forgets pairs that no longer exist.
 */
export async function measurePairs(config: BackupConfig, pairs: ReplicationPair[], o: { record: false } | { record: true; known: ReplicationPair[] }): Promise<PairStatus[]> {
  if (!pairs.length) return [];
  const exec = hostPool(config);
  let statuses: PairStatus[];
  try {
    statuses = await pairStatuses(config, pairs, exec);
  } finally {
    await exec.closeAll();
  }
  if (o.record) recordStatuses(config, statuses, o.known);
  return statuses;
}

export function recordStatuses(config: BackupConfig, fresh: PairStatus[], known: ReplicationPair[]): void {
  const paths = replicationPaths(config);
  const names = new Set(known.map((p) => p.name));
  const measured = new Set(fresh.map((s) => s.pair));
  const all = [...readLastStatus(config).filter((s) => !measured.has(s.pair) && names.has(s.pair)), ...fresh].sort((a, b) => a.pair.localeCompare(b.pair));
  writeAtomic(paths.lastStatus, JSON.stringify(all, null, 1) + "\n");
  writeAtomic(paths.metricsFile, renderReplicationMetrics(all));
}

const METRICS: Gauge<PairStatus>[] = [
  { name: "dcctl_replication_lag_seconds", help: "Seconds the replica's data is behind its primary (the live RPO); NaN when unknown", value: (s) => s.lagSeconds ?? Number.NaN },
  { name: "dcctl_replication_lag_bytes", help: "WAL/binlog bytes written by the primary and not yet applied by the replica", value: (s) => s.lagBytes },
  { name: "dcctl_replication_rpo_seconds", help: "The RPO of the primary's DR tier", value: (s) => s.rpoSeconds },
  { name: "dcctl_replication_streaming", help: "1 when the replica is connected and replaying", value: (s) => (s.health === "streaming" ? 1 : 0) },
  { name: "dcctl_replication_ok", help: "1 when the replica streams within its tier's RPO", value: (s) => (s.ok ? 1 : 0) },
  { name: "dcctl_replication_measured_timestamp_seconds", help: "When the pair was last measured", value: (s) => Date.parse(s.measuredAt) / 1000 },
];

export function renderReplicationMetrics(statuses: PairStatus[]): string {
  return renderGauges(METRICS, statuses, (s) => ({ pair: s.pair, engine: s.engine, primary: s.primary, standby: s.standby })).join("\n") + "\n";
}

/** "0.4 s", "12 min": a lag as an operator reads it. */
export function describeLag(s: Pick<PairStatus, "lagSeconds">): string {
  if (s.lagSeconds === undefined) return "unknown";
  return s.lagSeconds < 120 ? `${s.lagSeconds.toFixed(1)} s` : `${(s.lagSeconds / 60).toFixed(1)} min`;
}
