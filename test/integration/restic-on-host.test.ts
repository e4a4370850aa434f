import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { Restic } from "../../restic/index.js";
import { startRestServer, type RestServer } from "../../lab/rest-server.js";
import { startSshd, type Sshd } from "../../lab/sshd.js";
import { repoRoot, toolPath } from "../../util/tools.js";
import { dcctl as runCli, type CliRun } from "../helpers/cli.js";
import { ensureTestUser } from "../helpers/users.js";

/**
 * Which restic runs on a host (restic/remote.ts, issue 26): the host's own when it is recent enough (here the
 * path the repositories file names), with nothing copied there; dcctl's copy, pushed, only when the host's is too old;
 * and a job that fails, pushing nothing, where the repositories file forbids the push. The built CLI against a real
 * sshd and rest-server, as a login account of this file's own, so that its cache starts empty every time.
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-restic-on-host-"));
const JOB = "qn-db-01/files-host";
let sshd: Sshd | undefined;
let rest: RestServer | undefined;
let user = { name: "", uid: 0, home: "" };
let env: NodeJS.ProcessEnv = {};
const ownRestic = join(work, "host-bin", "restic");
const oldRestic = join(work, "old-bin", "restic");

/** Where dcctl copies its restic on the host: below the login's cache folder. */
const pushedDir = () => join(user.home, ".cache", "dcctl", "restic");
const pushed = (): string[] => (existsSync(pushedDir()) ? readdirSync(pushedDir()) : []);

/** A repositories file with these hostRestic settings, and the run of the job with it. */
function runWith(hostRestic: Record<string, unknown> | undefined, args: string[] = ["backup", "run", "--job", JOB, "--json"]): CliRun {
  const file = join(work, "repositories.yaml");
  const repos = parse(readFileSync(join(work, "repositories.base.yaml"), "utf8")) as Record<string, unknown>;
  writeFileSync(file, stringify(hostRestic ? { ...repos, hostRestic } : repos));
  return runCli(args, { ...env, DCCTL_REPOS_FILE: file }, 300_000);
}

const resultOf = (r: CliRun) => (JSON.parse(r.stdout) as { results: { status: string; error?: string; resticOnHost?: string; snapshots: string[] }[] }).results[0];

beforeAll(async () => {
  chmodSync(work, 0o755);
  user = await ensureTestUser("dcctl-restic-host");
  sshd = await startSshd({ stateDir: join(work, "sshd"), extraUsers: [user.name] });
  rest = await startRestServer({ dataDir: join(work, "rest") });
  // The host's own restic (this machine's, copied where the login may run it), and one too old to be used.
  mkdirSync(join(work, "host-bin"), { mode: 0o755 });
  copyFileSync(toolPath("restic"), ownRestic);
  chmodSync(ownRestic, 0o755);
  mkdirSync(join(work, "old-bin"), { mode: 0o755 });
  writeFileSync(oldRestic, '#!/bin/sh\nif [ "$1" = version ]; then echo "restic 0.14.0 compiled with go1.19.8 on linux/amd64"; exit 0; fi\nexit 1\n', { mode: 0o755 });
  mkdirSync(join(work, "data"), { mode: 0o755 });
  writeFileSync(join(work, "data", "app.conf"), "workers 4\n", { mode: 0o644 });

  const sites = join(work, "sites");
  mkdirSync(sites);
  const fixture = join(repoRoot, "test", "fixtures", "inventory", "cross-site-ok");
  const ssh = { host: "127.0.0.1", port: sshd.port, user: user.name };
  for (const site of ["primary", "secondary"]) {
    const s = parse(readFileSync(join(fixture, `${site}.yaml`), "utf8")) as { hosts: Record<string, unknown>[] };
    s.hosts = s.hosts.map((h) => ({ ...h, backupPolicy: "files-host", ssh }));
    writeFileSync(join(sites, `${site}.yaml`), stringify(s));
  }
  writeFileSync(
    join(work, "policies.yaml"),
    stringify({ policies: { "files-host": { sources: [{ kind: "files", paths: [join(work, "data")] }], schedule: "0 2 * * *", retention: { keepLast: 5 }, rpoMinutes: 60, repository: "primary" } } }),
  );
  writeFileSync(join(work, "pass"), "restic on host test\n", { mode: 0o600 });
  writeFileSync(
    join(work, "repositories.base.yaml"),
    stringify({ site: "primary", repositories: { primary: { url: rest.repo("primary"), passwordFile: "pass" } }, ssh: { keyFile: sshd.clientKeyPath, knownHosts: sshd.knownHostsPath }, cacheDir: join(work, "cache") }),
  );
  env = { ...process.env, DCCTL_DEBUG: "", DCCTL_SITES_DIR: sites, DCCTL_POLICIES_FILE: join(work, "policies.yaml"), DCCTL_STATE_DIR: join(work, "state") };
  await new Restic({ url: rest.repo("primary"), passwordFile: join(work, "pass") }, { cacheDir: join(work, "cache") }).init();
});

beforeEach(() => {
  // The login's cache as a fresh host has it: nothing of dcctl's, no restic cache.
  rmSync(join(user.home, ".cache"), { recursive: true, force: true });
});

afterAll(async () => {
  if (user.home) rmSync(join(user.home, ".cache"), { recursive: true, force: true });
  await Promise.allSettled([sshd?.stop(), rest?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

describe("restic on the host: its own when recent enough, dcctl's copy only as the fallback", () => {
  it("a host whose own restic is recent enough gets no push, and the run says which restic ran", () => {
    const run = runWith({ path: ownRestic });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe("");
    const result = resultOf(run);
    expect(result?.status).toBe("ok");
    expect(result?.snapshots).toHaveLength(1);
    expect(result?.resticOnHost).toMatch(new RegExp(`^restic on dcctl-restic-host@\\[127\\.0\\.0\\.1\\]:\\d+: the host's own ${ownRestic.replace(/[.]/g, "\\.")} \\(restic 0\\.\\d+\\.\\d+\\)$`));
    expect(pushed()).toEqual([]);
    // The human line says it too.
    const human = runWith({ path: ownRestic }, ["backup", "run", "--job", JOB]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`ok +${JOB} .*new files; restic on \\S+: the host's own ${ownRestic.replace(/[.]/g, "\\.")} `));
    expect(pushed()).toEqual([]);
  });

  it("a host whose restic is too old gets dcctl's copy, pushed once, and the run says so", () => {
    const first = runWith({ path: oldRestic });
    expect(first.code, first.stderr).toBe(0);
    expect(resultOf(first)?.resticOnHost).toMatch(
      new RegExp(`^restic on \\S+: dcctl's restic \\d+\\.\\d+\\.\\d+, copied there now \\(dcctl/restic/[\\w.-]+\\), as the host has no restic 0\\.17\\.1 or newer \\(${oldRestic.replace(/[.]/g, "\\.")} is 0\\.14\\.0\\)$`),
    );
    expect(pushed()).toHaveLength(1);
    const second = runWith({ path: oldRestic });
    expect(second.code, second.stderr).toBe(0);
    expect(resultOf(second)?.resticOnHost).toMatch(/: dcctl's restic [\d.]+, copied there earlier \(/);
  });

  it("with hostRestic.push false, a host without a suitable restic fails the job and gets nothing; a relative path is bad input", () => {
    const run = runWith({ path: oldRestic, push: false });
    expect(run.code).toBe(1);
    const result = resultOf(run);
    expect(result?.status).toBe("failed");
    expect(result?.error).toMatch(/^files: restic on \S+: the host has no restic 0\.17\.1 or newer \(.*old-bin\/restic is 0\.14\.0\) and hostRestic\.push is false in the repositories file/);
    expect(result?.snapshots).toEqual([]);
    expect(pushed()).toEqual([]);

    const bad = runWith({ path: "bin/restic" });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/repositories\.yaml:\d+(:\d+)?: hostRestic\.path: must match pattern/);
  });
});
