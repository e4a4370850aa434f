import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ArchiveStatus } from "../../databases/pitr.js";
import { labPaths } from "../../lab/paths.js";
import { PG_BIN_DIR } from "../../lab/postgres.js";
import type { RunOutcome } from "../../runbooks/engine/index.js";
import type { DataLoss } from "../../runbooks/engine/steps/data-loss.js";
import type { RecoveredToPoint } from "../../runbooks/engine/steps/types.js";
import { repoRoot } from "../../util/tools.js";
import { sharedLab } from "../helpers/lab.js";
import { until } from "../helpers/until.js";

/**
 * `dcctl dr recover` on the lab the tests share: the secondary archives lab-db-01 (`dcctl pitr setup` there: its own
 * copy of the WAL) while the portal keeps filing dossiers; `DROP TABLE dossiers` at the primary (shown reaching the
 * standby), and the attack taken to have begun two seconds earlier, at T. `dr recover --service portal --before T`
 * brings the portal database back into a scratch database on the secondary's restore-test server, checks it, serves it
 * on the isolated drill network, and says what it lacks. Its numbers are held against the truth, read at the primary
 * under the drop's own lock: every dossier committed before T is in the copy, none after, and the records and time it
 * says are lost are those. Then the table goes back into the primary from the copy, the copies go, archiving stops.
 */
const t = sharedLab();
const PRIMARY_DB = "10.10.20.11";
const SECONDARY_DB = "10.20.20.11";
const HOST = "lab-db-01";

/** psql as the superuser over the socket of lab-dr-bk-01's restore-test server (it trusts local users). */
function restoreTestSql(db: string, sql: string): string {
  const res = spawnSync(join(PG_BIN_DIR, "psql"), ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", join(t.dir, "db", "lab-dr-bk-01", "run"), "-p", "5432", "-U", "postgres", "-d", db, "-c", sql], { encoding: "utf8" });
  if (res.status !== 0) throw new Error(`psql on the restore-test server failed: ${res.stderr}`);
  return res.stdout;
}

/** Step-end data of a run's steps that ended well, from its journal. */
function stepData(runDir: string): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const line of readFileSync(join(runDir, "journal.jsonl"), "utf8").split("\n").filter(Boolean)) {
    const r = JSON.parse(line) as { type: string; step?: string; status?: string; data?: Record<string, unknown> };
    if (r.type === "step-end" && r.status === "ok" && r.step && r.data) out.set(r.step, r.data);
  }
  return out;
}

describe("dr recover: the portal brought back to just before an attack, into the drill network", () => {
  it("recovers before T from the secondary's archive: checked, served in the drill network, every dossier before T, none after, the loss counted", () =>
    t.changing(async () => {
      t.ensureUp();
      const runbook = join(labPaths(t.dir).runbooks, "recover.yaml");
      let outcome: RunOutcome | undefined;
      let scratch: string | undefined;
      let stopped: { code: number; stderr: string } | undefined;
      try {
        // Set-up is idempotent; Barman's first base backup across the WAN link was once refused on a loaded machine
        // ("Impossible to start the backup"), so a second set-up is allowed, and said.
        let setup = t.at("secondary", ["dcctl", "pitr", "setup"]);
        if (setup.code !== 0) {
          process.stdout.write(`pitr setup at the secondary failed once, run again: ${setup.stderr.trim().split("\n").pop() ?? ""}\n`);
          setup = t.at("secondary", ["dcctl", "pitr", "setup"]);
        }
        expect(setup.code, setup.stderr).toBe(0);
        await until("the secondary's archive covering a few seconds past its base backup", () => {
          const p = t.at("secondary", ["dcctl", "restore", "--db", "portal", "--host", HOST, "--points", "--json"]);
          const s = JSON.parse(p.stdout || "{}") as ArchiveStatus;
          return p.code === 0 && s.receiving && s.earliest && s.latest && Date.parse(s.latest) - Date.parse(s.earliest) > 5_000 ? s : undefined;
        }, 60_000);

        // A point the archive does not cover: one line naming what it covers, exit 2, no run started.
        const early = t.at("secondary", ["dcctl", "dr", "recover", "--service", "portal", "--before", "2020-01-01T00:00:00Z", "--runbook", runbook]);
        expect([early.code, early.stderr.trim().split("\n").length]).toEqual([2, 1]);
        expect(early.stderr).toMatch(new RegExp(`--before 2020-01-01T00:00:00.000Z: before the oldest base backup's end; the archive of ${HOST} covers \\S+ to \\S+`));

        // The attack: every dossier as the drop found it (read under its lock: nothing commits in between), then the drop.
        const drop = t.psql(
          "primary",
          PRIMARY_DB,
          "BEGIN; LOCK TABLE dossiers IN ACCESS EXCLUSIVE MODE; " +
            "SELECT 'T|' || to_char((clock_timestamp() - interval '2 seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'); " +
            "SELECT id || '|' || code || '|' || (extract(epoch FROM submitted_at) * 1000)::bigint FROM dossiers; DROP TABLE dossiers; COMMIT;",
        );
        expect(drop.code, drop.stderr).toBe(0);
        const lines = drop.stdout.split("\n").filter(Boolean);
        const beforeText = (lines.find((l) => l.startsWith("T|")) ?? "").slice(2);
        const point = Date.parse(beforeText);
        const truth = lines.filter((l) => /^\d+\|/.test(l)).map((l) => l.split("|")).map(([id = "", code = "", at = ""]) => ({ id: Number(id), code, at: Number(at) }));
        await until("the drop at the standby", () => t.psql("secondary", SECONDARY_DB, "SELECT to_regclass('dossiers') IS NULL").stdout.trim() === "t" || undefined, 60_000);

        const started = Date.now();
        const run = t.at("secondary", ["dcctl", "dr", "recover", "--service", "portal", "--before", beforeText, "--runbook", runbook, "--json"]);
        const seconds = (Date.now() - started) / 1000;
        outcome = JSON.parse(run.stdout || "{}") as RunOutcome;
        expect(run.code, run.stderr).toBe(0);
        expect(outcome.status).toBe("ok");
        const data = stepData(outcome.runDir);
        const [point0] = (data.get("recover-portal")?.recoveredToPoint ?? []) as RecoveredToPoint[];
        if (!point0) throw new Error("the recover step recorded no point");
        scratch = point0.targetDatabase;
        expect([point0.before, point0.targetHost]).toEqual([beforeText, "lab-dr-bk-01"]);

        // What the copy holds against the truth: every dossier committed well before T, none submitted after it.
        const back = new Map(restoreTestSql(scratch, "SELECT id || '|' || (extract(epoch FROM submitted_at) * 1000)::bigint FROM dossiers").split("\n").filter(Boolean).map((l) => l.split("|").map(Number) as [number, number]));
        const mustHave = truth.filter((d) => d.at <= point - 1_000);
        expect(mustHave.length).toBeGreaterThan(0);
        expect(mustHave.filter((d) => !back.has(d.id)).map((d) => d.code)).toEqual([]);
        expect([...back].filter(([, at]) => at > point)).toEqual([]);
        expect(Date.parse(point0.lastTransactionAt ?? "")).toBeLessThan(point);
        expect(Date.parse(point0.stoppedBefore?.committedAt ?? "")).toBeGreaterThanOrEqual(point);

        // What it lacks, as the run says it, against the truth: the dossiers after the newest it holds, and their span.
        const newest = Math.max(...back.keys());
        const lost = truth.filter((d) => d.id > newest);
        const [loss] = (data.get("data-loss")?.dataLoss ?? []) as DataLoss[];
        const last = truth.reduce((a, b) => (b.id > a.id ? b : a));
        expect(lost.length).toBeGreaterThan(0);
        expect({ lostRecords: loss?.lostRecords, lastKey: loss?.lastKey }).toEqual({ lostRecords: lost.length, lastKey: last.code });
        expect(Math.abs((loss?.lostMs ?? 0) - (last.at - (back.get(newest) ?? 0)))).toBeLessThan(50);
        const report = readFileSync(join(outcome.runDir, "report.md"), "utf8");
        expect(report).toMatch(/Recovery to before an attack .*: OK/);
        expect(report).toContain(`not in it: every transaction committed from ${point0.stoppedBefore?.committedAt ?? "?"}`);
        // Served on the isolated drill network from the copy, isolation checked both ways (lab/drill-net.ts).
        expect(report).toMatch(/drill portal at \S+:8080 serves a copy of drill_\w+_portal \(\d+ dossiers\) on the isolated drill network/);
        process.stdout.write(
          `dr recover --before ${beforeText} in ${seconds.toFixed(1)} s: ${back.size} dossiers up to id ${newest} (newest transaction ${point0.lastTransactionAt ?? "?"}); ` +
            `lost ${loss?.lostRecords ?? "?"} records, ${((loss?.lostMs ?? 0) / 1000).toFixed(1)} s (truth: ${lost.length} dossiers filed from T to the drop)\n`,
        );

        // The operator's repair: the table back into the primary, from the recovered copy.
        const repair = t.at("primary", ["sh", "-c", `"$0/pg_dump" -h "$1" -p 5432 -U postgres -t dossiers "$2" | "$0/psql" -X -q -v ON_ERROR_STOP=1 -h ${PRIMARY_DB} -U postgres portal`, PG_BIN_DIR, join(t.dir, "db", "lab-dr-bk-01", "run"), scratch], { PGPASSFILE: `${t.dir}/secrets/postgres.pgpass` });
        expect(repair.code, repair.stderr).toBe(0);
      } finally {
        // The copies the recover kept for inspection, then the archive: the other files meet the lab as it was.
        if (outcome?.runId) t.at("secondary", [process.execPath, join(repoRoot, "dist", "lab", "drill-net.js"), "down", t.dir, outcome.runId]);
        if (scratch) restoreTestSql("postgres", `DROP DATABASE IF EXISTS ${scratch} WITH (FORCE)`);
        stopped = t.at("secondary", ["dcctl", "pitr", "stop", "--drop-slot"]);
        rmSync(join(labPaths(t.dir).stateDir("secondary"), "pitr"), { recursive: true, force: true });
      }
      expect(stopped.code, stopped.stderr).toBe(0);
      expect(t.psql("primary", PRIMARY_DB, "SELECT count(*) > 0 FROM dossiers").stdout.trim()).toBe("t");
      await t.standbysStreaming();
    }),
    // Run alone, the file brings the shared lab up inside this test (ensureUp): 4-5 min of a loaded 2-core machine.
    600_000);
});
