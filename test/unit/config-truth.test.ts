import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../util/tools.js";
import { dcctl as runDcctl, type CliRun } from "../helpers/cli.js";

/**
 * Inputs that used to pass quietly and fail later, or never: each is now refused where it is given, with one line
 * naming the file (and its line), exit 2, no stack trace.
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-config-truth-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const fixture = join(repoRoot, "test", "fixtures", "inventory", "cross-site-ok");
const dcctl = (args: string[], env: Record<string, string>): CliRun => runDcctl(args, { ...process.env, DCCTL_DEBUG: "", DCCTL_STATE_DIR: join(work, "state"), ...env });

function expectOneLine(run: CliRun, pattern: RegExp): void {
  const lines = run.stderr.split("\n").filter(Boolean);
  expect(lines).toEqual([expect.stringMatching(pattern)]);
  expect(run.stderr).not.toMatch(/^\s+at /m);
}

describe("configuration that must not pass quietly", () => {
  it("inventory validate refuses a host whose backupPolicy names no policy, at the host's line", () => {
    const sites = join(work, "sites-bad-policy");
    cpSync(fixture, sites, { recursive: true });
    const file = join(sites, "primary.yaml");
    writeFileSync(file, readFileSync(file, "utf8").replace("backupPolicy: db-hourly", "backupPolicy: db-hourlyy"));
    const run = dcctl(["inventory", "validate"], { DCCTL_SITES_DIR: sites });
    expect(run.code).toBe(2);
    expectOneLine(run, /primary\.yaml:\d+: host "qn-db-01": backup policy "db-hourlyy" is not defined in .*policies\.yaml/);
  });

  it("refuses a restic password file that others can read, for a real run and a dry run alike", () => {
    const pass = join(work, "world.pass");
    writeFileSync(pass, "secret\n", { mode: 0o644 });
    const repos = join(work, "repositories.yaml");
    writeFileSync(repos, `site: primary\nrepositories:\n  primary: { url: "rest:http://127.0.0.1:9/primary/", passwordFile: ${pass} }\n`);
    const env = { DCCTL_SITES_DIR: fixture, DCCTL_REPOS_FILE: repos };
    for (const extra of [[], ["--dry-run"]]) {
      const run = dcctl(["backup", "run", "--job", "qn-db-01", ...extra], env);
      expect(run.code, extra.join(" ")).toBe(2);
      expectOneLine(run, /repositories\.yaml:3: repositories\.primary\.passwordFile: .*world\.pass is readable by others \(mode 0644\); chmod 600 it$/);
    }
  });

  it("infra configure stores only an http(s) URL", () => {
    const pw = join(work, "vc.pass");
    writeFileSync(pw, "x\n", { mode: 0o600 });
    const run = dcctl(["infra", "configure", "--stack", "primary", "--url", "vcenter.example", "--user", "svc", "--password-file", pw], { DCCTL_SITES_DIR: fixture });
    expect(run.code).toBe(2);
    expectOneLine(run, /^dcctl: --url "vcenter\.example" is not an http\(s\) URL/);
  });

  it("dr history with a state folder that is a file fails naming it, instead of saying there are no runs", () => {
    const file = join(work, "not-a-folder");
    writeFileSync(file, "");
    const run = dcctl(["dr", "history"], { DCCTL_STATE_DIR: file });
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expectOneLine(run, /^dcctl: DCCTL_STATE_DIR=.*not-a-folder: cannot create folder .*not-a-folder: .*not-a-folder exists and is not a folder; dcctl keeps its state/);
  });

  it("a folder that cannot be made (/proc) fails at once, naming it, where Node's own recursive mkdir spun at 100 % CPU", () => {
    const schedule = runDcctl(["backup", "schedule", "--emit", "systemd", "--site", "primary", "--out", "/proc/dcctl-x"], { ...process.env, DCCTL_DEBUG: "" }, 15_000);
    expect(schedule.code).toBe(2);
    expectOneLine(schedule, /^dcctl backup schedule: --out \/proc\/dcctl-x: cannot create folder \/proc\/dcctl-x: ENOENT at \/proc\/dcctl-x$/);
    const drill = runDcctl(["dr", "drill"], { ...process.env, DCCTL_DEBUG: "", DCCTL_STATE_DIR: "/proc/dcctl-x" }, 15_000);
    expect(drill.code).toBe(2);
    expectOneLine(drill, /^dcctl: DCCTL_STATE_DIR=\/proc\/dcctl-x: cannot create folder \/proc\/dcctl-x: ENOENT at \/proc\/dcctl-x; dcctl keeps its state/);
  });

  it("refuses a runbook over the size limit unread, fast and in bounded memory", () => {
    const big = join(work, "big.yaml");
    const group = "  - name: g\n    steps: []\n";
    writeFileSync(big, "name: big\nkind: drill\nto: secondary\ngroups:\n" + group.repeat(Math.ceil((50 * 1024 * 1024) / group.length)));
    const started = Date.now();
    const run = dcctl(["dr", "plan", "--runbook", big], {});
    expect(run.code).toBe(2);
    expectOneLine(run, /big\.yaml: 50\.0 MiB is larger than the 4 MiB dcctl reads from a YAML file; refused unread$/);
    // It used to parse for 113 s into an out-of-memory crash.
    expect(Date.now() - started).toBeLessThan(20_000);
    rmSync(big);
  });

  it("refuses a YAML alias bomb, naming the file (exit 2)", () => {
    const bomb = join(work, "bomb.yaml");
    const levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"];
    for (const [prev, name] of [["a", "b"], ["b", "c"], ["c", "d"], ["d", "e"], ["e", "f"], ["f", "g"]]) levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(", ")}]`);
    writeFileSync(bomb, levels.join("\n") + "\n");
    const run = dcctl(["dr", "plan", "--runbook", bomb], {});
    expect(run.code).toBe(2);
    expectOneLine(run, /bomb\.yaml:1: YAML refused: .*alias.* \(at most 100 aliases\)$/i);
  });

  it("refuses a step timeout past what a timer can hold, stating the largest (exit 2, file:line)", () => {
    const long = join(work, "long.yaml");
    writeFileSync(long, readFileSync(join(repoRoot, "runbooks", "drill.yaml"), "utf8").replace("timeout: 30s", "timeout: 600h"));
    const run = dcctl(["dr", "plan", "--runbook", long], {});
    expect(run.code).toBe(2);
    expectOneLine(run, /long\.yaml:\d+: step "[\w-]+": bad timeout "600h": .* at most 576h \(24 days\)$/);
  });

  it("exits 2 for an impossible verify subset and for a DR run id that names no run", () => {
    const subset = dcctl(["backup", "verify", "--subset", "200%"], {});
    expect(subset.code).toBe(2);
    expectOneLine(subset, /--subset "200%" is not a percentage above 0 and at most 100/);
    const resume = dcctl(["dr", "resume", "no-such-run", "--yes"], {});
    expect(resume.code).toBe(2);
    expectOneLine(resume, /^dcctl: no DR run no-such-run in .* \(see dcctl dr history\)$/);
  });
});
