import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { Restic, ResticAppendOnlyError, type Snapshot } from "../../restic/index.js";
import { parsePrometheus } from "../../backup/report.js";
import { startRestServer, type RestServer } from "../../lab/rest-server.js";
import { startSshd, type Sshd } from "../../lab/sshd.js";
import { repoRoot } from "../../util/tools.js";
import { startDcctl, type CliRun } from "../helpers/cli.js";

/**
 * `dcctl backup …` and `dcctl restore --path` end to end: the built CLI against a real sshd (the "hosts") and two
 * real rest-servers (the primary's, and the secondary's with --append-only), with a test inventory and policies.
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-backup-cli-"));
let sshd: Sshd | undefined;
let primary: RestServer | undefined;
let secondary: RestServer | undefined;
let env: Record<string, string> = {};
let primaryRestic: Restic;
let secondaryRestic: Restic;
const appDir = join(work, "data", "app");

/** Not waited for: two runs of a job go side by side. */
const dcctl = (args: string[], extraEnv: Record<string, string> = {}): Promise<CliRun> => startDcctl(args, { ...process.env, DCCTL_DEBUG: "", ...env, ...extraEnv }).done;

function host(name: string, ip: string, policy: string, port: number): Record<string, unknown> {
  return { name, role: "app", cpus: 2, memoryGb: 4, disks: [{ label: "os", sizeGb: 40 }], network: "dmz", ip, template: "tpl-debian-12", backupPolicy: policy, drTier: 2, ssh: { host: "127.0.0.1", port, user: "root" } };
}

const jobSnaps = (snaps: Snapshot[], job: string): Snapshot[] => snaps.filter((s) => s.tags?.includes(`job:${job}`));

beforeAll(async () => {
  sshd = await startSshd({ stateDir: join(work, "sshd") });
  primary = await startRestServer({ dataDir: join(work, "rest-primary") });
  secondary = await startRestServer({ dataDir: join(work, "rest-secondary"), appendOnly: true });
  const port = sshd.port;

  // The data on the "hosts": config files, a scratch file the policy excludes, and 48 MiB that makes a run last a while.
  mkdirSync(join(appDir, "conf"), { recursive: true });
  writeFileSync(join(appDir, "conf", "app.conf"), "listen 8080\n");
  writeFileSync(join(appDir, "conf", "scratch.tmp"), "not wanted\n");
  writeFileSync(join(appDir, "blob.bin"), randomBytes(48 * 1024 * 1024));
  mkdirSync(join(work, "data", "late"), { recursive: true });
  writeFileSync(join(work, "data", "late", "x"), "x\n");

  // Inventory: the valid cross-site fixture, with hosts reached through the test sshd.
  const sites = join(work, "sites");
  mkdirSync(sites);
  const fixture = join(repoRoot, "test", "fixtures", "inventory", "cross-site-ok");
  const p = parse(readFileSync(join(fixture, "primary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
  p.hosts = [
    { ...(p.hosts[0] ?? {}), backupPolicy: "files-test", ssh: { host: "127.0.0.1", port, user: "root" } },
    host("qn-app-01", "10.10.40.11", "files-late", port),
    host("qn-app-02", "10.10.40.12", "files-broken", port),
  ];
  writeFileSync(join(sites, "primary.yaml"), stringify(p));
  const s = parse(readFileSync(join(fixture, "secondary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
  s.hosts = s.hosts.map((h) => ({ ...h, backupPolicy: "files-test", ssh: { host: "127.0.0.1", port, user: "root" } }));
  writeFileSync(join(sites, "secondary.yaml"), stringify(s));

  const files = (paths: string[]) => [{ kind: "files", paths, excludes: ["*.tmp"] }];
  // minAge 0: prune goes by retention alone, on snapshots made minutes ago (it says so: the floor is shortened).
  const policy = (paths: string[], rpoMinutes: number) => ({ sources: files(paths), schedule: "0 2 * * *", retention: { keepLast: 1 }, rpoMinutes, repository: "primary", minAge: 0 });
  writeFileSync(
    join(work, "policies.yaml"),
    stringify({ policies: { "files-test": policy([appDir], 60), "files-late": policy([join(work, "data", "late")], 0.0001), "files-broken": policy([join(work, "data", "missing")], 60) } }),
  );

  writeFileSync(join(work, "primary.pass"), "primary secret\n", { mode: 0o600 });
  writeFileSync(join(work, "secondary.pass"), "secondary secret\n", { mode: 0o600 });
  writeFileSync(
    join(work, "repositories.yaml"),
    stringify({
      site: "primary",
      repositories: { primary: { url: primary.repo("primary"), passwordFile: "primary.pass" }, secondary: { url: secondary.repo("secondary"), passwordFile: "secondary.pass" } },
      ssh: { keyFile: sshd.clientKeyPath, knownHosts: sshd.knownHostsPath },
      cacheDir: join(work, "cache"),
      concurrency: 2,
    }),
  );
  env = { DCCTL_SITES_DIR: sites, DCCTL_POLICIES_FILE: join(work, "policies.yaml"), DCCTL_REPOS_FILE: join(work, "repositories.yaml"), DCCTL_STATE_DIR: join(work, "state") };
  primaryRestic = new Restic({ url: primary.repo("primary"), passwordFile: join(work, "primary.pass") }, { cacheDir: join(work, "cache") });
  secondaryRestic = new Restic({ url: secondary.repo("secondary"), passwordFile: join(work, "secondary.pass") }, { cacheDir: join(work, "cache") });
  await primaryRestic.init();
  await secondaryRestic.init();
});

afterAll(async () => {
  await Promise.allSettled([sshd?.stop(), primary?.stop(), secondary?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

describe("dcctl backup through the CLI", () => {
  it("lists the jobs of the test inventory, and --dry-run touches nothing", async () => {
    const jobs = await dcctl(["backup", "jobs", "--json"]);
    expect(jobs.code).toBe(0);
    const ids = (JSON.parse(jobs.stdout) as { id: string }[]).map((j) => j.id);
    // qn-dr-app-01 is active-only: no job until a failover.
    expect(ids).toEqual(["qn-db-01/files-test", "qn-app-01/files-late", "qn-app-02/files-broken", "qn-dr-db-01/files-test"]);
    const dry = await dcctl(["backup", "run", "--all", "--dry-run"]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`would run qn-db-01/files-test: root@127.0.0.1:${sshd?.port ?? 0} -> repository primary`);
    expect(await primaryRestic.snapshots()).toEqual([]);
  });

  it("runs a files job over SSH into the repository, with a JSON report and a Prometheus textfile", async () => {
    const run = await dcctl(["backup", "run", "--job", "qn-db-01/files-test", "--json"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const outcome = JSON.parse(run.stdout) as { exitCode: number; results: { status: string; snapshots: string[]; bytesAdded: number; filesNew: number }[]; reportPath: string; metricsFile: string };
    expect(outcome.exitCode).toBe(0);
    expect(outcome.results[0]?.status).toBe("ok");
    expect(outcome.results[0]?.snapshots).toHaveLength(1);
    expect(outcome.results[0]?.bytesAdded).toBeGreaterThan(48 * 1024 * 1024 * 0.9);
    const snaps = jobSnaps(await primaryRestic.snapshots(), "qn-db-01/files-test");
    // restic ran on the host and read the paths themselves (restic/remote.ts).
    expect(snaps.map((s) => [s.hostname, s.paths])).toEqual([["qn-db-01", [appDir]]]);
    expect(snaps[0]?.id).toBe(outcome.results[0]?.snapshots[0]);

    const report = readFileSync(outcome.reportPath, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { type: string; job?: string });
    expect(report.map((l) => l.type)).toEqual(["run", "job"]);
    const samples = parsePrometheus(readFileSync(outcome.metricsFile, "utf8"));
    const of = (name: string) => samples.find((s) => s.name === name && s.labels.job === "qn-db-01/files-test")?.value;
    expect(of("dcctl_backup_last_success_timestamp_seconds")).toBeGreaterThan(Date.now() / 1000 - 120);
    expect(of("dcctl_backup_exit_status")).toBe(0);
    expect(of("dcctl_backup_duration_seconds")).toBeGreaterThan(0);
    expect(of("dcctl_backup_bytes_added")).toBe(outcome.results[0]?.bytesAdded);
    expect(of("dcctl_backup_files_new")).toBeGreaterThanOrEqual(1);
  });

  it("lets exactly one of two concurrent runs of a job through; the other exits 3; the repository checks clean", async () => {
    const before = jobSnaps(await primaryRestic.snapshots(), "qn-db-01/files-test").length;
    const runs = await Promise.all([dcctl(["backup", "run", "--job", "qn-db-01/files-test"]), dcctl(["backup", "run", "--job", "qn-db-01/files-test"])]);
    expect(runs.map((r) => r.code).sort()).toEqual([0, 3]);
    const locked = runs.find((r) => r.code === 3);
    expect(locked?.stderr.trim()).toMatch(/^dcctl: qn-db-01\/files-test: host qn-db-01 \(job qn-db-01\/files-test\) is locked by another run \(pid \d+/);
    expect(jobSnaps(await primaryRestic.snapshots(), "qn-db-01/files-test")).toHaveLength(before + 1);
    const check = await primaryRestic.check();
    expect(check.num_errors).toBe(0);
  });

  it("with --wait, the second of two concurrent runs waits for the first and then runs too", async () => {
    const before = jobSnaps(await primaryRestic.snapshots(), "qn-db-01/files-test").length;
    const runs = await Promise.all([0, 1].map(() => dcctl(["backup", "run", "--job", "qn-db-01/files-test", "--wait", "120"])));
    expect(runs.map((r) => r.code)).toEqual([0, 0]);
    expect(jobSnaps(await primaryRestic.snapshots(), "qn-db-01/files-test")).toHaveLength(before + 2);
  });

  it("runs --all: a job whose source fails exits 4 with its error line and leaves no snapshot", async () => {
    const run = await dcctl(["backup", "run", "--all", "--json"]);
    expect(run.code).toBe(4);
    const outcome = JSON.parse(run.stdout) as { results: { job: string; status: string; error?: string }[] };
    expect(outcome.results.map((r) => [r.job, r.status])).toEqual([
      ["qn-db-01/files-test", "ok"],
      ["qn-app-01/files-late", "ok"],
      ["qn-app-02/files-broken", "failed"],
      ["qn-dr-db-01/files-test", "ok"],
    ]);
    expect(outcome.results[2]?.error).toMatch(/^files: on root@\[127\.0\.0\.1\]:\d+: restic backup failed for repository .*: all source directories\/files do not exist \(.*\/missing does not exist\)$/);
    expect(run.stderr.trim()).toMatch(/^dcctl: 1 of 4 jobs did not succeed \(report .*run-.*\.jsonl\); first: qn-app-02\/files-broken: files: on root@/);
    expect((await primaryRestic.snapshots({ host: "qn-app-02" })).length).toBe(0);
  });

  it("status shows each job's newest snapshot against its RPO and exits 4 when one is over", async () => {
    const run = await dcctl(["backup", "status", "--json"]);
    expect(run.code).toBe(4);
    const { rows } = JSON.parse(run.stdout) as { rows: { job: string; state: string; ageMinutes?: number; rpoMinutes: number; lastRun?: string }[] };
    const state = Object.fromEntries(rows.map((r) => [r.job, r.state]));
    expect(state).toEqual({ "qn-db-01/files-test": "ok", "qn-app-01/files-late": "over-rpo", "qn-app-02/files-broken": "none", "qn-dr-db-01/files-test": "ok" });
    expect(rows[0]?.ageMinutes).toBeLessThan(5);
    expect(rows[2]?.lastRun).toMatch(/^failed at /);
    expect(run.stderr.trim()).toBe("dcctl: 2 jobs are over RPO or never backed up (first: qn-app-01/files-late: files over-rpo)");
    const human = await dcctl(["backup", "status", "--site", "secondary"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/qn-dr-db-01\/files-test\s+ok\s+\d+m\s+60m/);
  });

  it("replicates to the append-only secondary, which refuses a forget sent with the primary's credentials", async () => {
    const first = await dcctl(["backup", "replicate", "--to", "secondary", "--json"]);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const copied = (JSON.parse(first.stdout) as { copied: string[] }).copied;
    const inPrimary = await primaryRestic.snapshots({ tags: ["dcctl"] });
    expect(copied.sort()).toEqual(inPrimary.map((s) => s.id).sort());
    const atSecondary = await secondaryRestic.snapshots();
    expect(atSecondary.map((s) => s.original).sort()).toEqual(copied.sort());
    const again = await dcctl(["backup", "replicate", "--to", "secondary"]);
    expect(again.stdout.trim()).toBe(`copied 0 snapshots from primary to secondary (${copied.length} already there)`);

    // The primary's configuration holds the secondary's URL and password: the server itself must refuse deletes.
    const victim = atSecondary[0]?.id ?? "";
    await expect(secondaryRestic.forgetIds([victim])).rejects.toBeInstanceOf(ResticAppendOnlyError);
    expect((await secondaryRestic.snapshots()).map((s) => s.id)).toContain(victim);
  });

  it("prunes by retention only the repository this site owns", async () => {
    const secondaryBefore = (await secondaryRestic.snapshots()).length;
    const run = await dcctl(["backup", "prune", "--json"]);
    expect(run.stderr.trim().split("\n")).toEqual(["files-test", "files-late", "files-broken"].map((p) => `warning: policy ${p}: minAge 0 is shorter than the default 7d: prune may remove snapshots that reached this site at any age`));
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { repository: string; jobs: { job: string; kept: number; removed: number }[]; pruned: boolean };
    expect(result.repository).toBe("primary");
    expect(result.jobs.find((j) => j.job === "qn-db-01/files-test")).toMatchObject({ job: "qn-db-01/files-test", kept: 1, removed: 4, young: 0, quarantined: 0 });
    expect(result.pruned).toBe(true);
    expect(jobSnaps(await primaryRestic.snapshots(), "qn-db-01/files-test")).toHaveLength(1);
    expect((await secondaryRestic.snapshots()).length).toBe(secondaryBefore);
    expect((await primaryRestic.check()).num_errors).toBe(0);
  });

  it("prunes the secondary's repository at the secondary, through its own (not append-only) access", async () => {
    const before = await secondaryRestic.snapshots();
    const atSecondary = join(work, "repositories-secondary.yaml");
    // The secondary's dcctl reaches its repository on its own disk, not through the append-only listener.
    writeFileSync(atSecondary, stringify({ site: "secondary", repositories: { secondary: { url: join(work, "rest-secondary", "secondary"), passwordFile: "secondary.pass" } }, cacheDir: join(work, "cache") }));
    const run = await dcctl(["backup", "prune", "--json"], { DCCTL_REPOS_FILE: atSecondary, DCCTL_STATE_DIR: join(work, "state-secondary") });
    expect(run.stderr.split("\n").filter(Boolean).every((l) => /^warning: policy \S+: minAge 0 is shorter than the default/.test(l))).toBe(true);
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { repository: string; jobs: { job: string; removed: number }[] };
    expect(result.repository).toBe("secondary");
    const removed = result.jobs.reduce((n, j) => n + j.removed, 0);
    expect(removed).toBeGreaterThan(0);
    expect((await secondaryRestic.snapshots()).length).toBe(before.length - removed);
    expect((await secondaryRestic.check()).num_errors).toBe(0);
  });

  it("lists snapshots and verifies a subset of the data", async () => {
    const snaps = await dcctl(["backup", "snapshots", "--host", "qn-db-01", "--json"]);
    expect(snaps.code).toBe(0);
    const rows = JSON.parse(snaps.stdout) as { repository: string; job: string }[];
    expect(new Set(rows.map((r) => r.repository))).toEqual(new Set(["primary", "secondary"]));
    expect(rows.every((r) => r.job === "qn-db-01/files-test")).toBe(true);
    // Filters, and the columns an operator reads: job, source, size.
    const byJob = JSON.parse((await dcctl(["backup", "snapshots", "--job", "qn-db-01/files-test", "--repository", "primary", "--json"])).stdout) as { job: string; source: string; bytes: number; anomaly?: { verdict: string } }[];
    expect(byJob.length).toBeGreaterThan(0);
    expect(byJob.every((r) => r.job === "qn-db-01/files-test" && r.source === "files" && r.bytes > 48 * 1024 * 1024)).toBe(true);
    // Each scored against the ones before it: the first has nothing to be compared with.
    expect(byJob[0]?.anomaly?.verdict).toBe("unjudged");
    expect(byJob.every((r) => r.anomaly?.verdict !== undefined)).toBe(true);
    expect(JSON.parse((await dcctl(["backup", "snapshots", "--since", "2099-01-01", "--json"])).stdout)).toEqual([]);
    expect((await dcctl(["backup", "snapshots", "--since", "yesterday"])).code).toBe(2);
    const human = await dcctl(["backup", "snapshots", "--job", "qn-db-01/files-test", "--repository", "primary"]);
    expect(human.stdout.split("\n")[0]).toMatch(/^REPOSITORY\s+ID\s+TIME\s+FIRST SEEN\s+HOST\s+JOB\s+SOURCE\s+SIZE\s+ANOMALY\s+TRUST$/);
    expect(human.stdout).toMatch(/qn-db-01\/files-test\s+files\s+48\.\d MiB\s+(-|\d\.\d\d)\s+trusted/);
    // One repository that cannot be opened (wrong password) is named, and the other is still listed: exit 4.
    const wrongPass = join(work, "wrong.pass");
    writeFileSync(wrongPass, "not the password\n", { mode: 0o600 });
    const reposFile = join(work, "repositories-wrong-secondary.yaml");
    const repos = parse(readFileSync(join(work, "repositories.yaml"), "utf8")) as { repositories: { secondary: { passwordFile: string } } };
    repos.repositories.secondary.passwordFile = wrongPass;
    writeFileSync(reposFile, stringify(repos));
    const partial = await dcctl(["backup", "snapshots", "--json"], { DCCTL_REPOS_FILE: reposFile });
    expect(partial.code).toBe(4);
    expect(partial.stderr.trim()).toMatch(/^dcctl: repository secondary: wrong password for repository /);
    expect((JSON.parse(partial.stdout) as { repository: string }[]).every((r) => r.repository === "primary")).toBe(true);
    const verify = await dcctl(["backup", "verify", "--subset", "50%"]);
    expect(verify.stdout.trim()).toBe("repository primary: no errors (read 50% of the data)");
    expect(verify.code).toBe(0);
    expect((await dcctl(["backup", "verify", "--subset", "lots"])).code).toBe(2);
  });

  it("restores a path over SSH, and refuses a non-empty target without --yes (exit 5)", async () => {
    const dest = join(work, "restored");
    const args = ["restore", "--host", "qn-db-01", "--path", join(appDir, "conf"), "--to", dest];
    const run = await dcctl(args);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(readFileSync(join(dest, appDir, "conf", "app.conf"), "utf8")).toBe("listen 8080\n");
    expect(existsSync(join(dest, appDir, "conf", "scratch.tmp"))).toBe(false);
    expect(existsSync(join(dest, appDir, "blob.bin"))).toBe(false);

    const refused = await dcctl(args);
    expect(refused.code).toBe(5);
    expect(refused.stderr.trim()).toMatch(/^dcctl: refusing to overwrite the existing .*conf on root@\[127.0.0.1\]:\d+ with .*conf from snapshot \w+ of qn-db-01 without --yes/);
    writeFileSync(join(dest, appDir, "conf", "app.conf"), "changed\n");
    expect((await dcctl([...args, "--yes"])).code).toBe(0);
    expect(readFileSync(join(dest, appDir, "conf", "app.conf"), "utf8")).toBe("listen 8080\n");
  });
});
