import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalExecutor, type ExecOptions, type ExecStream, type Executor } from "../../hosts/index.js";
import { mariadb as mariadbEngine } from "../../databases/mariadb/index.js";
import { mariadbReplicaStatus, promoteMariadb, setupMariadbReplica } from "../../databases/mariadb/replication.js";
import type { MariadbReplicationEnd } from "../../databases/mariadb/connection.js";
import { PROBE_TIMEOUT_MS, type ReplicaStatus, type ReplicationAccount } from "../../databases/replication.js";
import type { SiteHost, SiteName } from "../../inventory/index.js";
import { startMariadb, type Mariadb } from "../../lab/mariadb.js";
import { DcctlError, ExitCode } from "../../util/errors.js";
import { MARIA_SEED, mariaSums } from "../helpers/db-fixtures.js";

/** A database host as the inventory describes it, on loopback. */
function siteHost(name: string, site: SiteName, extra: Partial<SiteHost> = {}): SiteHost {
  return {
    name,
    site,
    role: "db",
    cpus: 2,
    memoryGb: 4,
    disks: [{ label: "os", sizeGb: 40 }],
    network: "database",
    ip: "127.0.0.1",
    template: "debian-12",
    datastore: "ds-1",
    backupPolicy: "db-daily",
    drTier: 1,
    services: ["mariadb"],
    ssh: { host: "127.0.0.1", port: 22, user: "dcctl" },
    activeOnly: false,
    ...extra,
  };
}

/** Passes the first `afterBytes` of a streamed command's output, then kills the command: a dump cut off part-way. */
function cuttingDumps(inner: Executor, afterBytes: number): Executor {
  return {
    target: inner.target,
    run: (argv: string[], opts?: ExecOptions) => inner.run(argv, opts),
    stream(argv: string[], opts?: ExecOptions): ExecStream {
      const s = inner.stream(argv, opts);
      const out = new PassThrough();
      let passed = 0;
      s.stdout.on("data", (b: Buffer) => {
        if (passed >= afterBytes) return;
        out.write(b.subarray(0, afterBytes - passed));
        passed += b.length;
        if (passed >= afterBytes) {
          s.kill();
          out.end();
        }
      });
      s.stdout.on("end", () => out.end());
      return { stdout: out, done: s.done, kill: () => s.kill() };
    },
    close: () => inner.close(),
  };
}

/** Polls `probe` until it returns a value, within `timeoutMs`; the last failure is the error. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${last})` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const SYSTEM = "('information_schema', 'performance_schema', 'sys', 'mysql')";

describe("MariaDB GTID replication between two real servers", () => {
  let work: string;
  let primary: Mariadb | undefined;
  let standby: Mariadb | undefined;
  let primaryPort = 0;
  const exec = new LocalExecutor();
  const account: ReplicationAccount = { user: "dcctl_replicator", password: `r'${randomBytes(12).toString("base64url")}\\x` };
  const primaryHost = siteHost("qn-db-04", "primary");
  const standbyHost = siteHost("qn-db-04-dr", "secondary", { standbyFor: "qn-db-04" });
  let primaryEnd: MariadbReplicationEnd;
  let standbyEnd: MariadbReplicationEnd;
  const log: string[] = [];
  const o = (overwrite: boolean) => ({ overwrite, log: (l: string) => void log.push(l), diverged: { keepDir: join(work, "kept"), discard: false } });

  function need<T>(v: T | undefined, what: string): T {
    if (v === undefined) throw new Error(`${what} is not running`);
    return v;
  }
  const P = () => need(primary, "the primary");
  const S = () => need(standby, "the standby");
  const status = () => mariadbReplicaStatus(primaryEnd, standbyEnd);
  const userDbs = async (m: Mariadb) => (await m.sql(`SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ${SYSTEM} ORDER BY 1;`)).split("\n").filter(Boolean);
  const slaveStatus = async (m: Mariadb) => (await m.sql("SHOW SLAVE STATUS;")).trim();
  const scalar = async (m: Mariadb, sql: string) => (await m.sql(sql)).trim();
  const newest = async (m: Mariadb) => Number(await scalar(m, "SELECT UNIX_TIMESTAMP(MAX(at)) FROM ops.ticks;"));
  const count = async (m: Mariadb) => Number(await scalar(m, "SELECT COUNT(*) FROM ops.ticks;"));

  async function adminDefaults(m: Mariadb, name: string): Promise<string> {
    const password = randomBytes(18).toString("base64url");
    await m.sql(`CREATE USER dcctl_admin@'127.0.0.1' IDENTIFIED BY '${password}'; GRANT ALL PRIVILEGES ON *.* TO dcctl_admin@'127.0.0.1' WITH GRANT OPTION;`);
    const file = join(work, `${name}.cnf`);
    writeFileSync(file, `[client]\nuser=dcctl_admin\npassword=${password}\n`, { mode: 0o600 });
    return file;
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "dcctl-mariadb-repl-"));
    chmodSync(work, 0o755);
    // One address, so the ids must be told apart by hand (the lab derives them from address and port).
    primary = await startMariadb({ dir: join(work, "primary"), serverId: 101 });
    standby = await startMariadb({ dir: join(work, "standby"), serverId: 102 });
    primaryPort = primary.port;
    primaryEnd = { host: primaryHost, exec, conn: { port: primary.port, defaultsFile: await adminDefaults(primary, "primary") } };
    standbyEnd = { host: standbyHost, exec, conn: { port: standby.port, defaultsFile: await adminDefaults(standby, "standby") } };
    await primary.sql("CREATE DATABASE mail CHARACTER SET utf8mb4; CREATE DATABASE ops; CREATE USER portal_app@'%' IDENTIFIED BY 'x';");
    await primary.sql(MARIA_SEED, "mail");
    await primary.sql("CREATE TABLE ticks (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) NOT NULL) ENGINE=InnoDB;", "ops");
  });

  afterAll(async () => {
    for (const stop of [() => primary?.stop(), () => standby?.stop()]) await Promise.resolve(stop()).catch((e: unknown) => console.error(e));
    rmSync(work, { recursive: true, force: true });
  });

  it("is the MariaDB engine's replication", () => {
    expect(typeof mariadbEngine.setupReplica).toBe("function");
    expect(typeof mariadbEngine.replicaStatus).toBe("function");
    expect(typeof mariadbEngine.promote).toBe("function");
  });

  it("leaves an empty standby as it was when the seeding dump is cut off", async () => {
    const cut = { ...primaryEnd, exec: cuttingDumps(exec, 64 * 1024) };
    await expect(setupMariadbReplica(cut, standbyEnd, account, o(false))).rejects.toThrow(/seeding qn-db-04-dr from qn-db-04 failed: mysqldump .*exit 137.*holds no databases, as before/);
    expect(await userDbs(S())).toEqual([]);
    expect(await slaveStatus(S())).toBe("");
    expect(await scalar(S(), "SELECT @@read_only;")).toBe("0");
  });

  it("seeds a fresh standby with a consistent copy that then follows the primary; a second setup keeps it", async () => {
    const res = await setupMariadbReplica(primaryEnd, standbyEnd, account, o(false));
    expect(res.action).toBe("seeded");
    expect(res.notes[0]).toMatch(/qn-db-04-dr seeded from qn-db-04 .*\(mail, ops\) and replicating with GTID from 0-101-\d+; it is read-only/);
    // The application account exists only on the primary: named, since the seed copies databases only.
    expect(res.notes.join("\n")).toMatch(/'portal_app'@'%' is not on qn-db-04-dr/);
    expect(await mariaSums(S(), "mail")).toEqual(await mariaSums(P(), "mail"));
    expect(await scalar(S(), "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'mail';")).toBe("1");
    expect(await scalar(S(), "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'mail';")).toBe("1");
    expect(await scalar(S(), "SELECT @@read_only;")).toBe("1");
    // The standby's binary log holds nothing of its own: the load was not logged.
    expect(await scalar(S(), "SELECT @@gtid_binlog_pos;")).toBe("");
    expect(await scalar(P(), `SHOW GRANTS FOR dcctl_replicator@'%';`)).toMatch(/GRANT REPLICATION SLAVE ON \*\.\* TO `dcctl_replicator`@`%` IDENTIFIED BY PASSWORD '\*[0-9A-F]{40}'/);
    // The password reached the primary only as a hash: its binary log does not hold it.
    const binlogs = (await P().sql("SHOW BINARY LOGS;")).split("\n").filter(Boolean).map((l) => l.split("\t")[0] ?? "");
    for (const f of binlogs) expect(await P().sql(`SHOW BINLOG EVENTS IN '${f}';`)).not.toContain(account.password.slice(2, 14));

    const again = await setupMariadbReplica(primaryEnd, standbyEnd, account, o(false));
    expect(again).toEqual({ action: "kept", notes: ["qn-db-04-dr already replicates from qn-db-04 (127.0.0.1:" + primaryPort + ") with GTID (slave_pos): nothing changed"] });
  });

  it("reports an idle replica as streaming with no lag", async () => {
    const s = await waitFor("the replica caught up", async () => {
      const st = await status();
      return st.primaryPosition && st.primaryPosition === st.replicaPosition ? st : undefined;
    });
    expect(s).toMatchObject({ health: "streaming", primaryAnswered: true, lagSeconds: 0, lagBytes: 0, notes: [] });
    expect(s.primaryPosition).toMatch(/^0-101-\d+$/);
  });

  it("measures the lag under a steady write load within a second of the truth, and the rows arrive", async () => {
    await P().sql("INSERT INTO ops.ticks (at) VALUES (NOW(6));");
    await waitFor("the first row at the replica", async () => ((await count(S())) === 1 ? true : undefined));

    // The load: a row with the primary's clock every 100 ms, each write waking the sampler, until there are 20 writes
    // and 4 samples (3 s on an idle machine; a busy one gets more time, up to a minute, rather than fewer samples).
    let writes = 0;
    let wake: () => void = () => undefined;
    const samples: { reported?: number; truthBefore: number; truth: number; health: ReplicaStatus["health"]; lagBytes?: number }[] = [];
    const giveUpAt = Date.now() + 60_000;
    let loadDone = false;
    const load = (async () => {
      try {
        while ((writes < 20 || samples.length < 4) && Date.now() < giveUpAt) {
          const t = Date.now();
          await P().sql("INSERT INTO ops.ticks (at) VALUES (NOW(6));");
          writes++;
          wake();
          await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - t))));
        }
      } finally {
        loadDone = true;
        wake();
      }
    })();
    const nextWrites = (n: number) => {
      const target = writes + n;
      return new Promise<void>((resolve) => {
        wake = () => {
          if (writes >= target || loadDone) resolve();
        };
      });
    };

    // A second of it with the replica's SQL thread held up by a table lock there: a real lag, growing, then caught up.
    await nextWrites(8);
    const stall = S().sql("LOCK TABLES ops.ticks READ; SELECT SLEEP(1.2); UNLOCK TABLES;");

    // The truth is read just before and just after each measurement: on a busy machine the lag moves by more than a
    // second between the two, and the measurement was taken somewhere in between.
    const truthNow = async () => {
      const [atPrimary, atReplica] = await Promise.all([newest(P()), newest(S())]);
      return atPrimary - atReplica;
    };
    while (!loadDone) {
      await nextWrites(2);
      if (loadDone) break;
      const truthBefore = await truthNow();
      const s = await status();
      samples.push({ reported: s.lagSeconds, truthBefore, truth: await truthNow(), health: s.health, ...(s.lagBytes !== undefined ? { lagBytes: s.lagBytes } : {}) });
    }
    await Promise.all([load, stall]);
    console.log(`MariaDB lag under load (${writes} writes): ${JSON.stringify(samples)}`);
    expect(writes).toBeGreaterThanOrEqual(20);
    expect(samples.length).toBeGreaterThanOrEqual(4);
    // The stall was seen: some samples had the replica behind by half a second or more.
    expect(samples.some((s) => s.truth >= 0.5)).toBe(true);
    for (const s of samples) {
      expect(s.health).toBe("streaming");
      expect(s.reported).toBeDefined();
      expect(Math.min(...[s.truthBefore, s.truth].map((truth) => Math.abs((s.reported ?? Number.NaN) - truth)))).toBeLessThanOrEqual(1);
    }

    const total = await count(P());
    expect(total).toBe(writes + 1);
    await waitFor("every row at the replica", async () => ((await count(S())) === total ? true : undefined), 15_000);
    expect(await newest(S())).toBe(await newest(P()));
  });

  it("reports a replica whose IO thread was stopped, and one whose primary is gone, as broken", async () => {
    await S().sql("STOP SLAVE IO_THREAD;");
    const stopped = await status();
    expect(stopped.health).toBe("broken");
    expect(stopped.primaryAnswered).toBe(true);
    expect(stopped.notes).toContainEqual(expect.stringMatching(/qn-db-04-dr: IO thread No/));
    // Nothing written meanwhile: it has everything the primary has, so the data is not behind.
    expect(stopped.lagSeconds).toBe(0);
    await S().sql("START SLAVE IO_THREAD;");
    await waitFor("streaming again", async () => ((await status()).health === "streaming" ? true : undefined));

    const rowsAtPrimary = await count(P());
    await P().stop();
    primary = undefined;
    const lost = await waitFor("the replica notices the lost primary", async () => {
      const s = await status();
      return s.notes.some((n) => /Last_IO_Error/.test(n)) ? s : undefined;
    });
    expect(lost.health).toBe("broken");
    expect(lost.primaryAnswered).toBe(false);
    expect(lost.notes).toContainEqual(expect.stringMatching(/^qn-db-04 did not answer: /));
    expect(lost.notes).toContainEqual(expect.stringMatching(/IO thread Connecting, Last_IO_Error 2003: .*Connection refused/));
    // A lost primary costs seconds, not minutes.
    const t = Date.now();
    await status();
    expect(Date.now() - t).toBeLessThan(2 * PROBE_TIMEOUT_MS);
    expect(await count(S())).toBe(rowsAtPrimary);
  });

  it("promotes the replica to a writable primary; promoting again changes nothing", async () => {
    const rows = await count(S());
    const notes = await promoteMariadb(standbyEnd);
    expect(notes).toEqual([expect.stringMatching(/^qn-db-04-dr promoted to primary: replication from 127\.0\.0\.1:\d+ removed \(RESET SLAVE ALL\), read_only OFF, data at GTID 0-101-\d+$/)]);
    expect(await scalar(S(), "SELECT @@read_only;")).toBe("0");
    expect(await slaveStatus(S())).toBe("");
    expect(await count(S())).toBe(rows);
    expect(await status()).toMatchObject({ health: "not-a-replica", primaryAnswered: false });
    expect(await promoteMariadb(standbyEnd)).toEqual(["qn-db-04-dr has no replication configured: already a primary, nothing to promote"]);
  });

  it("refuses to seed over a standby's own databases, leaving it as it was; with overwrite it re-seeds", async () => {
    primary = await startMariadb({ dir: join(work, "primary"), port: primaryPort, serverId: 101 });
    await S().sql("CREATE DATABASE scratch; CREATE TABLE scratch.notes (id INT PRIMARY KEY); INSERT INTO scratch.notes VALUES (1);");
    const before = { dbs: await userDbs(S()), gtid: await scalar(S(), "SELECT @@gtid_binlog_pos;"), sums: await mariaSums(S(), "mail") };
    expect(before.dbs).toEqual(["mail", "ops", "scratch"]);

    const refused = await setupMariadbReplica(primaryEnd, standbyEnd, account, o(false)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(DcctlError);
    expect((refused as DcctlError).exitCode).toBe(ExitCode.notConfirmed);
    expect((refused as DcctlError).message).toMatch(/^qn-db-04-dr: it holds databases mail, ops, scratch; replication setup drops its databases.*run again with --yes to overwrite$/);
    expect(await userDbs(S())).toEqual(before.dbs);
    expect(await scalar(S(), "SELECT @@gtid_binlog_pos;")).toBe(before.gtid);
    expect(await mariaSums(S(), "mail")).toEqual(before.sums);
    expect(await slaveStatus(S())).toBe("");
    expect(await scalar(S(), "SELECT @@read_only;")).toBe("0");

    const res = await setupMariadbReplica(primaryEnd, standbyEnd, account, o(true));
    expect(res.action).toBe("seeded");
    expect(res.notes).toContainEqual("dropped qn-db-04-dr's former databases mail, ops, scratch");
    expect(await userDbs(S())).toEqual(["mail", "ops"]);
    expect(await mariaSums(S(), "mail")).toEqual(await mariaSums(P(), "mail"));
    await P().sql("INSERT INTO ops.ticks (at) VALUES (NOW(6));");
    const total = await count(P());
    await waitFor("the new row at the re-seeded replica", async () => ((await count(S())) === total ? true : undefined));
    expect((await status()).health).toBe("streaming");
  });

  it("reports a standby that does not answer as unreachable, within the probe's bound", async () => {
    await S().stop();
    standby = undefined;
    const t = Date.now();
    const s = await status();
    expect(Date.now() - t).toBeLessThan(2 * PROBE_TIMEOUT_MS);
    expect(s).toMatchObject({ health: "unreachable", primaryAnswered: false });
    expect(s.notes).toEqual([expect.stringMatching(/^qn-db-04-dr: mariadb on local failed \(exit 1\): .*Can't connect/)]);
  });
});
