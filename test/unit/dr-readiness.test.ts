import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { expandJobs, type BackupJob } from "../../backup/jobs.js";
import { loadPolicies } from "../../backup/policies.js";
import type { PairStatus } from "../../backup/replication/index.js";
import { parsePrometheus } from "../../backup/report.js";
import { Restic } from "../../restic/index.js";
import type { JobStatusRow } from "../../backup/status.js";
import { lastVerify } from "../../backup/verify-record.js";
import { loadSiteFile, loadSites, type Sites } from "../../inventory/index.js";
import type { Measurement } from "../../runbooks/engine/measure.js";
import { parseRunbook, silentProgress, startRun, type DrServices } from "../../runbooks/engine/index.js";
import { failoverData, readiness, renderReadinessMetrics, type DrillRun, type ReadinessInput, type ServiceReadiness } from "../../runbooks/engine/readiness.js";
import { InputError } from "../../util/errors.js";
import { repoRoot } from "../../util/tools.js";
import { dcctl } from "../helpers/cli.js";

/**
 * `dcctl dr readiness`: the verdict per service from fixture inputs over the lab's inventory (what the lab check
 * will see), the metrics text, and the command end to end through the built CLI with a real restic repository, real
 * backup runs and a drill run by the engine (its outside world faked), plus the verify record and drillEveryDays.
 */

const NOW = new Date("2026-11-22T06:00:00Z");
const DAY = 86_400_000;
const ago = (days: number) => new Date(NOW.getTime() - days * DAY).toISOString();

const sites = loadSites(join(repoRoot, "lab", "sites"));
const jobs = expandJobs(sites, loadPolicies(join(repoRoot, "backup", "policies.yaml")));

function okRow(j: BackupJob): JobStatusRow {
  return { job: j.id, host: j.host, site: j.site, repository: j.repository, rpoMinutes: j.rpoMinutes, state: "ok", ageMinutes: 20, items: [{ item: "files", state: "ok", ageMinutes: 20 }], lastRun: "ok at 2026-11-22T05:40:00Z" };
}

function pair(standby: string, primary: string, over: Partial<PairStatus> = {}): PairStatus {
  return { pair: standby, engine: standby === "lab-dr-db-01" ? "postgresql" : "mariadb", primary, standby, tier: 1, rpoSeconds: 900, health: "streaming", lagSeconds: 0.4, primaryAnswered: true, notes: [], measuredAt: NOW.toISOString(), overRpo: false, ok: true, ...over };
}

function measured(service: string, tier: number, rpo: number, rto: number): Measurement {
  const target = tier === 1 ? { rpo: 15, rto: 60 } : { rpo: 240, rto: 240 };
  return { service, tier, rpoMinutes: rpo, rpoTargetMinutes: target.rpo, rtoMinutes: rto, rtoTargetMinutes: target.rto, rpoMet: rpo <= target.rpo, rtoMet: rto <= target.rto };
}

/** A lab drill as loadDrillRuns reads it: portal restored from lab-db-01, mail from lab-db-02. */
function drill(runId: string, daysAgo: number, portal = measured("portal", 1, 2.5, 4), mail = measured("mail", 2, 2.5, 4), over: Partial<DrillRun> = {}): DrillRun {
  return { runId, runbook: "lab-drill", kind: "drill", to: "secondary", at: ago(daysAgo), status: "ok", dir: `/state/dr/runs/${runId}`, measurements: [portal, mail], recovers: { portal: ["lab-db-01"], mail: ["lab-db-02"] }, ...over };
}

function input(over: Partial<ReadinessInput> = {}): ReadinessInput {
  return {
    sites,
    jobs,
    backup: jobs.map(okRow),
    replicas: [pair("lab-dr-db-01", "lab-db-01"), pair("lab-dr-db-02", "lab-db-02", { tier: 2, rpoSeconds: 14_400 })],
    drills: [drill("20261112T060000Z-drill-aaaa", 10)],
    now: NOW,
    ...over,
  };
}

const byName = (list: ServiceReadiness[]) => new Map(list.map((s) => [s.service, s]));
const get = (list: ServiceReadiness[], service: string): ServiceReadiness => {
  const s = byName(list).get(service);
  if (!s) throw new Error(`no service ${service} in ${list.map((x) => x.service).join(", ")}`);
  return s;
};

describe("readiness from fixture inputs (the lab's inventory)", () => {
  it("a service with everything in place is ready; its protection and drills are spelt out", () => {
    const list = readiness(input());
    // The management host's rest-server/restic/dcctl are not services to fail over; mail is a runbook label only.
    expect(list.map((s) => s.service)).toEqual(["portal", "postgresql", "mail", "mariadb"]);
    for (const s of list) expect([s.service, s.reasons]).toEqual([s.service, []]);
    const portal = get(list, "portal");
    expect(portal).toMatchObject({
      tier: 1,
      hosts: ["lab-app-01", "lab-app-02", "lab-db-01"],
      ready: true,
      protection: { backupPolicy: true, standbyCapacity: true, standbyHosts: ["lab-dr-app-01", "lab-dr-db-01"], replicas: [{ standby: "lab-dr-db-01", primary: "lab-db-01", health: "streaming", lagSeconds: 0.4, ok: true }] },
      drillEveryDays: 90,
      drillDueAt: new Date(Date.parse(ago(10)) + 90 * DAY).toISOString(),
      overdue: false,
      brokenJobs: [],
    });
    expect(portal.lastGoodDrill).toEqual({ runId: "20261112T060000Z-drill-aaaa", kind: "drill", runbook: "lab-drill", at: ago(10), status: "ok", tier: 1, rpoMinutes: 2.5, rtoMinutes: 4, rpoTargetMinutes: 15, rtoTargetMinutes: 60, rpoMet: true, rtoMet: true, measurements: ["portal"], dir: "/state/dr/runs/20261112T060000Z-drill-aaaa" });
    expect(portal.lastDrill).toEqual(portal.lastGoodDrill);
    // PostgreSQL is proven by the portal's restore from lab-db-01; the mail label's host is the one it restored.
    expect(get(list, "postgresql").lastGoodDrill?.measurements).toEqual(["portal"]);
    expect(get(list, "mail")).toMatchObject({ tier: 2, hosts: ["lab-db-02"], drillEveryDays: 180, protection: { standbyHosts: ["lab-dr-db-02"] } });
  });

  it("never drilled: not ready, overdue, no due date", () => {
    const list = readiness(input({ drills: [] }));
    expect(list.map((s) => s.service)).toEqual(["portal", "postgresql", "mariadb"]);
    for (const s of list) {
      expect(s.ready).toBe(false);
      expect(s.reasons).toEqual(["never drilled"]);
      expect(s.overdue).toBe(true);
      expect(s.drillDueAt).toBeUndefined();
      expect(s.lastDrill).toBeUndefined();
    }
  });

  it("overdue: a good drill 91 days ago against a cadence of 90 days (tier 2's 180 days still hold)", () => {
    const list = readiness(input({ drills: [drill("20260823T060000Z-drill-bbbb", 91)] }));
    const portal = get(list, "portal");
    expect(portal.ready).toBe(false);
    expect(portal.overdue).toBe(true);
    expect(portal.reasons).toEqual([`drill overdue: the last good one was ${ago(91).slice(0, 10)}, due again by ${ago(1).slice(0, 10)} (every 90 days)`]);
    expect(portal.lastGoodDrill?.runId).toBe("20260823T060000Z-drill-bbbb");
    expect(get(list, "mariadb")).toMatchObject({ ready: true, overdue: false, drillEveryDays: 180 });
  });

  it("a drill that missed RTO: not ready, naming the run and the figures; an older good drill stays the last good one", () => {
    const bad = drill("20261120T060000Z-drill-cccc", 2, measured("portal", 1, 3, 75));
    const list = readiness(input({ drills: [drill("20261112T060000Z-drill-aaaa", 10), bad] }));
    const portal = get(list, "portal");
    expect(portal.ready).toBe(false);
    expect(portal.reasons).toEqual([`last drill 20261120T060000Z-drill-cccc (${ago(2).slice(0, 10)}, ok) missed RTO: 75 min > 60 min target`]);
    expect(portal.lastDrill).toMatchObject({ runId: "20261120T060000Z-drill-cccc", rtoMinutes: 75, rtoMet: false, rpoMet: true });
    expect(portal.lastGoodDrill?.runId).toBe("20261112T060000Z-drill-aaaa");
    expect(portal.overdue).toBe(false);
    // The same miss counts against PostgreSQL: the portal's data is lab-db-01's.
    expect(get(list, "postgresql").ready).toBe(false);
    expect(get(list, "mariadb").ready).toBe(true);
  });

  it("a failback proves nothing about failing over", () => {
    const back = drill("20261121T060000Z-failback-dddd", 1, measured("portal", 1, 0, 3), measured("mail", 2, 0, 3), { kind: "failback", to: "primary" });
    expect(readiness(input({ drills: [back] })).every((s) => s.reasons.includes("never drilled"))).toBe(true);
  });

  it("a broken job is named: last run failed, over RPO, never backed up", () => {
    const rows = jobs.map(okRow).map((r): JobStatusRow => {
      if (r.job === "lab-app-02/app-daily") return { ...r, lastRun: "failed at 2026-11-22T05:50:00Z", lastError: "backup source of files/lab-app-02.tar failed (tar: Cannot stat); no snapshot kept" };
      if (r.job === "lab-db-01/db-hourly") return { ...r, state: "over-rpo", ageMinutes: 200, items: [{ item: "files", state: "ok", ageMinutes: 20 }, { item: "postgresql/portal", state: "over-rpo", ageMinutes: 200 }] };
      if (r.job === "lab-db-02/db-daily") return { ...r, state: "none", ageMinutes: undefined, items: [{ item: "mariadb", state: "none" }] };
      return r;
    });
    const list = readiness(input({ backup: rows }));
    const portal = get(list, "portal");
    expect(portal.brokenJobs).toEqual([
      { job: "lab-app-02/app-daily", state: "failed", reason: "last run failed: backup source of files/lab-app-02.tar failed (tar: Cannot stat); no snapshot kept" },
      { job: "lab-db-01/db-hourly", state: "over-rpo", reason: "over its RPO of 90m: postgresql/portal 3.3h old" },
    ]);
    expect(portal.reasons).toEqual(["backup lab-app-02/app-daily: last run failed: backup source of files/lab-app-02.tar failed (tar: Cannot stat); no snapshot kept", "backup lab-db-01/db-hourly: over its RPO of 90m: postgresql/portal 3.3h old"]);
    expect(get(list, "mariadb").reasons).toEqual(["backup lab-db-02/db-daily: never backed up: mariadb"]);
    // A job whose status was not read is not taken on trust.
    expect(get(readiness(input({ backup: rows.filter((r) => r.job !== "lab-app-01/app-daily") })), "portal").brokenJobs[0]).toEqual({ job: "lab-app-01/app-daily", state: "unknown", reason: "its status was not read" });
  });

  it("a missing replica: a standby that is not replicating, or one nobody measured", () => {
    const list = readiness(input({ replicas: [pair("lab-dr-db-01", "lab-db-01", { health: "not-a-replica", lagSeconds: undefined, ok: false })] }));
    expect(get(list, "portal").reasons).toEqual(["replica lab-dr-db-01 of lab-db-01 is not-a-replica"]);
    expect(get(list, "postgresql").protection.replicas).toEqual([{ standby: "lab-dr-db-01", primary: "lab-db-01", health: "not-a-replica", rpoSeconds: 900, ok: false, measuredAt: NOW.toISOString() }]);
    expect(get(list, "mariadb").reasons).toEqual(["replica lab-dr-db-02 of lab-db-02 is not measured"]);
    const lagging = readiness(input({ replicas: [pair("lab-dr-db-01", "lab-db-01", { lagSeconds: 1200, overRpo: true, ok: false }), pair("lab-dr-db-02", "lab-db-02")] }));
    expect(get(lagging, "postgresql").reasons).toEqual(["replica lab-dr-db-01 of lab-db-01 lags 20.0 min, over the RPO of 15m"]);
  });

  it("no standby capacity: without the failover-only portal host nothing at the secondary takes the portal over", () => {
    const noSpare: Sites = { ...sites, secondary: { ...sites.secondary, hosts: sites.secondary.hosts.filter((h) => h.name !== "lab-dr-app-01") } };
    const portal = get(readiness(input({ sites: noSpare })), "portal");
    expect(portal.protection).toMatchObject({ standbyCapacity: false, standbyHosts: ["lab-dr-db-01"] });
    expect(portal.reasons).toEqual([
      "no secondary host to take over lab-app-01 (no standbyFor: lab-app-01, no activeOnly app host with portal)",
      "no secondary host to take over lab-app-02 (no standbyFor: lab-app-02, no activeOnly app host with portal)",
    ]);
  });

  it("the metrics text: ready, last good drill (0 when none), overdue, when measured", () => {
    const list = readiness(input({ drills: [drill("20261112T060000Z-drill-aaaa", 10, measured("portal", 1, 2.5, 4), measured("mail", 2, 2.5, 300))] }));
    const text = renderReadinessMetrics(list, NOW);
    const at = Date.parse(ago(10)) / 1000;
    expect(text).toBe(
      [
        "# HELP dcctl_dr_ready 1 when the service is ready to fail over (dcctl dr readiness: protection, and a good drill within its cadence)",
        "# TYPE dcctl_dr_ready gauge",
        'dcctl_dr_ready{service="portal"} 1',
        'dcctl_dr_ready{service="postgresql"} 1',
        'dcctl_dr_ready{service="mail"} 0',
        'dcctl_dr_ready{service="mariadb"} 0',
        "# HELP dcctl_dr_last_drill_timestamp_seconds Unix time of the service's last drill that met its RPO and RTO; 0 when none has",
        "# TYPE dcctl_dr_last_drill_timestamp_seconds gauge",
        `dcctl_dr_last_drill_timestamp_seconds{service="portal"} ${at}`,
        `dcctl_dr_last_drill_timestamp_seconds{service="postgresql"} ${at}`,
        'dcctl_dr_last_drill_timestamp_seconds{service="mail"} 0',
        'dcctl_dr_last_drill_timestamp_seconds{service="mariadb"} 0',
        "# HELP dcctl_dr_drill_overdue 1 when no drill met the service's targets within its tier's drillEveryDays",
        "# TYPE dcctl_dr_drill_overdue gauge",
        'dcctl_dr_drill_overdue{service="portal"} 0',
        'dcctl_dr_drill_overdue{service="postgresql"} 0',
        'dcctl_dr_drill_overdue{service="mail"} 1',
        'dcctl_dr_drill_overdue{service="mariadb"} 1',
        "# HELP dcctl_dr_measured_timestamp_seconds When dcctl dr readiness last looked",
        "# TYPE dcctl_dr_measured_timestamp_seconds gauge",
        `dcctl_dr_measured_timestamp_seconds ${NOW.getTime() / 1000}`,
        "",
      ].join("\n"),
    );
    expect(parsePrometheus(text)).toHaveLength(13);
  });

  it("the primary lost: per service, can it fail over now, with what data, at what RPO against its tier, and how", () => {
    const lostAt = NOW.getTime() - 60_000;
    const reach = [{ site: "primary" as const, reachable: false, unreachableSince: new Date(lostAt).toISOString(), probedAt: NOW.toISOString(), parts: [] }];
    // Every copy at this site 14.4 min old; lab-db-01's replica last heard from it 70 s ago, lab-db-02's cannot say.
    const copyAt = new Date(NOW.getTime() - 14.4 * 60_000).toISOString();
    const rows = jobs.map((j) => ({ ...okRow(j), newest: { id: "abcd1234", time: copyAt } }));
    const replicas = [pair("lab-dr-db-01", "lab-db-01", { health: "broken", primaryAnswered: false, lagSeconds: 70, ok: false }), pair("lab-dr-db-02", "lab-db-02", { tier: 2, rpoSeconds: 14_400, health: "broken", primaryAnswered: false, lagSeconds: undefined, ok: false })];
    const list = readiness(input({ backup: rows, replicas, reach, failoverRunbook: "/lab/runbooks/failover.yaml" }));
    const portal = get(list, "portal").failoverNow;
    expect(portal).toMatchObject({ lost: "primary", lostSince: reach[0]?.unreachableSince, possible: true, blockers: [], rpoTargetMinutes: 15, rpoMet: true, dataUpTo: copyAt });
    expect(portal?.command).toBe(`dcctl dr failover --to secondary --failed-at ${reach[0]?.unreachableSince ?? ""} --runbook /lab/runbooks/failover.yaml`);
    // From the loss to the oldest host's newest data: lab-app-0x's copies, 13.4 min before the loss.
    expect(portal?.rpoMinutes).toBeCloseTo(13.4, 5);
    expect(portal?.hosts.find((h) => h.host === "lab-db-01")).toEqual({ host: "lab-db-01", takeover: ["lab-dr-db-01"], replica: "lab-dr-db-01", replicaUpTo: new Date(NOW.getTime() - 70_000).toISOString(), copyUpTo: copyAt });
    // lab-db-01 alone: its replica, which heard from it 10 s before the loss, is newer than its copy.
    expect(get(list, "postgresql").failoverNow?.rpoMinutes).toBeCloseTo(10 / 60, 5);
    expect(get(list, "mariadb").failoverNow).toMatchObject({ possible: true, rpoTargetMinutes: 240, rpoMet: true, hosts: [{ host: "lab-db-02", replica: "lab-dr-db-02", copyUpTo: copyAt }] });

    // A host of which this site holds nothing: that service cannot fail over, and says why.
    const noCopy = rows.map((r) => (r.host === "lab-app-02" ? { ...r, state: "unknown" as const } : r));
    expect(get(readiness(input({ backup: noCopy, replicas, reach })), "portal").failoverNow).toMatchObject({ possible: false, blockers: ["no data of lab-app-02 at this site: no copy in its repository"] });
    // Seen from the primary, with the secondary lost: nowhere to fail over to.
    const secondaryLost = [{ ...reach[0], site: "secondary" as const, reachable: false, probedAt: NOW.toISOString(), parts: [] }];
    expect(get(readiness(input({ reach: secondaryLost })), "portal").failoverNow).toEqual({ lost: "secondary", lostSince: reach[0]?.unreachableSince, possible: false, blockers: [`the secondary site, where it would fail over to, is unreachable since ${reach[0]?.unreachableSince ?? ""}`], hosts: [] });
    // Both sites answering: no such answer.
    expect(get(readiness(input()), "portal").failoverNow).toBeUndefined();

    // This site's point-in-time archive of lab-db-01 reaches past the loss's moment: said beside, capped at the loss,
    // and not counted into what a failover would have (the failover restores from the replica and the copies).
    const archived = readiness(input({ backup: rows, replicas, reach, archives: [{ host: "lab-db-01", latest: NOW.toISOString() }] }));
    const db = get(archived, "postgresql").failoverNow;
    expect(db?.hosts.find((h) => h.host === "lab-db-01")?.archiveUpTo).toBe(new Date(lostAt).toISOString());
    expect(db?.rpoMinutes).toBeCloseTo(10 / 60, 5);
    expect(failoverData(db ?? { lost: "primary", lostSince: "", possible: false, blockers: [], hosts: [] })).toContain(`point-in-time archive to ${new Date(lostAt).toISOString()} (dcctl restore --at)`);
  });
});

describe("drTiers[].drillEveryDays in the site files", () => {
  const work = mkdtempSync(join(tmpdir(), "dcctl-drill-every-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const file = (tiers: string) => {
    const path = join(work, `site-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(
      path,
      `site: primary
domain: d.example
dnsServers: [10.0.0.2]
vcenter: { datacenter: DC, cluster: C, esxiHosts: [e1], datastores: [ds1], dvSwitch: S }
templates: [{ name: t, os: linux }]
networks:
  - { name: lan, vlan: 10, cidr: 10.0.0.0/24, gateway: 10.0.0.1, purpose: application }
drTiers:
${tiers}
hosts: []
`,
    );
    return path;
  };
  const problems = (path: string): string[] => {
    try {
      loadSiteFile(path);
    } catch (e) {
      if (e instanceof InputError) return e.problems.map((p) => p.slice(p.indexOf(":")));
      throw e;
    }
    return [];
  };

  it("is optional (90 days) and read where given", () => {
    const site = loadSiteFile(file("  - { tier: 1, rpoMinutes: 15, rtoMinutes: 60, drillEveryDays: 30 }\n  - { tier: 2, rpoMinutes: 240, rtoMinutes: 240 }"));
    expect(site.drTiers.map((t) => t.drillEveryDays)).toEqual([30, 90]);
    expect(sites.primary.drTiers.map((t) => [t.tier, t.drillEveryDays])).toEqual([[1, 90], [2, 180]]);
  });

  it("must be a positive whole number, and a misspelling is an unknown field", () => {
    expect(problems(file("  - { tier: 1, rpoMinutes: 15, rtoMinutes: 60, drillEveryDays: 0 }"))).toEqual([":9: drTiers[0]: drillEveryDays must be a positive whole number (got 0)"]);
    expect(problems(file("  - { tier: 1, rpoMinutes: 15, rtoMinutes: 60, drillEveryDays: 7.5 }"))).toEqual([":9: drTiers[0]: drillEveryDays must be a whole number (got 7.5)"]);
    expect(problems(file("  - { tier: 1, rpoMinutes: 15, rtoMinutes: 60, drillEveryDay: 90 }"))).toEqual([':9: drTiers[0]: unknown field "drillEveryDay" (did you mean "drillEveryDays"?)']);
  });
});

describe("dcctl dr readiness and backup verify through the CLI", () => {
  const work = mkdtempSync(join(tmpdir(), "dcctl-readiness-cli-"));
  const state = join(work, "state");
  const env = {
    ...process.env,
    DCCTL_DEBUG: "",
    DCCTL_SITES_DIR: join(work, "sites"),
    DCCTL_POLICIES_FILE: join(work, "policies.yaml"),
    DCCTL_REPOS_FILE: join(work, "repositories.yaml"),
    DCCTL_STATE_DIR: state,
  };
  const metrics = join(work, "metrics");
  const host = (name: string, role: string, ip: string, network: string, extra: Record<string, unknown> = {}) => ({ name, role, cpus: 2, memoryGb: 4, disks: [{ label: "os", sizeGb: 20 }], network, ip, template: "t", backupPolicy: "files-test", drTier: 2, ...extra });
  const site = (name: string, net: string, hosts: unknown[], drill = false) => ({
    site: name,
    domain: `${name}.example`,
    dnsServers: [`10.${net}.10.2`],
    vcenter: { datacenter: "DC", cluster: "C", esxiHosts: ["e1"], datastores: ["ds1"], dvSwitch: "S" },
    templates: [{ name: "t", os: "linux" }],
    networks: [
      { name: "database", vlan: 20, cidr: `10.${net}.20.0/24`, gateway: `10.${net}.20.1`, purpose: "database" },
      { name: "application", vlan: 30, cidr: `10.${net}.30.0/24`, gateway: `10.${net}.30.1`, purpose: "application" },
      { name: "backup", vlan: 50, cidr: `10.${net}.50.0/24`, gateway: `10.${net}.50.1`, purpose: "backup" },
      ...(drill ? [{ name: "drill", vlan: 90, cidr: `10.${net}.90.0/24`, gateway: `10.${net}.90.1`, purpose: "drill", isolated: true }] : []),
    ],
    drTiers: [{ tier: 2, rpoMinutes: 240, rtoMinutes: 240, drillEveryDays: 30 }],
    hosts,
  });
  const policies = (path: string) => ({ policies: { "files-test": { sources: [{ kind: "files", paths: [path] }], schedule: "0 2 * * *", retention: { keepLast: 3 }, rpoMinutes: 60, repository: "primary" } } });
  const data = join(work, "data");
  const run = (args: string[], extra: Record<string, string> = {}) => dcctl(args, { ...env, ...extra }, 120_000);
  // The secondary's repository, which the readiness test replicates to and the verify test checks.
  const verifyRepo = { url: join(work, "verify-repo"), passwordFile: join(work, "repo.pass") };

  beforeAll(async () => {
    mkdirSync(join(work, "sites"), { recursive: true });
    mkdirSync(data);
    writeFileSync(join(data, "app.conf"), "listen 8080\n");
    const primary = [host("t-db-01", "db", "10.10.20.11", "database", { services: ["postgresql"] }), host("t-app-01", "app", "10.10.30.11", "application", { services: ["portal"] })];
    const secondary = [
      host("t-dr-bk-01", "backup", "10.20.50.11", "backup", { services: ["postgresql"] }),
      // A standby without a database engine of its primary's: capacity to take t-db-01 over, no replication pair.
      host("t-dr-db-01", "db", "10.20.20.11", "database", { standbyFor: "t-db-01" }),
      host("t-dr-app-01", "app", "10.20.30.11", "application", { services: ["portal"], activeOnly: true }),
    ];
    writeFileSync(join(work, "sites", "primary.yaml"), stringify(site("primary", "10", primary)));
    writeFileSync(join(work, "sites", "secondary.yaml"), stringify(site("secondary", "20", secondary, true)));
    writeFileSync(join(work, "policies.yaml"), stringify(policies(data)));
    writeFileSync(join(work, "broken-policies.yaml"), stringify(policies(join(work, "no-such-folder"))));
    writeFileSync(join(work, "repo.pass"), "test secret\n", { mode: 0o600 });
    const repo = { url: join(work, "repo"), passwordFile: join(work, "repo.pass") };
    await new Restic(repo).init();
    await new Restic(verifyRepo).init();
    writeFileSync(
      join(work, "repositories.yaml"),
      stringify({ site: "secondary", repositories: { primary: repo, secondary: verifyRepo }, localHosts: ["t-db-01", "t-app-01", "t-dr-bk-01", "t-dr-db-01"], stateDir: state, metricsFile: join(metrics, "dcctl_backup.prom") }),
    );
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  /** A drill by the engine itself, into this test's state folder: the restore and the check faked, 2 minutes' RPO. */
  async function drillNow(): Promise<void> {
    const s = loadSites(join(work, "sites"));
    const text = `name: t-drill
kind: drill
to: secondary
groups:
  - name: restore
    steps:
      - { id: restore-portal, type: restore-db, service: portal, targets: { hosts: [t-dr-bk-01], services: [postgresql] }, with: { from: t-db-01, databases: [portal] } }
  - name: verify
    steps:
      - { id: verify-portal, type: verify, service: portal, dependsOn: [restore-portal], targets: { hosts: [t-dr-bk-01], services: [postgresql] }, with: { sql: [{ database: portal, query: "SELECT 1", expect: "1" }] } }
`;
    const unused = {
      target: "fake",
      run: () => Promise.reject(new Error("not used")),
      stream: () => {
        throw new Error("not used");
      },
      close: async () => undefined,
    };
    const services: DrServices = {
      executorFor: () => unused,
      local: unused,
      now: () => new Date(),
      restorer: { restore: async () => ({ snapshotId: "abcd1234", snapshotTime: new Date(Date.now() - 120_000).toISOString() }), drop: async () => undefined },
      sql: { query: async () => "1\n" },
    };
    const outcome = await startRun({ runbook: parseRunbook("t-drill.yaml", text, s), runbookText: text, sites: s, services, progress: silentProgress(), operator: "tester", confirmedBy: "test", env: { DCCTL_STATE_DIR: state } });
    expect(outcome.status).toBe("ok");
  }

  const readinessJson = (r: { stdout: string }) => byName(JSON.parse(r.stdout) as ServiceReadiness[]);
  const samples = () => parsePrometheus(readFileSync(join(metrics, "dcctl_dr.prom"), "utf8"));
  const sample = (name: string, service?: string) => samples().find((x) => x.name === name && (service === undefined || x.labels.service === service))?.value;

  it("exit 4 and the reasons while a service is not ready; 0 once backed up and drilled; 4 again after a job fails", async () => {
    const before = run(["dr", "readiness"]);
    expect(before.code).toBe(4);
    expect(before.stderr).toBe("dcctl: 2 of 2 services not ready to fail over (first: portal: backup t-app-01/files-test: never backed up: files)\n");
    expect(before.stdout.split("\n")[0]).toMatch(/^SERVICE +TIER +READY +LAST GOOD DRILL \(RPO\/RTO vs target\) +DRILL DUE +REASONS$/);
    expect(before.stdout).toMatch(/^postgresql +2 +NO +- +OVERDUE \(never\) +backup t-db-01\/files-test: never backed up: files; never drilled$/m);
    expect(sample("dcctl_dr_ready", "portal")).toBe(0);

    const backup = run(["backup", "run", "--all"]);
    expect(backup.code, backup.stderr).toBe(0);
    // At the secondary each job is judged by the copies in its own repository: what a failover would restore.
    const notYet = run(["dr", "readiness"]);
    expect(notYet.stderr).toMatch(/^dcctl: 2 of 2 services not ready to fail over \(first: portal: backup t-app-01\/files-test: never backed up: files\)$/m);
    const copied = run(["backup", "replicate", "--to", "secondary"]);
    expect(copied.code, copied.stderr).toBe(0);
    await drillNow();
    const ready = run(["dr", "readiness", "--json"]);
    expect(ready.stderr).toBe("");
    expect(ready.code).toBe(0);
    const portal = readinessJson(ready).get("portal");
    expect(portal).toMatchObject({ ready: true, reasons: [], tier: 2, hosts: ["t-app-01", "t-db-01"], drillEveryDays: 30, overdue: false, protection: { standbyHosts: ["t-dr-app-01", "t-dr-db-01"], replicas: [] } });
    expect(portal?.lastGoodDrill).toMatchObject({ kind: "drill", runbook: "t-drill", status: "ok", rpoMet: true, rtoMet: true, rpoTargetMinutes: 240 });
    expect(portal?.lastGoodDrill?.rpoMinutes).toBeGreaterThanOrEqual(2);
    expect(readinessJson(ready).get("postgresql")?.lastGoodDrill?.measurements).toEqual(["portal"]);
    expect(sample("dcctl_dr_ready", "portal")).toBe(1);
    expect(sample("dcctl_dr_drill_overdue", "postgresql")).toBe(0);
    expect(Math.abs((sample("dcctl_dr_last_drill_timestamp_seconds", "portal") ?? 0) - Date.now() / 1000)).toBeLessThan(120);
    expect(Math.abs((sample("dcctl_dr_measured_timestamp_seconds") ?? 0) - Date.now() / 1000)).toBeLessThan(60);
    // Written atomically: nothing but the finished files in the folder.
    // (dcctl_snapshots.prom: the trust of the repository this site keeps, recorded as readiness read it.)
    expect(readdirSync(metrics).sort()).toEqual(["dcctl_backup.prom", "dcctl_dr.prom", "dcctl_snapshots.prom"]);

    // The lab recipe: one run of the job with a policies file whose path is gone.
    const failed = run(["backup", "run", "--job", "t-app-01/files-test"], { DCCTL_POLICIES_FILE: join(work, "broken-policies.yaml") });
    expect(failed.code).toBe(1);
    const after = run(["dr", "readiness"]);
    expect(after.code).toBe(4);
    expect(after.stderr).toMatch(/^dcctl: 1 of 2 services not ready to fail over \(first: portal: backup t-app-01\/files-test: last run failed: files: restic backup failed for repository .*: all source directories\/files do not exist\)\n$/);
    expect(after.stdout).toMatch(/^postgresql +2 +yes +\d{4}-\d\d-\d\d RPO [\d.]+\/240 RTO [\d.]+\/240 min +\d{4}-\d\d-\d\d$/m);
    expect(sample("dcctl_dr_ready", "portal")).toBe(0);
    expect(sample("dcctl_dr_ready", "postgresql")).toBe(1);

    expect(run(["dr", "readiness", "--runbook", "no-such-runbook"]).code).toBe(2);
  });

  it("backup verify records its outcome, good or bad, for lastVerify", async () => {
    const config = { stateDir: state };
    expect(lastVerify(config, "secondary")).toBeUndefined();
    const restic = new Restic(verifyRepo);
    const before = (await restic.snapshots()).length;
    await restic.backup([data], { host: "t-app-01", tags: ["dcctl"] });
    await restic.backup([data], { host: "t-db-01", tags: ["dcctl"] });
    const ok = run(["backup", "verify", "--repository", "secondary", "--json"]);
    expect(ok.code, ok.stderr).toBe(0);
    const good = lastVerify(config, "secondary");
    expect(good).toMatchObject({ repository: "secondary", ok: true, snapshots: before + 2 });
    expect(good?.sizeBytes).toBeGreaterThan(0);
    expect(good?.message).toBeUndefined();
    expect(JSON.parse(ok.stdout)).toMatchObject({ repository: "secondary", num_errors: 0, sizeBytes: good?.sizeBytes, snapshots: before + 2 });
    expect(Math.abs(Date.parse(good?.at ?? "") - Date.now())).toBeLessThan(60_000);

    // A pack file gone: restic check fails, and the record says so.
    const pack = readdirSync(join(work, "verify-repo", "data"), { recursive: true, withFileTypes: true }).find((e) => e.isFile());
    if (!pack) throw new Error("no pack file in the test repository");
    rmSync(join(pack.parentPath, pack.name));
    const bad = run(["backup", "verify", "--repository", "secondary", "--subset", "100%"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    const record = lastVerify(config, "secondary");
    expect(record).toMatchObject({ repository: "secondary", ok: false, subset: "100%" });
    expect(record?.message).toMatch(/restic check failed/);
    expect(record?.sizeBytes).toBeUndefined();
  });
});
