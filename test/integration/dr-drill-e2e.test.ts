import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalExecutor } from "../../hosts/index.js";
import { Restic } from "../../restic/index.js";
import { postgresSource } from "../../databases/postgresql/dump.js";
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

  it("a drill whose RPO target is missed is headed TARGETS MISSED and exits 6; --failed-at moves the RPO it measures", async () => {
    const pg = need(primary);
    // An archive whose newest snapshot is 28 minutes old (restic rewrite --new-time): tier 1 of qn-db-01 allows 15.
    await pg.psql("CREATE DATABASE archive");
    await pg.psql("CREATE TABLE notes (id int); INSERT INTO notes SELECT generate_series(1, 3);", "archive");
    const resticPw = join(work, "restic.pass");
    const url = need(rest).repo("secondary");
    const restic = new Restic({ url, passwordFile: resticPw }, { cacheDir: join(work, "restic-cache") });
    const source = postgresSource({ user: "postgres", passFile: join(work, "pgpass"), binDir: PG_BIN_DIR, port: pg.port, databases: ["archive"], globals: false });
    const exec = new LocalExecutor();
    const [archive] = (await source.items(exec)).filter((i) => i.name === "postgresql/archive");
    const made = await source.backup(exec, restic, need(archive), { host: "qn-db-01", tags: ["dcctl", "job:qn-db-01-db-daily"] });
    const taken = new Date(Date.now() - 28 * 60_000);
    const local = (d: Date) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")} ${d.toTimeString().slice(0, 8)}`;
    const rewrite = spawnSync(restic.bin, ["rewrite", "--new-time", local(taken), "--forget", made.snapshot_id ?? ""], { env: { ...process.env, RESTIC_REPOSITORY: url, RESTIC_PASSWORD_FILE: resticPw, RESTIC_CACHE_DIR: join(work, "restic-cache") }, encoding: "utf8" });
    expect(rewrite.status, rewrite.stderr).toBe(0);
    const runbook = join(work, "archive-drill.yaml");
    writeFileSync(
      runbook,
      [
        "name: archive-drill",
        "kind: drill",
        "to: secondary",
        "scope: test-e2e-archive",
        "groups:",
        "  - name: restore",
        "    steps:",
        "      - { id: restore-archive, type: restore-db, service: archive, targets: { hosts: [qn-dr-db-01] }, timeout: 5m, with: { repository: secondary, databases: [archive] } }",
        "  - name: verify",
        "    steps:",
        "      - id: verify-archive",
        "        type: verify",
        "        service: archive",
        "        targets: { hosts: [qn-dr-db-01] }",
        "        dependsOn: [restore-archive]",
        "        timeout: 1m",
        "        with: { sql: [{ database: archive, query: 'SELECT count(*) FROM notes', expect: 3 }] }",
        "",
      ].join("\n"),
    );

    const missed = dcctl(["dr", "drill", "--runbook", runbook, "--json"]);
    expect(missed.code, missed.stderr).toBe(6);
    expect(missed.stderr).toMatch(/^dcctl: run \S+ completed but missed a target: archive RPO 28(\.\d+)? min against 15 min \(tier 1\) \(report: \S+report\.md\)\n$/);
    const outcome = JSON.parse(missed.stdout) as { runDir: string; status: string; targetsMissed: { service: string; measure: string }[] };
    expect(outcome.status).toBe("missed");
    expect(outcome.targetsMissed.map((m) => `${m.service} ${m.measure}`)).toEqual(["archive RPO", "overall RPO"]);
    const report = JSON.parse(readFileSync(join(outcome.runDir, "report.json"), "utf8")) as RunReport;
    expect(report.status).toBe("missed");
    const rpo = report.measurements.services.find((m) => m.service === "archive")?.rpoMinutes ?? 0;
    expect(rpo).toBeGreaterThanOrEqual(28);
    expect(rpo).toBeLessThan(35);
    expect(readFileSync(join(outcome.runDir, "report.md"), "utf8").split("\n")[0]).toMatch(/^# DR drill \S+: TARGETS MISSED$/);
    expect(readFileSync(join(outcome.runDir, "report.html"), "utf8")).toContain('<span class="badge bad">TARGETS MISSED</span>');

    // The same drill with the failure said to be 5 minutes after that snapshot: RPO 5 min, met, exit 0.
    const failedAt = new Date(Date.parse(report.restored[0]?.snapshotTime ?? "") + 5 * 60_000).toISOString();
    const met = dcctl(["dr", "drill", "--runbook", runbook, "--failed-at", failedAt, "--json"]);
    expect(met.code, met.stderr).toBe(0);
    const again = JSON.parse(readFileSync(join((JSON.parse(met.stdout) as { runDir: string }).runDir, "report.json"), "utf8")) as RunReport;
    expect(again).toMatchObject({ status: "ok", failedAt, failure: { from: "operator" } });
    expect(again.measurements.services.find((m) => m.service === "archive")).toMatchObject({ rpoMinutes: 5, rpoMet: true });
  });

  it("a restore over an existing database waits for a second operator where the site requires it", async () => {
    const sb = need(standby);
    // The site's file with four eyes on: root works through sudo here, so SUDO_USER names each operator.
    const repos = join(work, "repositories-four-eyes.yaml");
    writeFileSync(repos, readFileSync(join(work, "repositories.yaml"), "utf8") + `approval: { required: true, ttl: 10m, dir: ${join(work, "approvals")} }\n`);
    const as = (user: string, args: string[]) => run(args, { ...env, DCCTL_REPOS_FILE: repos, SUDO_USER: user });
    const restore = ["restore", "--host", "qn-db-01", "--db", "portal", "--target", "qn-dr-db-01", "--target-db", "four_eyes", "--repository", "secondary", "--yes"];
    try {
      // Nothing there yet: nothing is replaced, and nobody else is asked.
      const first = as("lan", restore);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).not.toMatch(/approval/);
      await sb.psql("CREATE TABLE marker (x int)", "four_eyes");

      const asked = as("lan", restore);
      expect(asked.code, asked.stderr).toBe(8);
      const code = /^approval required: request (\w{6})$/m.exec(asked.stdout)?.[1] ?? "";
      expect(asked.stdout).toContain("  target:    database four_eyes on qn-dr-db-01, at site secondary");
      expect(asked.stdout).toContain("  changes:   replace the existing database four_eyes on qn-dr-db-01");
      expect((await sb.psql("SELECT count(*) FROM marker", "four_eyes")).trim()).toBe("0");

      expect(as("lan", ["approve", code, "--yes"]).code).toBe(8);
      expect(as("minh", ["approve", code, "--yes"]).code).toBe(0);
      const ran = as("lan", [...restore, "--approval", code]);
      expect(ran.code, ran.stderr).toBe(0);
      expect(ran.stdout).toMatch(new RegExp(`^approval ${code}: asked by lan at \\S+, approved by minh at \\S+\\nrestored database portal of qn-db-01 \\(snapshot \\w+\\) as four_eyes on qn-dr-db-01, replacing the one there\\n$`));
      expect((await sb.psql("SELECT to_regclass('marker') IS NULL", "four_eyes")).trim()).toBe("t");
    } finally {
      await sb.psql("DROP DATABASE IF EXISTS four_eyes WITH (FORCE)");
    }
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
