import { engineOf } from "../../../databases/registry.js";
import { DcctlError, errorMessage } from "../../../util/errors.js";
import { defineStep, type StepContext } from "./types.js";
import { databaseOn } from "./verify.js";
import { Params } from "./params.js";
import { hostText, lastLine, shown } from "./on-hosts.js";

/**
 * `data-loss`: what a failover really lost, measured rather than estimated. The newest record that reached the target
 * (an SQL query there) is compared with the last record the lost site wrote, as something outside that site recorded
 * it (a command on the DR runner: the application's own log, monitoring, a load balancer's journal). The result —
 * time and, for sequential keys, records lost — stands in the report next to the RPO computed from snapshots.
 */
interface DataLossParams {
  database: string;
  /** One row of two columns at the target: the newest record's key and the time it was written. */
  newest: string;
  /** Prints the last record written at the lost site: its key and time, separated by blanks or `|`. */
  lastWritten: string[];
}

export interface DataLoss {
  service?: string;
  host: string;
  newestKey: string;
  newestAt: string;
  lastKey: string;
  lastAt: string;
  /** The writes of this long, before the failure, are missing at the target (0 when nothing is). */
  lostMs: number;
  /** Records missing, when both keys end in the same prefix and a number. */
  lostRecords?: number;
}

/** Key and time from a line such as `QN-2026-00001234|2026-12-01 05:53:04.12+00` or `KEY 2026-12-01T05:53:04Z`. */
function keyAndTime(line: string, what: string): { key: string; at: number } {
  const m = /^\s*(\S+?)\s*[|\t ]\s*(.+?)\s*$/.exec(line);
  const at = m?.[2] ? Date.parse(m[2].replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00")) : NaN;
  if (!m?.[1] || Number.isNaN(at)) throw new DcctlError(`${what} gave ${JSON.stringify(line.slice(0, 120))}, not a key and a time`);
  return { key: m[1], at };
}

/** The number of records between two keys like PREFIX-00000120 and PREFIX-00000150, when they are so numbered. */
function recordsBetween(from: string, to: string): number | undefined {
  const a = /^(.*?)(\d+)$/.exec(from);
  const b = /^(.*?)(\d+)$/.exec(to);
  if (!a || !b || a[1] !== b[1]) return undefined;
  return Math.max(0, Number(b[2]) - Number(a[2]));
}

async function lastWritten(ctx: StepContext, argv: string[], timeoutMs: number): Promise<string> {
  const res = await ctx.services.local.run(argv, { timeoutMs });
  if (res.code !== 0) throw new DcctlError(`\`${shown(argv)}\` failed (exit ${res.code}): ${lastLine(res.stderr) || lastLine(res.stdout)}`);
  return lastLine(res.stdout);
}

export const dataLossStep = defineStep<DataLossParams>({
  type: "data-loss",
  idempotent: true,
  parse(raw) {
    const p = new Params(raw);
    p.only("database", "newest", "lastWritten");
    return p.result({ database: p.string("database", true), newest: p.string("newest", true), lastWritten: p.argv("lastWritten", true) ?? [] });
  },
  plan(p, params) {
    return p.hosts.map((h) => `on ${hostText(h)}, database ${params.database}: the newest record (\`${params.newest}\`) against the last one written at the lost site (\`${shown(params.lastWritten)}\`)`);
  },
  async run(p, params, ctx) {
    const sql = ctx.services.sql;
    if (!sql) throw new DcctlError("no SQL client is configured (backup config databases)");
    // A measurement that cannot be made is a note, never a reason to stop a failover.
    let recorded: string;
    try {
      recorded = await lastWritten(ctx, params.lastWritten, p.step.timeoutMs);
    } catch (e) {
      return { notes: [`not measured: ${errorMessage(e)}`], data: {} };
    }
    const last = keyAndTime(recorded, `\`${shown(params.lastWritten)}\``);
    const losses: DataLoss[] = [];
    for (const host of p.hosts) {
      // In a recover, the scratch copy restore-db made: what the recovered data holds.
      const out = await sql.query(host, engineOf(host.services, p.step.targets?.services), databaseOn(ctx, host, params.database), params.newest.trimEnd().endsWith(";") ? `${params.newest}\n` : `${params.newest};\n`);
      const newest = keyAndTime(lastLine(out), `${host.name} ${params.database}: ${params.newest}`);
      const lostRecords = recordsBetween(newest.key, last.key);
      losses.push({
        ...(p.step.service ? { service: p.step.service } : {}),
        host: host.name,
        newestKey: newest.key,
        newestAt: new Date(newest.at).toISOString(),
        lastKey: last.key,
        lastAt: new Date(last.at).toISOString(),
        lostMs: Math.max(0, last.at - newest.at),
        ...(lostRecords !== undefined ? { lostRecords } : {}),
      });
    }
    const notes = losses.map(
      (l) =>
        `${l.host}: newest here ${l.newestKey} (${l.newestAt}); last written at the lost site ${l.lastKey} (${l.lastAt}): ` +
        `${l.lostRecords !== undefined ? `${l.lostRecords} records, ` : ""}${(l.lostMs / 1000).toFixed(1)} s of writes lost`,
    );
    return { notes, data: { dataLoss: losses } };
  },
});
