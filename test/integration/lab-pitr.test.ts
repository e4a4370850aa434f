import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ArchiveStatus, RecoverResult } from "../../databases/pitr.js";
import { labPaths } from "../../lab/paths.js";
import { sharedLab } from "../helpers/lab.js";
import { until } from "../helpers/until.js";

/**
 * A `DROP TABLE dossiers` undone from the point-in-time archive, on the lab the tests share: the primary's management
 * host archives lab-db-01 (`dcctl pitr setup`: Barman streaming its WAL) while the portal keeps filing dossiers; the
 * table is dropped at T and the drop reaches the standby; `dcctl restore --at T-1s` brings the server back as it was
 * one second before, in a scratch server beside it. Every dossier committed by then is there, none after, and the
 * test prints the recovery point reached against T-1s. The recovered table then goes back into the primary (what an
 * operator would do), the scratch server is stopped and archiving stops, so the lab is as it was for the other files.
 */
const t = sharedLab();
const PRIMARY_DB = "10.10.20.11";
const SECONDARY_DB = "10.20.20.11";
const HOST = "lab-db-01";

/** Dossier ids and submission times (ms) at a server of the primary, on a port. */
function dossiers(port: number): Map<number, number> {
  const res = t.psql("primary", PRIMARY_DB, "SELECT id || '|' || (extract(epoch FROM submitted_at) * 1000)::bigint FROM dossiers", port);
  if (res.code !== 0) throw new Error(`reading dossiers on port ${port} failed: ${res.stderr}`);
  return new Map(res.stdout.split("\n").filter(Boolean).map((l) => l.split("|").map(Number) as [number, number]));
}

describe("point-in-time recovery of the portal's PostgreSQL", () => {
  it("archives lab-db-01 and undoes a DROP TABLE at T into a scratch server as of T-1s: every dossier committed by then, none after", () =>
    t.changing(async () => {
      t.ensureUp();
      let recovered: RecoverResult | undefined;
      let stopped: { code: number; stderr: string } | undefined;
      try {
        const setup = t.at("primary", ["dcctl", "pitr", "setup"]);
        expect(setup.code, setup.stderr).toBe(0);
        expect(setup.stdout).toMatch(new RegExp(`${HOST}: archived, receiving, [1-9]\\d* base backups?`));
        // What set-up measured, as backup status shows it without probing the archive (its exit is the jobs' own).
        expect(t.at("primary", ["dcctl", "backup", "status", "--job", HOST]).stdout).toMatch(new RegExp(`^point-in-time archive of ${HOST}: receiving, lag \\d+\\.\\d\\d s \\(RPO 15 min\\)`, "m"));

        // Bad input, before anything is touched: a site time before the archive (read on the lab's Asia/Ho_Chi_Minh
        // clock), one in the future, one before the archive.
        const refused = (at: string) => t.at("primary", ["dcctl", "restore", "--db", "portal", "--host", HOST, "--at", at]);
        const local = refused("2026-12-05 10:59");
        expect([local.code, local.stderr]).toEqual([2, expect.stringMatching(/^--at 2026-12-05T03:59:00\.000Z: before the oldest base backup's end/)]);
        const future = refused(new Date(Date.now() + 3_600_000).toISOString());
        expect([future.code, future.stderr]).toEqual([2, expect.stringMatching(/is in the future/)]);
        const early = refused("2020-01-01T00:00:00Z");
        expect([early.code, early.stderr.trim().split("\n").length]).toEqual([2, 1]);
        expect(early.stderr).toMatch(new RegExp(`before the oldest base backup's end; the archive of ${HOST} covers \\S+ to \\S+`));

        // Dossiers filed after the base backup, so that T-1s lies inside what the archive covers.
        const points = await until("the archive covering a few seconds past its base backup", () => {
          const p = t.at("primary", ["dcctl", "restore", "--db", "portal", "--host", HOST, "--points", "--json"]);
          const s = JSON.parse(p.stdout || "{}") as ArchiveStatus;
          return p.code === 0 && s.receiving && s.earliest && s.latest && Date.parse(s.latest) - Date.parse(s.earliest) > 5_000 ? s : undefined;
        }, 60_000);
        expect(points.lagSeconds).toBeLessThan(15);

        // T: the drop's own clock, to the microsecond; the point asked for is one second before it.
        const before = dossiers(5432);
        const drop = t.psql(
          "primary",
          PRIMARY_DB,
          "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') || '|' || to_char((clock_timestamp() - interval '1 second') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'); DROP TABLE dossiers;",
        );
        expect(drop.code, drop.stderr).toBe(0);
        const [dropAt = "", pointText = ""] = (drop.stdout.split("\n")[0] ?? "").split("|");
        const point = Date.parse(pointText);
        await until("the drop at the standby", () => t.psql("secondary", SECONDARY_DB, "SELECT to_regclass('dossiers') IS NULL").stdout.trim() === "t" || undefined, 60_000);

        const restore = t.at("primary", ["dcctl", "restore", "--db", "portal", "--host", HOST, "--at", pointText, "--json"]);
        expect(restore.code, restore.stderr).toBe(0);
        recovered = JSON.parse(restore.stdout) as RecoverResult;
        expect(recovered.target).toBe(pointText);
        const back = dossiers(recovered.port);
        // Each dossier is committed moments after its submission time: those filed two seconds before the point are in.
        const mustHave = [...before].filter(([, at]) => at <= point - 2_000).map(([id]) => id);
        expect(mustHave.length).toBeGreaterThan(0);
        expect(mustHave.filter((id) => !back.has(id))).toEqual([]);
        // Nothing filed after the point: a transaction commits after it starts.
        expect([...back].filter(([, at]) => at > point)).toEqual([]);
        const last = Date.parse(recovered.lastTransactionAt ?? "");
        expect(last).toBeLessThanOrEqual(point);
        expect(recovered.stoppedBefore && Date.parse(recovered.stoppedBefore.committedAt)).toBeGreaterThan(point);
        // The portal's own record of the last dossier it filed before the drop: those after the point are the loss asked for.
        const lastFiled = Number((JSON.parse(readFileSync(labPaths(t.dir).lastWritten, "utf8")) as { code: string }).code.replace(/\D+/g, "").slice(-8));
        const newestBack = Math.max(...back.keys());
        process.stdout.write(`pitr: DROP TABLE at ${dropAt}, restored to ${pointText}: newest transaction recovered ${recovered.lastTransactionAt ?? "?"} (${((point - last) / 1000).toFixed(3)} s before the point), ${back.size} dossiers up to id ${newestBack}; ${lastFiled - newestBack} filed after the point and before the drop not recovered, as asked\n`);

        // The operator's repair: the recovered table back into the primary, from the scratch server.
        const repair = t.at("primary", ["sh", "-c", `pg_dump -h ${PRIMARY_DB} -p ${recovered.port} -U postgres -t dossiers portal | psql -X -q -v ON_ERROR_STOP=1 -h ${PRIMARY_DB} -U postgres portal`], { PGPASSFILE: `${t.dir}/secrets/postgres.pgpass` });
        expect(repair.code, repair.stderr).toBe(0);
        expect(t.psql("primary", PRIMARY_DB, "SELECT count(*) >= " + String(back.size) + " FROM dossiers").stdout.trim()).toBe("t");
      } finally {
        // The lab's hosts share this machine: the scratch server is stopped by its own pg_ctl, as the output says.
        if (recovered) {
          const [cmd = "", ...args] = recovered.stop;
          spawnSync(cmd, args, { encoding: "utf8" });
          spawnSync("rm", ["-rf", "--", recovered.dataDir]);
        }
        stopped = t.at("primary", ["dcctl", "pitr", "stop", "--drop-slot"]);
        // The archive and its record go too: the other files meet the lab as it was, with nothing archived.
        rmSync(join(labPaths(t.dir).stateDir("primary"), "pitr"), { recursive: true, force: true });
      }
      expect(stopped.code, stopped.stderr).toBe(0);
      await t.standbysStreaming();
    }));
});
