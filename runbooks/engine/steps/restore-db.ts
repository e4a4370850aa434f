import { createHash } from "node:crypto";
import type { SiteHost } from "../../../inventory/index.js";
import { DcctlError } from "../../../util/errors.js";
import { leavesProduction, type PlannedStep } from "../model.js";
import { engineOf } from "../../../databases/registry.js";
import { defineStep, type PointRecovered, type RecoveredToPoint, type RestoredDatabase, type StepContext } from "./types.js";
import { Params } from "./params.js";
import { hostText } from "./on-hosts.js";

/**
 * `restore-db`: the newest good snapshot of each database, from the secondary repository, into the target database
 * servers. In a drill the data goes into a scratch database (a name no service uses), which clean-up drops; in a
 * failover it replaces the standby's copy of the database. In a recover the data comes from the point-in-time
 * archive instead, as it was just before the run's `--before` point (into a scratch database, as in a drill).
 */
interface RestoreParams {
  /** The repository name in the backup config; default "secondary" (the copy that survives the primary). */
  repository: string;
  databases: string[];
  /** "latest" or a snapshot id. */
  snapshot: string;
  /** The host whose backups to restore, when not the target's standbyFor (failback: the secondary that ran). */
  from?: string;
}

/** The host whose backups a target restores: `with.from`, else the one it stands by for, else its own. */
export function sourceOf(host: SiteHost, params: { from?: string }): string {
  return params.from ?? host.standbyFor ?? host.name;
}

/** A scratch name derived from the run, so that clean-up finds it again even after a crash lost the step's result. */
export function scratchName(runId: string, database: string): string {
  const tag = createHash("sha256").update(runId).digest("hex").slice(0, 10);
  return `drill_${tag}_${database}`.replace(/[^a-z0-9_]/gi, "_").slice(0, 63);
}

function targetName(p: PlannedStep, ctx: { runId: string }, db: string): string {
  return leavesProduction(p.kind) ? scratchName(ctx.runId, db) : db;
}

/** How the recovered data stands against the point: what it holds, and what it lacks that the archive has. */
function pointNotes(host: string, db: string, source: string, r: PointRecovered, before: string): string[] {
  const last = r.lastTransactionAt ? `its newest transaction committed ${r.lastTransactionAt}` : "no transaction after the base backup";
  const lost = r.stoppedBefore
    ? `not in it: every transaction committed from ${r.stoppedBefore.committedAt}${r.archiveLatest ? ` to ${r.archiveLatest} (the newest the archive holds)` : ""}`
    : "the archive holds nothing committed after the point";
  return [`${host}: ${db} of ${source} recovered from the point-in-time archive (base backup ${r.baseBackup}) to just before ${before}: ${last}; ${lost}`];
}

export const restoreDbStep = defineStep<RestoreParams>({
  type: "restore-db",
  // A drill restores into its own scratch database, dropped and made again; a failover replaces a standby's data,
  // and whether a half-restored standby may be overwritten once more is for the operator to say.
  idempotent: (kind) => leavesProduction(kind),
  parse(raw) {
    const p = new Params(raw);
    p.only("repository", "databases", "snapshot", "from");
    const dbs = raw.databases;
    let databases: string[] = [];
    if (!Array.isArray(dbs) || dbs.length === 0 || !dbs.every((d) => typeof d === "string" && /^[A-Za-z0-9_]+$/.test(d))) {
      p.problems.push({ path: ["with", "databases"], message: "with.databases must be a list of database names (letters, digits, _)" });
    } else {
      databases = dbs as string[];
    }
    const from = p.string("from");
    return p.result({ repository: p.string("repository") ?? "secondary", databases, snapshot: p.string("snapshot") ?? "latest", ...(from ? { from } : {}) });
  },
  confirm: {
    texts: { en: { change: "restore over databases on {{hosts}}" }, vi: { change: "khôi phục đè lên cơ sở dữ liệu trên {{hosts}}" } },
    change: (p, _params, t) => t("change", { hosts: p.hosts.map((h) => h.name).join(", ") }),
  },
  plan(p, params) {
    return p.hosts.flatMap((h) =>
      params.databases.map((db) =>
        p.kind === "recover"
          ? `recover ${engineOf(h.services, p.step.targets?.services)} database ${db} of ${sourceOf(h, params)} from the point-in-time archive, to just before the run's --before point, into scratch database drill_<run>_${db} on ${hostText(h)}; kept for inspection`
          : p.kind === "drill"
          ? `restore ${engineOf(h.services, p.step.targets?.services)} database ${db} of ${sourceOf(h, params)} (snapshot ${params.snapshot} of repository ${params.repository}) into scratch database drill_<run>_${db} on ${hostText(h)}; dropped after the drill`
          : `restore ${engineOf(h.services, p.step.targets?.services)} database ${db} of ${sourceOf(h, params)} (snapshot ${params.snapshot} of repository ${params.repository}) over database ${db} on ${hostText(h)}`,
      ),
    );
  },
  async run(p, params, ctx) {
    const restorer = ctx.services.restorer;
    if (!restorer) throw new DcctlError("restore-db: no database restorer is configured");
    const restored: RestoredDatabase[] = [];
    const points: RecoveredToPoint[] = [];
    const notes: string[] = [];
    // One database after another: restores are I/O-bound on the same repository and target disks.
    for (const host of p.hosts) {
      for (const db of params.databases) {
        const targetDatabase = targetName(p, ctx, db);
        if (p.kind === "recover") {
          const before = ctx.before;
          if (!before || !restorer.recoverBefore) throw new DcctlError("restore-db: a recover needs its --before point and a point-in-time restorer");
          const r = await restorer.recoverBefore({ sourceHost: sourceOf(host, params), engine: engineOf(host.services, p.step.targets?.services), database: db, targetHost: host, targetDatabase, before, log: ctx.log });
          // The recovered data is complete up to its newest transaction: the RPO against the point is counted from it.
          restored.push({ sourceHost: sourceOf(host, params), database: db, targetDatabase, targetHost: host.name, snapshotId: `base backup ${r.baseBackup}`, snapshotTime: r.lastTransactionAt ?? r.baseBackupEnd });
          points.push({ database: db, targetHost: host.name, targetDatabase, before: before.text, ...r });
          notes.push(...pointNotes(host.name, db, sourceOf(host, params), r, before.text));
          continue;
        }
        const snap = await restorer.restore({
          repository: params.repository,
          sourceHost: sourceOf(host, params),
          engine: engineOf(host.services, p.step.targets?.services),
          database: db,
          targetHost: host,
          targetDatabase,
          snapshot: params.snapshot,
          replace: true,
        });
        restored.push({ sourceHost: sourceOf(host, params), database: db, targetDatabase, targetHost: host.name, snapshotId: snap.snapshotId, snapshotTime: snap.snapshotTime });
        notes.push(...(snap.notes ?? []).map((n) => `${host.name}: ${n}`));
        notes.push(`${host.name}: ${db} of ${sourceOf(host, params)} restored from snapshot ${snap.snapshotId} (${snap.snapshotTime}) into ${targetDatabase}`);
      }
    }
    return { notes, data: { restored, ...(points.length ? { recoveredToPoint: points } : {}) } };
  },
  async cleanup(p, params, ctx: StepContext) {
    const restorer = ctx.services.restorer;
    if (!restorer) return ["no database restorer configured: nothing could have been restored"];
    const notes: string[] = [];
    for (const host of p.hosts) {
      for (const db of params.databases) {
        const name = scratchName(ctx.runId, db);
        await restorer.drop({ engine: engineOf(host.services, p.step.targets?.services), targetHost: host, database: name });
        notes.push(`${host.name}: scratch database ${name} dropped`);
      }
    }
    return notes;
  },
});
