import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { LocalExecutor } from "../../hosts/index.js";
import { Restic, type Snapshot } from "../../restic/index.js";
import { tarCreateArgv } from "../../backup/sources/files.js";
import { startRestServer, type RestServer } from "../../lab/rest-server.js";
import { startSshd, type Sshd } from "../../lab/sshd.js";
import { repoRoot } from "../../util/tools.js";
import { startDcctl, type CliChild, type CliRun } from "../helpers/cli.js";
import { ensureTestUser } from "../helpers/users.js";
import { until as untilAny } from "../helpers/until.js";

/** Waits as the shared helper does, with this file's own deadline. */
const until = <T>(what: string, probe: () => T | false | undefined, timeoutMs = 30_000): Promise<T> => untilAny(what, probe, timeoutMs);

/**
 * Files jobs of remote hosts through the dcctl binary, with restic run on the host over a real sshd against a real
 * rest-server (restic/remote.ts): the second run reads only what changed, an unreadable file fails the job and
 * keeps nothing, a stopped or killed run leaves no snapshot and no restic on the host (a root login too), the
 * password is on no remote command line, in no remote environment and in no file there; one file restores with
 * restic on the host, and a snapshot of the former tar design still restores.
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-remote-files-"));
const PASSWORD = `remote-files ${randomBytes(9).toString("hex")}`;
const started = Date.now();
let sshd: Sshd | undefined;
let rest: RestServer | undefined;
let restic: Restic;
let repoUrl = "";
let testUser = { name: "", uid: 0, home: "" };
let env: Record<string, string> = {};
const dataDir = join(work, "data");
const slowDir = join(work, "slow");
const FILES = 40;

const start = (args: string[]): CliChild => startDcctl(args, { ...process.env, DCCTL_DEBUG: "", ...env });
const dcctl = (args: string[]): Promise<CliRun> => start(args).done;
const jobSnapshots = (job: string): Promise<Snapshot[]> => restic.snapshots({ tags: [`job:${job}`] });

const procText = (pid: number, what: string): string => {
  try {
    return readFileSync(`/proc/${pid}/${what}`, "utf8");
  } catch {
    return "";
  }
};

/** The restic processes running a job's backup (on "the host", which is this machine), by their command line. */
function resticOf(job: string): number[] {
  return readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => {
      const argv = procText(pid, "cmdline").split("\0");
      return (argv[0] ?? "").endsWith("/restic") && argv.includes(`job:${job}`);
    });
}

const alive = (pid: number): boolean => {
  const stat = procText(pid, "stat");
  return stat !== "" && !/^\d+ \(.*\) Z/.test(stat);
};

/** How many bytes a process has read so far. */
const readBytes = (pid: number): number => Number(/^rchar: (\d+)$/m.exec(procText(pid, "io"))?.[1] ?? 0);

/** Regular files owned by `uid` and changed since the test began, under `roots` (small ones: secrets are small). */
function filesOf(uid: number, roots: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      if (p === work) continue;
      try {
        const st = lstatSync(p);
        if (st.isDirectory()) walk(p);
        else if (st.isFile() && st.uid === uid && st.mtimeMs >= started - 1000 && st.size <= 8 * 1024 * 1024) out.push(p);
      } catch {
        // Gone meanwhile.
      }
    }
  };
  for (const r of roots) walk(r);
  return out;
}

beforeAll(async () => {
  // The unprivileged login user reads the data and the sshd's authorized_keys below this folder.
  chmodSync(work, 0o755);
  testUser = await ensureTestUser();
  sshd = await startSshd({ stateDir: join(work, "sshd"), extraUsers: [testUser.name] });
  rest = await startRestServer({ dataDir: join(work, "rest") });
  mkdirSync(dataDir);
  for (let i = 0; i < FILES; i++) writeFileSync(join(dataDir, `f${i}.txt`), `document ${i}\n`.repeat(200 + i));
  writeFileSync(join(dataDir, "scratch.tmp"), "not wanted\n");
  mkdirSync(slowDir);
  // With the policy's upload limit this takes ~12 s to send: time to look at, stop and kill a run.
  writeFileSync(join(slowDir, "scan.bin"), randomBytes(3 * 1024 * 1024));

  const sites = join(work, "sites");
  mkdirSync(sites);
  const fixture = join(repoRoot, "test", "fixtures", "inventory", "cross-site-ok");
  const asUser = { host: "127.0.0.1", port: sshd.port, user: testUser.name };
  const asRoot = { host: "127.0.0.1", port: sshd.port, user: "root" };
  const p = parse(readFileSync(join(fixture, "primary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
  p.hosts = p.hosts.map((h) => (h.name === "qn-db-01" ? { ...h, backupPolicy: "files-remote", ssh: asUser } : { ...h, backupPolicy: "files-slow", ssh: asRoot }));
  writeFileSync(join(sites, "primary.yaml"), stringify(p));
  const s = parse(readFileSync(join(fixture, "secondary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
  s.hosts = s.hosts.map((h) => ({ ...h, backupPolicy: "files-slow", ssh: asUser }));
  writeFileSync(join(sites, "secondary.yaml"), stringify(s));
  const common = { schedule: "0 2 * * *", retention: { keepLast: 5 }, rpoMinutes: 60, repository: "primary" };
  writeFileSync(
    join(work, "policies.yaml"),
    stringify({
      policies: {
        "files-remote": { ...common, sources: [{ kind: "files", paths: [dataDir], excludes: ["*.tmp"] }] },
        "files-slow": { ...common, sources: [{ kind: "files", paths: [slowDir] }], limitUploadKiB: 256 },
      },
    }),
  );
  writeFileSync(join(work, "pass"), PASSWORD + "\n", { mode: 0o600 });
  repoUrl = rest.repo("primary");
  writeFileSync(join(work, "repositories.yaml"), stringify({ site: "primary", repositories: { primary: { url: repoUrl, passwordFile: "pass" } }, ssh: { keyFile: sshd.clientKeyPath, knownHosts: sshd.knownHostsPath } }));
  env = { DCCTL_SITES_DIR: sites, DCCTL_POLICIES_FILE: join(work, "policies.yaml"), DCCTL_REPOS_FILE: join(work, "repositories.yaml"), DCCTL_STATE_DIR: join(work, "state") };
  restic = new Restic({ url: repoUrl, passwordFile: join(work, "pass") }, { cacheDir: join(work, "cache") });
  await restic.init();
});

afterAll(async () => {
  // The hosts' restic caches of this test's repository (the pushed binary stays: it is reused).
  const id = await restic.catConfig().then((c) => c.id, () => "");
  if (id) for (const home of [testUser.home, "/root"]) rmSync(join(home, ".cache", "restic", id), { recursive: true, force: true });
  await Promise.allSettled([sshd?.stop(), rest?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

describe("files of remote hosts, backed up by restic run on the host", () => {
  it("backs up with restic on the host, and the next run reads only the file that changed", async () => {
    const first = await dcctl(["backup", "run", "--job", "qn-db-01/files-remote", "--json"]);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const [snap] = await jobSnapshots("qn-db-01/files-remote");
    // The real paths, as the host has them, under the inventory name: what restic picks the next parent by.
    expect(snap).toMatchObject({ hostname: "qn-db-01", paths: [dataDir], username: testUser.name });
    expect(snap?.tags).toEqual(expect.arrayContaining(["dcctl", "job:qn-db-01/files-remote", "source:files"]));
    expect(snap?.summary).toMatchObject({ files_new: FILES });

    writeFileSync(join(dataDir, "f7.txt"), "document 7, amended\n");
    const second = await dcctl(["backup", "run", "--job", "qn-db-01/files-remote", "--json"]);
    expect(second.code, second.stderr).toBe(0);
    const result = (JSON.parse(second.stdout) as { results: { snapshots: string[]; filesChanged: number; bytesAdded: number }[] }).results[0];
    expect(result?.filesChanged).toBe(1);
    const next = (await jobSnapshots("qn-db-01/files-remote")).find((s) => s.id === result?.snapshots[0]);
    expect(next?.parent).toBe(snap?.id);
    // One small file's data (one blob) and the trees above it, nothing of the other 39.
    expect(next?.summary).toMatchObject({ files_unmodified: FILES - 1, files_changed: 1, files_new: 0, data_blobs: 1 });
    expect(next?.summary?.data_added ?? Infinity).toBeLessThan(32 * 1024);
    expect(result?.bytesAdded).toBe(next?.summary?.data_added);
  });

  it("fails the job on an unreadable file and keeps no snapshot of it", async () => {
    const before = (await jobSnapshots("qn-db-01/files-remote")).length;
    const secret = join(dataDir, "secret.conf");
    writeFileSync(secret, "only root reads this\n", { mode: 0o600 });
    try {
      const run = await dcctl(["backup", "run", "--job", "qn-db-01/files-remote", "--json"]);
      expect(run.code).toBe(1);
      const result = (JSON.parse(run.stdout) as { results: { status: string; error: string; snapshots: string[] }[] }).results[0];
      expect(result?.status).toBe("failed");
      expect(result?.error).toMatch(/^files: restic on dcctl-test@\[127\.0\.0\.1\]:\d+ left out unreadable files .*secret\.conf.*permission denied/);
      expect(result?.snapshots).toEqual([]);
      expect((await jobSnapshots("qn-db-01/files-remote")).length).toBe(before);
    } finally {
      rmSync(secret, { force: true });
    }
  });

  it("a stopped run (SIGTERM) keeps nothing and leaves no restic on the host; the password is on no command line, environment or file there", async () => {
    const job = "qn-dr-db-01/files-slow";
    const run = start(["backup", "run", "--job", job]);
    await until("restic to run on the host", () => resticOf(job).length > 0);
    const [pid] = resticOf(job) as [number];
    const parent = Number(procText(pid, "stat").replace(/^.*\) \S+ /, "").split(" ")[0]);
    // The right process, run as the login user, with the repository's location only.
    expect(procText(pid, "environ").split("\0")).toContain(`RESTIC_REPOSITORY=${repoUrl}`);
    for (const p of [pid, parent]) {
      expect(procText(p, "cmdline")).not.toContain(PASSWORD);
      expect(procText(p, "environ")).not.toContain(PASSWORD);
    }
    expect(procText(parent, "cmdline").split("\0")[0]).toBe("sh");

    run.child.kill("SIGTERM");
    const res = await run.done;
    expect(res.code).toBe(143);
    expect(res.stderr.trim()).toMatch(/^dcctl: stopped by SIGTERM: 0 of 1 jobs finished before; nothing of the stopped ones was kept/);
    // dcctl waited for the host's restic to end, which took its lock with it.
    expect(alive(pid)).toBe(false);
    expect(await jobSnapshots(job)).toEqual([]);
    expect(await restic.locks()).toEqual([]);

    const leaked = filesOf(testUser.uid, ["/tmp", "/var/tmp", "/dev/shm", testUser.home]).filter((f) => readFileSync(f).includes(PASSWORD));
    expect(leaked).toEqual([]);
  });

  it("a killed dcctl (SIGKILL) over a root login leaves no snapshot and no restic on the host", async () => {
    const job = "qn-app-01/files-slow";
    const run = start(["backup", "run", "--job", job]);
    await until("restic on the host to read the files", () => resticOf(job).some((pid) => readBytes(pid) > 1024 * 1024));
    const pids = resticOf(job);
    run.child.kill("SIGKILL");
    await run.done;
    // sshd does not end a root login's command with the connection; the wrapper's watcher stops it.
    await until("the host's restic to end", () => !pids.some(alive), 15_000);
    expect(await jobSnapshots(job)).toEqual([]);
    expect(await restic.locks()).toEqual([]);
  });

  it("restores one file with restic on the host, and a snapshot of the former tar design still restores", async () => {
    const file = join(dataDir, "f7.txt");
    writeFileSync(file, "document 7, amended\n");
    const backup = await dcctl(["backup", "run", "--job", "qn-db-01/files-remote"]);
    expect(backup.code, backup.stderr).toBe(0);
    // Folders the login user may write to: restic there restores as that user.
    const writable = (name: string): string => {
      const dir = join(work, name);
      mkdirSync(dir);
      chownSync(dir, testUser.uid, -1);
      return dir;
    };
    const dest = writable("restored");
    const restored = await dcctl(["restore", "--host", "qn-db-01", "--path", file, "--to", dest, "--json"]);
    expect(restored.stderr).toBe("");
    expect(restored.code).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({ restoredTo: join(dest, file) });
    expect(readFileSync(join(dest, file), "utf8")).toBe("document 7, amended\n");
    // Only that file came back.
    expect(readdirSync(join(dest, dataDir))).toEqual(["f7.txt"]);
    // Into a place that has content now: refused without --yes, nothing written.
    writeFileSync(join(dest, file), "edited since\n");
    const refused = await dcctl(["restore", "--host", "qn-db-01", "--path", file, "--to", dest]);
    expect(refused.code).toBe(5);
    expect(refused.stderr.trim()).toMatch(/^dcctl: refusing to overwrite the existing .*f7\.txt on dcctl-test@\[127\.0\.0\.1\]:\d+ with .* without --yes/);
    expect(readFileSync(join(dest, file), "utf8")).toBe("edited since\n");
    const missing = await dcctl(["restore", "--host", "qn-db-01", "--path", join(dataDir, "nope.txt"), "--to", writable("restored-nope")]);
    expect(missing.code).toBe(1);
    // `latest` is resolved to the newest trusted snapshot before restic runs (backup/trust.ts): the error names it.
    expect(missing.stderr.trim()).toMatch(/^dcctl: restic on .* restored nothing: .*nope\.txt is not in snapshot [0-9a-f]{8} of /);

    // What the former design stored: the host's tar stream as /files/<host>.tar.
    const tar = new LocalExecutor().stream(tarCreateArgv([dataDir], ["*.tmp"]));
    const old = await restic.backupStream(tar, { filename: "files/qn-db-01.tar", host: "qn-db-01", tags: ["dcctl", "job:qn-db-01/files-remote", "source:files"] });
    writeFileSync(file, "document 7, later\n");
    const dest2 = writable("restored-tar");
    // The newest files snapshot now: restic on the host finds nothing of the path in it, the tar way takes over.
    const fromTar = await dcctl(["restore", "--host", "qn-db-01", "--path", file, "--to", dest2, "--json"]);
    expect(fromTar.stderr).toBe("");
    expect(fromTar.code).toBe(0);
    expect(JSON.parse(fromTar.stdout)).toMatchObject({ snapshotId: old.snapshot_id });
    expect(readFileSync(join(dest2, file), "utf8")).toBe("document 7, amended\n");
    // And by its id, into a place that has content: confirmed with --yes.
    const byId = await dcctl(["restore", "--host", "qn-db-01", "--path", file, "--snapshot", (old.snapshot_id ?? "").slice(0, 8), "--to", dest2, "--yes"]);
    expect(byId.code, byId.stderr).toBe(0);
  });
});
