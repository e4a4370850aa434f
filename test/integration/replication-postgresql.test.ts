import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExecTimeoutError, LocalExecutor, type Executor } from "../../hosts/index.js";
import { pairStatuses, renderReplicationMetrics, reversed, setupPair, statusExitCode, type ReplicationPair } from "../../backup/replication/index.js";
import { DivergedWritesError, PROBE_TIMEOUT_MS } from "../../databases/replication.js";
import { ENGINES } from "../../databases/registry.js";
import { loadBackupConfig, type BackupConfig } from "../../backup/repositories.js";
import type { SiteHost } from "../../inventory/index.js";
import { PG_BIN_DIR, serverOptions, startPostgres, type Postgres } from "../../lab/postgres.js";
import { run } from "../../util/process.js";
import { DcctlError, ExitCode } from "../../util/errors.js";
import { parsePrometheus } from "../../backup/report.js";

/**
 * PostgreSQL streaming replication as dcctl sets it up, against two real servers on loopback: seeding with
 * pg_basebackup through a slot, idempotence, refusal to overwrite, lag against the truth under a write load (with a
 * replay delay that makes the lag real), a broken replica, promotion.
 */

const host = (name: string, site: "primary" | "secondary", extra: Partial<SiteHost> = {}): SiteHost => ({
  name,
  site,
  role: "db",
  cpus: 2,
  memoryGb: 4,
  disks: [],
  network: "database",
  ip: "127.0.0.1",
  template: "tpl",
  datastore: "ds",
  backupPolicy: "db-hourly",
  drTier: 1,
  services: ["postgresql"],
  ssh: { host: "127.0.0.1", port: 22, user: "root" },
  activeOnly: false,
  ...extra,
});

describe("PostgreSQL replication: setup, lag, broken, promote", () => {
  let work: string;
  let primary: Postgres | undefined;
  let standby: Postgres | undefined;
  let config: BackupConfig;
  let pair: ReplicationPair;
  const exec = new LocalExecutor();
  const execs = () => exec;
  const log: string[] = [];
  const standbyDir = () => join(work, "standby");
  const primaryDir = () => join(work, "primary");
  const pgCtl = (args: string[]) => ["runuser", "-u", "dcctl-lab", "--", join(PG_BIN_DIR, "pg_ctl"), ...args];
  // Each server as a Debian host would run it (pg_ctlcluster wraps pg_ctl): started and stopped by dcctl.
  const control = (dir: string, port: number) => ({
    dataDir: join(dir, "data"),
    osUser: "dcctl-lab",
    start: pgCtl(["-D", join(dir, "data"), "-l", join(dir, "run", "server.log"), "-w", "-o", serverOptions("127.0.0.1", port, join(dir, "run")).join(" "), "start"]),
    stop: pgCtl(["-D", join(dir, "data"), "-m", "fast", "-w", "stop"]),
  });
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error("server did not start");
    return v;
  };
  /** SQL on a server as it runs now (pg_ctl may have replaced the one the test started), over its socket. */
  const on = (server: () => Postgres | undefined) => async (sql: string, db = "postgres") => {
    const s = need(server());
    const res = await run(join(PG_BIN_DIR, "psql"), ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", s.socketDir, "-p", String(s.port), "-U", "postgres", "-d", db], { input: sql });
    if (res.code !== 0) throw new Error(res.stderr);
    return res.stdout.trim();
  };
  const onStandby = on(() => standby);
  const onPrimary = on(() => primary);
  const waitFor = async (what: string, check: () => Promise<boolean>, ms = 30_000) => {
    const deadline = Date.now() + ms;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "dcctl-repl-pg-"));
    chmodSync(work, 0o755);
    primary = await startPostgres({ dir: primaryDir() });
    // A standby is a copy of its primary, roles included: the admin account's password is the same on both.
    standby = await startPostgres({ dir: standbyDir(), superuserPassword: readFileSync(primary.superuserPasswordFile, "utf8").trim() });
    await primary.psql("CREATE DATABASE portal");
    await primary.psql("CREATE TABLE writes (id serial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), note text)", "portal");
    await primary.psql("INSERT INTO writes (note) SELECT 'hồ sơ ' || g FROM generate_series(1, 5000) g", "portal");
    const pw = (p: Postgres) => readFileSync(p.superuserPasswordFile, "utf8").trim();
    const pgpass = join(work, "admin.pgpass");
    writeFileSync(pgpass, `127.0.0.1:${primary.port}:*:postgres:${pw(primary)}\n127.0.0.1:${standby.port}:*:postgres:${pw(standby)}\n`, { mode: 0o600 });
    const replPass = join(work, "replication.pass");
    writeFileSync(replPass, "s3cret:with\\odd'chars\n", { mode: 0o600 });
    const file = join(work, "repositories.yaml");
    writeFileSync(
      file,
      stringify({
        site: "secondary",
        repositories: { secondary: { url: join(work, "repo"), passwordFile: replPass } },
        localHosts: ["t-db-01", "t-dr-db-01"],
        stateDir: join(work, "state"),
        replication: { passwordFile: replPass },
        databases: {
          postgresql: { user: "postgres", passFile: pgpass, binDir: PG_BIN_DIR },
          hosts: { "t-db-01": { postgresql: { port: primary.port, server: control(primaryDir(), primary.port) } }, "t-dr-db-01": { postgresql: { port: standby.port, server: control(standbyDir(), standby.port) } } },
        },
      }),
    );
    config = loadBackupConfig(file);
    pair = { name: "t-dr-db-01", engine: "postgresql", primary: host("t-db-01", "primary"), standby: host("t-dr-db-01", "secondary", { standbyFor: "t-db-01" }), tier: 1, rpoSeconds: 900 };
  });

  afterAll(async () => {
    // pg_ctl's server is no child of ours: stop it by its data directory, then whatever the test started.
    for (const dir of [standbyDir(), primaryDir()]) await run("runuser", pgCtl(["-D", join(dir, "data"), "-m", "immediate", "stop"]).slice(1));
    await standby?.stop();
    await primary?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("refuses a standby that holds a database of its own, and leaves it as it was", async () => {
    await onStandby("CREATE DATABASE local_only");
    const err = await setupPair(config, pair, execs, { overwrite: false, log: (l) => log.push(l) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DcctlError);
    expect((err as DcctlError).exitCode).toBe(ExitCode.notConfirmed);
    expect((err as DcctlError).message).toMatch(/t-dr-db-01: it holds database local_only; .*--yes to overwrite/);
    expect(await onStandby("SELECT count(*) FROM pg_database WHERE datname = 'local_only'")).toBe("1");
    expect(await onStandby("SELECT pg_is_in_recovery()")).toBe("f");
  });

  it("seeds the standby with pg_basebackup through a slot; a second setup keeps it", async () => {
    const seeded = await setupPair(config, pair, execs, { overwrite: true, log: (l) => log.push(l) });
    expect(seeded.action).toBe("seeded");
    expect(await onStandby("SELECT pg_is_in_recovery()")).toBe("t");
    expect(await onStandby("SELECT count(*) FROM pg_database WHERE datname = 'local_only'")).toBe("0");
    expect(await onStandby("SELECT count(*) FROM writes", "portal")).toBe("5000");
    expect(await need(primary).psql("SELECT slot_name || ' ' || active FROM pg_replication_slots")).toMatch(/^dcctl_t_dr_db_01 true$/m);
    // The standby finds its password in a file; neither its settings nor the primary's role hold the password itself.
    const auto = readFileSync(join(standbyDir(), "data", "postgresql.auto.conf"), "utf8");
    expect(auto).toMatch(/primary_conninfo = '.*passfile=/);
    expect(auto).not.toContain("s3cret");
    expect((await need(primary).psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'dcctl_replicator'")).trim()).toMatch(/^SCRAM-SHA-256\$4096:/);
    // Nothing of the old data directory or a half copy is left beside it.
    expect((await run("ls", [standbyDir()])).stdout.split("\n").filter((f) => f.startsWith("data"))).toEqual(["data"]);

    const again = await setupPair(config, pair, execs, { overwrite: false, log: () => undefined });
    expect(again.action).toBe("kept");
  });

  it("reports no lag when caught up, and the real lag within a second of the truth under a write load", async () => {
    await waitFor("the standby to catch up", async () => (await pairStatuses(config, [pair], execs))[0]?.lagBytes === 0);
    const [idle] = await pairStatuses(config, [pair], execs);
    expect(idle).toMatchObject({ health: "streaming", lagSeconds: 0, lagBytes: 0, ok: true, primaryAnswered: true });
    expect(statusExitCode([need(idle)])).toBe(ExitCode.ok);

    // A replay delay makes the lag real (about 2 s), so that the comparison means something on loopback.
    await onStandby("ALTER SYSTEM SET recovery_min_apply_delay = '2s'; SELECT pg_reload_conf();");
    let writing = true;
    const writer = (async () => {
      while (writing) {
        await need(primary).psql("INSERT INTO writes (note) VALUES ('đang ghi')", "portal");
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      const samples: { reported: number; truth: number }[] = [];
      await waitFor("a lagging standby", async () => ((await pairStatuses(config, [pair], execs))[0]?.lagSeconds ?? 0) > 1, 20_000);
      for (let i = 0; i < 5; i++) {
        const [s] = await pairStatuses(config, [pair], execs);
        const newestPrimary = Number(await need(primary).psql("SELECT extract(epoch FROM max(at)) FROM writes", "portal"));
        const newestStandby = Number(await onStandby("SELECT extract(epoch FROM max(at)) FROM writes", "portal"));
        samples.push({ reported: need(s?.lagSeconds), truth: newestPrimary - newestStandby });
        expect(s?.health).toBe("streaming");
        expect(s?.lagBytes).toBeGreaterThan(0);
      }
      for (const s of samples) expect(Math.abs(s.reported - s.truth)).toBeLessThan(1);
      process.stdout.write(`lag samples (reported vs truth, s): ${samples.map((s) => `${s.reported.toFixed(2)}/${s.truth.toFixed(2)}`).join(" ")}\n`);
    } finally {
      writing = false;
      await writer;
      await onStandby("ALTER SYSTEM RESET recovery_min_apply_delay; SELECT pg_reload_conf();");
    }
    // Judged against the RPO: the same lag over a tier of 1 s is a failing pair (exit 4), and the metrics say so.
    const [tight] = await pairStatuses(config, [{ ...pair, rpoSeconds: 0.5 }], execs);
    await waitFor("the delay to be lifted", async () => (await pairStatuses(config, [pair], execs))[0]?.lagBytes === 0);
    const metrics = parsePrometheus(renderReplicationMetrics([need(tight)]));
    expect(metrics.find((m) => m.name === "dcctl_replication_lag_seconds")?.labels).toMatchObject({ pair: "t-dr-db-01", engine: "postgresql", primary: "t-db-01" });
    expect(metrics.find((m) => m.name === "dcctl_replication_rpo_seconds")?.value).toBe(0.5);
  });

  it("tells a standby that misses one probe from a lost one: a second probe measures it, and one that never answers is unreachable within two bounds", async () => {
    await waitFor("the standby to catch up", async () => (await pairStatuses(config, [pair], execs))[0]?.lagBytes === 0);
    // The standby's postmaster stopped: a connection to it waits, as one to a host too loaded to answer would.
    const postmaster = Number(readFileSync(join(standbyDir(), "data", "postmaster.pid"), "utf8").split("\n")[0]);
    let timeouts = 0;
    let resumeOnTimeout = true;
    const watched: Executor = {
      target: exec.target,
      stream: (argv, opts) => exec.stream(argv, opts),
      close: () => exec.close(),
      run: async (argv, opts) => {
        try {
          return await exec.run(argv, opts);
        } catch (e) {
          if (e instanceof ExecTimeoutError) {
            timeouts++;
            if (resumeOnTimeout) process.kill(postmaster, "SIGCONT");
          }
          throw e;
        }
      },
    };
    const onStandbyHost = (h: { name: string }) => (h.name === pair.standby.name ? watched : exec);
    process.kill(postmaster, "SIGSTOP");
    try {
      const t = Date.now();
      const [slow] = await pairStatuses(config, [pair], onStandbyHost);
      expect(timeouts).toBe(1);
      expect(Date.now() - t).toBeGreaterThanOrEqual(PROBE_TIMEOUT_MS);
      expect(slow).toMatchObject({ health: "streaming", primaryAnswered: true, ok: true });

      process.kill(postmaster, "SIGSTOP");
      resumeOnTimeout = false;
      timeouts = 0;
      const t2 = Date.now();
      const [lost] = await pairStatuses(config, [pair], onStandbyHost);
      expect(timeouts).toBe(2);
      expect(Date.now() - t2).toBeLessThan(3 * PROBE_TIMEOUT_MS);
      expect(lost).toMatchObject({ health: "unreachable", ok: false });
    } finally {
      process.kill(postmaster, "SIGCONT");
    }
  });

  it("shows a replica whose primary is gone as broken, then promotes it (once)", async () => {
    await need(primary).stop();
    await waitFor("the standby to notice", async () => (await pairStatuses(config, [pair], execs))[0]?.health === "broken");
    const [broken] = await pairStatuses(config, [pair], execs);
    expect(broken).toMatchObject({ health: "broken", primaryAnswered: false, ok: false });
    expect(broken?.notes.join(" ")).toMatch(/t-db-01 did not answer/);
    expect(statusExitCode([need(broken)])).toBe(ExitCode.partial);

    const notes = await ENGINES.postgresql.promote(config, { host: pair.standby, exec });
    expect(notes).toEqual(["t-dr-db-01 promoted to primary (pg_promote)"]);
    expect(await onStandby("SELECT pg_is_in_recovery()")).toBe("f");
    await onStandby("INSERT INTO writes (note) VALUES ('ghi tại site phụ')", "portal");
    expect(await ENGINES.postgresql.promote(config, { host: pair.standby, exec })).toEqual(["t-dr-db-01 is not in recovery: already a primary, nothing to promote"]);
    expect((await pairStatuses(config, [pair], execs))[0]?.health).toBe("not-a-replica");
  });

  it("reprotects: the old primary, diverged, is wound back onto the promoted standby (pg_rewind); then the switchover back loses nothing", async () => {
    // The old primary comes back (healed) holding a write the standby never got: it has diverged.
    const p = need(primary);
    await run("runuser", [...control(primaryDir(), p.port).start.slice(1)]);
    await onPrimary("INSERT INTO writes (note) VALUES ('chỉ có ở site chính')", "portal");
    const back = reversed(pair);
    // It holds databases: replacing its data needs --yes.
    const refused = await setupPair(config, back, execs, { overwrite: false, log: () => undefined }).catch((e: unknown) => e);
    expect((refused as DcctlError).exitCode).toBe(ExitCode.notConfirmed);
    // The write it holds past the fork would be discarded: refused (exit 5) until told, and kept first — the WAL from
    // the fork on, its decode and the row — with its count and time.
    const keepDir = join(work, "kept");
    const kept = await setupPair(config, back, execs, { overwrite: true, log: () => undefined, diverged: { keepDir } }).catch((e: unknown) => e);
    expect(kept).toBeInstanceOf(DivergedWritesError);
    expect((kept as DcctlError).exitCode).toBe(ExitCode.notConfirmed);
    const d = (kept as DivergedWritesError).diverged;
    expect(d).toMatchObject({ host: "t-db-01", engine: "postgresql", writes: 1, kept: keepDir });
    expect(Math.abs(Date.parse(d.lastAt ?? "") - Date.now())).toBeLessThan(60_000);
    expect(d.firstAt).toBe(d.lastAt);
    expect((kept as DcctlError).message).toMatch(/^t-db-01 holds 1 write written \S+ – \S+ past where its new primary's history forked \(LSN [0-9A-F/]+ on timeline 1; it goes on to LSN [0-9A-F/]+\); a copy is kept in .*kept; .*--discard-diverged/);
    expect(readFileSync(join(keepDir, "rows-portal.public.writes.csv"), "utf8")).toMatch(/^id,at,note\n\d+,[^,]+,chỉ có ở site chính\n$/);
    expect(readFileSync(join(keepDir, "waldump.txt"), "utf8")).toMatch(/desc: COMMIT /);
    expect(d.files).toEqual(expect.arrayContaining(["rows-portal.public.writes.csv", "waldump.txt", expect.stringMatching(/^wal-00000001-from-.*\.tar\.gz$/)]));
    expect(await onPrimary("SELECT count(*) FROM writes WHERE note = 'chỉ có ở site chính'", "portal")).toBe("1");
    const rewound = await setupPair(config, back, execs, { overwrite: true, log: (l) => log.push(l), diverged: { keepDir, discard: true } });
    expect(rewound.notes.join("; ")).toMatch(/rewound onto t-dr-db-01/);
    expect(rewound.action).toBe("rewound");
    expect(rewound.diverged?.writes).toBe(1);
    expect(await onPrimary("SELECT pg_is_in_recovery()")).toBe("t");
    // The standby's write during the outage is there; the diverged one is gone.
    expect(await onPrimary("SELECT count(*) FROM writes WHERE note = 'ghi tại site phụ'", "portal")).toBe("1");
    expect(await onPrimary("SELECT count(*) FROM writes WHERE note = 'chỉ có ở site chính'", "portal")).toBe("0");
    await waitFor("the reversed pair to stream", async () => (await pairStatuses(config, [back], execs))[0]?.health === "streaming");

    // The planned way back: writes stopped at the acting primary, the old one caught up, promoted; nothing lost.
    await onStandby("INSERT INTO writes (note) SELECT 'trước khi chuyển về ' || g FROM generate_series(1, 500) g", "portal");
    await ENGINES.postgresql.query(config, "t-dr-db-01", exec, "", ENGINES.postgresql.readOnlySql);
    await waitFor("the old primary to apply everything", async () => (await pairStatuses(config, [back], execs))[0]?.lagBytes === 0);
    const count = await onStandby("SELECT count(*) FROM writes", "portal");
    expect(await ENGINES.postgresql.promote(config, { host: pair.primary, exec })).toEqual(["t-db-01 promoted to primary (pg_promote)"]);
    expect(await onPrimary("SELECT count(*) FROM writes", "portal")).toBe(count);
    // Writable again: the fence the copy carried is lifted by the promotion.
    await onPrimary("INSERT INTO writes (note) VALUES ('về lại site chính')", "portal");

    // And the standby is rewound back into its place as the primary's replica.
    const again = await setupPair(config, pair, execs, { overwrite: true, log: () => undefined });
    expect(again.action).toBe("rewound");
    await waitFor("the original pair to stream again", async () => (await pairStatuses(config, [pair], execs))[0]?.health === "streaming");
    await waitFor("the last write at the standby", async () => (await onStandby("SELECT count(*) FROM writes WHERE note = 'về lại site chính'", "portal")) === "1");
  });
});
