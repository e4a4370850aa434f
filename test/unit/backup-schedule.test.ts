import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadSites } from "../../inventory/index.js";
import { expandJobs } from "../../backup/jobs.js";
import { loadPolicies, parsePolicies } from "../../backup/policies.js";
import { matches, nextRun, parseCron, toOnCalendar } from "../../backup/cron.js";
import { renderCrontab, renderSystemd, siteSchedule, unitName, writeSchedule } from "../../backup/schedule.js";
import { systemdNextElapse } from "../../backup/systemd-calendar.js";
import { archivedDatabases } from "../../backup/pitr.js";
import { InputError } from "../../util/errors.js";
import { repoRoot } from "../../util/tools.js";
import { dcctl as runDcctl } from "../helpers/cli.js";

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

  it("refuses an expression that never fires, and keeps those that fire rarely or by weekday", () => {
    expect(() => parseCron("0 0 31 2 *")).toThrow(/never fires: day-of-month 31 does not occur in month 2/);
    expect(() => parseCron("0 0 30,31 2 *")).toThrow(/never fires/);
    expect(() => parseCron("0 0 31 4,6,9,11 *")).toThrow(/never fires/);
    expect(nextRun(parseCron("0 0 29 2 *"), new Date(2026, 0, 1)).getFullYear()).toBe(2028);
    expect(nextRun(parseCron("0 0 31 1-2 *"), new Date(2026, 0, 1)).getMonth()).toBe(0);
    // Both day fields restricted: cron fires on either, so February's Mondays; systemd gets no dead 31 Feb line.
    expect(toOnCalendar(parseCron("0 0 31 2 mon"))).toEqual(["Mon *-02-* 00:00:00"]);
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
  const policies = loadPolicies();
  const jobs = expandJobs(loadSites(), policies);
  const dcctl = ["/usr/bin/node", "/opt/dcctl/dist/cli/main.js"];

  it("writes a .service and a .timer per job whose OnCalendar is the policy's cron", () => {
    const tasks = siteSchedule("primary", jobs, policies);
    const files = renderSystemd(tasks, { dcctl, env: { DCCTL_REPOS_FILE: "/etc/dcctl/repositories.yaml" } });
    expect(files).toHaveLength(tasks.length * 2);
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

  it("schedules each site's whole cycle: its jobs, replicate at the primary only, prune and verify of its own repository", () => {
    const execs = (site: "primary" | "secondary") => {
      const files = renderSystemd(siteSchedule(site, jobs, policies), { dcctl });
      const units = new Map(files.map((f) => [f.name, parseUnit(f.content)]));
      // Every timer persistent and naming its service; every service waits for the locks like the backups do.
      for (const [name, unit] of units) {
        if (name.endsWith(".timer")) {
          expect(unit.get("Timer")?.get("Persistent"), name).toEqual(["true"]);
          expect(unit.get("Timer")?.get("Unit"), name).toEqual([name.replace(/\.timer$/, ".service")]);
        } else if (name !== "dcctl-events-send.service") expect(unit.get("Service")?.get("ExecStart")?.[0], name).toMatch(/ --wait 600$/);
      }
      return new Map([...units].filter(([n]) => n.endsWith(".service")).map(([n, u]) => [n.replace(/\.service$/, ""), u.get("Service")?.get("ExecStart")?.[0]?.replace(`${dcctl.join(" ")} `, "")]));
    };
    const primary = execs("primary");
    expect(primary.get("dcctl-replicate-secondary")).toBe("backup replicate --to secondary --wait 600");
    expect(primary.get("dcctl-prune-primary")).toBe("backup prune --wait 600");
    expect(primary.get("dcctl-verify-primary")).toBe('backup verify --repository primary --subset "10%%" --wait 600');
    expect([...primary.keys()].filter((n) => n.startsWith("dcctl-backup-"))).toHaveLength(jobs.filter((j) => j.site === "primary").length);
    // The SOC feed's spool, every minute, at each site.
    expect(primary.get("dcctl-events-send")).toBe("events send");
    const secondary = execs("secondary");
    expect(secondary.get("dcctl-events-send")).toBe("events send");
    expect(secondary.has("dcctl-replicate-secondary")).toBe(false);
    expect(secondary.get("dcctl-prune-secondary")).toBe("backup prune --wait 600");
    expect(secondary.get("dcctl-verify-secondary")).toBe('backup verify --repository secondary --subset "10%%" --wait 600');
    expect([...secondary.keys()].filter((n) => n.startsWith("dcctl-backup-"))).toHaveLength(jobs.filter((j) => j.site === "secondary").length);
    expect(secondary.size).toBeGreaterThan(2);
  });

  it("schedules the point-in-time archive at both sites: a minute's upkeep, and each archived server's base backups on its policy's pitr", () => {
    const sites = loadSites();
    const archived = archivedDatabases(sites, jobs);
    // The PostgreSQL and MariaDB servers under db-hourly (pitr:), not a standby of one: its changes are its primary's.
    const expected = jobs.filter((j) => j.policy === "db-hourly" && sites.primary.hosts.concat(sites.secondary.hosts).some((h) => h.name === j.host && (h.services.includes("postgresql") || h.services.includes("mariadb")) && !h.standbyFor)).map((j) => j.host);
    expect([...new Set(archived.map((a) => a.host.name))]).toEqual(expected);
    expect(expected.length).toBeGreaterThan(0);
    for (const site of ["primary", "secondary"] as const) {
      const tasks = siteSchedule(site, jobs.filter((j) => j.site === site), policies, archived);
      const maintain = tasks.find((t) => t.name === "dcctl-pitr-maintain");
      expect([maintain?.args, maintain?.schedule]).toEqual([["pitr", "maintain"], "* * * * *"]);
      for (const a of archived) {
        const base = tasks.find((t) => t.name === `dcctl-pitr-base-${a.host.name}`);
        expect([base?.args, base?.schedule, base?.at]).toEqual([["pitr", "base-backup", "--host", a.host.name], "15 0 * * *", expect.stringMatching(/policies\.yaml:\d+$/)]);
      }
    }
    // Without an archived server, nothing of it is scheduled.
    expect(siteSchedule("primary", jobs, policies).some((t) => t.name.startsWith("dcctl-pitr-"))).toBe(false);
  });

  it("systemd-analyze accepts every OnCalendar= that `backup schedule` writes, each timer firing within a year", () => {
    // systemd is in scripts/setup.sh's packages: without systemd-analyze this fails rather than passing unchecked.
    const version = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" });
    expect(version.status, "systemd-analyze (Debian package systemd) is missing: run scripts/setup.sh").toBe(0);
    const inAYear = Date.now() + 366 * 24 * 3600_000;
    for (const site of ["primary", "secondary"]) {
      const out = join(work, `cycle-${site}`);
      const run = runDcctl(["backup", "schedule", "--emit", "systemd", "--site", site, "--out", out]);
      expect(run.code, run.stderr).toBe(0);
      const timers = readdirSync(out).filter((f) => f.endsWith(".timer"));
      expect(timers, site).toEqual(expect.arrayContaining([`dcctl-prune-${site}.timer`, `dcctl-verify-${site}.timer`]));
      expect(timers.includes("dcctl-replicate-secondary.timer"), site).toBe(site === "primary");
      for (const timer of timers) {
        const calendars = parseUnit(readFileSync(join(out, timer), "utf8")).get("Timer")?.get("OnCalendar") ?? [];
        expect(calendars.length, timer).toBeGreaterThan(0);
        const next: number[] = [];
        for (const calendar of calendars) {
          const cal = spawnSync("systemd-analyze", ["calendar", calendar], { encoding: "utf8", env: { ...process.env, LC_ALL: "C", TZ: "UTC" } });
          expect(cal.status, `${timer}: OnCalendar=${calendar}: ${cal.stderr}`).toBe(0);
          const at = /Next elapse: \w+ (\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) UTC/.exec(cal.stdout);
          if (at) next.push(Date.parse(`${at[1] ?? ""}T${at[2] ?? ""}Z`));
        }
        expect(Math.min(...next), `${timer}: ${calendars.join(" / ")}`).toBeLessThan(inAYear);
      }
      // The units themselves, as systemd would load them (ExecStart must name a real program for verify).
      const verifyDir = join(work, `verify-${site}`);
      const files = renderSystemd(
        siteSchedule(site as "primary" | "secondary", jobs, policies).filter((t) => !t.name.startsWith("dcctl-backup-") || t.name.endsWith("db-hourly")),
        { dcctl: [process.execPath, "/dev/null"] },
      );
      const paths = writeSchedule(verifyDir, files);
      const verified = spawnSync("systemd-analyze", ["verify", "--man=no", ...paths], { encoding: "utf8", env: { ...process.env, SYSTEMD_LOG_LEVEL: "warning" } });
      expect(verified.stderr.split("\n").filter((l) => l.includes(verifyDir))).toEqual([]);
    }
    // The helper `backup schedule` asks agrees with systemd on a date that never comes.
    return systemdNextElapse("*-02-31 00:00:00").then((v) => expect(v).toEqual({ never: true }));
  });

  it("refuses a schedule that never fires at its file:line, exit 2, one line, writing nothing", () => {
    const file = join(work, "never.yaml");
    const text = readFileSync(join(repoRoot, "backup", "policies.yaml"), "utf8");
    for (const [what, bad, line] of [
      ["cycle.prune.schedule", text.replace('prune: { schedule: "40 4 * * *" }', 'prune: { schedule: "0 0 31 2 *" }'), text.split("\n").findIndex((l) => l.includes("prune: {")) + 1],
      ["policy db-daily: schedule", text.replace('schedule: "30 1 * * *"', 'schedule: "0 0 31 2 *"'), text.split("\n").findIndex((l) => l.includes('schedule: "30 1 * * *"')) + 1],
    ] as const) {
      expect(bad).not.toBe(text);
      writeFileSync(file, bad);
      const out = join(work, "never-out");
      const run = runDcctl(["backup", "schedule", "--emit", "cron", "--site", "primary", "--out", out], { ...process.env, DCCTL_POLICIES_FILE: file, DCCTL_DEBUG: "" });
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr.split("\n").filter(Boolean)).toEqual([expect.stringMatching(new RegExp(`^\\S*never\\.yaml:${line}: ${what}: cron expression "0 0 31 2 \\*" never fires`))]);
      expect(existsSync(out)).toBe(false);
    }
    expect(() => parsePolicies(file, text.replace('subset: "10%"', 'subset: "0%"'))).toThrow(InputError);
    expect(() => parsePolicies(file, text.replace("verify: {", "verify: { every: 1,"))).toThrow(/unknown field "every"/);
    // Every field of the cycle has a default: a file without `cycle:` schedules the same.
    const withoutCycle = text.replace(/^cycle:\n( {2}.*\n)+/m, "");
    expect(withoutCycle).not.toMatch(/^cycle:|prune: \{/m);
    const bare = parsePolicies(file, withoutCycle);
    expect(bare.cycle).toMatchObject({ replicate: { schedule: "20 * * * *" }, prune: { schedule: "40 4 * * *" }, verify: { schedule: "10 5 * * 0", subset: "10%" } });
    expect(loadPolicies().cycle.prune.at()).toMatch(/policies\.yaml:\d+$/);
  });

  it("writes a crontab with one line per job and the cycle's", () => {
    const tasks = siteSchedule("primary", jobs, policies);
    const [file] = renderCrontab(tasks, { dcctl, logDir: "/var/lib/dcctl/backup/logs" });
    const lines = (file?.content ?? "").split("\n").filter((l) => l && !l.startsWith("#") && !l.includes("="));
    expect(lines).toHaveLength(jobs.filter((j) => j.site === "primary").length + 4);
    for (const line of lines) {
      const fields = line.split(/\s+/);
      expect(() => parseCron(fields.slice(0, 5).join(" "))).not.toThrow();
      expect(fields.slice(5, 8)).toEqual([...dcctl, line.includes(" events send ") ? "events" : "backup"]);
      // Output kept in a log per task, never thrown away.
      expect(line).not.toContain("/dev/null");
      expect(fields.slice(-2)).toEqual([expect.stringMatching(/^>>\/var\/lib\/dcctl\/backup\/logs\/dcctl-.+\.log$/), "2>&1"]);
    }
    expect(lines.filter((l) => / backup run --job .* --wait 600 /.test(l))).toHaveLength(jobs.filter((j) => j.site === "primary").length);
    expect(lines).toContainEqual(expect.stringMatching(/^20 \* \* \* \* .* backup replicate --to secondary --wait 600 >>.*dcctl-replicate-secondary\.log 2>&1$/));
    expect(lines).toContainEqual(expect.stringMatching(/^\* \* \* \* \* .* events send >>.*dcctl-events-send\.log 2>&1$/));
    expect(lines).toContainEqual(expect.stringMatching(/^10 5 \* \* 0 .* backup verify --repository primary --subset 10\\% --wait 600 /));
    writeSchedule(join(work, "cron"), [file ?? { name: "x", content: "" }]);
    expect(readFileSync(join(work, "cron", "dcctl-backup.crontab"), "utf8")).toContain("5 * * * * /usr/bin/node");
  });
});
