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
 * per approval, another action refused, and an approval that expired; a prune by a policy's shortened minAge and
 * `backup accept` of a distrusted snapshot, each in a repository and state folder of its own.
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

  const as = (who: { uid: number } | undefined, args: string[], repos = "repositories.yaml", more: NodeJS.ProcessEnv = {}): CliRun => {
    if (!who) throw new Error("no such account");
    const r = spawnSync(process.execPath, [mainJs, ...args], { cwd: repoRoot, env: { ...env, DCCTL_REPOS_FILE: join(work, repos), ...more }, uid: who.uid, gid: operators, encoding: "utf8", timeout: 60_000 });
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

  /**
   * A repository of its own at the secondary, holding snapshots of the inventory's job qn-app-01/app-daily made by
   * root with restic (their times as given), then handed to the operators; and a state folder of its own. What
   * dcctl needs to judge and prune them: the inventory and a policies file whose app-daily keeps 1 with minAge 0.
   */
  async function repositoryWith(name: string, times: string[]): Promise<{ repos: string; more: NodeJS.ProcessEnv; restic: Restic }> {
    const pass = join(work, "restic.pass");
    const url = join(work, `repo-${name}`);
    const r = new Restic({ url, passwordFile: pass }, { cacheDir: join(work, "root-cache") });
    await r.init();
    const data = join(work, "app-data");
    mkdirSync(data, { recursive: true });
    for (const [i, time] of times.entries()) {
      writeFileSync(join(data, "dossier.txt"), `version ${i}\n`);
      const made = spawnSync(r.bin, ["-r", url, "--password-file", pass, "--cache-dir", join(work, "root-cache"), "backup", "-q", "--host", "qn-app-01", "--tag", "dcctl", "--tag", "job:qn-app-01/app-daily", "--tag", "source:files", "--tag", `run:20261201T00000${i}-1`, "--time", time, data], { encoding: "utf8" });
      if (made.status !== 0) throw new Error(`restic backup: ${made.stderr}`);
    }
    spawnSync("chown", ["-R", `${requester?.uid ?? 0}:${operators}`, url]);
    const state = join(work, `state-${name}`);
    mkdirSync(state);
    chownSync(state, requester?.uid ?? 0, operators);
    chmodSync(state, 0o770);
    const repos = `repositories-${name}.yaml`;
    writeFileSync(join(work, repos), ["site: secondary", "repositories:", `  secondary: { url: ${url}, passwordFile: ${pass} }`, `cacheDir: ${join(work, "cache-daemon")}`, "approval:", "  required: true", "  ttl: 30m", ""].join("\n"), { mode: 0o644 });
    const sites = join(work, "sites");
    if (!existsSync(sites)) {
      mkdirSync(sites);
      for (const f of ["primary.yaml", "secondary.yaml"]) copyFileSync(join(repoRoot, "test", "fixtures", "inventory", "cross-site-ok", f), join(sites, f));
      const files = (repository: string, extra = "") => `{ sources: [{ kind: files, paths: [${data}] }], schedule: "0 2 * * *", retention: { keepLast: 1 }, rpoMinutes: 1560, repository: ${repository}${extra} }`;
      writeFileSync(join(work, "policies.yaml"), ["policies:", `  db-hourly: ${files("primary")}`, `  db-daily: ${files("primary")}`, `  app-daily: ${files("secondary", ", minAge: 0")}`, ""].join("\n"), { mode: 0o644 });
    }
    return { repos, more: { DCCTL_STATE_DIR: state, DCCTL_SITES_DIR: sites, DCCTL_POLICIES_FILE: join(work, "policies.yaml") }, restic: r };
  }

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

  it("prune by a policy's minAge shorter than the default: held at the default without an approval, applied once with one", async () => {
    const { repos, more, restic: r } = await repositoryWith("prune", ["2026-12-01 02:00:00", "2026-12-02 02:00:00", "2026-12-03 02:00:00"]);
    const count = async () => (await r.snapshots()).length;
    // As the timer runs it: no request, no stop; the floor stays at 7d, and it says why.
    const scheduled = as(requester, ["backup", "prune"], repos, more);
    expect(scheduled.code, scheduled.stderr).toBe(0);
    expect(scheduled.stdout).toMatch(/^qn-app-01\/app-daily: keep 3 \(2 younger than minAge\), removed 0$/m);
    expect(scheduled.stderr).toContain("warning: policy app-daily: minAge 0 is shorter than the default 7d: prune may remove snapshots that reached this site at any age; not applied: this site requires a second operator for it (approval:)");
    expect(await count()).toBe(3);
    // A dry run shows what the shortened floor would remove, and needs nobody.
    const dry = as(requester, ["backup", "prune", "--apply-min-age", "--dry-run"], repos, more);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^qn-app-01\/app-daily: keep 1, would remove 2$/m);

    const asked = as(requester, ["backup", "prune", "--apply-min-age"], repos, more);
    expect(asked.code, asked.stderr).toBe(8);
    const code = codeOf(asked);
    expect(asked.stdout).toContain("  action:    backup prune --apply-min-age  ");
    expect(asked.stdout).toContain("  changes:   prune repository secondary with a minAge shorter than the default 7d (app-daily=0): what arrived since then can be removed by retention");
    expect(await count()).toBe(3);
    const self = as(requester, ["approve", code, "--yes"], repos, more);
    expect(self.code).toBe(8);
    expect(as(approver, ["approve", code, "--yes"], repos, more).code).toBe(0);
    const ran = as(requester, ["backup", "prune", "--apply-min-age", "--approval", code], repos, more);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toMatch(new RegExp(`^approval ${code}: asked by daemon at \\S+, approved by nobody at \\S+$`, "m"));
    expect(ran.stdout).toMatch(/^qn-app-01\/app-daily: keep 1, removed 2$/m);
    expect(await count()).toBe(1);
    const twice = as(requester, ["backup", "prune", "--apply-min-age", "--approval", code], repos, more);
    expect(twice.code).toBe(8);
  });

  it("backup accept: trusting a snapshot the site distrusts waits for a second operator; both names kept", async () => {
    const ahead = new Date(Date.now() + 30 * 86_400_000).toISOString().replace("T", " ").replace(/\..*$/, "");
    const { repos, more } = await repositoryWith("accept", [ahead]);
    const listed = as(requester, ["backup", "snapshots", "--repository", "secondary", "--json"], repos, more);
    expect(listed.code, listed.stderr).toBe(0);
    const [row] = JSON.parse(listed.stdout) as { id: string; short_id: string; trust: string }[];
    expect(row?.trust).toBe("implausible");
    const id = row?.short_id ?? "";
    const accept = ["backup", "accept", "--snapshot", id, "--reason", "the primary's clock ran a month ahead"];
    const asked = as(requester, accept, repos, more);
    expect(asked.code, asked.stderr).toBe(8);
    const code = codeOf(asked);
    expect(asked.stdout).toContain(`  target:    snapshot ${id} of repository secondary, at site secondary`);
    expect(asked.stdout).toMatch(new RegExp(`  changes: {3}trust snapshot ${id} of repository secondary from now on, which this site judged implausible: `));
    const ledger = () => JSON.parse(readFileSync(join(more.DCCTL_STATE_DIR ?? "", "backup", "arrivals", "secondary.json"), "utf8")) as { snapshots: Record<string, { distrust?: unknown[]; accepted?: { by: string; approvedBy?: string; reason: string } }> };
    expect(ledger().snapshots[row?.id ?? ""]?.distrust).toHaveLength(1);
    // Another reason is another action: the approval is for exactly what was asked.
    expect(as(approver, ["approve", code, "--yes"], repos, more).code).toBe(0);
    const other = as(requester, ["backup", "accept", "--snapshot", id, "--reason", "looks fine", "--approval", code], repos, more);
    expect(other.code).toBe(8);
    expect(other.stderr).toMatch(new RegExp(`^dcctl: approval ${code} is not for this: reason is looks fine`));
    const ran = as(requester, [...accept, "--approval", code], repos, more);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toContain(`snapshot ${id} of repository secondary is trusted from now on (accepted by daemon, approved by nobody)`);
    expect(ledger().snapshots[row?.id ?? ""]).toMatchObject({ accepted: { by: "daemon", approvedBy: "nobody", reason: "the primary's clock ran a month ahead" } });
  });
});
