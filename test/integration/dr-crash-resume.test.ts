import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readJournal, type JournalRecord } from "../../runbooks/engine/index.js";
import { dcctl as run, startDcctl } from "../helpers/cli.js";
import { until } from "../helpers/until.js";

/**
 * A crash in the middle of a DR run: the CLI running a drill is killed (SIGKILL, no chance to clean up) while a step
 * sleeps; `dcctl dr resume` must then finish the run from the journal without running any completed step again.
 */

const tmp = mkdtempSync(join(tmpdir(), "dcctl-dr-crash-"));
const env = {
  ...process.env,
  DCCTL_SITES_DIR: "",
  DCCTL_DEBUG: "",
  DCCTL_STATE_DIR: join(tmp, "state"),
  DCCTL_REPOS_FILE: join(tmp, "no-repositories.yaml"),
  DR_COUNTER: join(tmp, "counter"),
  DR_MARK: join(tmp, "mark"),
  DR_PIDFILE: join(tmp, "sleep.pid"),
};
const started: number[] = [];

afterAll(() => {
  // Whatever happened, nothing this test started may outlive it.
  for (const pid of started) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

const dcctl = (args: string[]) => run(args, env);

const runsDir = join(tmp, "state", "dr", "runs");
const journal = (runId: string): JournalRecord[] => readJournal(join(runsDir, runId, "journal.jsonl")).records;
const startsOf = (j: JournalRecord[], step: string) => j.filter((r) => r.type === "step-start" && r.step === step).length;

describe("dcctl dr: crash and resume", () => {
  it("a run killed mid-step resumes from its journal; completed steps never run again", async () => {
    const { child, done } = startDcctl(["dr", "drill", "--runbook", "test/fixtures/runbooks/crash-drill.yaml"], env);
    if (child.pid) started.push(child.pid);

    const runId = await until("the run folder", () => (existsSync(runsDir) ? readdirSync(runsDir)[0] : undefined));
    const sleeper = await until("the slow step to start", () => (existsSync(env.DR_PIDFILE) ? Number(readFileSync(env.DR_PIDFILE, "utf8").trim()) || undefined : undefined));
    started.push(sleeper);
    await until("the slow step's start record", () => (journal(runId).some((r) => r.type === "step-start" && r.step === "slow") ? true : undefined));

    child.kill("SIGKILL");
    process.kill(sleeper, "SIGKILL");
    const out = (await done).stdout;
    // Plain progress lines, since stdout is a pipe and not a terminal.
    expect(out).toMatch(/^\d\d:\d\d:\d\d run .*: drill with runbook crash-drill; journal /m);
    expect(out).toMatch(/^\d\d:\d\d:\d\d start slow \[command\]$/m);

    const crashed = journal(runId);
    expect(crashed.some((r) => r.type === "run-end")).toBe(false);
    expect(crashed[crashed.length - 1]).toMatchObject({ type: "step-start", step: "slow" });
    const history = JSON.parse(dcctl(["dr", "history", "--json"]).stdout) as { runId: string; status: string }[];
    expect(history).toEqual([expect.objectContaining({ runId, status: "interrupted" })]);

    // `slow` is a command not declared idempotent: the engine will not guess, it asks (exit 5) and writes nothing.
    const asked = dcctl(["dr", "resume", runId]);
    expect(asked.code).toBe(5);
    expect(asked.stderr).toBe(
      `dcctl: run ${runId}: slow [command] was cut off (started, never ended) and is not idempotent: check its hosts, then resume with --rerun <step> to run it again or --skip <step> if it is done\n`,
    );
    expect(journal(runId)).toEqual(crashed);

    // The operator checked and says: run it again.
    const resumed = dcctl(["dr", "resume", runId, "--rerun", "slow"]);
    expect(resumed.stderr).toBe("");
    expect(resumed.code).toBe(0);
    const j = journal(runId);
    expect(startsOf(j, "a")).toBe(1);
    expect(startsOf(j, "b")).toBe(1);
    expect(startsOf(j, "slow")).toBe(2);
    expect(startsOf(j, "c")).toBe(1);
    expect(j.find((r) => r.type === "decision")).toMatchObject({ step: "slow", decision: "rerun" });
    expect(j.filter((r) => r.type === "note")).toEqual([expect.objectContaining({ message: `took over the lock of run ${runId} (pid ${child.pid ?? 0} is gone)` })]);
    expect(j[j.length - 1]).toMatchObject({ type: "run-end", status: "ok" });
    // Each script ran once, except the cut-off one, which the operator chose to run again.
    expect(readFileSync(env.DR_COUNTER, "utf8").split("\n").filter(Boolean)).toEqual(["a", "b", "slow", "slow", "c"]);

    const report = readFileSync(join(runsDir, runId, "report.md"), "utf8");
    expect(report).toMatch(/^# DR drill .*: OK/);
    expect(report).toContain("the run was resumed 1 time");
    const after = JSON.parse(dcctl(["dr", "history", "--json"]).stdout) as { runId: string; status: string }[];
    expect(after).toEqual([expect.objectContaining({ runId, status: "ok" })]);
    expect(readdirSync(join(tmp, "state", "dr", "locks"))).toEqual([]);
  });
});
