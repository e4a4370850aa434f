import type { SiteHost } from "../../../inventory/index.js";
import { DcctlError, errorMessage } from "../../../util/errors.js";
import { engineOf } from "../../../databases/registry.js";
import { parseDuration } from "../duration.js";
import { defineStep, StepFailure, type PointInTimeRecovered, type PointInTimeRestorer } from "./types.js";
import type { CheckOutcome } from "./verify.js";
import { Params } from "./params.js";
import { hostText } from "./on-hosts.js";

/**
 * `restore-pitr`: a server recovered from this site's point-in-time archive (not from a snapshot) to a point shortly
 * before the step runs, into a scratch server on each target, then checked: the database is there and the step's SQL
 * checks print what they must. The point reached (the last transaction recovered) is measured against the point asked:
 * that gap is the recovery point the archive gives, what a province needs after a DROP TABLE that replication copied.
 * A drill's clean-up stops the scratch server and removes its data; a step that fails removes what it started.
 */
interface SqlCheck {
  query: string;
  expect: string;
}

interface PitrParams {
  /** The archived server (a primary host whose policy has pitr:). */
  from: string;
  /** The database that must be in the copy; the checks run in it. */
  database: string;
  /** How long before the step's start the point lies (`at: -5m`), and that text as written. */
  agoMs: number;
  at: string;
  /** The scratch server's port on the target (default: the engine's, 5433 or 3307). */
  port?: number;
  sql: SqlCheck[];
}

const DEFAULT_AT = "-5m";

/** `-5m`, `-30s`, `-1h30m`: a point that far before the step starts; undefined for anything else. */
export function parseAgo(text: string): number | undefined {
  const m = /^-\s*(\S+)$/.exec(text.trim());
  return m?.[1] ? parseDuration(m[1]) : undefined;
}

/** Seconds between the point reached and the point asked, to the millisecond. */
export function gapSeconds(asked: string, reached: string): number {
  return Math.round(Date.parse(asked) - Date.parse(reached)) / 1000;
}

async function checksOn(pitr: PointInTimeRestorer, r: PointInTimeRecovered, host: SiteHost, checks: SqlCheck[]): Promise<CheckOutcome[]> {
  return Promise.all(
    checks.map(async (c) => {
      const check = `${host.name} ${r.database}@${r.port} (recovered to ${r.asked}): ${c.query}`;
      try {
        const got = (await pitr.query(r, host, r.database, c.query.trimEnd().endsWith(";") ? `${c.query}\n` : `${c.query};\n`)).trim();
        return { check, expected: c.expect, got, ok: got === c.expect };
      } catch (e) {
        return { check, expected: c.expect, got: `error: ${errorMessage(e)}`, ok: false };
      }
    }),
  );
}

function recoveredNote(r: PointInTimeRecovered): string {
  const reached = r.reached === undefined ? "no transaction after the base backup" : `last transaction recovered ${r.reached} (${r.gapSeconds?.toFixed(3) ?? "?"} s before the point asked)`;
  const next = r.firstNotApplied === undefined ? "every archived change applied" : `first transaction not applied committed ${r.firstNotApplied}`;
  return `${r.targetHost}: ${r.engine} server ${r.sourceHost} recovered from the point-in-time archive to ${r.asked} (base backup ${r.baseBackup}) at ${r.address}:${r.port}: ${reached}; ${next}`;
}

export const restorePitrStep = defineStep<PitrParams>({
  type: "restore-pitr",
  // Each attempt brings up a scratch server of its own and removes it when it fails.
  idempotent: true,
  parse(raw) {
    const p = new Params(raw);
    p.only("from", "database", "at", "port", "sql");
    const from = p.string("from", true);
    const database = p.string("database", true);
    if (database !== undefined && !/^[A-Za-z0-9_]+$/.test(database)) p.problems.push({ path: ["with", "database"], message: "with.database must be a database name (letters, digits, _)" });
    const at = p.string("at") ?? DEFAULT_AT;
    const agoMs = parseAgo(at);
    if (agoMs === undefined) p.problems.push({ path: ["with", "at"], message: `with.at must be a time before the step starts, such as -5m, -30s or -1h30m (not ${JSON.stringify(at)})` });
    const port = p.number("port", 1);
    if (port !== undefined && (!Number.isInteger(port) || port > 65535)) p.problems.push({ path: ["with", "port"], message: `with.port must be a port number (not ${port})` });
    const sql =
      p.list<SqlCheck>("sql", (q) => {
        q.only("query", "expect");
        const query = q.string("query", true);
        const expect = q.scalar("expect", true);
        return query && expect !== undefined ? { query, expect } : undefined;
      }) ?? [];
    return p.result({ from: from ?? "", database: database ?? "", agoMs: agoMs ?? 0, at, ...(port === undefined ? {} : { port }), sql });
  },
  plan(p, params) {
    return p.hosts.flatMap((h) => [
      `recover ${engineOf(h.services, p.step.targets?.services)} server ${params.from} from this site's point-in-time archive as it was ${params.at.replace(/^-\s*/, "")} before this step starts, into a scratch server on ${hostText(h)}${params.port ? ` (port ${params.port})` : ""}; database ${params.database} must be there`,
      ...params.sql.map((c) => `on that copy, database ${params.database}: \`${c.query}\` must print ${JSON.stringify(c.expect)}`),
      `the last transaction recovered measured against the point asked${p.kind === "drill" ? "; the scratch server stopped and removed after the drill" : ""}`,
    ]);
  },
  async run(p, params, ctx) {
    const pitr = ctx.services.pointInTime;
    if (!pitr) throw new DcctlError("restore-pitr: no point-in-time archive is configured (backup config)");
    const at = new Date(ctx.services.now().getTime() - params.agoMs);
    const recovered: { r: PointInTimeRecovered; host: SiteHost }[] = [];
    const checks: CheckOutcome[] = [];
    try {
      for (const host of p.hosts) {
        const engine = engineOf(host.services, p.step.targets?.services);
        const r = await pitr.recover({ sourceHost: params.from, engine, database: params.database, targetHost: host, at, ...(params.port === undefined ? {} : { port: params.port }), log: ctx.log });
        recovered.push({ r, host });
        checks.push(...(await checksOn(pitr, r, host, params.sql)));
      }
      const failed = checks.filter((c) => !c.ok);
      if (failed.length) throw new StepFailure(`${failed.length} of ${checks.length} checks of the recovered copy failed: ${failed.map((f) => `${f.check}: expected ${f.expected}, got ${f.got}`).join("; ")}`, { checks });
    } catch (e) {
      // Nothing of a failed attempt is left running: the clean-up of a step that did not end well has no result to read.
      for (const { r, host } of recovered) await pitr.remove(r, host).catch(() => undefined);
      throw e;
    }
    const pointInTime = recovered.map(({ r }) => r);
    return { notes: [...pointInTime.map(recoveredNote), ...checks.map((c) => `ok: ${c.check} → ${c.got}`)], data: { pointInTime, checks } };
  },
  async cleanup(p, _params, ctx, result) {
    const pitr = ctx.services.pointInTime;
    const recovered = (result?.data.pointInTime as PointInTimeRecovered[] | undefined) ?? [];
    if (!result) return ["nothing recovered to remove: an attempt that fails removes the server it started"];
    if (!pitr) return ["no point-in-time archive configured: nothing could have been recovered"];
    const notes: string[] = [];
    for (const r of recovered) {
      const host = p.hosts.find((h) => h.name === r.targetHost);
      if (!host) continue;
      await pitr.remove(r, host);
      notes.push(`${host.name}: recovered server on port ${r.port} stopped, ${r.dataDir} removed`);
    }
    return notes;
  },
});
