import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ArchiveStatus, RecoverResult } from "../../databases/pitr.js";
import { labPaths } from "../../lab/paths.js";
import { PG_BIN_DIR } from "../../lab/postgres.js";
import type { RunOutcome } from "../../runbooks/engine/index.js";
import type { DataLoss } from "../../runbooks/engine/steps/data-loss.js";
import type { RecoveredToPoint } from "../../runbooks/engine/steps/types.js";
import { repoRoot } from "../../util/tools.js";
import { sharedLab } from "../helpers/lab.js";
import { until } from "../helpers/until.js";

/**
 * A `DROP TABLE dossiers` undone from the point-in-time archive, two ways, on the lab the tests share. The secondary's
 * management host archives lab-db-01 (`dcctl pitr setup` there: its own copy of the WAL, what DR recovers from) while
 * the portal keeps filing dossiers; the table is dropped at D, every dossier read first under the drop's own lock
 * (nothing commits in between: the truth), and the drop reaches the standby. Then, from that one archive:
 * - `dcctl restore --at D-1s` brings the server back as it was one second before, in a scratch server on the
 *   secondary's restore-test host: every dossier committed by then is there, none after; the test prints the recovery
 *   point reached against D-1s.
 * - `dcctl dr recover --service portal --before T`, the attack taken to have begun at T = D-2s, brings the portal
 *   database back into a scratch database on the restore-test server, checks it, serves it on the isolated drill
 *   network, and says what it lacks: held against the truth, every dossier before T is in it, none after, and the
 *   records and time it says are lost are those.
 * One archive, one write load and one drop serve both, because a lab file costs minutes of CI. The table then goes back
 * into the primary (what an operator would do), the copies go and archiving stops: the lab is as it was for the files after.
 */
const t = sharedLab();
const PRIMARY_DB = "10.10.20.11";
const SECONDARY_DB = "10.20.20.11";
const HOST = "lab-db-01";
const RESTORE_TEST = "lab-dr-bk-01";

/** Dossier ids and submission times (ms) read at a server of the secondary (an address and a port). */
function dossiersAt(address: string, port: number): Map<number, number> {
  const res = t.psql("secondary", address, "SELECT id || '|' || (extract(epoch FROM submitted_at) * 1000)::bigint FROM dossiers", port);
  if (res.code !== 0) throw new Error(`reading dossiers at ${address}:${port} failed: ${res.stderr}`);
  return new Map(res.stdout.split("\n").filter(Boolean).map((l) => l.split("|").map(Number) as [number, number]));
}

/** psql as the superuser over the socket of lab-dr-bk-01's restore-test server (it trusts local users). */
function restoreTestSql(db: string, sql: string): string {
  const res = spawnSync(join(PG_BIN_DIR, "psql"), ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", join(t.dir, "db", RESTORE_TEST, "run"), "-p", "5432", "-U", "postgres", "-d", db, "-c", sql], { encoding: "utf8" });
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

/** The scratch server of a `restore --at`, stopped by its own pg_ctl (the lab's hosts share this machine) and removed. */
function removeScratch(r: RecoverResult): void {
  const [cmd = "", ...args] = r.stop;
  spawnSync(cmd, args, { encoding: "utf8" });
  spawnSync("rm", ["-rf", "--", r.dataDir]);
}

describe("point-in-time recovery of the portal's PostgreSQL: restore --at and dr recover from the secondary's archive", () => {
  it(
    "undoes a DROP TABLE at D into a scratch server as of D-1s, and recovers the portal before T = D-2s into the drill network: every dossier committed by then, none after, the loss counted",
    () =>
      t.changing(async () => {
        t.ensureUp();
        const began = Date.now();
        const runbook = join(labPaths(t.dir).runbooks, "recover.yaml");
        let recovered: RecoverResult | undefined;
        let outcome: RunOutcome | undefined;
        let scratch: string | undefined;
        let stopped: { code: number; stderr: string } | undefined;
        try {
          // Set-up is idempotent; Barman's first base backup across the WAN link was once refused on a loaded machine
          // ("Impossible to start the backup"), so a second set-up is allowed, and said.
          let setup = t.at("secondary", ["dcctl", "pitr", "setup", "--host", HOST]);
          if (setup.code !== 0) {
            process.stdout.write(`pitr setup at the secondary failed once, run again: ${setup.stderr.trim().split("\n").pop() ?? ""}\n`);
            setup = t.at("secondary", ["dcctl", "pitr", "setup", "--host", HOST]);
          }
          expect(setup.code, setup.stderr).toBe(0);
          expect(setup.stdout).toMatch(new RegExp(`${HOST}: archived, receiving, [1-9]\\d* base backups?`));
          // What set-up measured, as backup status shows it without probing the archive (its exit is the jobs' own).
          expect(t.at("secondary", ["dcctl", "backup", "status", "--job", HOST]).stdout).toMatch(new RegExp(`^point-in-time archive of ${HOST}: receiving, lag \\d+\\.\\d\\d s \\(RPO 15 min\\)`, "m"));

          // Bad input, before anything is touched: a site time before the archive (read on the lab's Asia/Ho_Chi_Minh
          // clock), one in the future, one before the archive.
          const refused = (at: string) => t.at("secondary", ["dcctl", "restore", "--db", "portal", "--host", HOST, "--target", RESTORE_TEST, "--at", at]);
          const local = refused("2026-12-05 10:59");
          expect([local.code, local.stderr]).toEqual([2, expect.stringMatching(/^--at 2026-12-05T03:59:00\.000Z: before the oldest base backup's end/)]);
          const future = refused(new Date(Date.now() + 3_600_000).toISOString());
          expect([future.code, future.stderr]).toEqual([2, expect.stringMatching(/is in the future/)]);
          const early = refused("2020-01-01T00:00:00Z");
          expect([early.code, early.stderr.trim().split("\n").length]).toEqual([2, 1]);
          expect(early.stderr).toMatch(new RegExp(`before the oldest base backup's end; the archive of ${HOST} covers \\S+ to \\S+`));
          // The same for a recover: one line naming what the archive covers, exit 2, no run started.
          const earlyRecover = t.at("secondary", ["dcctl", "dr", "recover", "--service", "portal", "--before", "2020-01-01T00:00:00Z", "--runbook", runbook]);
          expect([earlyRecover.code, earlyRecover.stderr.trim().split("\n").length]).toEqual([2, 1]);
          expect(earlyRecover.stderr).toMatch(new RegExp(`--before 2020-01-01T00:00:00.000Z: before the oldest base backup's end; the archive of ${HOST} covers \\S+ to \\S+`));

          // Dossiers filed after the base backup, so that T and D-1s lie inside what the archive covers.
          const points = await until("the archive covering a few seconds past its base backup", () => {
            const p = t.at("secondary", ["dcctl", "restore", "--db", "portal", "--host", HOST, "--points", "--json"]);
            const s = JSON.parse(p.stdout || "{}") as ArchiveStatus;
            return p.code === 0 && s.receiving && s.earliest && s.latest && Date.parse(s.latest) - Date.parse(s.earliest) > 5_000 ? s : undefined;
          }, 60_000);
          expect(points.lagSeconds).toBeLessThan(15);

          // The attack at D, the drop's own clock to the microsecond: every dossier as the drop found it (read under its
          // lock: nothing commits in between), then the drop. D-1s is asked of restore --at, T = D-2s of dr recover.
          const stamp = (s: number) => `to_char((clock_timestamp() - interval '${s} seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
          const drop = t.psql(
            "primary",
            PRIMARY_DB,
            `BEGIN; LOCK TABLE dossiers IN ACCESS EXCLUSIVE MODE; SELECT 'D|' || ${stamp(0)} || '|' || ${stamp(1)} || '|' || ${stamp(2)}; ` +
              "SELECT id || '|' || code || '|' || (extract(epoch FROM submitted_at) * 1000)::bigint FROM dossiers; DROP TABLE dossiers; COMMIT;",
          );
          expect(drop.code, drop.stderr).toBe(0);
          const lines = drop.stdout.split("\n").filter(Boolean);
          const [, dropAt = "", pointText = "", beforeText = ""] = (lines.find((l) => l.startsWith("D|")) ?? "").split("|");
          const point = Date.parse(pointText);
          const attack = Date.parse(beforeText);
          const truth = lines.filter((l) => /^\d+\|/.test(l)).map((l) => l.split("|")).map(([id = "", code = "", at = ""]) => ({ id: Number(id), code, at: Number(at) }));
          await until("the drop at the standby", () => t.psql("secondary", SECONDARY_DB, "SELECT to_regclass('dossiers') IS NULL").stdout.trim() === "t" || undefined, 60_000);

          // restore --at D-1s, from the secondary's archive into a scratch server on its restore-test host.
          const restore = t.at("secondary", ["dcctl", "restore", "--db", "portal", "--host", HOST, "--target", RESTORE_TEST, "--at", pointText, "--json"]);
          expect(restore.code, restore.stderr).toBe(0);
          recovered = JSON.parse(restore.stdout) as RecoverResult;
          expect(recovered.target).toBe(pointText);
          const atPoint = dossiersAt(recovered.address, recovered.port);
          // Each dossier is committed moments after its submission time: those filed two seconds before the point are in.
          const mustHaveAtPoint = truth.filter((d) => d.at <= point - 2_000);
          expect(mustHaveAtPoint.length).toBeGreaterThan(0);
          expect(mustHaveAtPoint.filter((d) => !atPoint.has(d.id)).map((d) => d.code)).toEqual([]);
          // Nothing filed after the point: a transaction commits after it starts.
          expect([...atPoint].filter(([, at]) => at > point)).toEqual([]);
          const lastAtPoint = Date.parse(recovered.lastTransactionAt ?? "");
          expect(lastAtPoint).toBeLessThanOrEqual(point);
          expect(recovered.stoppedBefore && Date.parse(recovered.stoppedBefore.committedAt)).toBeGreaterThan(point);
          // The portal's own record of the last dossier it filed before the drop: those after the point are the loss asked for.
          const lastFiled = Number((JSON.parse(readFileSync(labPaths(t.dir).lastWritten, "utf8")) as { code: string }).code.replace(/\D+/g, "").slice(-8));
          const newestAtPoint = Math.max(...atPoint.keys());
          process.stdout.write(
            `pitr: DROP TABLE at ${dropAt}, restored to ${pointText}: newest transaction recovered ${recovered.lastTransactionAt ?? "?"} (${((point - lastAtPoint) / 1000).toFixed(3)} s before the point), ${atPoint.size} dossiers up to id ${newestAtPoint}; ${lastFiled - newestAtPoint} filed after the point and before the drop not recovered, as asked\n`,
          );
          // Its port is the one a recover's own scratch server takes: stopped before the recover starts.
          removeScratch(recovered);
          recovered = undefined;

          // dr recover --before T, from the same archive, at the secondary.
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
          expect([point0.before, point0.targetHost]).toEqual([beforeText, RESTORE_TEST]);

          // What the copy holds against the truth: every dossier committed well before T, none submitted after it.
          const back = new Map(restoreTestSql(scratch, "SELECT id || '|' || (extract(epoch FROM submitted_at) * 1000)::bigint FROM dossiers").split("\n").filter(Boolean).map((l) => l.split("|").map(Number) as [number, number]));
          const mustHave = truth.filter((d) => d.at <= attack - 1_000);
          expect(mustHave.length).toBeGreaterThan(0);
          expect(mustHave.filter((d) => !back.has(d.id)).map((d) => d.code)).toEqual([]);
          expect([...back].filter(([, at]) => at > attack)).toEqual([]);
          expect(Date.parse(point0.lastTransactionAt ?? "")).toBeLessThan(attack);
          expect(Date.parse(point0.stoppedBefore?.committedAt ?? "")).toBeGreaterThanOrEqual(attack);

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
          const repair = t.at("primary", ["sh", "-c", `"$0/pg_dump" -h "$1" -p 5432 -U postgres -t dossiers "$2" | "$0/psql" -X -q -v ON_ERROR_STOP=1 -h ${PRIMARY_DB} -U postgres portal`, PG_BIN_DIR, join(t.dir, "db", RESTORE_TEST, "run"), scratch], { PGPASSFILE: `${t.dir}/secrets/postgres.pgpass` });
          expect(repair.code, repair.stderr).toBe(0);
          expect(t.psql("primary", PRIMARY_DB, "SELECT count(*) >= " + String(back.size) + " FROM dossiers").stdout.trim()).toBe("t");
        } finally {
          // The scratch server, the copies the recover kept for inspection, then the archive and its record: the other
          // files meet the lab as it was, with nothing archived.
          if (recovered) removeScratch(recovered);
          if (outcome?.runId) t.at("secondary", [process.execPath, join(repoRoot, "dist", "lab", "drill-net.js"), "down", t.dir, outcome.runId]);
          if (scratch) restoreTestSql("postgres", `DROP DATABASE IF EXISTS ${scratch} WITH (FORCE)`);
          stopped = t.at("secondary", ["dcctl", "pitr", "stop", "--host", HOST, "--drop-slot"]);
          rmSync(join(labPaths(t.dir).stateDir("secondary"), "pitr"), { recursive: true, force: true });
        }
        expect(stopped.code, stopped.stderr).toBe(0);
        await t.standbysStreaming();
        process.stdout.write(`lab-pitr: ${((Date.now() - began) / 1000).toFixed(1)} s without the lab's bring-up\n`);
      }),
    // Run alone, the file brings the shared lab up inside this test (ensureUp): minutes of a loaded 2-core machine.
    900_000,
  );
});
