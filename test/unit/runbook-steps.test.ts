import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecOptions, ExecResult, ExecStream, Executor } from "../../hosts/index.js";
import { loadSites, type SiteHost } from "../../inventory/index.js";
import { parseRunbook, planRunbook, stepModules, type DrServices, type PlannedStep } from "../../runbooks/engine/index.js";
import type { StepContext, StepResult } from "../../runbooks/engine/steps/types.js";
import { DivergedWritesError, type DivergedWrites, type ReplicaStatus } from "../../databases/replication.js";
import { DcctlError, ExitCode } from "../../util/errors.js";

/** Step modules one by one, with their outside world faked: what each does, and what plan() says it would do. */

const sites = loadSites();

class Recorder implements Executor {
  readonly target = "rec";
  calls: { argv: string[]; stdin?: string }[] = [];
  constructor(private readonly answer: (argv: string[]) => ExecResult | Promise<ExecResult> = () => ({ code: 0, stdout: "", stderr: "" })) {}
  async run(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.calls.push({ argv, ...(typeof opts.stdin === "string" ? { stdin: opts.stdin } : {}) });
    return this.answer(argv);
  }
  stream(): ExecStream {
    throw new Error("not used");
  }
  async close(): Promise<void> {}
}

function plannedStep(kind: "drill" | "failover", step: string): PlannedStep {
  const text = `name: t\nkind: ${kind}\nto: secondary\ngroups:\n  - name: g\n    steps:\n${step.replace(/^/gm, "      ")}\n`;
  const planned = planRunbook(parseRunbook("t.yaml", text, sites), sites);
  const first = planned[0];
  if (!first) throw new Error("no step");
  return first;
}

function context(services: Partial<DrServices>, dir: string, results = new Map<string, StepResult>()): StepContext {
  const local = new Recorder();
  const full: DrServices = { executorFor: () => local, local, now: () => new Date("2026-11-22T06:00:00Z"), ...services };
  return {
    runId: "20261122T060000Z-failover-0001",
    runDir: dir,
    runbook: parseRunbook("t.yaml", "name: t\nkind: drill\nto: secondary\ngroups:\n  - name: g\n    steps:\n      - { id: r, type: report }\n", sites),
    sites,
    services: full,
    failedAt: new Date("2026-11-22T06:00:00Z"),
    planned: false,
    discardDiverged: false,
    results,
    signal: new AbortController().signal,
    log: () => undefined,
    writeReport: async () => [],
  };
}

let dir: string;
let server: Server;
let base: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "dcctl-dr-steps-"));
  server = createServer((req, res) => {
    res.statusCode = req.url === "/health" ? 200 : 503;
    res.end(req.url === "/health" ? "status: ok" : "down");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe("fence", () => {
  it("makes reachable databases read-only, stops other services, and skips unreachable hosts with a note", async () => {
    const p = plannedStep("failover", "- { id: f, type: fence, targets: { hosts: [qn-db-01, qn-app-portal-01] } }");
    expect(stepModules.fence.plan(p)).toEqual([
      "if qn-db-01 (primary, 10.10.20.11) answers within 10s, stop its writes: postgresql read-only (ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf();)",
      "if qn-app-portal-01 (primary, 10.10.40.11) answers within 10s, stop its writes: `systemctl stop portal`; `systemctl stop nginx`",
    ]);
    const db = new Recorder();
    const sqls: string[] = [];
    const unreachable = new Recorder(() => Promise.reject(new Error("connect ETIMEDOUT")));
    const ctx = context(
      {
        executorFor: (h: SiteHost) => (h.name === "qn-db-01" ? db : unreachable),
        sql: { query: async (_h, engine, _db, sql) => (sqls.push(`${engine}: ${sql}`), "") },
      },
      dir,
    );
    const res = await stepModules.fence.run(p, ctx);
    expect(res.notes).toEqual([
      "qn-db-01: writes stopped: postgresql read-only",
      "qn-app-portal-01: unreachable (connect ETIMEDOUT): fencing skipped, the host is not taking writes from us",
    ]);
    // When the host that did not answer was asked: what RPO is counted from when the operator gives no time.
    expect(res.data).toEqual({ unanswered: [{ host: "qn-app-portal-01", at: ctx.services.now().toISOString() }] });
    expect(sqls).toEqual(["postgresql: ALTER SYSTEM SET default_transaction_read_only = on;\nSELECT pg_reload_conf();\n"]);
  });
});

describe("promote", () => {
  const at = "2026-11-22T05:59:00.000Z";
  const status = (over: Partial<ReplicaStatus>): ReplicaStatus => ({ health: "streaming", primaryAnswered: true, notes: [], measuredAt: at, ...over });
  /** A fake replication control: each standby's status as given, promotions and restores recorded. */
  function world(statuses: Record<string, ReplicaStatus>, snapshotTime = "2026-11-22T05:00:00Z") {
    const promoted: string[] = [];
    const restores: string[] = [];
    const services: Partial<DrServices> = {
      replicas: {
        status: async (pair) => statuses[pair.name] ?? status({ health: "unreachable", notes: ["no answer"] }),
        promote: async (pair) => (promoted.push(pair.name), [`${pair.name} promoted`]),
        setup: async () => {
          throw new Error("not used");
        },
      },
      snapshots: { newest: async () => ({ id: "snap1", time: snapshotTime }) },
      restorer: {
        restore: async (req) => (restores.push(`${req.targetHost.name}:${req.database}:${req.sourceHost}`), { snapshotId: "snap1", snapshotTime }),
        drop: async () => undefined,
      },
    };
    return { promoted, restores, services };
  }
  const step = (host: string, fallback = true) =>
    plannedStep("failover", `- { id: p, type: promote, targets: { hosts: [${host}] }${fallback ? ", with: { fallback: { repository: secondary, databases: [portal] } }" : ""} }`);

  it("promotes a streaming replica; its data is complete up to the failure when it had no lag", async () => {
    const w = world({ "qn-dr-db-01": status({ lagSeconds: 0, lagBytes: 0 }) });
    const dir1 = mkdtempSync(join(dir, "p1-"));
    const res = await stepModules.promote.run(step("qn-dr-db-01"), context(w.services, dir1));
    expect(w.promoted).toEqual(["qn-dr-db-01"]);
    expect(w.restores).toEqual([]);
    expect(res.data.recovered).toEqual([{ host: "qn-dr-db-01", primary: "qn-db-01", engine: "postgresql", path: "promoted", reason: "replica streaming, lag 0.0 s when promoted", dataAsOf: at, lagSeconds: 0 }]);
  });

  it("restores instead when the replica is broken and older than the newest snapshot, and says why", async () => {
    const w = world({ "qn-dr-db-01": status({ health: "broken", primaryAnswered: false, lastReceivedAt: "2026-11-21T20:00:00.000Z", notes: ["qn-db-01 did not answer"] }) });
    const res = await stepModules.promote.run(step("qn-dr-db-01"), context(w.services, mkdtempSync(join(dir, "p2-"))));
    // Made writable first, then its database replaced by the snapshot's.
    expect(w.promoted).toEqual(["qn-dr-db-01"]);
    expect(w.restores).toEqual(["qn-dr-db-01:portal:qn-db-01"]);
    const [r] = res.data.recovered as { path: string; reason: string; dataAsOf: string }[];
    expect(r?.path).toBe("restored");
    expect(r?.reason).toMatch(/replica broken \(qn-db-01 did not answer\) with data as of 2026-11-21T20:00:00.000Z, older than snapshot snap1/);
    expect(r?.dataAsOf).toBe("2026-11-22T05:00:00Z");
  });

  it("a resumed run repeats a restore the crash may have cut short, and never promotes over it", async () => {
    const runDir = mkdtempSync(join(dir, "p8-"));
    const broken = status({ health: "broken", primaryAnswered: false, lastReceivedAt: "2026-11-21T20:00:00.000Z", notes: ["qn-db-01 did not answer"] });
    const first = world({ "qn-dr-db-01": broken });
    first.services.restorer = { restore: async () => Promise.reject(new Error("killed mid-restore")), drop: async () => undefined };
    await expect(stepModules.promote.run(step("qn-dr-db-01"), context(first.services, runDir))).rejects.toThrow(/killed mid-restore/);
    // Made writable before the crash, it no longer looks like a replica; the mark says it is to be restored.
    const again = world({ "qn-dr-db-01": status({ health: "not-a-replica" }) });
    const res = await stepModules.promote.run(step("qn-dr-db-01"), context(again.services, runDir));
    expect(again.restores).toEqual(["qn-dr-db-01:portal:qn-db-01"]);
    expect(res.data.recovered).toMatchObject([{ path: "restored", reason: expect.stringMatching(/older than snapshot snap1 .*\(made writable earlier in this run\)$/) }]);
  });

  it("promotes a broken replica whose data is newer than any snapshot: it is the best copy there is", async () => {
    const w = world({ "qn-dr-db-01": status({ health: "broken", primaryAnswered: false, lastReceivedAt: "2026-11-22T05:58:30.000Z", lagSeconds: 30, notes: ["qn-db-01 did not answer"] }) });
    const res = await stepModules.promote.run(step("qn-dr-db-01"), context(w.services, mkdtempSync(join(dir, "p3-"))));
    expect(w.restores).toEqual([]);
    expect(res.data.recovered).toMatchObject([{ path: "promoted", dataAsOf: "2026-11-22T05:58:30.000Z" }]);
  });

  it("restores a standby that is no replica; without a fallback it only notes it; an unreachable one fails the step", async () => {
    const w = world({ "qn-dr-db-01": status({ health: "not-a-replica", notes: ["not in recovery"] }) });
    const res = await stepModules.promote.run(step("qn-dr-db-01"), context(w.services, mkdtempSync(join(dir, "p4-"))));
    expect(w.promoted).toEqual([]);
    expect(w.restores).toEqual(["qn-dr-db-01:portal:qn-db-01"]);
    expect(res.notes[0]).toMatch(/^qn-dr-db-01: not a replica of qn-db-01 \(not in recovery\): restored portal from snapshot snap1/);
    const plain = await stepModules.promote.run(step("qn-dr-db-01", false), context(w.services, mkdtempSync(join(dir, "p5-"))));
    expect(plain.notes).toEqual(["qn-dr-db-01: not a replica: already a primary, nothing to promote"]);
    await expect(stepModules.promote.run(step("qn-dr-db-02"), context(w.services, mkdtempSync(join(dir, "p6-"))))).rejects.toThrow(/qn-dr-db-02: the standby does not answer: no answer/);
  });

  it("a resumed run does not restore over a replica it promoted before the crash", async () => {
    const runDir = mkdtempSync(join(dir, "p7-"));
    const first = world({ "qn-dr-db-01": status({ lagSeconds: 0, lagBytes: 0 }) });
    await stepModules.promote.run(step("qn-dr-db-01"), context(first.services, runDir));
    // Promoted, the server is no replica any more: a fresh look would restore it from the older snapshot.
    const again = world({ "qn-dr-db-01": status({ health: "not-a-replica" }) });
    const res = await stepModules.promote.run(step("qn-dr-db-01"), context(again.services, runDir));
    expect(again.restores).toEqual([]);
    expect(res.data.recovered).toMatchObject([{ path: "promoted", dataAsOf: at }]);
    expect(res.notes[0]).toMatch(/promoted earlier in this run/);
  });
});

describe("dns", () => {
  it("feeds nsupdate an update script with inventory hosts resolved to their addresses", async () => {
    const p = plannedStep(
      "failover",
      "- id: d\n  type: dns\n  with:\n    command: [nsupdate, -k, /etc/k]\n    server: 10.10.10.10\n    records: [{ name: portal.example, address: qn-dr-app-portal-01, ttl: 60 }]",
    );
    const local = new Recorder();
    await stepModules.dns.run(p, context({ local }, dir));
    expect(local.calls).toEqual([
      { argv: ["nsupdate", "-k", "/etc/k"], stdin: "server 10.10.10.10\nupdate delete portal.example A\nupdate add portal.example 60 A 10.20.40.11\nsend\n" },
    ]);
  });

  it("runs another command once per record, each placeholder one argument", async () => {
    const p = plannedStep("failover", "- id: d\n  type: dns\n  with:\n    command: [dnsctl, set, '{name}', '{address}']\n    records: [{ name: a.example, address: 10.0.0.1 }, { name: b.example, address: 10.0.0.2 }]");
    const local = new Recorder();
    await stepModules.dns.run(p, context({ local }, dir));
    expect(local.calls.map((c) => c.argv)).toEqual([
      ["dnsctl", "set", "a.example", "10.0.0.1"],
      ["dnsctl", "set", "b.example", "10.0.0.2"],
    ]);
  });
});

describe("verify", () => {
  it("checks HTTP status and body, and lists every miss", async () => {
    const ok = plannedStep("failover", `- id: v\n  type: verify\n  with:\n    http: [{ url: "${base}/health", status: 200, body: ok }]`);
    expect((await stepModules.verify.run(ok, context({}, dir))).notes).toEqual([`ok: GET ${base}/health → status 200`]);
    const bad = plannedStep("failover", `- id: v\n  type: verify\n  with:\n    http: [{ url: "${base}/health", body: nope }, { url: "${base}/other" }]`);
    await expect(stepModules.verify.run(bad, context({}, dir))).rejects.toThrow(
      `2 of 2 checks failed: GET ${base}/health: expected status 200 and a body containing "nope", got status 200, body without it (status: ok); GET ${base}/other: expected status 200, got status 503`,
    );
  });

  it("in a drill, queries the scratch copy restore-db made on that host", async () => {
    const p = plannedStep("drill", "- id: v\n  type: verify\n  targets: { hosts: [qn-dr-db-01] }\n  with:\n    sql: [{ database: portal, query: SELECT 1, expect: 1 }]");
    const results = new Map<string, StepResult>([
      ["restore", { notes: [], data: { restored: [{ sourceHost: "qn-db-01", database: "portal", targetDatabase: "drill_x_portal", targetHost: "qn-dr-db-01", snapshotId: "s", snapshotTime: "t" }] } }],
    ]);
    const seen: string[] = [];
    const res = await stepModules.verify.run(p, context({ sql: { query: async (_h, _e, db) => (seen.push(db), "1\n") } }, dir, results));
    expect(seen).toEqual(["drill_x_portal"]);
    expect(res.notes).toEqual(["ok: qn-dr-db-01 drill_x_portal: SELECT 1 → 1"]);
  });
});

describe("precheck and notify", () => {
  it("fails on a snapshot older than the tier's RPO unless allowStale, and checks capacity", async () => {
    const snapshots = { newest: async (_r: string, host: string) => ({ id: `s-${host}`, time: host === "qn-db-01" ? "2026-11-22T05:50:00Z" : "2026-11-22T05:00:00Z" }) };
    const strict = plannedStep("failover", "- { id: p, type: precheck, targets: { hosts: [qn-db-01, qn-db-02] } }");
    await expect(stepModules.precheck.run(strict, context({ snapshots }, dir))).rejects.toThrow(
      "qn-db-02: newest snapshot s-qn-db-02 is 60.0 min old (RPO 15 min): older than the RPO",
    );
    const lenient = plannedStep("failover", "- { id: p, type: precheck, targets: { hosts: [qn-db-01, qn-db-02] }, with: { allowStale: true, capacityCpus: 64, capacityMemoryGb: 512 } }");
    await expect(stepModules.precheck.run(lenient, context({ snapshots }, dir))).rejects.toThrow(/secondary needs \d+ vCPU \/ \d+ GB of 64 \/ 512: not enough capacity/);
  });

  it("goes on without any snapshot only when allowed (a failover whose replicas may hold it all), saying so", async () => {
    const none = { newest: async () => undefined };
    const strict = plannedStep("failover", "- { id: p, type: precheck, targets: { hosts: [qn-db-01] } }");
    await expect(stepModules.precheck.run(strict, context({ snapshots: none }, dir))).rejects.toThrow("qn-db-01: no snapshot in secondary");
    const lenient = plannedStep("failover", "- { id: p, type: precheck, targets: { hosts: [qn-db-01] }, with: { allowStale: true } }");
    expect((await stepModules.precheck.run(lenient, context({ snapshots: none }, dir))).notes).toEqual(["qn-db-01: no snapshot in secondary: STALE (none at all), going on (allowStale)"]);
  });

  it("appends a JSON line to the notification log", async () => {
    const log = join(dir, "notify", "log.jsonl");
    const p = plannedStep("drill", `- { id: n, type: notify, with: { log: "${log}", message: "drill started" } }`);
    await stepModules.notify.run(p, context({}, dir));
    expect(JSON.parse(readFileSync(log, "utf8"))).toMatchObject({ run: "20261122T060000Z-failover-0001", step: "n", message: "drill started" });
  });
});

describe("data-loss", () => {
  const step = '- id: l\n  type: data-loss\n  service: portal\n  targets: { hosts: [qn-dr-db-01] }\n  with:\n    database: portal\n    newest: "SELECT code, submitted_at FROM dossiers ORDER BY id DESC LIMIT 1"\n    lastWritten: [last-written]';

  it("measures the writes missing at the target against what the lost site last wrote, in time and records", async () => {
    const p = plannedStep("failover", step);
    const local = new Recorder(() => ({ code: 0, stdout: "QN-2026-00000150 2026-11-22T05:59:30.000Z\n", stderr: "" }));
    const ctx = context({ local, sql: { query: async () => "QN-2026-00000120|2026-11-22 05:59:00.5+00\n" } }, dir);
    const res = await stepModules["data-loss"].run(p, ctx);
    expect(res.data.dataLoss).toEqual([
      { service: "portal", host: "qn-dr-db-01", newestKey: "QN-2026-00000120", newestAt: "2026-11-22T05:59:00.500Z", lastKey: "QN-2026-00000150", lastAt: "2026-11-22T05:59:30.000Z", lostMs: 29_500, lostRecords: 30 },
    ]);
    expect(res.notes).toEqual(["qn-dr-db-01: newest here QN-2026-00000120 (2026-11-22T05:59:00.500Z); last written at the lost site QN-2026-00000150 (2026-11-22T05:59:30.000Z): 30 records, 29.5 s of writes lost"]);
  });

  it("notes, without failing the run, a loss it cannot measure; refuses an answer that is not a key and a time", async () => {
    const p = plannedStep("failover", step);
    const silent = new Recorder(() => ({ code: 3, stdout: "", stderr: "nothing recorded" }));
    const res = await stepModules["data-loss"].run(p, context({ local: silent, sql: { query: async () => "" } }, dir));
    expect(res.notes).toEqual(["not measured: `last-written` failed (exit 3): nothing recorded"]);
    expect(res.data).toEqual({});
    const local = new Recorder(() => ({ code: 0, stdout: "QN-1 2026-11-22T05:59:30Z\n", stderr: "" }));
    await expect(stepModules["data-loss"].run(p, context({ local, sql: { query: async () => "42\n" } }, dir))).rejects.toThrow(/qn-dr-db-01 portal: SELECT code.* gave "42", not a key and a time/);
  });
});

describe("reprotect", () => {
  const diverged = (host: string, keepDir: string): DivergedWrites => ({ host, engine: "postgresql", forkedAt: "LSN 0/5000148 on timeline 1", endsAt: "LSN 0/5004000", writes: 8, firstAt: "2026-11-22T07:00:01.000Z", lastAt: "2026-11-22T07:00:09.000Z", kept: keepDir, files: ["waldump.txt"], bytes: 10, notes: [] });
  /** A fake replication control: qn-db-01 holds 8 writes past the fork; what each setup was asked is recorded. */
  function world() {
    const asked: { pair: string; follows: string; keepDir: string; discard: boolean }[] = [];
    const services: Partial<DrServices> = {
      replicas: {
        status: async () => {
          throw new Error("not used");
        },
        promote: async () => [],
        setup: async (pair, o) => {
          asked.push({ pair: pair.name, follows: pair.primary.name, keepDir: o.keepDir, discard: o.discard });
          const d = pair.standby.name === "qn-db-01" ? diverged("qn-db-01", o.keepDir) : undefined;
          if (d && !o.discard) throw new DivergedWritesError(d);
          return { action: pair.standby.name === "qn-db-01" ? "rewound" : "seeded", notes: ["done"], ...(d ? { diverged: d } : {}) };
        },
      },
    };
    return { asked, services };
  }
  const step = plannedStep("failover", "- { id: r, type: reprotect, service: portal, targets: { hosts: [qn-db-01, qn-db-02] } }");

  it("refuses (exit 5) a former primary's diverged writes, naming them and the kept copy, while the others go on", async () => {
    const w = world();
    const runDir = mkdtempSync(join(dir, "r1-"));
    const err = await stepModules.reprotect.run(step, context(w.services, runDir)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DcctlError);
    expect((err as DcctlError).exitCode).toBe(ExitCode.notConfirmed);
    expect((err as DcctlError).message).toMatch(new RegExp(`^qn-db-01 holds 8 writes written 2026-11-22T07:00:01.000Z – 2026-11-22T07:00:09.000Z past .*a copy is kept in ${runDir}/diverged/qn-db-01: .*--discard-diverged$`));
    // Each primary host follows its standby, its diverged writes kept in the run folder.
    expect(w.asked).toEqual([
      { pair: "qn-db-01", follows: "qn-dr-db-01", keepDir: join(runDir, "diverged", "qn-db-01"), discard: false },
      { pair: "qn-db-02", follows: "qn-dr-db-02", keepDir: join(runDir, "diverged", "qn-db-02"), discard: false },
    ]);
  });

  it("with --discard-diverged, rebuilds it and hands the discarded writes to the report", async () => {
    const w = world();
    const runDir = mkdtempSync(join(dir, "r2-"));
    const res = await stepModules.reprotect.run(step, { ...context(w.services, runDir), discardDiverged: true });
    expect(w.asked.every((a) => a.discard)).toBe(true);
    expect(res.notes).toEqual(["qn-db-01: rewound, following qn-dr-db-01", "qn-db-01: done", "qn-db-02: seeded, following qn-dr-db-02", "qn-db-02: done"]);
    expect(res.data.diverged).toEqual([diverged("qn-db-01", join(runDir, "diverged", "qn-db-01"))]);
  });

  it("is refused in a drill: it changes production", () => {
    expect(() => plannedStep("drill", "- { id: r, type: reprotect, targets: { hosts: [qn-db-01] } }")).toThrow(/reprotect/);
  });
});

describe("restore-pitr", () => {
  const step = (extra = "") =>
    plannedStep(
      "drill",
      `- { id: pitr, type: restore-pitr, service: portal, targets: { hosts: [qn-dr-bk-02], services: [postgresql] }, with: { from: qn-db-01, database: portal, at: -30s, sql: [{ query: "SELECT count(*) > 0 FROM dossiers", expect: t }]${extra} } }`,
    );
  /** A fake archive: recovers to the point asked (the last commit 0.4 s before it, the next 0.3 s after), answers the checks. */
  function archive(answer = "t") {
    const asked: Date[] = [];
    const removed: string[] = [];
    const services: Partial<DrServices> = {
      pointInTime: {
        recover: async (req) => {
          asked.push(req.at);
          const iso = (ms: number) => new Date(req.at.getTime() + ms).toISOString();
          return { sourceHost: req.sourceHost, engine: req.engine, database: req.database, targetHost: req.targetHost.name, asked: req.at.toISOString(), reached: iso(-400), gapSeconds: 0.4, firstNotApplied: iso(300), baseBackup: "20261122T000000", address: "10.20.10.21", port: req.port ?? 5433, dataDir: "/var/tmp/dcctl-pitr-x", stop: ["pg_ctl", "stop"] };
        },
        query: async () => `${answer}\n`,
        remove: async (r) => void removed.push(`${r.targetHost}:${r.dataDir}`),
      },
    };
    return { asked, removed, services };
  }

  it("recovers to the point before the step starts, checks the copy, measures the gap; clean-up removes it", async () => {
    const p = step();
    expect(stepModules["restore-pitr"].plan(p)[0]).toBe(
      "recover postgresql server qn-db-01 from this site's point-in-time archive as it was 30s before this step starts, into a scratch server on qn-dr-bk-02 (secondary, 10.20.10.21); database portal must be there",
    );
    const a = archive();
    const ctx = context(a.services, dir);
    const res = await stepModules["restore-pitr"].run(p, ctx);
    expect(a.asked.map((d) => d.toISOString())).toEqual(["2026-11-22T05:59:30.000Z"]);
    expect(res.data.pointInTime).toMatchObject([{ sourceHost: "qn-db-01", engine: "postgresql", asked: "2026-11-22T05:59:30.000Z", reached: "2026-11-22T05:59:29.600Z", gapSeconds: 0.4, port: 5433 }]);
    expect(res.notes[0]).toMatch(/last transaction recovered 2026-11-22T05:59:29\.600Z \(0\.400 s before the point asked\); first transaction not applied committed 2026-11-22T05:59:30\.300Z$/);
    expect(res.data.checks).toEqual([{ check: "qn-dr-bk-02 portal@5433 (recovered to 2026-11-22T05:59:30.000Z): SELECT count(*) > 0 FROM dossiers", expected: "t", got: "t", ok: true }]);
    expect(a.removed).toEqual([]);
    expect(await stepModules["restore-pitr"].cleanup(p, ctx, res)).toEqual(["qn-dr-bk-02: recovered server on port 5433 stopped, /var/tmp/dcctl-pitr-x removed"]);
    expect(a.removed).toEqual(["qn-dr-bk-02:/var/tmp/dcctl-pitr-x"]);
  });

  it("a check that fails fails the step and removes the copy it brought up", async () => {
    const a = archive("f");
    await expect(stepModules["restore-pitr"].run(step(), context(a.services, dir))).rejects.toThrow(/1 of 1 checks of the recovered copy failed: .*expected t, got f/);
    expect(a.removed).toEqual(["qn-dr-bk-02:/var/tmp/dcctl-pitr-x"]);
  });

  it("refuses a point that is not before the step, and an unknown parameter", () => {
    expect(stepModules["restore-pitr"].check({ from: "qn-db-01", database: "portal", at: "5m" }, "drill").map((x) => x.message)).toEqual(['with.at must be a time before the step starts, such as -5m, -30s or -1h30m (not "5m")']);
    expect(stepModules["restore-pitr"].check({ from: "qn-db-01", database: "portal", when: "-5m" }, "drill").map((x) => x.message)).toEqual(["unknown parameter with.when (known: from, database, at, port, sql)"]);
  });
});
