import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalExecutor } from "../../backup/exec/index.js";
import { Restic } from "../../backup/restic/index.js";
import { postgresSource } from "../../backup/sources/postgres.js";
import { PG_BIN_DIR, startPostgres, type Postgres } from "../../lab/postgres.js";
import { startRestServer, type RestServer } from "../../lab/rest-server.js";
import { readJournal, type RunReport } from "../../runbooks/engine/index.js";
import { dcctl as run } from "../helpers/cli.js";
import { PG_SEED, pgSums } from "../helpers/db-fixtures.js";

/**
 * A DR drill end to end through the CLI: qn-db-01 (a real PostgreSQL, the "primary") is backed up to a real
 * rest-server (the secondary repository); `dcctl dr drill` restores it into a scratch database on qn-dr-db-01 (a
 * second PostgreSQL, the standby), verifies it, measures RPO/RTO and drops the scratch database — also when the drill
 * fails — and the primary is left exactly as it was.
 */

describe("dcctl dr drill against real PostgreSQL and rest-server", () => {
  let work: string;
  let primary: Postgres | undefined;
  let standby: Postgres | undefined;
  let rest: RestServer | undefined;
  let env: NodeJS.ProcessEnv;

  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error("set-up did not finish");
    return v;
  };
  const databases = async (pg: Postgres) => (await pg.psql("SELECT datname FROM pg_database ORDER BY datname")).split("\n").filter(Boolean);
  const dcctl = (args: string[]) => run(args, env);

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "dcctl-dr-e2e-"));
    chmodSync(work, 0o755);
    [primary, standby, rest] = await Promise.all([startPostgres({ dir: join(work, "primary") }), startPostgres({ dir: join(work, "standby") }), startRestServer({ dataDir: join(work, "rest") })]);
    await primary.psql("CREATE DATABASE portal");
    await primary.psql(PG_SEED, "portal");

    // Client settings as a DR runner would have them: passwords in files, never on a command line.
    const pgpass = join(work, "pgpass");
    const pw = (pg: Postgres) => readFileSync(pg.superuserPasswordFile, "utf8").trim();
    writeFileSync(pgpass, `127.0.0.1:${primary.port}:*:postgres:${pw(primary)}\n127.0.0.1:${standby.port}:*:postgres:${pw(standby)}\n`, { mode: 0o600 });
    const resticPw = join(work, "restic.pass");
    writeFileSync(resticPw, randomBytes(24).toString("base64url") + "\n", { mode: 0o600 });
    const url = rest.repo("secondary");
    const restic = new Restic({ url, passwordFile: resticPw }, { cacheDir: join(work, "restic-cache") });
    await restic.init();
    const conn = { user: "postgres", passFile: pgpass, binDir: PG_BIN_DIR };
    writeFileSync(
      join(work, "repositories.yaml"),
      [
        "site: secondary",
        "repositories:",
        `  secondary: { url: "${url}", passwordFile: ${resticPw} }`,
        "localHosts: [qn-db-01, qn-dr-db-01]",
        `cacheDir: ${join(work, "restic-cache")}`,
        "databases:",
        `  postgresql: { user: postgres, passFile: ${pgpass}, binDir: ${PG_BIN_DIR} }`,
        "  hosts:",
        `    qn-db-01: { postgresql: { port: ${primary.port} } }`,
        `    qn-dr-db-01: { postgresql: { port: ${standby.port} } }`,
        "",
      ].join("\n"),
    );
    // The nightly backup of qn-db-01, as the backup engine makes it.
    const source = postgresSource({ ...conn, port: primary.port, databases: ["portal"], globals: false });
    const exec = new LocalExecutor();
    const [portal] = (await source.items(exec)).filter((i) => i.name === "postgresql/portal");
    await source.backup(exec, restic, need(portal), { host: "qn-db-01", tags: ["dcctl", "job:qn-db-01-db-daily"] });

    env = {
      ...process.env,
      DCCTL_SITES_DIR: "",
      DCCTL_DEBUG: "",
      DCCTL_STATE_DIR: join(work, "state"),
      DCCTL_REPOS_FILE: join(work, "repositories.yaml"),
    };
  });

  afterAll(async () => {
    for (const stop of [() => primary?.stop(), () => standby?.stop(), () => rest?.stop()]) await Promise.resolve(stop()).catch((e: unknown) => console.error(e));
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("restores into a scratch database, verifies, measures, cleans up, and leaves the primary untouched", async () => {
    const pg = need(primary);
    const sb = need(standby);
    const primaryBefore = { dbs: await databases(pg), sums: await pgSums(pg, "portal") };
    const standbyBefore = await databases(sb);

    const r = dcctl(["dr", "drill", "--runbook", "test/fixtures/runbooks/e2e-drill.yaml", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const outcome = JSON.parse(r.stdout) as { runId: string; runDir: string; status: string };
    expect(outcome.status).toBe("ok");

    const report = JSON.parse(readFileSync(join(outcome.runDir, "report.json"), "utf8")) as RunReport;
    expect(report.restored).toEqual([expect.objectContaining({ sourceHost: "qn-db-01", database: "portal", targetHost: "qn-dr-db-01", targetDatabase: expect.stringMatching(/^drill_[a-z0-9]+_portal$/) })]);
    expect(report.checks.map((c) => [c.got, c.ok])).toEqual([["3000", true], ["1333", true]]);
    const portal = report.measurements.services.find((m) => m.service === "portal");
    expect(portal).toMatchObject({ tier: 1, rpoMet: true, rtoMet: true, rpoTargetMinutes: 15, rtoTargetMinutes: 60 });
    expect(portal?.rpoMinutes).toBeGreaterThanOrEqual(0);
    expect(report.cleanup).toEqual([expect.objectContaining({ step: "restore-portal", status: "ok" })]);
    expect(readFileSync(join(outcome.runDir, "report.md"), "utf8")).toMatch(/\| portal \| 1 \| [\d.]+ min \| 15 min \| met \|/);

    // The scratch database is gone again, and nothing at the primary changed.
    expect(await databases(sb)).toEqual(standbyBefore);
    expect({ dbs: await databases(pg), sums: await pgSums(pg, "portal") }).toEqual(primaryBefore);
  });

  it("a failing check fails the drill (exit 1, one line) and the scratch database is still dropped", async () => {
    const sb = need(standby);
    const standbyBefore = await databases(sb);
    const r = dcctl(["dr", "drill", "--runbook", "test/fixtures/runbooks/e2e-drill-fail.yaml"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^dcctl: run \S+ failed: step verify-portal \(verify, test\/fixtures\/runbooks\/e2e-drill-fail.yaml:\d+\) failed: 1 of 2 checks failed: qn-dr-db-01 drill_\w+_portal: SELECT count\(\*\) FROM dossiers: expected 2999, got 3000 \(report: .*report.md\)\n$/);
    const runId = /run (\S+) failed/.exec(r.stderr)?.[1] ?? "";
    const j = readJournal(join(env.DCCTL_STATE_DIR ?? "", "dr", "runs", runId, "journal.jsonl")).records;
    expect(j.filter((x) => x.type === "step-end").map((x) => (x.type === "step-end" ? `${x.step}:${x.status}` : ""))).toEqual([
      "precheck:ok",
      "restore-portal:ok",
      "verify-portal:failed",
    ]);
    expect(j.find((x) => x.type === "cleanup-end")).toMatchObject({ step: "restore-portal", status: "ok" });
    expect(await databases(sb)).toEqual(standbyBefore);
  });
});
