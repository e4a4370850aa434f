import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import type { HostServers } from "../../lab/host-servers.js";
import { PG_BIN_DIR } from "../../lab/postgres.js";
import { repoRoot } from "../../util/tools.js";
import { until } from "../helpers/until.js";
import { HELP_PACKAGES, moduleRecorder, packagesOf, recordedModules } from "../helpers/module-recorder.js";

/**
 * The release as a province gets it: `npm run release`'s tarball, checked (sha256, `ssh-keygen -Y verify`), installed
 * by its install.sh and run inside a network namespace of the test's own with nothing but loopback, with a PATH that
 * holds no node, npm or go, and an empty HOME. The host it backs up is real (sshd, rest-server, PostgreSQL on the
 * namespace's loopback). The state folder starts as dcctl 0.2.0 left it (a DR run it wrote: test/fixtures/state-0.2.0),
 * and survives an install, an upgrade over it and a refused downgrade.
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-release-"));
const ns = `dcrel${createHash("sha256").update(work).digest("hex").slice(0, 6)}`;
const out = join(work, "out");
const prefix = join(work, "opt");
const bindir = join(work, "bin");
const etc = join(work, "etc");
const state = join(work, "state");
const home = join(work, "home");
const pathbin = join(work, "pathbin");
const OLD_RUN = readdirSync(join(repoRoot, "test", "fixtures", "state-0.2.0", "dr", "runs"))[0] ?? "";
let servers: ChildProcess | undefined;
let info: HostServers;
let tarball = "";
let version = "";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A command inside the namespace, with the bare environment of a fresh management host. */
function inNs(argv: string[], extraEnv: Record<string, string> = {}, timeoutMs = 300_000): Run {
  const env = { HOME: home, PATH: `${bindir}:${pathbin}`, LANG: "C.UTF-8", ...extraEnv };
  const res = spawnSync("nsenter", [`--net=/run/netns/${ns}`, "--", "env", "-i", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv], { encoding: "utf8", timeout: timeoutMs });
  return { code: res.status ?? 1, stdout: res.stdout, stderr: res.stderr };
}

const dcctl = (args: string[]): Run => inNs(["dcctl", ...args]);

/** A PATH of everything the machine has but node, npm, npx, corepack and go: what a management host offers. */
function bareToolPath(): void {
  mkdirSync(pathbin, { recursive: true });
  for (const dir of ["/usr/local/sbin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) {
      if (/^(node|nodejs|npm|npx|corepack|go|gofmt|dcctl)$/.test(f) || existsSync(join(pathbin, f))) continue;
      symlinkSync(join(dir, f), join(pathbin, f));
    }
  }
}

function writeConfig(): void {
  mkdirSync(join(etc, "sites"), { recursive: true });
  const fixture = join(repoRoot, "test", "fixtures", "inventory", "cross-site-ok");
  const ssh = { host: "127.0.0.1", port: info.sshd.port, user: "root" };
  const p = parse(readFileSync(join(fixture, "primary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
  p.hosts = p.hosts.map((h) => (h.name === "qn-db-01" ? { ...h, services: ["postgresql"], backupPolicy: "db-test", ssh } : { ...h, backupPolicy: "db-test", ssh }));
  writeFileSync(join(etc, "sites", "primary.yaml"), stringify(p));
  const s = parse(readFileSync(join(fixture, "secondary.yaml"), "utf8")) as { hosts: Record<string, unknown>[] };
  s.hosts = s.hosts.map((h) => ({ ...h, backupPolicy: "db-test" }));
  writeFileSync(join(etc, "sites", "secondary.yaml"), stringify(s));
  writeFileSync(
    join(etc, "policies.yaml"),
    stringify({
      policies: {
        "db-test": { sources: [{ kind: "postgresql" }], schedule: "5 * * * *", retention: { keepHourly: 24 }, rpoMinutes: 90, repository: "primary" },
      },
    }),
  );
  writeFileSync(join(etc, "restic.pass"), "release test secret\n", { mode: 0o600 });
  writeFileSync(
    join(etc, "repositories.yaml"),
    stringify({
      site: "primary",
      repositories: { primary: { url: info.rest.repo, passwordFile: "restic.pass" } },
      ssh: { keyFile: info.sshd.clientKeyPath, knownHosts: info.sshd.knownHostsPath },
      databases: { postgresql: { port: info.postgres.port, user: info.postgres.superuser, passFile: info.postgres.passFile, binDir: PG_BIN_DIR } },
    }),
  );
}

beforeAll(async () => {
  // The database server's account must reach its folder below this one.
  chmodSync(work, 0o755);
  // 1. The release, signed with a key of the test's own.
  const key = join(work, "release-key");
  spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "release@test", "-f", key]);
  const built = spawnSync(process.execPath, [join(repoRoot, "dist", "scripts", "release.js")], {
    encoding: "utf8",
    env: { ...process.env, DCCTL_RELEASE_OUT: out, DCCTL_RELEASE_KEY: key, DCCTL_RELEASE_SIGNER: "release@test" },
  });
  if (built.status !== 0) throw new Error(`npm run release failed: ${built.stderr}`);
  tarball = readdirSync(out).find((f) => f.endsWith(".tar.gz")) ?? "";
  version = /^dcctl-(.+)-linux-amd64\.tar\.gz$/.exec(tarball)?.[1] ?? "";

  // 2. A namespace with loopback only, and the host's servers inside it.
  bareToolPath();
  mkdirSync(home, { recursive: true });
  expect(spawnSync("ip", ["netns", "add", ns]).status).toBe(0);
  expect(spawnSync("ip", ["-n", ns, "link", "set", "lo", "up"]).status).toBe(0);
  servers = spawn("nsenter", [`--net=/run/netns/${ns}`, "--", process.execPath, join(repoRoot, "dist", "lab", "host-servers.js"), join(work, "servers")], { stdio: ["ignore", "ignore", "inherit"] });
  const serversFile = join(work, "servers", "servers.json");
  await until("the host's servers in the namespace", () => existsSync(serversFile) || servers?.exitCode !== null, 120_000);
  if (!existsSync(serversFile)) throw new Error(`host-servers exited ${servers.exitCode}`);
  info = JSON.parse(readFileSync(serversFile, "utf8")) as HostServers;
  writeConfig();
  // 3. The state dcctl 0.2.0 left: a DR run and its journal.
  cpSync(join(repoRoot, "test", "fixtures", "state-0.2.0"), state, { recursive: true });
  // Building and packing ~400 MB takes about 40 s of CPU: far longer on a loaded 2-core machine.
}, 1_800_000);

afterAll(async () => {
  if (servers && servers.exitCode === null) {
    servers.kill("SIGTERM");
    await until("the host's servers to stop", () => servers?.exitCode !== null, 60_000).catch(() => servers?.kill("SIGKILL"));
  }
  spawnSync("ip", ["netns", "delete", ns]);
  rmSync(work, { recursive: true, force: true });
});

describe("the release, installed and run offline", () => {
  it("is checked by its checksum and its ssh-keygen signature before anything is unpacked", () => {
    expect(spawnSync("sha256sum", ["-c", `${tarball}.sha256`], { cwd: out }).status).toBe(0);
    const verify = (file: string) => spawnSync("sh", ["-c", `ssh-keygen -Y verify -f allowed_signers -I release@test -n dcctl-release -s ${tarball}.sig < ${file}`], { cwd: out, encoding: "utf8" });
    expect(verify(tarball).status).toBe(0);
    // The signature is of this file: another one fails the same check.
    writeFileSync(join(out, "other"), "not the release");
    expect(verify("other").status).not.toBe(0);
    const listing = spawnSync("tar", ["-tzf", join(out, tarball)], { encoding: "utf8", maxBuffer: 64 * 2 ** 20 }).stdout;
    for (const f of ["install.sh", "bin/dcctl", "libexec/node", "libexec/restic", "libexec/rest-server", "libexec/pulumi", "provider/vsphere/bin/pulumi-resource-vsphere", "node_modules/@pulumi/vsphere/package.json", "stacks/policy/PulumiPolicy.yaml", "dist/stacks/policy/index.js", "share/systemd/dcctl-serve.service", "share/completion/dcctl.bash", "share/completion/_dcctl", "stacks/sites/primary.yaml", "runbooks/drill.yaml"]) {
      expect(listing, f).toContain(`dcctl-${version}-linux-amd64/${f}\n`);
    }
    // What only the lab needs stays out.
    expect(listing).not.toMatch(/\/(vcsim|govc)\n|\/lab\//);
  });

  it("installs with no network, no node, npm or go on PATH and an empty HOME, keeping the 0.2.0 state", () => {
    expect(inNs(["sh", "-c", "command -v node npm go || echo none"]).stdout.trim()).toBe("none");
    expect(spawnSync("tar", ["-xzf", join(out, tarball), "-C", work]).status).toBe(0);
    const unpacked = join(work, `dcctl-${version}-linux-amd64`);
    const install = inNs(["sh", join(unpacked, "install.sh"), "--prefix", prefix, "--bin-dir", bindir, "--etc", etc, "--state", state, "--no-completion"]);
    expect(install.code, install.stderr).toBe(0);
    expect(install.stderr).toMatch(/migrated 0→1 at .* by dcctl/);
    expect(readlinkSync(join(prefix, "current"))).toBe(`releases/${version}`);
    expect(dcctl(["--version"]).stdout.trim()).toBe(version);
    const history = dcctl(["dr", "history", "--json"]);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toContain(OLD_RUN);
    const verified = dcctl(["dr", "verify-report", OLD_RUN]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  }, 900_000);

  it("starts as lazily as the checkout: `dcctl --help` from the bundle loads no command group's packages", () => {
    // The release's own node, with a hook that records each module it loads (test/unit/startup.test.ts does the same for
    // the checkout): a bundle of one file loaded @pulumi/pulumi, fastify and ssh2 at every start, 10-12x bare node.
    const unpacked = join(work, `dcctl-${version}-linux-amd64`);
    const log = join(work, "loaded.txt");
    const recorder = moduleRecorder(work);
    writeFileSync(log, "");
    const res = spawnSync(join(unpacked, "libexec", "node"), ["--import", recorder, join(unpacked, "dist", "cli", "main.js"), "--help"], { env: { PATH: "/usr/bin:/bin", HOME: home, LOADED_LOG: log }, encoding: "utf8" });
    expect(res.status, res.stderr).toBe(0);
    const loaded = recordedModules(log);
    expect(loaded.some((f) => f.includes("/dist/cli/main.js"))).toBe(true);
    expect([...packagesOf(loaded)].filter((p) => !HELP_PACKAGES.test(p))).toEqual([]);
  });

  it("runs doctor, inventory validate, a backup, a restore and the console against the host's real servers", async () => {
    const init = inNs([join(prefix, "current", "libexec", "restic"), "init"], { RESTIC_REPOSITORY: info.rest.repo, RESTIC_PASSWORD_FILE: join(etc, "restic.pass") });
    expect(init.code, init.stderr).toBe(0);
    const doctor = dcctl(["doctor"]);
    expect(doctor.code, doctor.stdout).toBe(0);
    expect(doctor.stdout).toMatch(/^ok {4}repositories primary .* answered/m);
    expect(doctor.stdout).toMatch(/^ok {4}tools {8}restic \d/m);
    const validate = dcctl(["inventory", "validate"]);
    expect(validate.code, validate.stderr).toBe(0);
    const backup = dcctl(["backup", "run", "--job", "qn-db-01/db-test", "--json"]);
    expect(backup.code, backup.stderr).toBe(0);
    const restore = dcctl(["restore", "--host", "qn-db-01", "--db", "portal", "--target-db", "portal_copy"]);
    expect(restore.code, restore.stderr).toBe(0);
    const copied = inNs([join(PG_BIN_DIR, "psql"), "-X", "-A", "-t", "-h", "127.0.0.1", "-p", String(info.postgres.port), "-U", info.postgres.superuser, "-d", "portal_copy", "-c", "SELECT name FROM citizens"], { PGPASSFILE: info.postgres.passFile });
    expect(copied.stdout.trim()).toBe("Nguyễn Văn A");
    // The console: started from the release, answering inside the namespace.
    const serve = spawn("nsenter", [`--net=/run/netns/${ns}`, "--", "env", "-i", `HOME=${home}`, `PATH=${bindir}:${pathbin}`, "dcctl", "serve", "--listen", "127.0.0.1:0"], { stdio: ["ignore", "ignore", "pipe"] });
    let said = "";
    serve.stderr.setEncoding("utf8").on("data", (s: string) => (said += s));
    try {
      const url = await until("dcctl serve to say where it listens", () => /http:\/\/127\.0\.0\.1:\d+/.exec(said)?.[0], 60_000);
      const node = join(prefix, "current", "libexec", "node");
      const got = inNs([node, "-e", `fetch(${JSON.stringify(url + "/api/status")}).then(async (r) => console.log(r.status, (await r.json()).site))`]);
      expect(got.stdout.trim()).toBe("200 primary");
    } finally {
      serve.kill("SIGTERM");
      await until("dcctl serve to stop", () => serve.exitCode !== null || serve.signalCode !== null, 30_000);
    }
  }, 900_000);

  it("upgrades over itself keeping config and state, and refuses a downgrade below the state's format in one line", () => {
    const statusBefore = JSON.parse(dcctl(["backup", "status", "--json"]).stdout) as { rows: { job: string; newest?: { id: string } }[] };
    // The next release: the same files under a newer version (what an upgrade changes is the release's folder).
    const next = `${version}-next`;
    const nextDir = join(work, `dcctl-${next}-linux-amd64`);
    cpSync(join(work, `dcctl-${version}-linux-amd64`), nextDir, { recursive: true, verbatimSymlinks: true });
    writeFileSync(join(nextDir, "VERSION"), `${next}\n`);
    const pkg = JSON.parse(readFileSync(join(nextDir, "package.json"), "utf8")) as { version: string };
    writeFileSync(join(nextDir, "package.json"), JSON.stringify({ ...pkg, version: next }));
    const up = inNs(["sh", join(nextDir, "install.sh"), "--prefix", prefix, "--no-completion", "--bin-dir", bindir]);
    expect(up.code, up.stderr).toBe(0);
    expect(readlinkSync(join(prefix, "current"))).toBe(`releases/${next}`);
    // The folders given at the first install were kept.
    expect(readFileSync(join(prefix, "install.env"), "utf8")).toContain(`dcctl_state=${state}`);
    expect(dcctl(["--version"]).stdout.trim()).toBe(next);
    expect(dcctl(["dr", "history"]).stdout).toContain(OLD_RUN);
    expect(dcctl(["dr", "verify-report", OLD_RUN]).code).toBe(0);
    const statusAfter = JSON.parse(dcctl(["backup", "status", "--json"]).stdout) as typeof statusBefore;
    expect(statusAfter.rows.map((r) => [r.job, r.newest?.id])).toEqual(statusBefore.rows.map((r) => [r.job, r.newest?.id]));

    // State from a dcctl newer than the one being installed: refused, and the newer one stays current.
    const mark = JSON.parse(readFileSync(join(state, "format.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(state, "format.json"), JSON.stringify({ ...mark, format: 99, dcctl: "9.0.0" }));
    const down = inNs(["sh", join(work, `dcctl-${version}-linux-amd64`, "install.sh"), "--prefix", prefix, "--no-completion", "--bin-dir", bindir]);
    expect(down.code).not.toBe(0);
    expect(down.stderr).toMatch(new RegExp(`format 99 \\(written by dcctl 9\\.0\\.0\\); this dcctl ${version.replace(/\./g, "\\.")} reads format 1 or older`));
    expect(readlinkSync(join(prefix, "current"))).toBe(`releases/${next}`);
    const refused = dcctl(["backup", "status"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);
    writeFileSync(join(state, "format.json"), JSON.stringify(mark));
  }, 900_000);
});

