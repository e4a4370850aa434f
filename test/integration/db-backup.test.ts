import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalExecutor, SshExecutor } from "../../hosts/index.js";
import { RestoreTargetExistsError } from "../../databases/restore.js";
import { restorePostgres } from "../../databases/postgresql/restore.js";
import { restoreMariadb } from "../../databases/mariadb/restore.js";
import { BackupSourceError, Restic, type Snapshot } from "../../restic/index.js";
import { mariadbSource } from "../../databases/mariadb/dump.js";
import { postgresSource } from "../../databases/postgresql/dump.js";
import type { SourceItem } from "../../backup/sources/source.js";
import { startMariadb, type Mariadb } from "../../lab/mariadb.js";
import { PG_BIN_DIR, startPostgres, type Postgres } from "../../lab/postgres.js";
import { startRestServer, type RestServer } from "../../lab/rest-server.js";
import { startSshd, type Sshd } from "../../lab/sshd.js";
import { ExitCode } from "../../util/errors.js";
import { toolPath } from "../../util/tools.js";
import { MARIA_SEED, mariaSums, PG_SEED, pgSums } from "../helpers/db-fixtures.js";
import { gatedExecutor } from "../helpers/gated-executor.js";
import { ensureTestUser } from "../helpers/users.js";
import { until } from "../helpers/until.js";

const execFileP = promisify(execFile);

function procComm(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

function procUid(pid: string): number {
  try {
    return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? -1);
  } catch {
    return -1;
  }
}
const JOB = { host: "db01", tags: ["dcctl", "job:db01-daily"] };

describe("database backups over SSH into restic, and restores into fresh databases", () => {
  let work: string;
  let sshd: Sshd | undefined;
  let rest: RestServer | undefined;
  let pg: Postgres | undefined;
  let maria: Mariadb | undefined;
  let ssh: SshExecutor | undefined;
  let restic: Restic;
  let resticEnv: NodeJS.ProcessEnv;
  let pgPassFile: string;
  let mariaBackupCnf: string;
  let mariaRestoreCnf: string;
  let testUser = "";
  let testUid = -1;

  /** restic itself, without any of our code: what an operator would run by hand in a disaster. */
  async function plainRestic(args: string[]): Promise<Buffer> {
    const res = await execFileP(toolPath("restic"), args, { env: resticEnv, encoding: "buffer", maxBuffer: 256 * 1024 * 1024 });
    return res.stdout;
  }
  async function plainSnapshots(): Promise<Snapshot[]> {
    return JSON.parse((await plainRestic(["snapshots", "--json"])).toString("utf8")) as Snapshot[];
  }
  function need<T>(v: T | undefined, what: string): T {
    if (v === undefined) throw new Error(`${what} did not start`);
    return v;
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "dcctl-db-test-"));
    // The server account and the SSH login user both reach their files below this folder.
    chmodSync(work, 0o755);
    const user = await ensureTestUser();
    testUser = user.name;
    testUid = user.uid;
    sshd = await startSshd({ stateDir: join(work, "sshd"), user: user.name });
    rest = await startRestServer({ dataDir: join(work, "rest") });
    pg = await startPostgres({ dir: join(work, "pg") });
    maria = await startMariadb({ dir: join(work, "maria") });
    // Not root: sshd honours kill requests only for non-root logins, and a DB host's backup account is not root.
    ssh = new SshExecutor({ host: sshd.host, port: sshd.port, user: user.name, privateKeyPath: sshd.clientKeyPath, knownHostsPath: sshd.knownHostsPath });

    const passwordFile = join(work, "restic.password");
    writeFileSync(passwordFile, randomBytes(24).toString("base64url") + "\n", { mode: 0o600 });
    restic = new Restic({ url: rest.repo("db01"), passwordFile }, { cacheDir: join(work, "restic-cache") });
    await restic.init();
    resticEnv = { ...process.env, RESTIC_REPOSITORY: rest.repo("db01"), RESTIC_PASSWORD_FILE: passwordFile, RESTIC_CACHE_DIR: join(work, "restic-cache") };

    // The DB host's client credentials: files owned by the login user, mode 0600, never on a command line.
    const client = join(work, "client");
    mkdirSync(client, { mode: 0o700 });
    chownSync(client, user.uid, user.uid);
    const secret = (path: string, text: string) => {
      writeFileSync(path, text, { mode: 0o600 });
      chownSync(path, user.uid, user.uid);
    };
    const pgBackupPw = randomBytes(18).toString("base64url");
    const pgSuperPw = readFileSync(pg.superuserPasswordFile, "utf8").trim();
    pgPassFile = join(client, "pgpass");
    secret(pgPassFile, `127.0.0.1:${pg.port}:*:dcctl_backup:${pgBackupPw}\n127.0.0.1:${pg.port}:*:${pg.superuser}:${pgSuperPw}\n`);
    await pg.psql(`CREATE ROLE dcctl_backup LOGIN PASSWORD '${pgBackupPw}'; GRANT pg_read_all_data TO dcctl_backup; CREATE DATABASE portal; CREATE DATABASE archive;`);
    await pg.psql(PG_SEED, "portal");
    // Big enough (tens of MB compressed) that pg_dump is still inside its COPY when the output pipe fills up.
    await pg.psql("CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5(random()::text) AS payload FROM generate_series(1, 800000) g;", "archive");

    const mariaBackupPw = randomBytes(18).toString("base64url");
    const mariaRestorePw = randomBytes(18).toString("base64url");
    mariaBackupCnf = join(client, "backup.cnf");
    mariaRestoreCnf = join(client, "restore.cnf");
    secret(mariaBackupCnf, `[client]\nuser=dcctl_backup\npassword=${mariaBackupPw}\n`);
    secret(mariaRestoreCnf, `[client]\nuser=dcctl_restore\npassword=${mariaRestorePw}\n`);
    await maria.sql(
      [
        `CREATE USER dcctl_backup@'127.0.0.1' IDENTIFIED BY '${mariaBackupPw}';`,
        `GRANT SELECT, SHOW VIEW, TRIGGER, LOCK TABLES, EVENT, SHOW DATABASES ON *.* TO dcctl_backup@'127.0.0.1';`,
        `CREATE USER dcctl_restore@'127.0.0.1' IDENTIFIED BY '${mariaRestorePw}';`,
        `GRANT ALL PRIVILEGES ON *.* TO dcctl_restore@'127.0.0.1';`,
        "CREATE DATABASE mail CHARACTER SET utf8mb4;",
      ].join("\n"),
    );
    await maria.sql(MARIA_SEED, "mail");
  });

  afterAll(async () => {
    // Each stop on its own: one failing must not leave the others running.
    const stops = [() => ssh?.close(), () => pg?.stop(), () => maria?.stop(), () => rest?.stop(), () => sshd?.stop()];
    for (const stop of stops) await Promise.resolve(stop()).catch((e: unknown) => console.error(e));
    rmSync(work, { recursive: true, force: true });
  });

  // restic runs on the database host (the repository is a URL it reaches); relayed: the dump streamed through dcctl.
  const pgSrc = (relayed = false) => postgresSource({ port: need(pg, "PostgreSQL").port, user: "dcctl_backup", passFile: pgPassFile, globals: "without-role-passwords", resticOnHost: !relayed });
  const mariaSrc = (relayed = false) => mariadbSource({ port: need(maria, "MariaDB").port, defaultsFile: mariaBackupCnf, resticOnHost: !relayed });
  const item = (items: SourceItem[], name: string): SourceItem => need(items.find((i) => i.name === name), name);
  /** The temporary folders of parallel restores on "the host" (this machine). */
  const restoreDirs = (): string[] => readdirSync("/var/tmp").filter((d) => d.startsWith("dcctl-restore-") && ownedByTestUser(join("/var/tmp", d)));
  const ownedByTestUser = (path: string): boolean => {
    try {
      return statSync(path).uid === testUid;
    } catch {
      return false;
    }
  };
  /** pg_restore processes of the test user now (a parallel one: its leader and workers). */
  const pgRestoreWorkers = (): number =>
    readdirSync("/proc").filter((p) => /^\d+$/.test(p) && procComm(p) === "pg_restore" && procUid(p) === testUid).length;

  it("lists the databases on each server over SSH (no templates, no system schemas)", async () => {
    const exec = need(ssh, "sshd");
    const pgItems = await pgSrc().items(exec);
    expect(pgItems.map((i) => i.name).sort()).toEqual(["postgresql/_globals", "postgresql/archive", "postgresql/portal", "postgresql/postgres"]);
    expect(item(pgItems, "postgresql/portal").tags).toEqual(["source:postgresql", "db:portal"]);
    const mariaItems = await mariaSrc().items(exec);
    expect(mariaItems).toEqual([{ kind: "mariadb", name: "mariadb/mail", tags: ["source:mariadb", "db:mail"] }]);
    await expect(postgresSource({ port: need(pg, "PostgreSQL").port, user: "dcctl_backup", passFile: pgPassFile, databases: ["portal", "nope"] }).items(exec)).rejects.toThrow(/no database "nope"/);
  });

  it("backs up PostgreSQL and MariaDB through SSH, restic on the host or the dump streamed through dcctl, readable by plain restic", async () => {
    const exec = need(ssh, "sshd");
    const pgS = pgSrc();
    const pgItems = await pgS.items(exec);
    const portal = await pgS.backup(exec, restic, item(pgItems, "postgresql/portal"), JOB);
    const globals = await pgS.backup(exec, restic, item(pgItems, "postgresql/_globals"), JOB);
    const mS = mariaSrc();
    const mail = await mS.backup(exec, restic, item(await mS.items(exec), "mariadb/mail"), JOB);
    const relayed = await pgSrc(true).backup(exec, restic, item(pgItems, "postgresql/portal"), JOB);
    for (const s of [portal, globals, mail, relayed]) expect(s.snapshot_id).toMatch(/^[0-9a-f]{64}$/);

    const snaps = await plainSnapshots();
    const byId = new Map(snaps.map((s) => [s.id, s]));
    expect(byId.get(portal.snapshot_id ?? "")).toMatchObject({ hostname: "db01", tags: ["dcctl", "job:db01-daily", "source:postgresql", "db:portal"] });
    expect(byId.get(mail.snapshot_id ?? "")?.tags).toEqual(["dcctl", "job:db01-daily", "source:mariadb", "db:mail"]);
    // restic records who ran it: the database host's login for a dump taken there, this process's user for the relay.
    for (const s of [portal, globals, mail]) expect(byId.get(s.snapshot_id ?? "")?.username).toBe(testUser);
    expect(byId.get(relayed.snapshot_id ?? "")?.username).not.toBe(testUser);

    const pgDump = await plainRestic(["dump", portal.snapshot_id ?? "", "/postgresql/portal.dump"]);
    expect(pgDump.subarray(0, 5).toString("latin1")).toBe("PGDMP");
    // The same archive either way, uncompressed (restic compresses): the relay changes nothing in what is stored.
    const relayedDump = await plainRestic(["dump", relayed.snapshot_id ?? "", "/postgresql/portal.dump"]);
    expect(relayedDump.length).toBe(pgDump.length);
    writeFileSync(join(work, "portal.dump"), pgDump);
    const listing = await execFileP(join(PG_BIN_DIR, "pg_restore"), ["--list", join(work, "portal.dump")], { encoding: "utf8" });
    expect(listing.stdout).toMatch(/^;\s+Compression: 0$/m);
    const globalsSql = (await plainRestic(["dump", globals.snapshot_id ?? "", "/postgresql/_globals.sql"])).toString("utf8");
    expect(globalsSql).toMatch(/CREATE ROLE dcctl_backup;/);
    const mailSql = (await plainRestic(["dump", mail.snapshot_id ?? "", "/mariadb/mail.sql"])).toString("utf8");
    expect(mailSql).toContain("CREATE TABLE `mailboxes`");
    expect(mailSql).toContain("Nguyễn Văn A");
    expect(mailSql).toMatch(/-- Dump completed/);
    // Restorable under another name: the dump must not switch to the original database.
    expect(mailSql).not.toMatch(/^USE /m);
  });

  it("restores PostgreSQL into a fresh database with equal rows and checksums", async () => {
    const db = need(pg, "PostgreSQL");
    const res = await restorePostgres({
      restic, snapshot: "latest", db: "portal", host: "db01", targetExec: need(ssh, "sshd"),
      target: { port: db.port, user: db.superuser, passFile: pgPassFile }, targetDb: "portal_restored", overwrite: false,
    });
    expect(res).toMatchObject({ targetDb: "portal_restored", replaced: false });
    const original = await pgSums(db, "portal");
    expect(original.citizens?.rows).toBe(4000);
    expect(original.dossiers?.rows).toBe(3000);
    expect(await pgSums(db, "portal_restored")).toEqual(original);
    expect(await db.psql("SELECT greet(full_name) FROM citizens WHERE id = 3; SELECT count(*) FROM open_dossiers;", "portal_restored")).toBe("Xin chào Nguyễn Văn A\n2250\n");
    expect(await db.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'dcctl_restore_%';")).toBe("0\n");
  });

  it("restores PostgreSQL with pg_restore --jobs from a file restic restored on the host: the same data as a streamed restore, no file left", async () => {
    const db = need(pg, "PostgreSQL");
    const exec = need(ssh, "sshd");
    const target = { port: db.port, user: db.superuser, passFile: pgPassFile };
    const before = restoreDirs();
    // Watch the host for the file and pg_restore's workers while it runs: proof of the path taken, not only its end.
    const seen = { file: false, workers: 0 };
    const watch = setInterval(() => {
      if (restoreDirs().some((d) => !before.includes(d) && existsSync(join("/var/tmp", d, "postgresql", "portal.dump")))) seen.file = true;
      seen.workers = Math.max(seen.workers, pgRestoreWorkers());
    }, 20);
    try {
      await restorePostgres({ restic, snapshot: "latest", db: "portal", host: "db01", targetExec: exec, target, targetDb: "portal_jobs", overwrite: false, jobs: 3 });
    } finally {
      clearInterval(watch);
    }
    await restorePostgres({ restic, snapshot: "latest", db: "portal", host: "db01", targetExec: exec, target, targetDb: "portal_streamed", overwrite: false, jobs: 1 });
    expect(seen.file).toBe(true);
    // pg_restore --jobs 3 runs as a leader and its workers (processes, each a connection of its own).
    expect(seen.workers).toBeGreaterThan(1);
    const streamed = await pgSums(db, "portal_streamed");
    expect(streamed).toEqual(await pgSums(db, "portal"));
    expect(await pgSums(db, "portal_jobs")).toEqual(streamed);
    // Views, functions, constraints and indexes came through the parallel path too.
    const schema = "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'; SELECT count(*) FROM pg_constraint WHERE contype = 'f'; SELECT greet('A');";
    expect(await db.psql(schema, "portal_jobs")).toBe(await db.psql(schema, "portal_streamed"));
    expect(restoreDirs().filter((d) => !before.includes(d))).toEqual([]);
    // Asked for --jobs where restic may not run on the host: refused before anything is made, not quietly streamed.
    const streamedOnly = { ...target, resticOnHost: false };
    await expect(restorePostgres({ restic, snapshot: "latest", db: "portal", host: "db01", targetExec: exec, target: streamedOnly, targetDb: "portal_refused", overwrite: false, jobs: 2 })).rejects.toThrow(
      /pg_restore --jobs 2 needs restic on .*; use --jobs 1 to stream the dump/,
    );
    expect(await db.psql("SELECT count(*) FROM pg_database WHERE datname = 'portal_refused' OR datname LIKE 'dcctl_restore_%';")).toBe("0\n");
    await db.psql("DROP DATABASE portal_jobs; DROP DATABASE portal_streamed;");
  });

  it("a parallel restore cut off by a lost connection leaves no file on the host", async () => {
    const db = need(pg, "PostgreSQL");
    const src = pgSrc();
    await src.backup(need(ssh, "sshd"), restic, item(await src.items(need(ssh, "sshd")), "postgresql/archive"), JOB);
    const u = need(sshd, "sshd");
    // A connection of its own, dropped while pg_restore reads the file, as when dcctl dies or the network goes.
    const lost = new SshExecutor({ host: u.host, port: u.port, user: testUser, privateKeyPath: u.clientKeyPath, knownHostsPath: u.knownHostsPath });
    const before = restoreDirs();
    const attempt = restorePostgres({
      restic, snapshot: "latest", db: "archive", targetExec: lost,
      target: { port: db.port, user: db.superuser, passFile: pgPassFile }, targetDb: "archive_cut", overwrite: false, jobs: 2,
    });
    attempt.catch(() => undefined);
    const fresh = () => restoreDirs().filter((d) => !before.includes(d));
    await until("the dump restored as a file on the host", () => fresh().some((d) => existsSync(join("/var/tmp", d, "postgresql", "archive.dump"))) && pgRestoreWorkers() > 0);
    await lost.close();
    await until("the temporary folder removed", () => fresh().length === 0);
    await expect(attempt).rejects.toThrow();
    await db.psql("DROP DATABASE IF EXISTS archive_cut;");
  });

  it("a parallel restore whose pg_restore fails removes its staging database and the file on the host", async () => {
    const db = need(pg, "PostgreSQL");
    const before = restoreDirs();
    const bad = await restic.backupStream(new LocalExecutor().stream(["printf", "PGDMP this is not an archive"]), { filename: "postgresql/portal.dump", host: "broken", tags: ["source:postgresql", "db:portal"] });
    const attempt = restorePostgres({
      restic, snapshot: bad.snapshot_id ?? "", db: "portal", targetExec: need(ssh, "sshd"),
      target: { port: db.port, user: db.superuser, passFile: pgPassFile }, targetDb: "portal_broken", overwrite: false, jobs: 2,
    });
    await expect(attempt).rejects.toThrow(/pg_restore on .* failed \(exit 1\)/);
    await restic.forgetIds([bad.snapshot_id ?? ""]);
    expect(await db.psql("SELECT count(*) FROM pg_database WHERE datname = 'portal_broken' OR datname LIKE 'dcctl_restore_%';")).toBe("0\n");
    expect(restoreDirs().filter((d) => !before.includes(d))).toEqual([]);
  });

  it("refuses to restore PostgreSQL over an existing database without overwrite, and leaves it untouched", async () => {
    const db = need(pg, "PostgreSQL");
    await db.psql("UPDATE citizens SET note = 'sửa sau sao lưu' WHERE id = 1;", "portal");
    const before = await pgSums(db, "portal");
    const attempt = restorePostgres({
      restic, snapshot: "latest", db: "portal", targetExec: need(ssh, "sshd"),
      target: { port: db.port, user: db.superuser, passFile: pgPassFile }, overwrite: false,
    });
    await expect(attempt).rejects.toThrow(RestoreTargetExistsError);
    await expect(attempt).rejects.toThrow(/database portal already exists/);
    await expect(attempt).rejects.toMatchObject({ exitCode: ExitCode.notConfirmed });
    expect(await pgSums(db, "portal")).toEqual(before);
  });

  it("replaces an existing PostgreSQL database only with overwrite", async () => {
    const db = need(pg, "PostgreSQL");
    await db.psql("DELETE FROM dossiers WHERE id > 10;", "portal_restored");
    const snap = (await restic.snapshots({ tags: ["db:portal"] }))[0]?.id ?? "";
    const res = await restorePostgres({
      restic, snapshot: snap, db: "portal", targetExec: need(ssh, "sshd"),
      target: { port: db.port, user: db.superuser, passFile: pgPassFile }, targetDb: "portal_restored", overwrite: true, jobs: 1,
    });
    expect(res).toMatchObject({ snapshotId: snap, replaced: true });
    expect((await pgSums(db, "portal_restored")).dossiers?.rows).toBe(3000);
  });

  it("a restore whose dump cannot be read fails, and leaves neither the target nor a staging database", async () => {
    const db = need(pg, "PostgreSQL");
    const m = need(maria, "MariaDB");
    const exec = need(ssh, "sshd");
    // A snapshot that is not there is bad input, found by the listing before anything is created (issue 21, item 7),
    // streamed or restored on the host alike.
    for (const jobs of [1, 2]) {
      const attempt = restorePostgres({
        restic, snapshot: "0123abcd", db: "portal", targetExec: exec,
        target: { port: db.port, user: db.superuser, passFile: pgPassFile }, targetDb: "portal_broken", overwrite: false, jobs,
      });
      await expect(attempt).rejects.toThrow(/^snapshot 0123abcd is none of the \d+ tagged source:postgresql, db:portal in /);
      await expect(attempt).rejects.toMatchObject({ exitCode: ExitCode.badInput });
    }
    expect(await db.psql("SELECT count(*) FROM pg_database WHERE datname = 'portal_broken' OR datname LIKE 'dcctl_restore_%';")).toBe("0\n");
    // A dump whose SQL breaks after a good start: the client fails part-way, and the half-filled database is dropped.
    const bad = await restic.backupStream(new LocalExecutor().stream(["printf", "%s\\n", "CREATE TABLE t (id INT);", "INSERT INTO t VALUES (1);", "THIS IS NOT SQL;"]), {
      filename: "mariadb/mail.sql", host: "broken", tags: ["source:mariadb", "db:mail"],
    });
    const mAttempt = restoreMariadb({ restic, snapshot: bad.snapshot_id ?? "", db: "mail", targetExec: exec, target: { port: m.port, defaultsFile: mariaRestoreCnf }, targetDb: "mail_broken", overwrite: false });
    await expect(mAttempt).rejects.toThrow(/mariadb on .* failed \(exit 1\): .*syntax.*mail_broken was dropped/);
    await restic.forgetIds([bad.snapshot_id ?? ""]);
    expect(await m.sql("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'mail_broken';")).toBe("0\n");
  });

  it("restores MariaDB into a fresh database with equal rows and checksums, and refuses an existing one", async () => {
    const m = need(maria, "MariaDB");
    const target = { port: m.port, defaultsFile: mariaRestoreCnf };
    const res = await restoreMariadb({ restic, snapshot: "latest", db: "mail", host: "db01", targetExec: need(ssh, "sshd"), target, targetDb: "mail_restored", overwrite: false });
    expect(res).toMatchObject({ targetDb: "mail_restored", replaced: false });
    const original = await mariaSums(m, "mail");
    expect(original.mailboxes?.rows).toBe(4000);
    expect(original.messages?.rows).toBe(2500);
    expect(await mariaSums(m, "mail_restored")).toEqual(original);
    expect(await m.sql("SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = 'mail_restored'; SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = 'mail_restored';")).toBe("1\n1\n");
    // The original was not written to by the restore.
    expect(await mariaSums(m, "mail")).toEqual(original);

    const attempt = restoreMariadb({ restic, snapshot: "latest", db: "mail", targetExec: need(ssh, "sshd"), target, overwrite: false });
    await expect(attempt).rejects.toThrow(RestoreTargetExistsError);
    await expect(attempt).rejects.toThrow(/database mail already exists/);
    expect(await mariaSums(m, "mail")).toEqual(original);
  });

  it("keeps no snapshot when pg_dump run by restic on the host fails part-way through its output", async () => {
    const before = (await plainSnapshots()).map((s) => s.id).sort();
    // A pg_dump that sends its first 2 MB and then fails, as one whose connection broke would.
    const bin = join(work, "failing-bin");
    mkdirSync(bin, { recursive: true, mode: 0o755 });
    writeFileSync(join(bin, "pg_dump"), `#!/bin/sh\n${join(PG_BIN_DIR, "pg_dump")} "$@" | head -c 2000000\necho "pg_dump: error: connection to server was lost" >&2\nexit 1\n`, { mode: 0o755 });
    const src = postgresSource({ port: need(pg, "PostgreSQL").port, user: "dcctl_backup", passFile: pgPassFile, binDir: bin });
    const backup = src.backup(need(ssh, "sshd"), restic, { kind: "postgresql", name: "postgresql/archive", tags: ["source:postgresql", "db:archive"] }, JOB);
    await expect(backup).rejects.toThrow(BackupSourceError);
    await expect(backup).rejects.toThrow(/archive\.dump failed on .*connection to server was lost.*no snapshot kept/);
    expect((await plainSnapshots()).map((s) => s.id).sort()).toEqual(before);
  });

  it("keeps no snapshot when pg_dump, streamed through dcctl, dies in the middle of a table (backend terminated)", async () => {
    const db = need(pg, "PostgreSQL");
    const before = (await plainSnapshots()).map((s) => s.id).sort();
    // Hold pg_dump's output after 1 MiB, so that it is blocked inside COPY of the big table when we cut it off.
    const gated = gatedExecutor(need(ssh, "sshd"), 1024 * 1024);
    const src = pgSrc(true);
    const backup = src.backup(gated, restic, item(await src.items(gated), "postgresql/archive"), JOB);
    backup.catch(() => undefined);
    await gated.reached;
    let killed = "";
    for (let i = 0; i < 100 && !killed.includes("t"); i++) {
      killed = await db.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND query LIKE 'COPY %';");
      if (!killed.includes("t")) await new Promise((r) => setTimeout(r, 100));
    }
    expect(killed).toContain("t");
    gated.release();
    await expect(backup).rejects.toThrow(BackupSourceError);
    await expect(backup).rejects.toThrow(/COPY public\.big.*no snapshot kept/);
    expect((await plainSnapshots()).map((s) => s.id).sort()).toEqual(before);
  });

  it("keeps no snapshot when mysqldump, streamed through dcctl, loses its connection in the middle of a table", async () => {
    const m = need(maria, "MariaDB");
    await m.sql("CREATE DATABASE archive;");
    // Tens of MB of dump: mysqldump is still inside the table when the output pipe fills up.
    await m.sql("CREATE TABLE big (id INT PRIMARY KEY, payload VARCHAR(64)) ENGINE=InnoDB; INSERT INTO big SELECT seq, CONCAT(MD5(seq), MD5(RAND())) FROM seq_1_to_600000;", "archive");
    const before = (await plainSnapshots()).map((s) => s.id).sort();
    const gated = gatedExecutor(need(ssh, "sshd"), 1024 * 1024);
    const backup = mariaSrc(true).backup(gated, restic, { kind: "mariadb", name: "mariadb/archive", tags: ["source:mariadb", "db:archive"] }, JOB);
    backup.catch(() => undefined);
    await gated.reached;
    let ids: string[] = [];
    for (let i = 0; i < 100 && ids.length === 0; i++) {
      ids = (await m.sql("SELECT id FROM information_schema.processlist WHERE user = 'dcctl_backup' AND info LIKE 'SELECT%big%';")).split("\n").filter(Boolean);
      if (ids.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ids).toHaveLength(1);
    await m.sql(`KILL CONNECTION ${ids[0]};`);
    gated.release();
    await expect(backup).rejects.toThrow(BackupSourceError);
    await expect(backup).rejects.toThrow(/mysqldump.*no snapshot kept/i);
    expect((await plainSnapshots()).map((s) => s.id).sort()).toEqual(before);
  });

  it("starts both servers again on the same folders with their databases intact", async () => {
    const oldPg = need(pg, "PostgreSQL");
    const oldMaria = need(maria, "MariaDB");
    const sums = { pg: await pgSums(oldPg, "portal"), maria: await mariaSums(oldMaria, "mail") };
    await oldPg.stop();
    await oldMaria.stop();
    pg = undefined;
    maria = undefined;
    pg = await startPostgres({ dir: join(work, "pg") });
    maria = await startMariadb({ dir: join(work, "maria") });
    expect(await pgSums(pg, "portal")).toEqual(sums.pg);
    expect(await mariaSums(maria, "mail")).toEqual(sums.maria);
  });
});
