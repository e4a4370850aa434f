import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readJournal, type JournalRecord } from "../../runbooks/engine/index.js";
import { mainJs as cli } from "../helpers/cli.js";
import { isRunning } from "../../util/process.js";
import { repoRoot } from "../../util/tools.js";
import { sharedLab } from "../helpers/lab.js";
import { until as untilAny } from "../helpers/until.js";

/** Waits as the shared helper does, with this file's own deadline. */
const until = <T>(what: string, probe: () => T | false | undefined, timeoutMs = 300_000): Promise<T> => untilAny(what, probe, timeoutMs);

/**
 * Losing the primary, on the lab the tests share, through the dcctl binary: the standbys replicate their primaries (lab up
 * sets them up) while the primary's portal keeps filing dossiers; the lag is read just before `lab fail primary`
 * cuts the WAN and freezes the site; the failover runs from the secondary's management host alone, promotes the
 * replicas, is SIGKILLed once they are promoted and finished by `dcctl dr resume` (no completed step runs again);
 * the portal then answers at the secondary, and the report states the data really lost (the last dossier that reached
 * the secondary against the last one written), no more than the lag showed. After `lab heal`, the failback brings a
 * dossier filed at the secondary during the outage back to the primary and rebuilds the standbys as its replicas:
 * the lab is as it was before, for the other files that share it.
 */
const t = sharedLab();
const runsDir = join(t.dir, "control", "secondary", "state", "dr", "runs");
const PRIMARY_APP = "10.10.30.21";
const SECONDARY_APP = "10.20.30.21";
const PRIMARY_DB = "10.10.20.11";
const SECONDARY_DB = "10.20.20.11";
const PRIMARY_MAIL = "10.10.20.12";

/** The processes below `pid`, from /proc: children first found through their parent's pid. */
function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ")".
      const stat = readFileSync(join("/proc", entry, "stat"), "utf8");
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // ended meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parentOf) {
      if (pp !== p) continue;
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const journal = (runId: string): JournalRecord[] => readJournal(join(runsDir, runId, "journal.jsonl")).records;
const endedOk = (j: JournalRecord[], step: string) => j.some((r) => r.type === "step-end" && r.step === step && r.status === "ok");

/** The number at the end of a dossier code (QN-2026-00001234 → 1234). */
const seq = (code: string) => Number(/(\d+)$/.exec(code)?.[1] ?? NaN);
const lastWritten = () => JSON.parse(readFileSync(join(t.dir, "run", "portal-last-written.json"), "utf8")) as { code: string; at: string };

const dnsOf = (name: string) =>
  readFileSync(join(t.dir, "dns", "hosts"), "utf8")
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] === name)
    .map((f) => f[0]);

interface Measured {
  service: string;
  rpoMinutes?: number;
  rtoMinutes?: number;
  rpoMet?: boolean;
  rtoMet?: boolean;
  measuredLossMinutes?: number;
  lostRecords?: number;
}
/** The report's measurements: per service, then "overall". */
function measurements(runId: string): Measured[] {
  const report = JSON.parse(readFileSync(join(runsDir, runId, "report.json"), "utf8")) as { measurements: { overall: Measured; services: Measured[] } };
  return [...report.measurements.services, { ...report.measurements.overall, service: "overall" }];
}

describe("losing the primary: failover from the secondary alone, then failback after the heal", () => {
  it("fails over with the primary frozen (killed after the restores, resumed), measures the loss, fails back", () => t.changing(async () => {
    t.ensureUp();
    t.freshBackups();
    const replicas = () => t.at("secondary", ["dcctl", "replication", "status", "--json"]);
    await t.standbysStreaming();

    expect(t.http("primary", `http://${PRIMARY_APP}:8080/health`).status).toBe(200);
    expect(dnsOf("portal.lab")).toEqual([PRIMARY_APP]);
    expect(t.vms("secondary")).not.toContain("lab-dr-app-01");

    // The portal goes on filing dossiers after the last replicated backup: these are what losing the site loses.
    const atReplicate = seq(lastWritten().code);
    await until("five more dossiers filed at the primary", () => (seq(lastWritten().code) >= atReplicate + 5 ? true : undefined), 60_000);

    // The live RPO just before the disaster, as the duty room's monitoring last saw it.
    const before = (JSON.parse(replicas().stdout) as { pair: string; lagSeconds: number }[]).find((p) => p.pair === "lab-dr-db-01");
    const lagBefore = before?.lagSeconds ?? Number.NaN;
    expect(lagBefore).toBeLessThan(5);
    const failedAt = new Date().toISOString();
    // The disaster: the primary's PostgreSQL is killed while the portal writes (SIGKILL of the server's whole process
    // group: no shutdown, no last WAL sent), then the site is lost.
    const primaryPg = t.state().services.find((s) => s.name === "postgresql lab-db-01")?.pid ?? 0;
    process.kill(-primaryPg, "SIGKILL");
    await until("lab-db-01's PostgreSQL to die", () => (!isRunning(primaryPg) ? true : undefined), 10_000);
    const fail = t.lab(["fail", "primary"]);
    expect(fail.code, fail.stderr).toBe(0);
    const lost = lastWritten();
    const status = JSON.parse(t.lab(["status", "--json"]).stdout) as { failed: string[] };
    expect(status.failed).toEqual(["primary"]);
    // A lost site does not refuse connections: they hang (here: cut off after 2 s by timeout, exit 124).
    const hang = t.at("secondary", ["timeout", "2", "bash", "-c", `exec 3<>/dev/tcp/${PRIMARY_DB}/5432`]);
    expect(hang.code).toBe(124);
    // Frozen, the primary's portal files nothing more.
    await sleep(1_000);
    expect(lastWritten()).toEqual(lost);

    // The failover, from the secondary's management host, in a process group of its own so that SIGKILL takes the
    // Pulumi engine it may have started too.
    const outFile = join(t.dir, "failover.out");
    const out = openSync(outFile, "w");
    const started = Date.now();
    const child = spawn(process.execPath, [cli, "lab", "exec", "secondary", "--", "dcctl", "dr", "failover", "--to", "secondary", "--runbook", join(t.dir, "runbooks", "failover.yaml"), "--failed-at", failedAt, "--yes"], {
      env: t.env,
      detached: true,
      stdio: ["ignore", out, out],
    });
    closeSync(out);
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    // The run folder appears a moment before its journal: wait for the journal itself.
    const runId = await until("the failover's journal", () => {
      if (child.exitCode !== null) throw new Error(`the failover ended (exit ${child.exitCode}) before it wrote a journal: ${readFileSync(outFile, "utf8")}`);
      return existsSync(runsDir) ? readdirSync(runsDir).find((d) => d.includes("failover") && existsSync(join(runsDir, d, "journal.jsonl"))) : undefined;
    });
    await until("both promotions to end", () => {
      if (child.exitCode !== null) throw new Error(`the failover ended (exit ${child.exitCode}) before it could be killed: ${readFileSync(outFile, "utf8")}`);
      const j = journal(runId);
      return endedOk(j, "promote-portal") && endedOk(j, "promote-mail") ? true : undefined;
    });
    // As if the DR runner died: the CLI and everything it started, also what runs in a process group of its own.
    const tree = descendants(child.pid ?? 0);
    process.kill(-(child.pid ?? 0), "SIGKILL");
    for (const pid of tree) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone with its group
      }
    }
    await exited;
    // The killed dcctl was the grandchild of this test: gone once it is dead or a zombie waiting for init.
    await until("the killed failover's processes to end", () => (tree.every((pid) => !isRunning(pid)) ? true : undefined), 10_000);

    const crashed = journal(runId);
    expect(crashed.some((r) => r.type === "run-end")).toBe(false);
    const doneBeforeKill = new Set(crashed.filter((r) => r.type === "step-end" && r.status === "ok").map((r) => (r as { step: string }).step));
    expect([...doneBeforeKill]).toEqual(expect.arrayContaining(["precheck", "fence-primary", "promote-portal", "promote-mail"]));
    // The fence found the primary gone, within its probe time, and went on.
    const fence = crashed.find((r) => r.type === "step-end" && r.step === "fence-primary") as { notes?: string[]; durationMs?: number } | undefined;
    expect(fence?.notes?.join("\n")).toMatch(/lab-db-01: unreachable .*no answer within 5000 ms.*fencing skipped/);
    expect(fence?.durationMs ?? 0).toBeLessThan(15_000);
    const history = JSON.parse(t.at("secondary", ["dcctl", "dr", "history", "--json"]).stdout) as { runId: string; status: string }[];
    expect(history.find((r) => r.runId === runId)?.status).toBe("interrupted");

    const resumed = t.at("secondary", ["dcctl", "dr", "resume", runId, "--yes"]);
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    const failoverSeconds = (Date.now() - started) / 1000;

    // No step that had ended well ran again after the resume; every step ended ok exactly once.
    const j = journal(runId);
    const resumeAt = j.findIndex((r) => r.type === "run-resume");
    expect(resumeAt).toBeGreaterThan(0);
    const startedAfterResume = j.slice(resumeAt).filter((r) => r.type === "step-start").map((r) => (r as { step: string }).step);
    expect(startedAfterResume.filter((s) => doneBeforeKill.has(s))).toEqual([]);
    const oks = j.filter((r) => r.type === "step-end" && r.status === "ok").map((r) => (r as { step: string }).step);
    expect(new Set(oks).size).toBe(oks.length);
    expect(oks.sort()).toEqual(["data-loss", "dns", "fence-primary", "infra-active", "notify", "precheck", "promote-mail", "promote-portal", "report", "start-portal", "verify-data", "verify-portal"]);
    expect(j[j.length - 1]).toMatchObject({ type: "run-end", status: "ok" });

    // The end state: served at the secondary, lab-dr-app-01 in its vCenter, DNS moved.
    const health = t.http("secondary", `http://${SECONDARY_APP}:8080/health`);
    expect(health.status).toBe(200);
    expect(t.vms("secondary")).toContain("lab-dr-app-01");
    expect(dnsOf("portal.lab")).toEqual([SECONDARY_APP]);

    // The data really lost: what the secondary's newest dossier lacks against the last one the primary wrote.
    const newest = t.psql("secondary", SECONDARY_DB, "SELECT code FROM dossiers ORDER BY id DESC LIMIT 1");
    expect(newest.code, newest.stderr).toBe(0);
    const lostRecords = seq(lost.code) - seq(newest.stdout.trim());
    // Promoted replicas lose what replication had not sent: no more than the lag showed (a dossier every 200 ms),
    // and the one write that may have been in flight when the site froze.
    expect(lostRecords).toBeGreaterThanOrEqual(0);
    expect(lostRecords).toBeLessThanOrEqual(Math.ceil(lagBefore / 0.2) + 1);
    const fo = measurements(runId);
    const portal = fo.find((m) => m.service === "portal");
    expect(portal?.lostRecords).toBe(lostRecords);
    // In time as in records: no more than the lag showed, and the one dossier that may have been in flight.
    expect((portal?.measuredLossMinutes ?? Number.NaN) * 60).toBeLessThanOrEqual(lagBefore + 0.25);
    expect(fo.every((m) => m.rtoMet)).toBe(true);
    const md = readFileSync(join(runsDir, runId, "report.md"), "utf8");
    expect(md).toMatch(/^# Failover .*: OK/);
    expect(md).toContain("the run was resumed 1 time");
    expect(md).toMatch(new RegExp(`## Measured data loss[\\s\\S]*\\| portal \\| [\\d.]+ min \\| ${lostRecords} \\|`));
    // Its primary killed, the replica was broken, yet newer than any snapshot: promoted, and the report says why.
    expect(md).toMatch(/## How each standby took over[\s\S]*\| lab-dr-db-01 \| lab-db-01 \| postgresql \| replica promoted \| [^|]+ \| replica broken \(.*\); its data as of .* is the newest there is \|/);
    expect(md).toMatch(/\| lab-dr-db-02 \| lab-db-02 \| mariadb \| replica promoted \|/);
    // RPO from the replica: the failure minus when it last heard from the primary, a fraction of the tier's 15 min.
    expect(portal?.rpoMinutes).toBeLessThan(0.5);
    expect(portal?.rpoMet).toBe(true);
    process.stdout.write(`failover ${runId}: ${failoverSeconds.toFixed(1)} s wall clock including the kill and the resume; lag before ${lagBefore.toFixed(2)} s; ${lostRecords} dossiers (${portal?.measuredLossMinutes} min) lost; RPO from the replica ${portal?.rpoMinutes} min\n`);

    // Written at the secondary during the outage: must be at the primary after the failback.
    const filed = t.psql("secondary", SECONDARY_DB, "INSERT INTO dossiers (id, code, citizen_name, citizen_id, procedure, agency, status, submitted_at, due_at) SELECT max(id) + 1, 'QN-2026-OUTAGE-01', 'Công dân', '000000000001', 'Cấp giấy phép', 'Sở Xây dựng', 'received', now(), now() FROM dossiers RETURNING code");
    expect(filed.code, filed.stderr).toBe(0);

    expect(t.lab(["heal"]).code).toBe(0);
    // The operators restart the server that was killed (crash recovery), as after any crash.
    const restarted = t.at("primary", [process.execPath, join(repoRoot, "dist", "lab", "dbctl.js"), "start", t.dir, "lab-db-01"]);
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(JSON.parse(t.lab(["status", "--json"]).stdout)).toMatchObject({ failed: [] });
    // Writes that reach the healed primary before the failback fences it: the portal's own (it files on), three
    // dossiers filed by hand, and a mail account at its MariaDB. The reprotect must not throw them away unnoticed.
    const healed = [1, 2, 3].map((n) => `QN-2026-HEALED-0${n}`);
    // One transaction each, as the reprotect counts them; ids a million apart, since the portal files on with
    // max(id) + 1 and would take the next one before the next hand-written row.
    for (const [i, code] of healed.entries()) {
      const w = t.psql("primary", PRIMARY_DB, `INSERT INTO dossiers (id, code, citizen_name, citizen_id, procedure, agency, status, submitted_at, due_at) VALUES (${900_000_001 + i * 1_000_000}, '${code}', 'Công dân', '000000000002', 'Cấp giấy phép', 'Sở Xây dựng', 'received', now(), now())`);
      expect(w.code, w.stderr).toBe(0);
    }
    const mail = t.at("primary", ["mariadb", `--defaults-extra-file=${join(t.dir, "secrets", "mariadb.cnf")}`, "--protocol=TCP", "-h", PRIMARY_MAIL, "-D", "mail", "-e", "INSERT INTO accounts VALUES (900000001, 'healed@lab.example', 'Healed', 'Lab', 100, 0, NOW(), 1)"]);
    expect(mail.code, mail.stderr).toBe(0);

    // The failback is a reprotect (the healed primary wound back onto the secondary) and a planned switchover. The
    // healed primary holds writes past the fork: without --discard-diverged it stops (exit 5) once fenced, naming
    // them and where they are kept, and changes nothing else of it.
    const atSecondary = t.psql("secondary", SECONDARY_DB, "SELECT count(*), max(id) FROM dossiers").stdout.trim();
    const refusedAt = Date.now();
    const refused = t.at("secondary", ["dcctl", "dr", "failback", "--to", "primary", "--runbook", join(t.dir, "runbooks", "failback.yaml"), "--yes"]);
    const refusedSeconds = (Date.now() - refusedAt) / 1000;
    expect(refused.code, refused.stdout + refused.stderr).toBe(5);
    // One line says it all, and it is the last.
    const stderrLines = refused.stderr.split("\n").filter((l) => l.trim() !== "");
    const refusal = stderrLines.filter((l) => l.includes("--discard-diverged"));
    expect(refusal).toHaveLength(1);
    expect(stderrLines[stderrLines.length - 1]).toBe(refusal[0]);
    expect(refusal[0]).toMatch(/lab-db-01 holds (\d+) writes written \S+ – \S+ past where its new primary's history forked \(LSN [0-9A-F/]+ on timeline 1; .*a copy is kept in \S+\/diverged\/lab-db-01/);
    expect(refusal[0]).toMatch(/lab-db-02 holds 1 write written .* a copy is kept in \S+\/diverged\/lab-db-02.*--discard-diverged/);
    // Fenced and measured, nothing more: what the primary holds is still there.
    const codes = (site: "primary" | "secondary", address: string) => new Set(t.psql(site, address, "SELECT code FROM dossiers").stdout.split("\n").filter(Boolean));
    const atPrimaryCodes = codes("primary", PRIMARY_DB);
    const secondaryCodes = codes("secondary", SECONDARY_DB);
    const diverged = [...atPrimaryCodes].filter((c) => !secondaryCodes.has(c));
    expect(diverged).toEqual(expect.arrayContaining(healed));
    // Every one is counted: the failover's lost dossiers, the portal's after the heal, the three by hand.
    expect(refusal[0]).toContain(`lab-db-01 holds ${diverged.length} writes`);
    const keptPg = /a copy is kept in (\S+\/diverged\/lab-db-01)/.exec(refusal[0] ?? "")?.[1] ?? "";
    const keptMail = /a copy is kept in (\S+\/diverged\/lab-db-02)/.exec(refusal[0] ?? "")?.[1] ?? "";
    // The kept copy holds them: each diverged dossier in the rows dump and the WAL (the segments, as files, and their
    // decode); the mail account in the binary log's decode.
    const rows = readFileSync(join(keptPg, "rows-portal.public.dossiers.csv"), "utf8");
    for (const code of diverged) expect(rows).toContain(code);
    expect(rows.split("\n").filter(Boolean)).toHaveLength(diverged.length + 1);
    const keptFiles = readdirSync(keptPg);
    expect(keptFiles).toEqual(expect.arrayContaining(["waldump.txt", expect.stringMatching(/^wal-00000001-from-.*\.tar\.gz$/)]));
    const walTar = spawnSync("tar", ["-xzOf", join(keptPg, keptFiles.find((f) => f.endsWith(".tar.gz")) ?? "")], { maxBuffer: 1 << 30 });
    expect(walTar.status).toBe(0);
    for (const code of healed) expect(walTar.stdout.includes(Buffer.from(code))).toBe(true);
    expect(readFileSync(join(keptMail, "binlog-decode.sql"), "utf8")).toContain("healed@lab.example");
    const [firstFiled = NaN, lastFiled = NaN] = t
      .psql("primary", PRIMARY_DB, `SELECT extract(epoch FROM min(submitted_at)) * 1000, extract(epoch FROM max(submitted_at)) * 1000 FROM dossiers WHERE code IN (${diverged.map((c) => `'${c}'`).join(",")})`)
      .stdout.trim()
      .split("|")
      .map(Number);
    const keptBytes = [keptPg, keptMail].flatMap((d) => readdirSync(d).map((f) => statSync(join(d, f)).size)).reduce((a, b) => a + b, 0);

    const back = t.at("secondary", ["dcctl", "dr", "failback", "--to", "primary", "--runbook", join(t.dir, "runbooks", "failback.yaml"), "--discard-diverged", "--yes"]);
    expect(back.code, back.stdout + back.stderr).toBe(0);
    // Every dossier the secondary held is at the primary: nothing written there during the outage was lost.
    expect(t.psql("primary", PRIMARY_DB, `SELECT count(*), max(id) FROM dossiers WHERE id <= ${atSecondary.split("|")[1] ?? 0}`).stdout.trim()).toBe(atSecondary);
    // What the healed primary held past the fork is gone from it, as told.
    expect(t.psql("primary", PRIMARY_DB, "SELECT count(*) FROM dossiers WHERE code LIKE 'QN-2026-HEALED-%'").stdout.trim()).toBe("0");
    const fbRun = (JSON.parse(t.at("secondary", ["dcctl", "dr", "history", "--json"]).stdout) as { runId: string; kind: string; status: string }[]).find((r) => r.kind === "failback" && r.status === "ok")?.runId ?? "";
    const fbMd = readFileSync(join(runsDir, fbRun, "report.md"), "utf8");
    expect(fbMd).toMatch(/^# Failback .*: OK/);
    expect(fbMd).toMatch(/Planned switchover: writes stopped at .* until service was verified again/);
    expect(fbMd).toMatch(/\| lab-db-01 \| lab-dr-db-01 \| postgresql \| replica promoted \| .* \| replica caught up with the fenced primary/);
    expect(fbMd).toMatch(/\*\*reprotect-portal-db\*\*\n- lab-db-01: rewound, following lab-dr-db-01/);
    // The report counts what was discarded, when it was written, and where the copy is.
    const fbDir = join(runsDir, fbRun, "diverged").replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    expect(fbMd).toMatch(new RegExp(`## Writes discarded by the reprotect[\\s\\S]*\\| portal \\| \\*\\*${diverged.length}\\*\\* \\| \\S+ \\| \\S+ \\| \`${fbDir}/lab-db-01\` \\|`));
    expect(fbMd).toMatch(new RegExp(`\\| mail \\| \\*\\*1\\*\\* \\| \\S+ \\| \\S+ \\| \`${fbDir}/lab-db-02\` \\|`));
    expect(fbMd).toContain(`portal: ${diverged.length} writes held by a former primary past the fork were discarded`);
    expect(readFileSync(join(runsDir, fbRun, "diverged", "lab-db-01", "rows-portal.public.dossiers.csv"), "utf8")).toContain(healed[2]);
    const discarded = measurements(fbRun).find((m) => m.service === "portal") as Measured & { discardedWrites?: number; discardedFrom?: string; discardedTo?: string };
    expect(discarded.discardedWrites).toBe(diverged.length);
    // The time range is the dossiers' own: the first lost one's filing to the last one filed by hand.
    expect(Math.abs(Date.parse(discarded.discardedFrom ?? "") - firstFiled)).toBeLessThan(5_000);
    expect(Math.abs(Date.parse(discarded.discardedTo ?? "") - lastFiled)).toBeLessThan(5_000);
    process.stdout.write(
      `reprotect: ${diverged.length} dossiers past the fork (${healed.length} by hand) and 1 mail account counted, written ${discarded.discardedFrom} – ${discarded.discardedTo}; kept ${keptBytes} bytes; refusal took ${refusedSeconds.toFixed(1)} s\n`,
    );
    const fb = measurements(fbRun);
    expect(fb.find((m) => m.service === "portal")?.rpoMinutes).toBe(0);
    const atPrimary = t.psql("primary", PRIMARY_DB, "SELECT code FROM dossiers WHERE code = 'QN-2026-OUTAGE-01'");
    expect(atPrimary.stdout.trim()).toBe("QN-2026-OUTAGE-01");
    expect(t.http("primary", `http://${PRIMARY_APP}:8080/dossiers/QN-2026-OUTAGE-01`).status).toBe(200);
    expect(t.http("secondary", `http://${SECONDARY_APP}:8080/health`).status).toBe(0);
    expect(t.vms("secondary")).not.toContain("lab-dr-app-01");
    expect(dnsOf("portal.lab")).toEqual([PRIMARY_APP]);
    // Reprotected: both standbys replicate the primary again, the outage's dossier included.
    const again = replicas();
    expect(again.code, again.stdout + again.stderr).toBe(0);
    await until("the outage's dossier at the rebuilt standby", () => (t.psql("secondary", SECONDARY_DB, "SELECT code FROM dossiers WHERE code = 'QN-2026-OUTAGE-01'").stdout.trim() === "QN-2026-OUTAGE-01" ? true : undefined), 60_000);
  }), 1_800_000);
});
