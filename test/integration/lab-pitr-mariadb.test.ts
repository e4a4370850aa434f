import { spawn, spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ArchiveStatus, RecoverResult } from "../../databases/pitr.js";
import { sharedLab } from "../helpers/lab.js";
import { mainJs } from "../helpers/cli.js";
import { until } from "../helpers/until.js";

/**
 * A `DELETE FROM accounts` (no WHERE) undone from MariaDB's point-in-time archive, on the lab the tests share: the
 * primary's management host archives lab-db-02 (`dcctl pitr setup`: its binary log copied by mariadb-binlog, a base
 * backup by mariadb-backup) while this test keeps adding accounts; the table is emptied at T and that reaches the
 * standby lab-dr-db-02; `dcctl restore --at T-1s` (on a whole second: the binary log times to the second) brings the
 * server back as it was then, in a scratch server beside it. Every account committed before the point is there, none
 * committed at or after it, and the test prints the recovery point reached. The table then goes back into the primary,
 * the scratch server is stopped and archiving stops, so the lab is as it was for the other files.
 */
const t = sharedLab();
const PRIMARY = "10.10.20.12";
const STANDBY = "10.20.20.12";
const HOST = "lab-db-02";
/** Accounts this test adds have ids from here (the seeded ones are below). */
const FIRST_ID = 1_000_000;

const client = (host: string, port: number) => ["mariadb", `--defaults-extra-file=${join(t.dir, "secrets", "mariadb.cnf")}`, "--protocol=TCP", `--host=${host}`, `--port=${port}`, "--batch", "--skip-column-names"];

function sql(site: "primary" | "secondary", host: string, query: string, port = 3306): string {
  const res = t.at(site, [...client(host, port), "mail", "-e", query]);
  if (res.code !== 0) throw new Error(`mariadb at ${host}:${port} failed: ${res.stderr}`);
  return res.stdout;
}

/** Account ids and their last_login (ms; the statement's second, as the binary log times it) at a server. */
function accounts(host: string, port: number): Map<number, number> {
  const out = sql("primary", host, "SELECT id, UNIX_TIMESTAMP(last_login) * 1000 FROM accounts", port);
  return new Map(out.split("\n").filter(Boolean).map((l) => l.split("\t").map(Number) as [number, number]));
}

describe("point-in-time recovery of the mail server's MariaDB", () => {
  it("archives lab-db-02 and undoes a DELETE without WHERE at T into a scratch server as of T-1s: every account committed before, none after", () =>
    t.changing(async () => {
      t.ensureUp();
      let recovered: RecoverResult | undefined;
      let stopped: { code: number; stderr: string } | undefined;
      const stopWriting = join(t.dir, "pitr-mariadb-writer.stop");
      let writer: ReturnType<typeof spawn> | undefined;
      try {
        const setup = t.at("primary", ["dcctl", "pitr", "setup"]);
        expect(setup.code, setup.stderr).toBe(0);
        expect(setup.stdout).toMatch(new RegExp(`${HOST}: archived, receiving, [1-9]\\d* base backups?`));

        // A writer of its own: an account every 200 ms, last_login the statement's own time.
        const insert = `INSERT INTO accounts VALUES ($i, CONCAT('pitr', $i, '@lab.invalid'), 'PITR', 'lab', 1, 0, NOW(6), 1)`;
        const loop = `i=${FIRST_ID}; while [ ! -e "$1" ]; do i=$((i+1)); ${client(PRIMARY, 3306).join(" ")} mail -e "${insert}" || exit 1; sleep 0.2; done`;
        writer = spawn(process.execPath, [mainJs, "lab", "exec", "primary", "--", "sh", "-c", loop, "writer", stopWriting], { env: t.env, stdio: "ignore" });

        const early = t.at("primary", ["dcctl", "restore", "--db", "mail", "--host", HOST, "--at", "2020-01-01T00:00:00Z"]);
        expect([early.code, early.stderr]).toEqual([2, expect.stringMatching(new RegExp(`before the oldest base backup's end; the archive of ${HOST} covers \\S+ to \\S+`))]);

        // Accounts added after the base backup, so that T-1s lies inside what the archive covers.
        const points = await until("the archive covering a few seconds past its base backup", () => {
          const p = t.at("primary", ["dcctl", "restore", "--db", "mail", "--host", HOST, "--points", "--json"]);
          const s = JSON.parse(p.stdout || "{}") as ArchiveStatus;
          return p.code === 0 && s.receiving && s.earliest && s.latest && Date.parse(s.latest) - Date.parse(s.earliest) > 5_000 ? s : undefined;
        }, 60_000);
        expect(points.lagSeconds).toBeLessThan(15);
        const lag = points.lagSeconds;

        // T: the DELETE's own clock; the point asked for is one second before it, on a whole second.
        const before = accounts(PRIMARY, 3306);
        const del = sql("primary", PRIMARY, "SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%fZ'), DATE_FORMAT(UTC_TIMESTAMP() - INTERVAL 1 SECOND, '%Y-%m-%dT%H:%i:%sZ'); DELETE FROM accounts;");
        const [deleteAt = "", pointText = ""] = (del.split("\n")[0] ?? "").split("\t");
        const point = Date.parse(pointText);
        await until("the DELETE at the standby", () => sql("secondary", STANDBY, `SELECT COUNT(*) FROM accounts WHERE id <= ${FIRST_ID}`).trim() === "0" || undefined, 60_000);
        // Writes go on past the DELETE until the standby has it.
        writeFileSync(stopWriting, "");
        await new Promise((r) => setTimeout(r, 500));

        const started = Date.now();
        const restore = t.at("primary", ["dcctl", "restore", "--db", "mail", "--host", HOST, "--at", pointText, "--json"]);
        const seconds = (Date.now() - started) / 1000;
        expect(restore.code, restore.stderr).toBe(0);
        recovered = JSON.parse(restore.stdout) as RecoverResult;
        expect(recovered.target).toBe(pointText);
        const back = accounts(recovered.address, recovered.port);
        // Every account committed before the point (the seeded ones and those added before it), none at or after.
        const mustHave = [...before].filter(([, at]) => at < point).map(([id]) => id);
        expect(mustHave.filter((id) => id > FIRST_ID).length).toBeGreaterThan(0);
        expect(mustHave.filter((id) => !back.has(id))).toEqual([]);
        expect([...back].filter(([id, at]) => id > FIRST_ID && at >= point)).toEqual([]);
        const last = Date.parse(recovered.lastTransactionAt ?? "");
        expect(last).toBeLessThan(point);
        expect(recovered.stoppedBefore && Date.parse(recovered.stoppedBefore.committedAt)).toBeGreaterThanOrEqual(point);
        const added = [...back.keys()].filter((id) => id > FIRST_ID);
        const newestBack = Math.max(...added);
        const newestBefore = Math.max(...[...before.keys()].filter((id) => id > FIRST_ID));
        process.stdout.write(
          `pitr-mariadb: DELETE FROM accounts at ${deleteAt}, restored to ${pointText} in ${seconds.toFixed(1)} s (archive lag ${String(lag)} s): newest transaction recovered ${recovered.lastTransactionAt ?? "?"}, stopped before ${recovered.stoppedBefore?.transaction ?? "-"} at ${recovered.stoppedBefore?.committedAt ?? "-"}; ${back.size} accounts (${added.length} added by the test, up to id ${newestBack}); at least ${newestBefore - newestBack} added after the point and before the DELETE not recovered, as asked\n`,
        );

        // The operator's repair: the recovered table back into the primary, from the scratch server; then the test's own accounts go.
        const dump = [...client(recovered.address, recovered.port).filter((a) => a !== "--batch" && a !== "--skip-column-names")].join(" ").replace(/^mariadb /, "mariadb-dump ");
        const repair = t.at("primary", ["sh", "-c", `${dump} mail accounts | ${client(PRIMARY, 3306).join(" ")} mail`]);
        expect(repair.code, repair.stderr).toBe(0);
        sql("primary", PRIMARY, `DELETE FROM accounts WHERE id > ${FIRST_ID}`);
        expect(sql("primary", PRIMARY, "SELECT COUNT(*) FROM accounts").trim()).toBe(String([...before.keys()].filter((id) => id <= FIRST_ID).length));
      } finally {
        writeFileSync(stopWriting, "");
        if (writer && writer.exitCode === null) await new Promise((r) => writer?.on("exit", r));
        if (existsSync(stopWriting)) spawnSync("rm", ["-f", stopWriting]);
        // The lab's hosts share this machine: the scratch server is stopped by the command the output gives.
        if (recovered) {
          const [cmd = "", ...args] = recovered.stop;
          spawnSync(cmd, args, { encoding: "utf8" });
          spawnSync("rm", ["-rf", "--", recovered.dataDir]);
        }
        stopped = t.at("primary", ["dcctl", "pitr", "stop", "--drop-slot"]);
      }
      expect(stopped.code, stopped.stderr).toBe(0);
      await t.standbysStreaming();
    }));
});
