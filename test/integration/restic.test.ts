import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BackupSourceError,
  Restic,
  ResticAppendOnlyError,
  ResticLockedError,
  ResticRepoMissingError,
  ResticWrongPasswordError,
  redactRepo,
  resticVersion,
  type ResticRepo,
} from "../../restic/index.js";
import { LocalExecutor, SshExecutor } from "../../hosts/index.js";
import { startSshd, type Sshd } from "../../lab/sshd.js";
import { startRestServer, type RestServer } from "../../lab/rest-server.js";
import { toolPath } from "../../util/tools.js";
import { ExitCode } from "../../util/errors.js";
import { ensureTestUser } from "../helpers/users.js";
import { until } from "../helpers/until.js";

/** Collects what is written to it, for comparing dumps. */
class Sink extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk);
    cb();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

describe("redactRepo", () => {
  it("hides the password of a repository URL, keeps the rest", () => {
    expect(redactRepo("rest:https://backup:p%40ss@10.0.0.9:8000/primary/")).toBe("rest:https://backup:***@10.0.0.9:8000/primary/");
    expect(redactRepo("Fatal: at rest:http://u:x@h/r: 401")).toBe("Fatal: at rest:http://u:***@h/r: 401");
    expect(redactRepo("rest:http://127.0.0.1:8000/primary/")).toBe("rest:http://127.0.0.1:8000/primary/");
  });
});

describe("restic wrapper against real rest-servers", () => {
  let work: string;
  let primary: RestServer | undefined;
  let secondary: RestServer | undefined;
  let repo: ResticRepo;
  let restic: Restic;
  let passwordFile: string;
  let sshd: Sshd | undefined;
  let testUser: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "dcctl-restic-test-"));
    passwordFile = join(work, "password");
    writeFileSync(passwordFile, "correct horse battery staple\n", { mode: 0o600 });
    primary = await startRestServer({ dataDir: join(work, "primary-data") });
    chmodSync(work, 0o755);
    testUser = (await ensureTestUser()).name;
    sshd = await startSshd({ stateDir: join(work, "sshd"), extraUsers: [testUser] });
    secondary = await startRestServer({ dataDir: join(work, "secondary-data"), appendOnly: true });
    repo = { url: primary.repo("primary"), passwordFile };
    restic = new Restic(repo, { cacheDir: join(work, "cache") });
  });

  afterAll(async () => {
    await primary?.stop();
    await secondary?.stop();
    await sshd?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it("probes the restic version once", async () => {
    const v = await resticVersion(toolPath("restic"));
    expect(v.major).toBe(0);
    expect(v.minor).toBeGreaterThanOrEqual(17);
  });

  it("initialises a repository and reads its config", async () => {
    const { id } = await restic.init();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const config = await restic.catConfig();
    expect(config.id).toBe(id);
    expect(config.version).toBeGreaterThanOrEqual(1);
  });

  it("backs up a folder with excludes, and snapshots list it", async () => {
    const src = join(work, "src");
    mkdirSync(join(src, "logs"), { recursive: true });
    writeFileSync(join(src, "app.conf"), "listen 8080\n");
    writeFileSync(join(src, "logs", "huge.log"), "x".repeat(10_000));
    const summary = await restic.backup([src], { excludes: ["*.log"], tags: ["files", "app01"], host: "app01" });
    expect(summary.snapshot_id).toMatch(/^[0-9a-f]{64}$/);
    expect(summary.files_new).toBe(1);
    expect(summary.data_added).toBeGreaterThan(0);
    expect(summary.total_duration).toBeGreaterThan(0);
    const snaps = await restic.snapshots({ host: "app01" });
    expect(snaps.map((s) => s.id)).toEqual([summary.snapshot_id]);
    expect(snaps[0]?.tags).toEqual(["files", "app01"]);
    expect(snaps[0]?.paths).toEqual([src]);

    const target = join(work, "restored");
    const restored = await restic.restore("latest", target, { host: "app01" });
    expect(restored?.files_restored).toBeGreaterThan(0);
    expect(readFileSync(join(target, src, "app.conf"), "utf8")).toBe("listen 8080\n");
    expect(existsSync(join(target, src, "logs", "huge.log"))).toBe(false);
  });

  it("backs up the output of a command and dumps it back byte for byte", async () => {
    const summary = await restic.backupCommand(["printf", "line one\\nline 'two' $(x)\\n"], { filename: "appdb.sql", host: "db01", tags: ["postgres"] });
    expect(summary.files_new).toBe(1);
    const sink = new Sink();
    await restic.dump(summary.snapshot_id ?? "latest", "/appdb.sql", sink);
    expect(sink.text()).toBe("line one\nline 'two' $(x)\n");
  });

  it("keeps no snapshot when the dump command fails", async () => {
    const before = await restic.snapshots({ host: "db02" });
    expect(before).toEqual([]);
    await expect(restic.backupCommand(["sh", "-c", "echo partial; exit 1"], { filename: "broken.sql", host: "db02" })).rejects.toThrow(BackupSourceError);
    expect(await restic.snapshots({ host: "db02" })).toEqual([]);
  });

  it("forgets the snapshot of a stream whose producer failed (pg_dump over SSH)", async () => {
    const exec = new LocalExecutor();
    const producer = exec.stream(["sh", "-c", "printf 'half a dump'; echo 'pg_dump: error: connection lost' >&2; exit 2"]);
    await expect(restic.backupStream(producer, { filename: "stream.sql", host: "db03" })).rejects.toThrow(
      /pg_dump: error: connection lost.*no snapshot kept/,
    );
    expect(await restic.snapshots({ host: "db03" })).toEqual([]);

    const good = exec.stream(["printf", "a whole dump"]);
    const summary = await restic.backupStream(good, { filename: "stream.sql", host: "db03" });
    const sink = new Sink();
    await restic.dump(summary.snapshot_id ?? "", "/stream.sql", sink);
    expect(sink.text()).toBe("a whole dump");
  });

  it("stops restic's stdin cleanly when the stream errors", async () => {
    const input = new PassThrough();
    const done = new Promise<{ code: number; stderr: string }>((resolve) => setTimeout(() => resolve({ code: 1, stderr: "producer crashed" }), 200));
    input.write("some bytes");
    setTimeout(() => input.destroy(new Error("socket reset")), 100);
    await expect(restic.backupStream({ stdout: input, done }, { filename: "err.sql", host: "db04" })).rejects.toThrow(/producer crashed/);
    expect(await restic.snapshots({ host: "db04" })).toEqual([]);
  });

  it("backs up pg_dump-like output streamed over SSH, and keeps nothing when the remote command fails", async () => {
    if (!sshd) throw new Error("sshd did not start");
    const ssh = new SshExecutor({ host: sshd.host, port: sshd.port, user: sshd.user, privateKeyPath: sshd.clientKeyPath, knownHostsPath: sshd.knownHostsPath });
    try {
      const good = await restic.backupStream(ssh.stream(["printf", "%s\\n", "CREATE TABLE t (x int);", "-- it's $(not) expanded"]), { filename: "remote.sql", host: "db05" });
      const sink = new Sink();
      await restic.dump(good.snapshot_id ?? "", "/remote.sql", sink);
      expect(sink.text()).toBe("CREATE TABLE t (x int);\n-- it's $(not) expanded\n");

      const bad = ssh.stream(["sh", "-c", "head -c 300000 /dev/zero; echo 'pg_dump: error: query failed' >&2; exit 1"]);
      await expect(restic.backupStream(bad, { filename: "remote.sql", host: "db06" })).rejects.toThrow(/pg_dump: error: query failed/);
      expect(await restic.snapshots({ host: "db06" })).toEqual([]);
      expect(ssh.connectCount).toBe(1);
    } finally {
      await ssh.close();
    }
  });

  it("stops the remote producer when restic itself fails", async () => {
    if (!sshd) throw new Error("sshd did not start");
    const wrong = join(work, "wrong-password-2");
    writeFileSync(wrong, "nope\n", { mode: 0o600 });
    // A non-root login: OpenSSH only honours our KILL signal request for those.
    const ssh = new SshExecutor({ host: sshd.host, port: sshd.port, user: testUser, privateKeyPath: sshd.clientKeyPath, knownHostsPath: sshd.knownHostsPath });
    try {
      const endless = ssh.stream(["cat", "/dev/zero"]);
      const started = Date.now();
      await expect(new Restic({ url: repo.url, passwordFile: wrong }).backupStream(endless, { filename: "x.sql" })).rejects.toThrow(ResticWrongPasswordError);
      expect((await endless.done).signal).toBe("SIGKILL");
      expect(Date.now() - started).toBeLessThan(20_000);
      await until("the host's cat to end", () => spawnSync("pgrep", ["-u", testUser, "-x", "cat"], { encoding: "utf8" }).stdout === "", 5_000);
    } finally {
      await ssh.close();
    }
  });

  it("reports a locked repository as ResticLockedError (exit code 'locked')", async () => {
    // A backup reading a stream that has not ended holds its lock; prune needs an exclusive one.
    const input = new PassThrough();
    input.write("held open");
    let finish: (r: { code: number; stderr: string }) => void = () => undefined;
    const done = new Promise<{ code: number; stderr: string }>((resolve) => (finish = resolve));
    const holding = restic.backupStream({ stdout: input, done }, { filename: "lock.sql", host: "lock01" });
    try {
      let err: unknown;
      for (let i = 0; i < 20 && !(err instanceof ResticLockedError); i++) {
        await new Promise((r) => setTimeout(r, 500));
        err = await restic.prune().catch((e: unknown) => e);
      }
      expect(err).toBeInstanceOf(ResticLockedError);
      expect((err as ResticLockedError).exitCode).toBe(ExitCode.locked);
      expect((err as Error).message).toContain(`restic repository ${repo.url} is locked`);
    } finally {
      input.end();
      finish({ code: 0, stderr: "" });
      await holding;
    }
  });

  it("falls back to --stdin plus forget with a restic older than 0.17", async () => {
    // A stand-in for restic 0.16: reports the old version, otherwise runs the real binary.
    const oldRestic = join(work, "restic-0.16");
    writeFileSync(oldRestic, `#!/bin/sh\nif [ "$1" = version ]; then echo "restic 0.16.4 compiled with go1.21 on linux/amd64"; exit 0; fi\nexec ${toolPath("restic")} "$@"\n`, { mode: 0o755 });
    const old = new Restic(repo, { bin: oldRestic, cacheDir: join(work, "cache") });
    expect((await resticVersion(oldRestic)).minor).toBe(16);
    await expect(old.backupCommand(["sh", "-c", "echo partial; exit 1"], { filename: "old.sql", host: "old01" })).rejects.toThrow(BackupSourceError);
    expect(await restic.snapshots({ host: "old01" })).toEqual([]);
    const ok = await old.backupCommand(["printf", "old but whole"], { filename: "old.sql", host: "old01" });
    const sink = new Sink();
    await restic.dump(ok.snapshot_id ?? "", "/old.sql", sink);
    expect(sink.text()).toBe("old but whole");
  });

  it("warns about a source path that does not exist (restic itself exits 0)", async () => {
    const res = await restic.backup([join(work, "src"), join(work, "no-such-dir")], { host: "warn01" });
    expect(res.warnings.join("\n")).toContain("no-such-dir");
  });

  it("talks to a rest-server with HTTP basic auth", async () => {
    const authed = await startRestServer({ dataDir: join(work, "auth-data"), users: { primary: "http-secret" } });
    try {
      const restPw = join(work, "rest-password");
      writeFileSync(restPw, "http-secret\n", { mode: 0o600 });
      const withAuth = new Restic({ url: authed.repo("primary"), passwordFile, rest: { user: "primary", passwordFile: restPw } }, { cacheDir: join(work, "cache") });
      await withAuth.init();
      expect(await withAuth.snapshots()).toEqual([]);
      const noAuth = await new Restic({ url: authed.repo("primary"), passwordFile }).snapshots().catch((e: unknown) => e);
      expect((noAuth as Error).message).toMatch(/401/);
      expect((noAuth as Error).message).not.toContain("http-secret");
    } finally {
      await authed.stop();
    }
  });

  it("reports a wrong password in one line that names the repository", async () => {
    const wrong = join(work, "wrong-password");
    writeFileSync(wrong, "not the password\n", { mode: 0o600 });
    const err = await new Restic({ url: repo.url, passwordFile: wrong }).snapshots().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResticWrongPasswordError);
    const message = (err as Error).message;
    expect(message).toBe(`wrong password for repository ${repo.url}`);
    expect(message).not.toContain("not the password");
    expect(message).not.toContain("\n");
  });

  it("reports a missing repository and hides URL credentials", async () => {
    const url = `rest:http://user:s3cret@127.0.0.1:${primary?.port}/nothing-here/`;
    const err = await new Restic({ url, passwordFile }).snapshots().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResticRepoMissingError);
    expect((err as Error).message).not.toContain("s3cret");
    expect((err as Error).message).toContain("user:***@");
  });

  it("forgets by a keep-last policy and prunes", async () => {
    for (const n of [1, 2, 3]) await restic.backupCommand(["printf", `version ${n}`], { filename: "rotating.txt", host: "rot01" });
    expect(await restic.snapshots({ host: "rot01" })).toHaveLength(3);
    const groups = await restic.forget({ keepLast: 1 }, { host: "rot01", prune: true });
    expect(groups).toHaveLength(1);
    expect(groups[0]?.keep).toHaveLength(1);
    expect(groups[0]?.remove).toHaveLength(2);
    const left = await restic.snapshots({ host: "rot01" });
    expect(left).toHaveLength(1);
    const sink = new Sink();
    await restic.dump(left[0]?.id ?? "", "/rotating.txt", sink);
    expect(sink.text()).toBe("version 3");
  });

  it("checks the repository reading a subset of the data, and reports stats", async () => {
    const check = await restic.check({ readDataSubset: "50%" });
    expect(check.num_errors).toBe(0);
    const stats = await restic.stats();
    expect(stats.snapshots_count).toBeGreaterThan(0);
    expect(stats.total_size).toBeGreaterThan(0);
    await restic.unlock();
  });

  it("copies to an append-only secondary, which then refuses forget", async () => {
    const second = new Restic({ url: secondary?.repo("from-primary") ?? "", passwordFile }, { cacheDir: join(work, "cache") });
    await second.init();
    await second.copy(repo, { host: "rot01" });
    await restic.backupCommand(["printf", "version 4"], { filename: "rotating.txt", host: "rot01" });
    await second.copy(repo, { host: "rot01" });
    const copied = await second.snapshots({ host: "rot01" });
    expect(copied).toHaveLength(2);
    expect(copied.every((s) => typeof s.original === "string")).toBe(true);

    const err = await second.forget({ keepLast: 1 }, { host: "rot01" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResticAppendOnlyError);
    expect((err as Error).message).toMatch(/refused to delete data \(append-only\)/);
    expect(await second.snapshots({ host: "rot01" })).toHaveLength(2);
  });
});
