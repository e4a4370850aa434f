import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { engineOf } from "../../../databases/registry.js";
import { describeLag, pairFollowedBy, replicationPairs, type ReplicationPair } from "../../../backup/replication/index.js";
import type { ReplicaStatus } from "../../../databases/replication.js";
import type { SiteHost } from "../../../inventory/index.js";
import { DcctlError, errorMessage } from "../../../util/errors.js";
import { defineStep, StepFailure, type RecoveredHost, type RestoredDatabase, type StepContext } from "./types.js";
import { Params } from "./params.js";
import { hostText } from "./on-hosts.js";

/**
 * `promote`: each target standby takes over from the primary it replicates (its database engine's
 * promotion: databases/<engine>/replication.ts). With `fallback`, a standby whose replica cannot serve — broken with data older than
 * the newest snapshot, or no replica at all — is made writable and its databases restored from the repository
 * instead. Each host's path, the reason for it and how old its data is are in the result (`recovered`), which the
 * report shows and RPO is measured from: the replication lag at the failure for a promoted replica, the snapshot's age
 * for a restore.
 */
interface PromoteParams {
  fallback?: { repository: string; databases: string[] };
  /** Planned switchovers: how long a replica may take to apply everything once writes stopped, seconds. */
  catchUp: number;
}

/** A mark in the run's folder, written before promoting: a resumed run knows the host was promoted, not restored. */
const markFile = (ctx: StepContext, host: string) => join(ctx.runDir, `promoted-${host}.json`);

export const promoteStep = defineStep<PromoteParams>({
  type: "promote",
  // A host already promoted (its mark) or not a replica is not promoted twice; a restore replaces what it restored.
  idempotent: true,
  parse(raw) {
    const p = new Params(raw);
    p.only("fallback", "catchUp");
    const catchUp = p.number("catchUp", 1) ?? 120;
    const fb = raw.fallback;
    if (fb === undefined) return p.result({ catchUp });
    const f = typeof fb === "object" && fb !== null && !Array.isArray(fb) ? (fb as Record<string, unknown>) : undefined;
    const dbs = f?.databases;
    const repository = f?.repository ?? "secondary";
    const extra = f ? Object.keys(f).filter((k) => k !== "databases" && k !== "repository") : [];
    if (!f || typeof repository !== "string" || !Array.isArray(dbs) || !dbs.length || !dbs.every((d) => typeof d === "string" && /^[A-Za-z0-9_]+$/.test(d)) || extra.length) {
      p.problems.push({ path: ["with", "fallback"], message: "with.fallback must be { repository: NAME, databases: [names] } (letters, digits, _)" });
      return p.result({ catchUp });
    }
    return p.result({ fallback: { repository, databases: dbs as string[] }, catchUp });
  },
  confirm: {
    texts: { en: { change: "promote standbys on {{hosts}}" }, vi: { change: "nâng máy chủ dự phòng {{hosts}} lên làm máy chủ chính" } },
    change: (p, _params, t) => t("change", { hosts: p.hosts.map((h) => h.name).join(", ") }),
  },
  plan(p, params) {
    const fallback = params.fallback ? `restore ${params.fallback.databases.join(", ")} from repository ${params.fallback.repository}` : undefined;
    return p.hosts.map((h) =>
      h.standbyFor === undefined && h.site === "secondary"
        ? `${hostText(h)}: stands by for no host${fallback ? `: ${fallback}` : ": nothing to promote"}`
        : `promote the replica on ${hostText(h)} of ${h.standbyFor ?? "its standby"}${p.kind === "drill" ? "" : ` (in a planned switchover: once it has applied everything, waiting at most ${params.catchUp} s)`}${fallback ? `; if it is broken with data older than the newest snapshot, or no replica, ${fallback} instead` : ""}`,
    );
  },
  async run(p, params, ctx) {
    const pairs = replicationPairs(ctx.sites);
    // A standby takes over from its primary; on the way back a primary host takes over from its standby.
    const outcomes = await Promise.allSettled(p.hosts.map((host) => recoverHost(ctx, host, pairFollowedBy(pairs, host.name), params)));
    const recovered: RecoveredHost[] = [];
    const restored: RestoredDatabase[] = [];
    const notes: string[] = [];
    const failed: string[] = [];
    outcomes.forEach((o, i) => {
      const name = p.hosts[i]?.name ?? "?";
      if (o.status === "rejected") return void failed.push(`${name}: ${errorMessage(o.reason)}`);
      if (o.value.recovered) recovered.push(o.value.recovered);
      restored.push(...o.value.restored);
      notes.push(...o.value.notes.map((n) => `${name}: ${n}`));
    });
    if (failed.length) throw new StepFailure(failed.join("; "), { recovered, restored });
    return { notes, data: { recovered, restored } };
  },
});

interface HostOutcome {
  recovered?: RecoveredHost;
  restored: RestoredDatabase[];
  notes: string[];
}

async function recoverHost(ctx: StepContext, host: SiteHost, pair: ReplicationPair | undefined, params: PromoteParams): Promise<HostOutcome> {
  const replicas = ctx.services.replicas;
  if (!replicas) throw new DcctlError("promote: no replication control is configured (backup config)");
  if (!pair) {
    if (!params.fallback) return { restored: [], notes: ["replicates nothing: nothing to promote"] };
    return restoreInstead(ctx, host, undefined, params.fallback, "no replica: the host replicates no database of a primary");
  }
  const base = { host: host.name, primary: pair.primary.name, engine: pair.engine };
  if (existsSync(markFile(ctx, host.name))) {
    const earlier = JSON.parse(readFileSync(markFile(ctx, host.name), "utf8")) as RecoveredHost;
    const notes = await replicas.promote(pair);
    // A restore the crash may have cut short is done again: it replaces what it restores.
    if (earlier.path === "restored" && params.fallback) return restoreInstead(ctx, host, pair, params.fallback, `${earlier.reason} (made writable earlier in this run)`);
    return { recovered: earlier, restored: [], notes: [`promoted earlier in this run (${earlier.reason}); ${notes.join("; ")}`] };
  }
  const status = ctx.planned ? await caughtUp(ctx, pair, params.catchUp) : await replicas.status(pair);
  if (status.health === "unreachable") throw new DcctlError(`the standby does not answer: ${status.notes.join("; ")}`);
  if (status.health === "not-a-replica") {
    if (!params.fallback) return { recovered: { ...base, path: "promoted", reason: "not a replica: already writable" }, restored: [], notes: ["not a replica: already a primary, nothing to promote"] };
    return restoreInstead(ctx, host, pair, params.fallback, `not a replica of ${pair.primary.name} (${status.notes.join("; ")})`);
  }
  const asOf = dataAsOf(status, ctx.failedAt);
  if (status.health === "broken" && params.fallback) {
    const newest = await ctx.services.snapshots?.newest(params.fallback.repository, pair.primary.name).catch(() => undefined);
    const stale = asOf === undefined || (newest !== undefined && Date.parse(newest.time) > Date.parse(asOf));
    if (stale && newest) {
      const why = `replica broken (${status.notes.join("; ")}) with data as of ${asOf ?? "an unknown time"}, older than snapshot ${newest.id} (${newest.time})`;
      await promoteMarked(ctx, pair, { ...base, path: "restored", reason: why });
      return restoreInstead(ctx, host, pair, params.fallback, why);
    }
  }
  const reason =
    status.health === "streaming"
      ? ctx.planned
        ? `replica caught up with the fenced primary (${status.primaryPosition ?? "?"}): nothing lost`
        : `replica streaming, lag ${describeLag(status)} when promoted`
      : `replica broken (${status.notes.join("; ")}); its data as of ${asOf ?? "an unknown time"} is the newest there is`;
  const recovered: RecoveredHost = { ...base, path: "promoted", reason, ...(asOf ? { dataAsOf: asOf } : {}), ...(status.lagSeconds !== undefined ? { lagSeconds: status.lagSeconds } : {}) };
  const notes = await promoteMarked(ctx, pair, recovered);
  return { recovered, restored: [], notes: [`${reason}: ${notes.join("; ")}`] };
}

/**
 * A switchover's wait: the primary's writes are stopped (fence), so the replica is done when it has applied all the
 * primary wrote. A replica that is not streaming, or not done in time, fails the step before anything is promoted.
 */
async function caughtUp(ctx: StepContext, pair: ReplicationPair, seconds: number): Promise<ReplicaStatus> {
  const replicas = ctx.services.replicas;
  if (!replicas) throw new DcctlError("promote: no replication control is configured");
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const s = await replicas.status(pair);
    if (s.health !== "streaming") throw new DcctlError(`a planned switchover needs a streaming replica; it is ${s.health} (${s.notes.join("; ")}): nothing promoted`);
    if (s.lagBytes === 0 || (s.lagBytes === undefined && s.primaryPosition !== undefined && s.primaryPosition === s.replicaPosition)) return s;
    if (Date.now() > deadline || ctx.signal.aborted) throw new DcctlError(`the replica had not applied everything after ${seconds} s (still ${s.lagBytes ?? "?"} bytes behind): nothing promoted`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Writes the mark, then promotes: a crash in between leaves a mark, and promoting again is harmless. */
async function promoteMarked(ctx: StepContext, pair: ReplicationPair, recovered: RecoveredHost): Promise<string[]> {
  writeFileSync(markFile(ctx, pair.name), JSON.stringify(recovered) + "\n");
  const replicas = ctx.services.replicas;
  if (!replicas) throw new DcctlError("promote: no replication control is configured");
  return replicas.promote(pair);
}

/**
 * Up to when the replica's data is complete: everything until it was measured when it had no lag, else until it last
 * heard from its primary (or its lag before the measurement); never later than the failure, after which nothing was
 * written that could be lost.
 */
function dataAsOf(s: ReplicaStatus, failedAt: Date): string | undefined {
  const measured = Date.parse(s.measuredAt);
  const upTo =
    s.health === "streaming" && s.lagSeconds === 0
      ? measured
      : s.lastReceivedAt !== undefined
        ? Date.parse(s.lastReceivedAt)
        : s.lagSeconds !== undefined
          ? measured - s.lagSeconds * 1000
          : undefined;
  return upTo === undefined ? undefined : new Date(Math.min(upTo, failedAt.getTime())).toISOString();
}


async function restoreInstead(ctx: StepContext, host: SiteHost, pair: ReplicationPair | undefined, fb: NonNullable<PromoteParams["fallback"]>, reason: string): Promise<HostOutcome> {
  const restorer = ctx.services.restorer;
  if (!restorer) throw new DcctlError("promote: the fallback restore needs a database restorer (backup config)");
  const source = pair?.primary.name ?? host.standbyFor ?? host.name;
  const engine = pair?.engine ?? engineOf(host.services);
  const restored: RestoredDatabase[] = [];
  for (const db of fb.databases) {
    const snap = await restorer.restore({ repository: fb.repository, sourceHost: source, engine, database: db, targetHost: host, targetDatabase: db, snapshot: "latest", replace: true });
    restored.push({ sourceHost: source, database: db, targetDatabase: db, targetHost: host.name, snapshotId: snap.snapshotId, snapshotTime: snap.snapshotTime });
  }
  const oldest = restored.map((r) => r.snapshotTime).sort()[0];
  const recovered: RecoveredHost = { host: host.name, primary: source, engine, path: "restored", reason, ...(oldest ? { dataAsOf: oldest } : {}) };
  return { recovered, restored, notes: [`${reason}: restored ${restored.map((r) => `${r.database} from snapshot ${r.snapshotId} (${r.snapshotTime})`).join(", ")}`] };
}
