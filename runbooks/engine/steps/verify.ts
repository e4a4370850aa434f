import type { SiteHost } from "../../../inventory/index.js";
import { leavesProduction, type PlannedStep } from "../model.js";
import { engineOf } from "../../../databases/registry.js";
import { errorMessage } from "../../../util/errors.js";
import { defineStep, StepFailure, type RestoredDatabase, type StepContext } from "./types.js";
import { Params } from "./params.js";
import { hostText } from "./on-hosts.js";
import { expandArgv } from "./argv-vars.js";

/**
 * `verify`: the data and the services are really back. SQL queries run on each target host (with the client of
 * the database engine its services name) and must print exactly the expected text; HTTP checks must answer with the expected
 * status and, when given, a body containing the expected text. Every check runs; the step fails listing each miss.
 */
interface SqlCheck {
  database: string;
  query: string;
  expect: string;
}

interface HttpCheck {
  url: string;
  status: number;
  body?: string;
}

interface VerifyParams {
  sql: SqlCheck[];
  http: HttpCheck[];
}

export interface CheckOutcome {
  check: string;
  expected: string;
  got: string;
  ok: boolean;
}

/** In a drill or a recover a database name means the scratch copy restore-db made of it on that host (found in its result). */
export function databaseOn(ctx: StepContext, host: SiteHost, database: string): string {
  for (const result of ctx.results.values()) {
    const restored = result.data.restored as RestoredDatabase[] | undefined;
    const hit = restored?.find((r) => r.targetHost === host.name && r.database === database);
    if (hit) return hit.targetDatabase;
  }
  return database;
}

async function sqlCheck(ctx: StepContext, p: PlannedStep, host: SiteHost, c: SqlCheck): Promise<CheckOutcome> {
  const db = databaseOn(ctx, host, c.database);
  const check = `${host.name} ${db}: ${c.query}`;
  try {
    if (!ctx.services.sql) throw new Error("no SQL client is configured (backup config databases)");
    const got = (await ctx.services.sql.query(host, engineOf(host.services, p.step.targets?.services), db, c.query.trimEnd().endsWith(";") ? `${c.query}\n` : `${c.query};\n`)).trim();
    return { check, expected: c.expect, got, ok: got === c.expect };
  } catch (err) {
    return { check, expected: c.expect, got: `error: ${errorMessage(err)}`, ok: false };
  }
}

async function httpCheck(c: HttpCheck, timeoutMs: number): Promise<CheckOutcome> {
  const check = `GET ${c.url}`;
  const expected = `status ${c.status}${c.body !== undefined ? ` and a body containing ${JSON.stringify(c.body)}` : ""}`;
  try {
    const res = await fetch(c.url, { signal: AbortSignal.timeout(timeoutMs), redirect: "manual" });
    const body = await res.text();
    const ok = res.status === c.status && (c.body === undefined || body.includes(c.body));
    return { check, expected, got: `status ${res.status}${c.body !== undefined && !body.includes(c.body) ? `, body without it (${body.slice(0, 80)})` : ""}`, ok };
  } catch (err) {
    return { check, expected, got: `error: ${errorMessage(err)}`, ok: false };
  }
}

export const verifyStep = defineStep<VerifyParams>({
  type: "verify",
  idempotent: true,
  parse(raw) {
    const p = new Params(raw);
    p.only("sql", "http");
    const sql =
      p.list<SqlCheck>("sql", (q) => {
        q.only("database", "query", "expect");
        const database = q.string("database", true);
        const query = q.string("query", true);
        const expect = q.scalar("expect", true);
        return database && query && expect !== undefined ? { database, query, expect } : undefined;
      }) ?? [];
    const http =
      p.list<HttpCheck>("http", (h) => {
        h.only("url", "status", "body");
        const url = h.string("url", true);
        return url ? { url, status: h.number("status", 100) ?? 200, body: h.string("body") } : undefined;
      }) ?? [];
    if (raw.sql === undefined && raw.http === undefined) p.problems.push({ path: ["with"], message: "verify needs with.sql or with.http checks" });
    return p.result({ sql, http });
  },
  plan(p, params) {
    const lines = p.hosts.flatMap((h) => params.sql.map((c) => `on ${hostText(h)}, database ${c.database}${leavesProduction(p.kind) ? " (its scratch copy)" : ""}: \`${c.query}\` must print ${JSON.stringify(c.expect)}`));
    lines.push(...params.http.map((c) => `GET ${c.url} must answer ${c.status}${c.body !== undefined ? ` with ${JSON.stringify(c.body)} in the body` : ""}`));
    return lines;
  },
  async run(p, params, ctx) {
    const outcomes = await Promise.all([
      ...p.hosts.flatMap((h) => params.sql.map((c) => sqlCheck(ctx, p, h, c))),
      // {run} and {db:NAME} name what this run made, so a check cannot pass on what another run left behind.
      ...params.http.map((c) => {
        const [url = c.url, body] = expandArgv([c.url, ...(c.body !== undefined ? [c.body] : [])], { runId: ctx.runId, kind: p.kind });
        return httpCheck({ ...c, url, ...(body !== undefined ? { body } : {}) }, p.step.timeoutMs);
      }),
    ]);
    const failed = outcomes.filter((o) => !o.ok);
    if (failed.length) {
      throw new StepFailure(`${failed.length} of ${outcomes.length} checks failed: ${failed.map((f) => `${f.check}: expected ${f.expected}, got ${f.got}`).join("; ")}`, { checks: outcomes });
    }
    return { notes: outcomes.map((o) => `ok: ${o.check} → ${o.got}`), data: { checks: outcomes } };
  },
});
