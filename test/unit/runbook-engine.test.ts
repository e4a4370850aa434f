import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ExecOptions, ExecResult, ExecStream, Executor } from "../../hosts/index.js";
import { loadSites, type SiteHost } from "../../inventory/index.js";
import {
  acquireLock,
  lockPath,
  locksDir,
  parseRunbook,
  listRuns,
  readJournal,
  reportMarkdown,
  resumeRun,
  silentProgress,
  startRun,
  type DrServices,
  type JournalRecord,
  type RunReport,
} from "../../runbooks/engine/index.js";
import { Journal } from "../../runbooks/engine/journal.js";
import { lockHolder } from "../../runbooks/engine/lock.js";
import { verifyReport } from "../../runbooks/engine/verify-report.js";
import { DcctlError } from "../../util/errors.js";
import { DivergedWritesError } from "../../databases/replication.js";

/** The engine with its outside world faked: scheduling, journal, retries, timeouts, resume rule, lock, clean-up, report. */

const sites = loadSites();
let state: string;
let env: NodeJS.ProcessEnv;

beforeEach(() => {
  state = mkdtempSync(join(tmpdir(), "dcctl-dr-engine-"));
  env = { DCCTL_STATE_DIR: state };
});
afterEach(() => rmSync(state, { recursive: true, force: true }));

/** An executor that answers from a script and records what ran, with how many commands ran at once. */
class FakeExecutor implements Executor {
  readonly target = "fake";
  calls: string[][] = [];
  active = 0;
  maxActive = 0;
  constructor(private readonly answer: (argv: string[], n: number) => Promise<ExecResult> | ExecResult = () => ({ code: 0, stdout: "", stderr: "" })) {}
  async run(argv: string[], _opts?: ExecOptions): Promise<ExecResult> {
    this.calls.push(argv);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      return await this.answer(argv, this.calls.filter((c) => c.join(" ") === argv.join(" ")).length);
    } finally {
      this.active--;
    }
  }
  stream(): ExecStream {
    throw new Error("not used");
  }
  async close(): Promise<void> {}
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FAILED_AT = new Date("2026-11-22T06:00:00Z");

interface Fakes {
  services: DrServices;
  local: FakeExecutor;
  restored: string[];
  dropped: string[];
  sqlAnswers: Map<string, string>;
}

function fakes(opts: { local?: FakeExecutor; snapshotAgeMin?: number } = {}): Fakes {
  const local = opts.local ?? new FakeExecutor();
  const restored: string[] = [];
  const dropped: string[] = [];
  const sqlAnswers = new Map<string, string>();
  const services: DrServices = {
    executorFor: () => local,
    local,
    now: () => new Date(),
    restorer: {
      async restore(req) {
        restored.push(`${req.targetHost.name}:${req.targetDatabase}`);
        return { snapshotId: "abcd1234", snapshotTime: new Date(FAILED_AT.getTime() - (opts.snapshotAgeMin ?? 10) * 60_000).toISOString() };
      },
      async drop(req) {
        dropped.push(`${req.targetHost.name}:${req.database}`);
      },
    },
    sql: {
      async query(host: SiteHost, _engine, database, sql) {
        return sqlAnswers.get(`${host.name} ${database} ${sql.trim()}`) ?? "";
      },
    },
  };
  return { services, local, restored, dropped, sqlAnswers };
}

function runbook(text: string) {
  return { runbook: parseRunbook("test.yaml", text, sites), runbookText: text };
}

function start(text: string, f: Fakes) {
  return startRun({ ...runbook(text), sites, services: f.services, progress: silentProgress(), operator: "tester", confirmedBy: "test", failedAt: FAILED_AT, env });
}

function journalOf(runDir: string): JournalRecord[] {
  return readJournal(join(runDir, "journal.jsonl")).records;
}

const starts = (j: JournalRecord[], step: string) => j.filter((r) => r.type === "step-start" && r.step === step).length;

const PARALLEL = `
name: parallel
kind: drill
to: secondary
parallel: 2
groups:
  - name: one
    steps:
      - { id: a, type: command, with: { argv: [work, a] } }
      - { id: b, type: command, with: { argv: [work, b] } }
      - { id: c, type: command, with: { argv: [work, c] } }
      - { id: d, type: command, dependsOn: [a, b, c], with: { argv: [work, d] } }
  - name: two
    steps:
      - { id: e, type: command, with: { argv: [work, e] } }
`;

describe("scheduling", () => {
  it("runs independent steps of a group in parallel up to the limit, dependencies first, groups in order", async () => {
    const local = new FakeExecutor(async () => {
      await sleep(100);
      return { code: 0, stdout: "done\n", stderr: "" };
    });
    const out = await start(PARALLEL, fakes({ local }));
    expect(out.status).toBe("ok");
    expect(local.maxActive).toBe(2);
    const j = journalOf(out.runDir);
    const seq = (type: string, step: string) => j.find((r) => r.type === type && "step" in r && r.step === step)?.seq ?? -1;
    for (const dep of ["a", "b", "c"]) expect(seq("step-end", dep)).toBeLessThan(seq("step-start", "d"));
    expect(seq("step-end", "d")).toBeLessThan(seq("step-start", "e"));
    // Every step framed by a start and an end record, and the run by run-start and run-end.
    expect(j[0]?.type).toBe("run-start");
    expect(j[j.length - 1]).toMatchObject({ type: "run-end", status: "ok" });
    for (const s of ["a", "b", "c", "d", "e"]) expect(j.filter((r) => "step" in r && r.step === s).map((r) => r.type)).toEqual(["step-start", "step-end"]);
  });

  it("retries a failed step as often as it says, recording each attempt", async () => {
    const local = new FakeExecutor((_argv, n) => (n < 3 ? { code: 1, stdout: "", stderr: `attempt ${n} broke\n` } : { code: 0, stdout: "", stderr: "" }));
    const text = `name: r\nkind: drill\nto: secondary\ngroups:\n  - name: g\n    steps:\n      - { id: flaky, type: command, retries: 2, with: { argv: [flaky] } }\n`;
    const out = await start(text, fakes({ local }));
    expect(out.status).toBe("ok");
    const ends = journalOf(out.runDir).filter((r) => r.type === "step-end");
    expect(ends.map((r) => (r.type === "step-end" ? `${r.attempt}:${r.status}` : ""))).toEqual(["1:failed", "2:failed", "3:ok"]);
    const report = JSON.parse(readFileSync(join(out.runDir, "report.json"), "utf8")) as RunReport;
    expect(report.deviations).toContain("step flaky needed 3 attempts");
  });

  it("fails a step that passes its timeout", async () => {
    const local = new FakeExecutor(async () => {
      await sleep(2_000);
      return { code: 0, stdout: "", stderr: "" };
    });
    const text = `name: t\nkind: drill\nto: secondary\ngroups:\n  - name: g\n    steps:\n      - { id: slow, type: command, timeout: 300ms, with: { argv: [slow] } }\n`;
    const out = await start(text, fakes({ local }));
    expect(out.status).toBe("failed");
    expect(out.message).toMatch(/step slow \(command, test.yaml:\d+\) failed: slow did not finish within 300 ms \(its timeout\)/);
  });
});

const DRILL = `
name: drill-test
kind: drill
to: secondary
groups:
  - name: restore
    steps:
      - id: restore-portal
        type: restore-db
        service: portal
        targets: { hosts: [qn-dr-db-01] }
        with: { databases: [portal] }
  - name: verify
    steps:
      - id: verify-portal
        type: verify
        service: portal
        targets: { hosts: [qn-dr-db-01] }
        dependsOn: [restore-portal]
        with:
          sql: [{ database: portal, query: "SELECT count(*) > 0 FROM dossiers", expect: t }]
  - name: after
    steps:
      - { id: announce, type: command, with: { argv: [echo, done] } }
`;

describe("drills", () => {
  it("a failing verify stops the run with a clear message, the journal shows where, and the drill still cleans up", async () => {
    const f = fakes();
    const out = await start(DRILL, f);
    expect(out.status).toBe("failed");
    expect(out.message).toMatch(
      /^step verify-portal \(verify, test.yaml:\d+\) failed: 1 of 1 checks failed: qn-dr-db-01 drill_\w+_portal: SELECT count\(\*\) > 0 FROM dossiers: expected t, got $/,
    );
    const j = journalOf(out.runDir);
    expect(j.find((r) => r.type === "step-end" && r.step === "verify-portal")).toMatchObject({ status: "failed" });
    expect(starts(j, "announce")).toBe(0);
    // The scratch database was restored and then dropped, and the journal says so.
    expect(f.restored).toHaveLength(1);
    expect(f.dropped).toEqual(f.restored);
    expect(f.restored[0]).toMatch(/^qn-dr-db-01:drill_[a-z0-9]+_portal$/);
    expect(j.filter((r) => r.type === "cleanup-end").map((r) => (r.type === "cleanup-end" ? `${r.step}:${r.status}` : ""))).toEqual(["restore-portal:ok"]);
    expect(j[j.length - 1]).toMatchObject({ type: "run-end", status: "failed" });
    const report = JSON.parse(readFileSync(join(out.runDir, "report.json"), "utf8")) as RunReport;
    expect(report.status).toBe("failed");
    expect(report.checks).toEqual([expect.objectContaining({ step: "verify-portal", ok: false, expected: "t", got: "" })]);
    expect(report.deviations.some((d) => d.startsWith("step verify-portal failed"))).toBe(true);
    expect(readFileSync(join(out.runDir, "report.md"), "utf8")).toMatch(/^# DR drill .*: FAILED/);
  });

  it("measures RPO and RTO per service against the tier and writes a report someone else can read", async () => {
    const ok = fakes({ snapshotAgeMin: 10 });
    ok.services.sql = { query: async () => "t\n" };
    const out = await start(DRILL, ok);
    expect(out.status).toBe("ok");
    const report = JSON.parse(readFileSync(join(out.runDir, "report.json"), "utf8")) as RunReport;
    const portal = report.measurements.services.find((m) => m.service === "portal");
    expect(portal).toMatchObject({ tier: 1, rpoMinutes: 10, rpoTargetMinutes: 15, rpoMet: true, rtoTargetMinutes: 60, rtoMet: true });
    expect(report.measurements.overall.rpoMinutes).toBe(10);
    expect(report.deviations).toEqual([]);
    expect(report.confirmedBy).toBe("test");
    const md = readFileSync(join(out.runDir, "report.md"), "utf8");
    expect(md).toMatch(/\| portal \| 1 \| 10 min \| 15 min \| met \|/);
    expect(md).toContain("## Data checks");
    expect(md).toContain("None: every step ended well");

    const stale = fakes({ snapshotAgeMin: 30 });
    stale.services.sql = { query: async () => "t\n" };
    const late = JSON.parse(readFileSync(join((await start(DRILL, stale)).runDir, "report.json"), "utf8")) as RunReport;
    expect(late.deviations).toContain("portal: RPO 30 min exceeds the tier 1 target of 15 min");
  });

  it("a drill that missed its RPO target is headed so in report.md, report.html and report.json, says which, and stays verifiable", async () => {
    const stale = fakes({ snapshotAgeMin: 28 });
    stale.services.sql = { query: async () => "t\n" };
    const out = await start(DRILL, stale);
    expect(out.status).toBe("missed");
    expect(out.message).toBe("missed a target: portal RPO 28 min against 15 min (tier 1)");
    expect(out.targetsMissed).toEqual([
      { service: "portal", measure: "RPO", minutes: 28, targetMinutes: 15, tier: 1 },
      { service: "overall", measure: "RPO", minutes: 28, targetMinutes: 15, tier: 1 },
    ]);
    // The journal's end says it, with what was missed; every step ended well.
    const j = journalOf(out.runDir);
    expect(j.filter((r) => r.type === "step-end").every((r) => r.type === "step-end" && r.status === "ok")).toBe(true);
    expect(j.find((r) => r.type === "run-end")).toEqual(expect.objectContaining({ status: "ok", targetsMissed: out.targetsMissed }));
    const report = JSON.parse(readFileSync(join(out.runDir, "report.json"), "utf8")) as RunReport;
    expect(report.status).toBe("missed");
    expect(report.evidence.continuity.targetsMissed).toEqual([
      { service: "portal", measure: "RPO" },
      { service: "overall", measure: "RPO" },
    ]);
    const md = readFileSync(join(out.runDir, "report.md"), "utf8");
    expect(md.split("\n")[0]).toBe(`# DR drill ${out.runId}: TARGETS MISSED`);
    expect(md).toContain("Outcome: every step ended well, but targets were missed: portal: RPO 28 min exceeds the tier 1 target of 15 min.");
    expect(md).toMatch(/\| portal \| 1 \| 28 min \| 15 min \| \*\*missed\*\* \|/);
    expect(readFileSync(join(out.runDir, "report.html"), "utf8")).toContain(`<h1>DR drill ${out.runId}: <span class="badge bad">TARGETS MISSED</span></h1>`);
    expect(reportMarkdown(report, "vi").split("\n")[0]).toMatch(/: KHÔNG ĐẠT MỤC TIÊU RPO\/RTO$/);
    expect(listRuns(env)[0]).toMatchObject({ runId: out.runId, status: "missed" });
    // Rebuilt from the journal, the report is the same, headline included.
    const verified = verifyReport(out.runDir, { currentSites: () => sites });
    expect(verified.checks.filter((c) => c.status === "failed")).toEqual([]);
    expect(verified.ok).toBe(true);
  });

  it("a drill that met its targets is not headed as missed (the run-end carries no targetsMissed)", async () => {
    const ok = fakes({ snapshotAgeMin: 14 });
    ok.services.sql = { query: async () => "t\n" };
    const out = await start(DRILL, ok);
    expect(out.status).toBe("ok");
    expect(out.targetsMissed).toBeUndefined();
    expect(journalOf(out.runDir).find((r) => r.type === "run-end")).toEqual(expect.not.objectContaining({ targetsMissed: expect.anything() }));
    expect(readFileSync(join(out.runDir, "report.md"), "utf8").split("\n")[0]).toBe(`# DR drill ${out.runId}: OK`);
  });
});

const FAILOVER = `
name: failover-test
kind: failover
to: secondary
groups:
  - name: fence
    steps:
      - { id: fence-primary, type: fence, targets: { hosts: [qn-db-01] }, with: { probeTimeout: 1 } }
  - name: data
    steps:
      - id: restore-portal
        type: restore-db
        service: portal
        targets: { hosts: [qn-dr-db-01] }
        dependsOn: [fence-primary]
        with: { databases: [portal] }
`;

describe("the moment RPO is counted from", () => {
  /** The primary qn-db-01 does not answer; the clock runs from FAILED_AT, the snapshot is 10 min older than that. */
  function lostPrimary(): Fakes {
    const f = fakes({ snapshotAgeMin: 10 });
    const lost = new FakeExecutor(() => Promise.reject(new Error("no answer within 1000 ms")));
    f.services.executorFor = (h: SiteHost) => (h.name === "qn-db-01" ? lost : f.local);
    const t0 = Date.now();
    f.services.now = () => new Date(FAILED_AT.getTime() + (Date.now() - t0));
    return f;
  }
  const failover = (f: Fakes, failedAt?: Date) =>
    startRun({ ...runbook(FAILOVER), sites, services: f.services, progress: silentProgress(), operator: "tester", confirmedBy: "test", ...(failedAt ? { failedAt } : {}), env });
  const snapshotTime = FAILED_AT.getTime() - 10 * 60_000;

  it("without --failed-at: from the first probe of the primary that went unanswered, and the report says so", async () => {
    const out = await failover(lostPrimary());
    expect(out.status, out.message).toBe("ok");
    const j = journalOf(out.runDir);
    expect(j[0]).toMatchObject({ type: "run-start", failedAtFrom: "run-start" });
    const fence = j.find((r) => r.type === "step-end" && r.step === "fence-primary");
    const probed = fence?.type === "step-end" ? (fence.data.unanswered as { host: string; at: string }[]) : [];
    expect(probed.map((p) => p.host)).toEqual(["qn-db-01"]);
    const probeAt = probed[0]?.at ?? "";
    const report = JSON.parse(readFileSync(join(out.runDir, "report.json"), "utf8")) as RunReport;
    expect(Date.parse(probeAt)).toBeGreaterThanOrEqual(Date.parse(report.startedAt));
    expect(report.failedAt).toBe(probeAt);
    expect(report.failure).toEqual({ from: "unanswered-probe", host: "qn-db-01" });
    const rpo = Math.round(((Date.parse(probeAt) - snapshotTime) / 60_000) * 100) / 100;
    expect(report.measurements.services.find((m) => m.service === "portal")?.rpoMinutes).toBe(rpo);
    expect(readFileSync(join(out.runDir, "report.md"), "utf8")).toContain(`RPO is counted from ${probeAt}, when qn-db-01 first did not answer a probe of this run`);
  });

  it("with --failed-at: from the operator's moment, whatever the probes found", async () => {
    const f = lostPrimary();
    const at = new Date(FAILED_AT.getTime() - 4 * 60_000);
    const out = await failover(f, at);
    const report = JSON.parse(readFileSync(join(out.runDir, "report.json"), "utf8")) as RunReport;
    expect(report.failedAt).toBe(at.toISOString());
    expect(report.failure).toEqual({ from: "operator" });
    expect(report.measurements.services.find((m) => m.service === "portal")?.rpoMinutes).toBe(6);
    expect(readFileSync(join(out.runDir, "report.md"), "utf8")).toContain("the time of the failure as the operator gave it (`--failed-at`)");
  });

  it("with no --failed-at and a primary that answered: from the run's start", async () => {
    const f = fakes({ snapshotAgeMin: 10 });
    f.services.now = () => FAILED_AT;
    f.services.sql = { query: async () => "" };
    const out = await failover(f);
    const report = JSON.parse(readFileSync(join(out.runDir, "report.json"), "utf8")) as RunReport;
    expect(report.failure).toEqual({ from: "run-start" });
    expect(report.failedAt).toBe(report.startedAt);
    expect(report.measurements.services.find((m) => m.service === "portal")?.rpoMinutes).toBe(10);
  });
});

const RESUMABLE = `
name: resumable
kind: drill
to: secondary
groups:
  - name: g
    steps:
      - { id: first, type: command, with: { argv: [first] } }
      - { id: middle, type: command, dependsOn: [first], with: { argv: [middle] } }
      - { id: middle-safe, type: command, idempotent: true, dependsOn: [first], with: { argv: [middle-safe] } }
      - { id: last, type: command, dependsOn: [middle, middle-safe], with: { argv: [last] } }
`;

/** A run folder as a crash leaves it: `first` ended, `middle` and `middle-safe` started, nothing more. */
function crashedRun(runId: string): void {
  const dir = join(state, "dr", "runs", runId);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "runbook.yaml"), RESUMABLE);
  const j = new Journal(join(dir, "journal.jsonl"));
  j.append({ type: "run-start", runId, runbook: "resumable", kind: "drill", to: "secondary", scope: "site-secondary", file: "test.yaml", failedAt: FAILED_AT.toISOString(), operator: "night-shift", confirmedBy: "x", host: "h", pid: 1 });
  j.append({ type: "step-start", step: "first", attempt: 1, hosts: [] });
  j.append({ type: "step-end", step: "first", attempt: 1, status: "ok", durationMs: 5, notes: [], data: {} });
  j.append({ type: "step-start", step: "middle", attempt: 1, hosts: [] });
  j.append({ type: "step-start", step: "middle-safe", attempt: 1, hosts: [] });
  j.close();
}

describe("resume", () => {
  const resume = (f: Fakes, extra: { rerun?: string[]; skip?: string[] } = {}) =>
    resumeRun({ runId: "R1", sites, services: f.services, progress: silentProgress(), operator: "day-shift", confirmedBy: "test", env, ...extra });

  it("stops and asks (exit 5) when a non-idempotent step was cut off, writing nothing", async () => {
    crashedRun("R1");
    const before = readFileSync(join(state, "dr", "runs", "R1", "journal.jsonl"), "utf8");
    const f = fakes();
    const err = await resume(f).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DcctlError);
    expect((err as DcctlError).exitCode).toBe(5);
    expect((err as DcctlError).message).toBe(
      "run R1: middle [command] was cut off (started, never ended) and is not idempotent: check its hosts, then resume with --rerun <step> to run it again or --skip <step> if it is done",
    );
    expect(f.local.calls).toEqual([]);
    expect(readFileSync(join(state, "dr", "runs", "R1", "journal.jsonl"), "utf8")).toBe(before);
  });

  it("with --skip, counts the step as done, reruns the idempotent one and never repeats a completed step", async () => {
    crashedRun("R1");
    const f = fakes();
    const out = await resume(f, { skip: ["middle"] });
    expect(out.status).toBe("ok");
    expect(f.local.calls).toEqual([["middle-safe"], ["last"]]);
    const j = journalOf(out.runDir);
    expect(starts(j, "first")).toBe(1);
    expect(starts(j, "middle")).toBe(1);
    expect(starts(j, "middle-safe")).toBe(2);
    expect(j.filter((r) => r.type === "decision").map((r) => (r.type === "decision" ? `${r.step}:${r.decision}:${r.by}` : ""))).toEqual([
      "middle:skip:day-shift",
      "middle-safe:rerun:dcctl (resume rule)",
    ]);
    await expect(resume(f)).rejects.toThrow("run R1 already completed; nothing to resume");
  });

  it("first settles what restores killed with the run left, with a journal note each, before any step runs again", async () => {
    crashedRun("R1");
    const f = fakes();
    const asked: string[][] = [];
    const restorer = f.services.restorer as NonNullable<DrServices["restorer"]>;
    f.services.restorer = {
      ...restorer,
      settleLeft: async (hosts) => (asked.push(hosts.map((h) => h.name)), ["dropped postgresql database dcctl_restore_0a1b2c3d4e5f on qn-dr-db-01, left by a restore of portal (pid 4242, started 2026-11-22T06:01:00.000Z) that did not finish"]),
    };
    const out = await resume(f, { skip: ["middle"] });
    expect(out.status).toBe("ok");
    // Asked about every inventory host: the ledger says which held one.
    expect(asked).toHaveLength(1);
    expect(asked[0]).toContain("qn-dr-db-01");
    const j = journalOf(out.runDir);
    const note = j.findIndex((r) => r.type === "note" && r.message.startsWith("dropped postgresql database dcctl_restore_0a1b2c3d4e5f on qn-dr-db-01"));
    expect(note).toBeGreaterThan(j.findIndex((r) => r.type === "run-resume"));
    expect(note).toBeLessThan(j.findIndex((r, i) => i > note && r.type === "step-start"));
  });

  it("with --rerun, runs the cut-off step again on the operator's word", async () => {
    crashedRun("R1");
    const f = fakes();
    const out = await resume(f, { rerun: ["middle"] });
    expect(out.status).toBe("ok");
    expect(f.local.calls.map((c) => c[0]).sort()).toEqual(["last", "middle", "middle-safe"]);
  });
});

describe("lock", () => {
  it("refuses a second run in the same scope (exit 3) and takes over the lock of a crashed one", async () => {
    const held = await acquireLock(locksDir(env), "site-secondary", "other-run");
    try {
      const err = await start(PARALLEL, fakes()).catch((e: unknown) => e);
      expect((err as DcctlError).exitCode).toBe(3);
      expect((err as DcctlError).message).toMatch(/^DR scope site-secondary is locked by run other-run \(pid \d+ on /);
      expect(readdirSync(join(state, "dr"))).toEqual(["locks"]);
      expect(lockHolder(locksDir(env), "site-secondary")).toBe("other-run");
    } finally {
      held.release();
    }
    // A lock whose process is gone (a crash) is stale.
    const gone = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout;
    const lockDir = lockPath(locksDir(env), "site-secondary");
    mkdirSync(lockDir, { recursive: true });
    writeFileSync(join(lockDir, "exclusive.lock"), JSON.stringify({ pid: Number(gone), host: (await import("node:os")).hostname(), meta: { runId: "crashed", since: "x" } }));
    const out = await start(PARALLEL, fakes());
    expect(out.status).toBe("ok");
    expect(journalOf(out.runDir).find((r) => r.type === "note")).toMatchObject({ message: `took over the lock of run crashed (pid ${gone} is gone)` });
    expect(readdirSync(locksDir(env))).toEqual([]);
    expect(lockHolder(locksDir(env), "site-secondary")).toBeUndefined();
  });

  it("refuses a new run while a run of the scope that crashed is unfinished (exit 3, names dcctl dr resume), and runs once it is finished", async () => {
    crashedRun("R1");
    const runs = () => readdirSync(join(state, "dr", "runs")).sort();
    for (const attempt of [1, 2]) {
      // The second attempt finds no stale lock any more (the first removed it): the cut-off run still stops it.
      const err = await start(PARALLEL, fakes()).catch((e: unknown) => e);
      expect((err as DcctlError).exitCode, `attempt ${attempt}`).toBe(3);
      expect((err as DcctlError).message).toBe("run R1 (drill, 1 of 3 steps done) in scope site-secondary was cut off and has not been finished; finish it first: dcctl dr resume R1");
      expect(runs()).toEqual(["R1"]);
    }
    await resumeRun({ runId: "R1", sites, services: fakes().services, progress: silentProgress(), operator: "day-shift", confirmedBy: "test", env, rerun: ["middle"] });
    expect((await start(PARALLEL, fakes())).status).toBe("ok");
  });
});

describe("reprotect", () => {
  const FAILBACK = `
name: back
kind: failback
to: primary
groups:
  - name: reprotect
    steps:
      - { id: reprotect-portal, type: reprotect, service: portal, targets: { hosts: [qn-db-01] } }
`;
  /** qn-db-01 holds 8 writes past the fork: refused unless the run was told to discard them. */
  function withDiverged(f: Fakes): Fakes {
    f.services.replicas = {
      status: async () => {
        throw new Error("not used");
      },
      promote: async () => [],
      setup: async (_pair, o) => {
        const d = { host: "qn-db-01", engine: "postgresql" as const, forkedAt: "LSN 0/5000148 on timeline 1", endsAt: "LSN 0/5004000", writes: 8, firstAt: "2026-11-22T07:00:01.000Z", lastAt: "2026-11-22T07:00:09.000Z", kept: o.keepDir, files: [], bytes: 0, notes: [] };
        if (!o.discard) throw new DivergedWritesError(d);
        return { action: "rewound", notes: [], diverged: d };
      },
    };
    return f;
  }

  it("a run that would discard diverged writes fails with exit 5, naming them; told to, the report counts them as data loss", async () => {
    const refused = await start(FAILBACK, withDiverged(fakes()));
    expect(refused).toMatchObject({ status: "failed", exitCode: 5 });
    expect(refused.message).toMatch(/^step reprotect-portal \(reprotect, test\.yaml:\d+\) failed: qn-db-01 holds 8 writes .*a copy is kept in .*\/diverged\/qn-db-01: .*--discard-diverged$/);

    const told = await startRun({ ...runbook(FAILBACK), sites, services: withDiverged(fakes()).services, progress: silentProgress(), operator: "tester", confirmedBy: "test", env, discardDiverged: true });
    expect(told.status).toBe("ok");
    expect(told.exitCode).toBeUndefined();
    const report = JSON.parse(readFileSync(join(told.runDir, "report.json"), "utf8")) as RunReport;
    const kept = join(told.runDir, "diverged", "qn-db-01");
    expect(report.measurements.services.find((m) => m.service === "portal")).toMatchObject({ discardedWrites: 8, discardedFrom: "2026-11-22T07:00:01.000Z", discardedTo: "2026-11-22T07:00:09.000Z", discardedKept: [kept] });
    const md = readFileSync(join(told.runDir, "report.md"), "utf8");
    expect(md).toContain(`## Writes discarded by the reprotect`);
    expect(md).toContain(`| portal | **8** | 2026-11-22T07:00:01.000Z | 2026-11-22T07:00:09.000Z | \`${kept}\` |`);
    expect(md).toContain("portal: 8 writes held by a former primary past the fork were discarded (written 2026-11-22T07:00:01.000Z – 2026-11-22T07:00:09.000Z; see the kept copy)");
    expect(md).toContain("--discard-diverged given");
  });
});
