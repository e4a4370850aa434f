import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadSites } from "../../inventory/index.js";
import { expandJobs } from "../../backup/jobs.js";
import { loadPolicies } from "../../backup/policies.js";
import { matches, nextRun, parseCron, renderCrontab, renderSystemd, toOnCalendar, unitName, writeSchedule } from "../../backup/schedule.js";

const work = mkdtempSync(join(tmpdir(), "dcctl-schedule-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A systemd unit file as sections of key → values (keys may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const line of text.split("\n")) {
    if (!line.trim() || line.startsWith("#")) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1] ?? "", current);
      continue;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || !current) throw new Error(`not a unit line: ${line}`);
    current.set(kv[1] ?? "", [...(current.get(kv[1] ?? "") ?? []), kv[2] ?? ""]);
  }
  return sections;
}

describe("cron expressions", () => {
  it("parses fields, ranges, lists, steps, names and macros", () => {
    const c = parseCron("*/15 8-18/2 1,15 jan-mar mon-fri");
    expect(c.minute.values).toEqual([0, 15, 30, 45]);
    expect(c.hour.values).toEqual([8, 10, 12, 14, 16, 18]);
    expect(c.month.values).toEqual([1, 2, 3]);
    expect(c.dayOfWeek.values).toEqual([1, 2, 3, 4, 5]);
    expect(parseCron("0 0 * * 7").dayOfWeek.values).toEqual([0]);
    expect(parseCron("@daily").hour.values).toEqual([0]);
    expect(() => parseCron("60 * * * *")).toThrow(/minute 60 is out of range/);
    expect(() => parseCron("* * * *")).toThrow(/4 fields/);
    expect(() => parseCron("5-1 * * * *")).toThrow(/backwards/);
    expect(() => parseCron("*/0 * * * *")).toThrow(/step/);
  });

  it("converts to OnCalendar, keeping cron's day-of-month OR day-of-week rule", () => {
    expect(toOnCalendar(parseCron("5 * * * *"))).toEqual(["*-*-* *:05:00"]);
    expect(toOnCalendar(parseCron("30 1 * * *"))).toEqual(["*-*-* 01:30:00"]);
    expect(toOnCalendar(parseCron("0 3 * * 0"))).toEqual(["Sun *-*-* 03:00:00"]);
    expect(toOnCalendar(parseCron("*/20 2 1 * *"))).toEqual(["*-*-01 02:00,20,40:00"]);
    expect(toOnCalendar(parseCron("0 4 1 * mon"))).toEqual(["*-*-01 04:00:00", "Mon *-*-* 04:00:00"]);
  });

  it("computes the next run", () => {
    const c = parseCron("30 1 * * *");
    const next = nextRun(c, new Date(2026, 0, 1, 1, 30, 0));
    expect([next.getDate(), next.getHours(), next.getMinutes()]).toEqual([2, 1, 30]);
    expect(matches(parseCron("0 4 1 * mon"), new Date(2026, 0, 5, 4, 0))).toBe(true); // a Monday, not the 1st
  });
});

describe("dcctl schedule rendering", () => {
  const jobs = expandJobs(loadSites(), loadPolicies());
  const dcctl = ["/usr/bin/node", "/opt/dcctl/dist/cli/main.js"];

  it("writes a .service and a .timer per job whose OnCalendar is the policy's cron", () => {
    const files = renderSystemd(jobs, { dcctl, env: { DCCTL_REPOS_FILE: "/etc/dcctl/repositories.yaml" } });
    expect(files).toHaveLength(jobs.length * 2);
    const job = jobs.find((j) => j.id === "qn-db-01/db-hourly");
    if (!job) throw new Error("no job");
    const timer = parseUnit(files.find((f) => f.name === `${unitName(job)}.timer`)?.content ?? "");
    expect(timer.get("Timer")?.get("OnCalendar")).toEqual(["*-*-* *:05:00"]);
    expect(timer.get("Timer")?.get("RandomizedDelaySec")).toEqual(["300"]);
    expect(timer.get("Timer")?.get("Persistent")).toEqual(["true"]);
    expect(timer.get("Timer")?.get("Unit")).toEqual([`${unitName(job)}.service`]);
    const service = parseUnit(files.find((f) => f.name === `${unitName(job)}.service`)?.content ?? "");
    expect(service.get("Service")?.get("Type")).toEqual(["oneshot"]);
    expect(service.get("Service")?.get("ExecStart")).toEqual(["/usr/bin/node /opt/dcctl/dist/cli/main.js backup run --job qn-db-01/db-hourly --wait 600"]);
    // A job that is always locked (exit 3) must fail its unit, not look healthy.
    expect(service.get("Service")?.get("SuccessExitStatus")).toBeUndefined();
    expect(service.get("Service")?.get("Environment")).toEqual(["DCCTL_REPOS_FILE=/etc/dcctl/repositories.yaml"]);
  });

  it("passes systemd-analyze verify (when systemd is installed)", () => {
    const analyze = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" });
    if (analyze.status !== 0) return;
    const dir = join(work, "systemd");
    // ExecStart must name an existing executable for verify: use this node and a real path.
    writeSchedule(dir, renderSystemd(jobs.slice(0, 3), { dcctl: [process.execPath, "/dev/null"] }));
    const units = jobs.slice(0, 3).flatMap((j) => [join(dir, `${unitName(j)}.timer`), join(dir, `${unitName(j)}.service`)]);
    expect(units.every((u) => existsSync(u))).toBe(true);
    const res = spawnSync("systemd-analyze", ["verify", "--man=no", ...units], { encoding: "utf8", env: { ...process.env, SYSTEMD_LOG_LEVEL: "warning" } });
    const complaints = res.stderr.split("\n").filter((l) => l.includes(dir));
    expect(complaints).toEqual([]);
    for (const c of ["5 * * * *", "30 1 * * *", "0 3 * * 0", "0 4 1 * mon", "*/20 2 1 jan-mar *"]) {
      for (const expr of toOnCalendar(parseCron(c))) {
        const cal = spawnSync("systemd-analyze", ["calendar", expr], { encoding: "utf8" });
        expect(cal.status, `${expr}: ${cal.stderr}`).toBe(0);
      }
    }
  });

  it("writes a crontab with one line per job", () => {
    const [file] = renderCrontab(jobs, { dcctl, logDir: "/var/lib/dcctl/backup/logs" });
    const lines = (file?.content ?? "").split("\n").filter((l) => l && !l.startsWith("#") && !l.includes("="));
    expect(lines).toHaveLength(jobs.length);
    for (const line of lines) {
      const fields = line.split(/\s+/);
      expect(() => parseCron(fields.slice(0, 5).join(" "))).not.toThrow();
      expect(fields.slice(5, 10)).toEqual([...dcctl, "backup", "run", "--job"]);
      // Output kept in a log per job, never thrown away.
      expect(line).not.toContain("/dev/null");
      expect(fields.slice(-2)).toEqual([expect.stringMatching(/^>>\/var\/lib\/dcctl\/backup\/logs\/dcctl-backup-.+\.log$/), "2>&1"]);
    }
    writeSchedule(join(work, "cron"), [file ?? { name: "x", content: "" }]);
    expect(readFileSync(join(work, "cron", "dcctl-backup.crontab"), "utf8")).toContain("5 * * * * /usr/bin/node");
  });
});
