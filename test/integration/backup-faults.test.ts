import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { Restic, type Snapshot } from "../../restic/index.js";
import { PG_BIN_DIR, startPostgres, type Postgres } from "../../lab/postgres.js";
import { startRestServer, type RestServer } from "../../lab/rest-server.js";
import { startSshd, type Sshd } from "../../lab/sshd.js";
import { repoRoot } from "../../util/tools.js";
import { startDcctl, type CliChild, type CliRun } from "../helpers/cli.js";
import { until } from "../helpers/until.js";

/**
 * Faults against real parts, through the dcctl binary: a backup killed (SIGKILL, SIGTERM) in the middle of its work
 * on a remote host (restic run there over a real sshd reading a large file, a PostgreSQL dump streamed into restic
 * here) against a real rest-server, a host whose
 * SSH key does not match, and a repository frozen with SIGSTOP. After each: no restic of the run is left, no
 * snapshot of what was cut off exists, the repository checks clean, and the next run is good.
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-backup-faults-"));
let sshd: Sshd | undefined;
let rest: RestServer | undefined;
let pg: Postgres | undefined;
let env: Record<string, string> = {};
let restic: Restic;
let repoUrl = "";

const start = (args: string[], extra: Record<string, string> = {}): CliChild => startDcctl(args, { ...process.env, DCCTL_DEBUG: "", ...env, ...extra });
const dcctl = (args: string[], extra: Record<string, string> = {}): Promise<CliRun> => start(args, extra).done;

/**
 * restic processes whose environment names our repository: those dcctl started for this test, here and on the "hosts"
 * (the shell that runs restic on a host has it in its environment too, hence the look at the program).
 */
function resticPids(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ours = readFileSync(`/proc/${name}/environ`, "utf8").split("\0").includes(`RESTIC_REPOSITORY=${repoUrl}`);
      if (ours && /(^|\/)restic$/.test(readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0")[0] ?? "")) pids.push(Number(name));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return pids;
}

/** Whether one of our restic processes has a child: the stream relay, i.e. the stream is flowing into restic. */
function streaming(): boolean {
  return resticPids().some((pid) => {
    seen.add(pid);
    try {
      return readdirSync(`/proc/${pid}/task`).some((t) => readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim() !== "");
    } catch {
      return false;
    }
  });
}

/** Whether restic run on the host (this machine) for a files job of our repository has read some of the files. */
function readingOnHost(): boolean {
  return resticPids().some((pid) => {
    seen.add(pid);
    try {
      const reading = Number(/^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1] ?? 0);
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes("source:files") && reading > 1024 * 1024;
    } catch {
      return false;
    }
  });
}

const jobSnapshots = async (job: string): Promise<Snapshot[]> => restic.snapshots({ tags: [`job:${job}`] });

beforeAll(async () => {
  chmodSync(work, 0o755);
  sshd = await startSshd({ stateDir: join(work, "sshd") });
  rest = await startRestServer({ dataDir: join(work, "rest") });
  pg = await startPostgres({ dir: join(work, "pg") });
  // 12 MiB of incompressible rows: with the policy's upload limit the dump takes many seconds to stream.
  await pg.psql("CREATE DATABASE big;");
  await pg.psql("CREATE TABLE blobs AS SELECT g AS id, decode(md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text), 'hex') AS b FROM generate_series(1, 200000) g;", "big");
  const pgpass = join(work, "pgpass");
  writeFileSync(pgpass, `127.0.0.1:${pg.port}:*:${pg.superuser}:${readFileSync(pg.superuserPasswordFile, "utf8").trim()}\n`, { mode: 0o600 });
  mkdirSync(join(work, "files"));
  writeFileSync(join(work, "files", "big.bin"), randomBytes(24 * 1024 * 1024));

  const sites = join(work, "sites");
  mkdirSync(sites);
  const fixture = join(repoRoot, "test", "fixtures", "inventory", "cross-site-ok");
  const p = parse(readFileSync(join(fixture, "primary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
  const ssh = { host: "127.0.0.1", port: sshd.port, user: "root" };
  p.hosts = p.hosts.map((h) => (h.name === "qn-db-01" ? { ...h, services: ["postgresql"], backupPolicy: "db-slow", ssh } : { ...h, backupPolicy: "files-slow", ssh }));
  writeFileSync(join(sites, "primary.yaml"), stringify(p));
  const s = parse(readFileSync(join(fixture, "secondary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
  s.hosts = s.hosts.map((h) => ({ ...h, backupPolicy: "files-slow", ssh }));
  writeFileSync(join(sites, "secondary.yaml"), stringify(s));
  const common = { schedule: "5 * * * *", retention: { keepLast: 5 }, rpoMinutes: 90, repository: "primary", limitUploadKiB: 768 };
  const policies = (limits: Partial<typeof common>) => stringify({
    policies: {
      "db-slow": { ...common, ...limits, sources: [{ kind: "postgresql" }] },
      "files-slow": { ...common, ...limits, sources: [{ kind: "files", paths: [join(work, "files")] }] },
    },
  });
  writeFileSync(join(work, "policies.yaml"), policies({}));
  // The same jobs without the upload limit, for the run after a kill: it has to be whole, not slow.
  writeFileSync(join(work, "policies-unlimited.yaml"), policies({ limitUploadKiB: undefined }));
  writeFileSync(join(work, "pass"), "faults secret\n", { mode: 0o600 });
  const repos = (knownHosts: string) =>
    stringify({
      site: "primary",
      repositories: { primary: { url: rest?.repo("primary"), passwordFile: "pass" } },
      ssh: { keyFile: sshd?.clientKeyPath, knownHosts },
      databases: { postgresql: { port: pg?.port, user: pg?.superuser, passFile: pgpass, binDir: PG_BIN_DIR, databases: ["big"], globals: false } },
    });
  writeFileSync(join(work, "repositories.yaml"), repos(sshd.knownHostsPath));
  // The same site with a known_hosts whose key for the host is another one: every connection must be refused.
  const wrongKnownHosts = join(work, "wrong_known_hosts");
  const line = readFileSync(sshd.knownHostsPath, "utf8").split("\n")[0] ?? "";
  writeFileSync(wrongKnownHosts, line.replace(/(\S+\s+\S+\s+)\S+/, `$1${randomBytes(51).toString("base64").replace(/=+$/, "")}`) + "\n");
  writeFileSync(join(work, "repositories-wrong-key.yaml"), repos(wrongKnownHosts));
  env = { DCCTL_SITES_DIR: sites, DCCTL_POLICIES_FILE: join(work, "policies.yaml"), DCCTL_REPOS_FILE: join(work, "repositories.yaml"), DCCTL_STATE_DIR: join(work, "state") };
  repoUrl = rest.repo("primary");
  restic = new Restic({ url: repoUrl, passwordFile: join(work, "pass") });
  await restic.init();
});

afterAll(async () => {
  if (rest) process.kill(rest.process.pid, "SIGCONT");
  for (const stop of [() => pg?.stop(), () => rest?.stop(), () => sshd?.stop()]) await Promise.resolve(stop()).catch((e: unknown) => console.error(e));
  rmSync(work, { recursive: true, force: true });
});

/** The restic processes seen so far, zombies included once seen: a lock's owner counts as alive until reaped. */
const seen = new Set<number>();
const gone = (): boolean => {
  for (const pid of resticPids()) seen.add(pid);
  return [...seen].every((pid) => !existsSync(`/proc/${pid}`));
};

/**
 * After a killed run: its restic is gone at once, no snapshot of the job, and `dcctl backup verify` checks the
 * repository clean at once, removing the lock the killed restic left (with a note) instead of waiting it out.
 */
async function expectNothingLeft(job: string): Promise<void> {
  await until("the run's restic processes to end", gone, 5_000);
  expect(await jobSnapshots(job)).toEqual([]);
  const started = Date.now();
  const verify = await dcctl(["backup", "verify"]);
  expect(verify.code, verify.stderr).toBe(0);
  expect(verify.stdout).toContain("repository primary: no errors");
  expect(Date.now() - started).toBeLessThan(30_000);
  for (const line of verify.stderr.trim().split("\n").filter(Boolean)) expect(line).toMatch(/^note: removed the lock of restic pid \d+ on .* \(gone; /);
}

describe("backups stay truthful under kills, refusals and a frozen repository", () => {
  for (const [signal, job] of [
    ["SIGKILL", "qn-app-01/files-slow"],
    ["SIGTERM", "qn-db-01/db-slow"],
  ] as const) {
    it(`${signal} of backup run --job ${job} in the middle of its stream keeps no snapshot, and the next run is good`, async () => {
      // A temporary folder of the run's own: other test files' runs make stream folders too.
      const tmp = mkdtempSync(join(work, "tmp-"));
      const streamDirs = () => readdirSync(tmp).filter((n) => n.startsWith("dcctl-stream-")).length;
      const dirsBefore = streamDirs();
      const run = start(["backup", "run", "--job", job], { TMPDIR: tmp });
      // Both run restic on the host: a files job reads the files, a database job's restic runs pg_dump (its child).
      if (job.endsWith("/files-slow")) await until("restic on the host to read the files", readingOnHost);
      else await until("the stream to flow into restic", streaming);
      run.child.kill(signal);
      const res = await run.done;
      // The stream's temporary folder goes too, even when dcctl could not remove it (the relay does).
      await until("the stream's temporary folder to be removed", () => streamDirs() <= dirsBefore, 10_000);
      if (signal === "SIGTERM") {
        expect(res.code).toBe(143);
        expect(res.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^dcctl: stopped by SIGTERM: 0 of 1 jobs finished before; nothing of the stopped ones was kept/)]);
      }
      await expectNothingLeft(job);
      if (signal === "SIGKILL") {
        // Nothing of the run could write its report; the first look records it as killed, before any other run.
        const looked = Date.now();
        const status = await dcctl(["backup", "status", "--job", job, "--json"]);
        console.log(`SIGKILLed run shown as killed by the first backup status, ${((Date.now() - looked) / 1000).toFixed(1)} s`);
        expect(status.stderr).toMatch(new RegExp(`^note: backup run \\S+ \\(pid ${run.child.pid ?? 0}\\) died before it finished; recorded as killed: ${job}$`, "m"));
        const row = (JSON.parse(status.stdout) as { rows: { job: string; lastRun?: string; lastError?: string }[] }).rows.find((r) => r.job === job);
        expect(row?.lastRun).toMatch(/^killed at \d{4}-/);
        expect(row?.lastError).toMatch(/died before this job finished \(killed or crashed\)/);
        // Recorded once: the next look finds nothing more to record.
        expect((await dcctl(["backup", "status", "--job", job, "--json"])).stderr).not.toContain("recorded as killed");
      }

      const next = await dcctl(["backup", "run", "--job", job, "--json"], { DCCTL_POLICIES_FILE: join(work, "policies-unlimited.yaml") });
      expect(next.code, next.stderr).toBe(0);
      const snaps = await jobSnapshots(job);
      expect(snaps).toHaveLength(1);
      // Whole: the stored size is what the source holds.
      expect(snaps[0]?.summary?.total_bytes_processed ?? 0).toBeGreaterThan(12 * 1024 * 1024);
    });
  }

  it("SIGKILL of backup run --all leaves no restic behind and no snapshot of what was cut off", async () => {
    const before = new Set((await restic.snapshots()).map((s) => s.id));
    const run = start(["backup", "run", "--all", "--site", "primary"]);
    await until("the stream to flow into restic", streaming);
    run.child.kill("SIGKILL");
    await run.done;
    await until("the run's restic processes to end", gone, 5_000);
    // A restic killed here leaves its lock until someone removes it, and unlock names what it removes; one run on a
    // host was stopped there by the channel's end and removed its own.
    const unlock = await dcctl(["backup", "unlock"]);
    expect(unlock.code, unlock.stderr).toBe(0);
    for (const line of unlock.stderr.trim().split("\n").filter(Boolean)) expect(line).toMatch(/^note: removed the lock of restic pid \d+ on \S+ \(gone; shared, since /);
    expect(await restic.locks()).toEqual([]);
    expect((await dcctl(["backup", "unlock"])).stdout).toBe("repository primary: no lock of a dead process to remove\n");
    // Whatever finished before the kill is whole; nothing else was added.
    const added = (await restic.snapshots()).filter((s) => !before.has(s.id));
    for (const s of added) expect(s.summary?.total_bytes_processed ?? 0).toBeGreaterThan(12 * 1024 * 1024);
    expect(added.length).toBeLessThan(2);
  });

  it("a host whose SSH key does not match fails the job with no snapshot at all", async () => {
    const job = "qn-dr-db-01/files-slow";
    const res = await dcctl(["backup", "run", "--job", job], { DCCTL_REPOS_FILE: join(work, "repositories-wrong-key.yaml") });
    expect(res.code).toBe(1);
    // Besides notes about the killed run before (its ledger reconciled), one line.
    expect(res.stderr.trim().split("\n").filter((l) => !l.startsWith("note:"))).toEqual([expect.stringMatching(/refusing to connect\); no snapshot kept/)]);
    expect(await jobSnapshots(job)).toEqual([]);
  });

  it("a frozen repository (SIGSTOP) fails the job within its stall limit, and nothing is recorded", async () => {
    const job = "qn-dr-db-01/files-slow";
    const pid = rest?.process.pid ?? 0;
    process.kill(pid, "SIGSTOP");
    const started = Date.now();
    let res: CliRun;
    try {
      res = await dcctl(["backup", "run", "--job", job, "--stall-timeout", "4s"]);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    const seconds = (Date.now() - started) / 1000;
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split("\n").filter((l) => !l.startsWith("note:"))).toEqual([expect.stringMatching(/^dcctl: qn-dr-db-01\/files-slow: files: stalled: .* not answering\?\)/)]);
    // 4 s of no progress (detected within a quarter of that more), then restic, the remote tar and the SSH connection
    // are stopped (a root login's tar is not killed by sshd: its channel is given up after a grace period).
    console.log(`frozen repository: job failed ${seconds.toFixed(1)} s after the run started (stall limit 4 s)`);
    expect(seconds).toBeLessThan(30);
    await expectNothingLeft(job);
  });

  it("a frozen repository fails a four-item database job within one stall limit for the job, not one per item", async () => {
    const job = "qn-db-01/db-slow";
    const names = ["big", "stall_a", "stall_b", "stall_c"];
    const have = await pg?.psql("SELECT datname FROM pg_database;");
    for (const db of names.slice(1)) if (!String(have).includes(db)) await pg?.psql(`CREATE DATABASE ${db};`);
    const config = parse(readFileSync(join(work, "repositories.yaml"), "utf8")) as { databases: { postgresql: Record<string, unknown> } };
    config.databases.postgresql.databases = names;
    writeFileSync(join(work, "repositories-four.yaml"), stringify(config));
    const before = (await jobSnapshots(job)).length;
    const pid = rest?.process.pid ?? 0;
    process.kill(pid, "SIGSTOP");
    const started = Date.now();
    let res: CliRun;
    try {
      res = await dcctl(["backup", "run", "--job", job, "--stall-timeout", "4s", "--json"], { DCCTL_REPOS_FILE: join(work, "repositories-four.yaml") });
    } finally {
      process.kill(pid, "SIGCONT");
    }
    const seconds = (Date.now() - started) / 1000;
    const report = JSON.parse(res.stdout) as { results: { durationSeconds: number; items: { name: string; status: string; error?: string }[] }[] };
    const jobSeconds = report.results[0]?.durationSeconds ?? NaN;
    console.log(`frozen repository, four items: job failed after ${jobSeconds.toFixed(1)} s, the run ended ${seconds.toFixed(1)} s after it started (stall limit 4 s for the job)`);
    expect(res.code, res.stderr).toBe(1);
    const items = report.results[0]?.items ?? [];
    // The first item stalled; the others did not start: each would have waited out the same frozen repository.
    expect(items.map((i) => i.name)).toEqual(names.map((n) => `postgresql/${n}`));
    expect(items[0]?.error).toMatch(/^stalled: .*not answering/);
    for (const i of items.slice(1)) expect(i.error).toBe("not started: the job had made no progress for 4.0 s (its stall limit)");
    // That three items never started is the proof that the limit was the job's (each would have waited a limit and
    // the stop of restic on its host); the bound below only catches a run that hangs, and leaves room for a busy machine.
    expect(seconds).toBeLessThan(90);
    await until("the run's restic processes to end", gone, 5_000);
    expect(await jobSnapshots(job)).toHaveLength(before);
  });
});
