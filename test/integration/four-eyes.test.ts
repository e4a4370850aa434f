import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Restic } from "../../restic/index.js";
import { readJournal, type RunReport } from "../../runbooks/engine/index.js";
import { repoRoot } from "../../util/tools.js";
import { mainJs, type CliRun } from "../helpers/cli.js";
import { until } from "../helpers/until.js";

/**
 * Four eyes with real OS users, none of them made for it: dcctl runs as `daemon` (the operator who asks, then acts)
 * and as `nobody` (the one who approves), two existing unprivileged accounts, sharing a group as operators would
 * (the `users` group given to both processes). Each writes its files as itself; the gate tells them apart by their
 * owners. Cases: a request, a refused self-approval, a forged approval, an approval that lets `backup unlock
 * --remove-all` (a real restic repository, a real stale lock) and a failover run, both names in the journal, one use
 * per approval, another action refused, and an approval that expired.
 */

const root = process.geteuid?.() === 0;

function account(name: string): { uid: number; gid: number } | undefined {
  const r = spawnSync("getent", ["passwd", name], { encoding: "utf8" });
  const f = r.stdout.split(":");
  return r.status === 0 ? { uid: Number(f[2]), gid: Number(f[3]) } : undefined;
}

function groupId(name: string): number | undefined {
  const r = spawnSync("getent", ["group", name], { encoding: "utf8" });
  return r.status === 0 ? Number(r.stdout.split(":")[2]) : undefined;
}

const requester = account("daemon");
const approver = account("nobody");
// The operators' group: `users` where it exists, else nobody's own.
const operators = groupId("users") ?? approver?.gid ?? 65534;

describe.skipIf(!root || !requester || !approver)("four eyes: two OS users, one approval, one run", () => {
  let work: string;
  let restic: Restic;
  let env: NodeJS.ProcessEnv;
  const runbook = "test/fixtures/runbooks/approval-failover.yaml";

  const as = (who: { uid: number } | undefined, args: string[], repos = "repositories.yaml"): CliRun => {
    if (!who) throw new Error("no such account");
    const r = spawnSync(process.execPath, [mainJs, ...args], { cwd: repoRoot, env: { ...env, DCCTL_REPOS_FILE: join(work, repos) }, uid: who.uid, gid: operators, encoding: "utf8", timeout: 60_000 });
    return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
  };
  const codeOf = (run: CliRun): string => {
    const code = /^approval required: request ([0-9A-Z]{6})$/m.exec(run.stdout)?.[1];
    if (!code) throw new Error(`no request code in: ${run.stdout}${run.stderr}`);
    return code;
  };
  const approvals = () => join(work, "state", "approvals");
  const ownerOf = (file: string) => statSync(join(approvals(), file)).uid;
  const locks = async () => (await restic.locks()).length;
  const runs = () => (existsSync(join(work, "state", "dr", "runs")) ? readdirSync(join(work, "state", "dr", "runs")) : []);

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "dcctl-four-eyes-"));
    chmodSync(work, 0o755);
    // dcctl finds restic under $DCCTL_CACHE/bin; the set-up's copy is in root's home, which the two users cannot enter.
    const bin = join(work, "cache", "bin");
    mkdirSync(bin, { recursive: true });
    const resticBin = realpathSync(new Restic({ url: "-", passwordFile: "-" }).bin);
    try {
      linkSync(resticBin, join(bin, "restic"));
    } catch {
      copyFileSync(resticBin, join(bin, "restic"));
      chmodSync(join(bin, "restic"), 0o755);
    }
    const pass = join(work, "restic.pass");
    writeFileSync(pass, "four eyes, one key\n", { mode: 0o600 });
    restic = new Restic({ url: join(work, "repo"), passwordFile: pass }, { cacheDir: join(work, "root-cache") });
    await restic.init();
    // A lock that outlived its process, on this host: a backup killed while it waits for its input.
    const killed = spawn(restic.bin, ["-r", join(work, "repo"), "--password-file", pass, "--cache-dir", join(work, "root-cache"), "backup", "--stdin", "-q"], { stdio: ["pipe", "ignore", "ignore"] });
    try {
      // until() takes a probe that answers at once; restic's listing does not, so it is polled here.
      const deadline = Date.now() + 30_000;
      while ((await locks()) === 0) {
        if (Date.now() > deadline) throw new Error("timed out waiting for the backup's lock");
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      killed.kill("SIGKILL");
    }
    // The repository, its password and the state folder belong to the operator who acts; the group reads and writes.
    for (const p of ["repo", "restic.pass"]) spawnSync("chown", ["-R", `${requester?.uid ?? 0}:${operators}`, join(work, p)]);
    for (const d of ["state", "cache-daemon", "home"]) {
      mkdirSync(join(work, d));
      chownSync(join(work, d), requester?.uid ?? 0, operators);
      chmodSync(join(work, d), 0o770);
    }
    const repos = (ttl: string) =>
      ["site: secondary", "repositories:", `  secondary: { url: ${join(work, "repo")}, passwordFile: ${pass} }`, `cacheDir: ${join(work, "cache-daemon")}`, "approval:", "  required: true", `  ttl: ${ttl}`, ""].join("\n");
    writeFileSync(join(work, "repositories.yaml"), repos("30m"), { mode: 0o644 });
    writeFileSync(join(work, "repositories-short.yaml"), repos("4s"), { mode: 0o644 });
    // Nothing of root's environment: no SUDO_USER (which root alone is believed about), no root HOME.
    env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: join(work, "home"), DCCTL_STATE_DIR: join(work, "state"), DCCTL_CACHE: join(work, "cache"), DCCTL_SITES_DIR: "", DCCTL_THROWAWAY_KEYS: "1" };
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("unlock --remove-all: asked by daemon, refused to approve it themselves, approved by nobody, run once", async () => {
    expect(await locks()).toBe(1);
    const asked = as(requester, ["backup", "unlock", "--remove-all", "--yes"]);
    expect(asked.code, asked.stderr).toBe(8);
    const code = codeOf(asked);
    expect(asked.stdout).toContain("  action:    backup unlock --remove-all  repository=secondary");
    expect(asked.stdout).toMatch(/ {2}changes: {3}remove every lock of repository secondary, live ones too \(shared lock of pid \d+/);
    expect(asked.stdout).toContain(`  then:      dcctl backup unlock --remove-all --yes --approval ${code}`);
    expect(asked.stderr).toMatch(new RegExp(`^dcctl: approval required: request ${code} \\(backup unlock --remove-all, repository secondary\\) waits for another operator until .*\\n$`));
    expect(await locks()).toBe(1);
    expect(ownerOf(`${code}.request.json`)).toBe(requester?.uid);
    // The folder as dcctl made it: setgid and sticky, the group's.
    expect(statSync(approvals()).mode & 0o7777).toBe(0o3770);

    const self = as(requester, ["approve", code, "--yes"]);
    expect(self.code).toBe(8);
    expect(self.stderr).toBe(`dcctl: request ${code} was made by you (daemon): another operator must approve it\n`);

    const listed = as(approver, ["approvals", "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ code, status: "waiting", requestedBy: "daemon" })]);

    const notYet = as(requester, ["backup", "unlock", "--remove-all", "--yes", "--approval", code]);
    expect(notYet.code).toBe(8);
    expect(notYet.stderr).toMatch(new RegExp(`^dcctl: request ${code} is not approved yet`));

    const approved = as(approver, ["approve", code.toLowerCase(), "--yes"]);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain(`approved ${code} as nobody: daemon may run it once until `);
    expect(ownerOf(`${code}.approval.json`)).toBe(approver?.uid);

    const ran = as(requester, ["backup", "unlock", "--remove-all", "--yes", "--approval", code]);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toMatch(new RegExp(`^approval ${code}: asked by daemon at \\S+, approved by nobody at \\S+\\nrepository secondary: removed 1 lock: shared lock of pid \\d+`));
    expect(await locks()).toBe(0);
    expect(ownerOf(`${code}.used.json`)).toBe(requester?.uid);
    expect(JSON.parse(as(approver, ["approvals", "--all", "--json"]).stdout)).toEqual([expect.objectContaining({ code, status: "used", approval: expect.objectContaining({ by: "nobody" }), use: expect.objectContaining({ by: "daemon" }) })]);
  });

  it("failover: a forged approval refused; approved by nobody, both names in the journal and report; one use; another action refused", () => {
    const asked = as(requester, ["dr", "failover", "--to", "secondary", "--runbook", runbook, "--yes"]);
    expect(asked.code, asked.stderr).toBe(8);
    const forgedCode = codeOf(asked);
    expect(runs()).toEqual([]);

    // daemon writes the approval itself, naming nobody: the file is daemon's all the same.
    const request = readFileSync(join(approvals(), `${forgedCode}.request.json`));
    const sha = spawnSync("sha256sum", { input: request, encoding: "utf8" }).stdout.split(" ")[0];
    const grant = JSON.stringify({ format: 1, code: forgedCode, requestSha256: sha, approvedBy: "nobody", approvedAt: new Date().toISOString(), host: "x" });
    const wrote = spawnSync("sh", ["-c", 'cat > "$1"', "sh", join(approvals(), `${forgedCode}.approval.json`)], { input: grant, uid: requester?.uid, gid: operators });
    expect(wrote.status).toBe(0);
    const forged = as(requester, ["dr", "failover", "--to", "secondary", "--runbook", runbook, "--yes", "--approval", forgedCode]);
    expect(forged.code).toBe(8);
    expect(forged.stderr).toBe(`dcctl: the approval of ${forgedCode} says it was written by nobody, but its file is owned by daemon: refused as forged\n`);
    expect(runs()).toEqual([]);

    // Asked again (the forged request is no longer pending): a new code, approved by the other user.
    const again = as(requester, ["dr", "failover", "--to", "secondary", "--runbook", runbook, "--yes"]);
    const code = codeOf(again);
    expect(code).not.toBe(forgedCode);
    expect(as(approver, ["approve", code, "--yes"]).code).toBe(0);
    const ran = as(requester, ["dr", "failover", "--to", "secondary", "--runbook", runbook, "--yes", "--approval", code, "--json"]);
    expect(ran.code, ran.stderr).toBe(0);
    const outcome = JSON.parse(ran.stdout) as { runId: string; runDir: string; status: string };
    expect(outcome.status).toBe("ok");
    const start = readJournal(join(outcome.runDir, "journal.jsonl")).records[0];
    expect(start).toMatchObject({ type: "run-start", operator: "daemon", confirmedBy: "--yes given by daemon", approval: { code, action: "dr failover", target: "site secondary", requestedBy: "daemon", approvedBy: "nobody" } });
    const report = JSON.parse(readFileSync(join(outcome.runDir, "report.json"), "utf8")) as RunReport;
    expect(report.approval).toMatchObject({ requestedBy: "daemon", approvedBy: "nobody" });
    expect(readFileSync(join(outcome.runDir, "report.md"), "utf8")).toMatch(new RegExp(`Four eyes: asked for by daemon at \\S+, approved by nobody at \\S+ \\(approval ${code}\\)\\.`));
    expect(as(requester, ["dr", "history"]).stdout).toMatch(/failover .* daemon \(approved by nobody\)/);

    const twice = as(requester, ["dr", "failover", "--to", "secondary", "--runbook", runbook, "--yes", "--approval", code]);
    expect(twice.code).toBe(8);
    expect(twice.stderr).toMatch(new RegExp(`^dcctl: approval ${code} was already used by daemon at \\S+: an approval is good for one run`));
    const other = as(requester, ["dr", "failover", "--to", "secondary", "--runbook", runbook, "--yes", "--failed-at", "2026-03-01T09:00:00+07:00", "--approval", code]);
    expect(other.code).toBe(8);
    expect(other.stderr).toBe(`dcctl: approval ${code} is not for this: failedAt is 2026-03-01T09:00:00+07:00, the approval is for (none); run the command without --approval to ask for this one\n`);
    expect(runs()).toHaveLength(1);
  });

  it("an approval left unused past the ttl is refused", async () => {
    const short = "repositories-short.yaml";
    const asked = as(requester, ["dr", "failover", "--to", "secondary", "--runbook", runbook, "--yes", "--planned"], short);
    const code = codeOf(asked);
    const approved = as(approver, ["approve", code, "--yes", "--json"], short);
    expect(approved.code, approved.stderr).toBe(0);
    const expiresAt = Date.parse((JSON.parse(approved.stdout) as { expiresAt: string }).expiresAt);
    await until("the approval's ttl to pass", () => Date.now() > expiresAt + 50, 30_000);
    const late = as(requester, ["dr", "failover", "--to", "secondary", "--runbook", runbook, "--yes", "--planned", "--approval", code], short);
    expect(late.code).toBe(8);
    expect(late.stderr).toMatch(new RegExp(`^dcctl: approval ${code}: the approval of ${code} by nobody expired at \\S+ \\(ttl 4s\\), unused; run the command without --approval to ask again\\n$`));
    expect(runs()).toHaveLength(1);
  });
});
