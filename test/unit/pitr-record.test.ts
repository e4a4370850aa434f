import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { archiveLines, archivesVerdict, readArchiveStatuses, recordArchiveStatuses, type JudgedArchive } from "../../backup/pitr.js";
import type { BackupConfig } from "../../backup/repositories.js";
import type { ConsoleStatus } from "../../console/status.js";
import { consoleTexts } from "../../console/texts.js";
import { overviewView } from "../../console/view.js";
import { parsePointInTime, pointText, readPointInTime } from "../../databases/pitr.js";

/**
 * The point-in-time archives as the duty room sees them without probing anything: what `pitr status` and `pitr
 * maintain` record (a JSON file and Prometheus gauges), and the console's table from that record, which calls an
 * archive that has not been measured for five minutes (its upkeep is not scheduled) not good, whatever it last said.
 */
const work = mkdtempSync(join(tmpdir(), "dcctl-pitr-record-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const config = { site: "primary", stateDir: join(work, "state"), metricsFile: join(work, "metrics", "dcctl_backup.prom") } as BackupConfig;
const now = new Date("2026-12-05T10:00:00Z");

function archive(host: string, over: Partial<JudgedArchive>): JudgedArchive {
  return {
    host,
    engine: "postgresql",
    site: "primary",
    receiving: true,
    lagSeconds: 0.4,
    earliest: "2026-12-04T17:15:02Z",
    latest: "2026-12-05T09:59:59Z",
    baseBackups: 2,
    newestBaseBackup: "2026-12-05T00:15:40Z",
    notes: [],
    measuredAt: "2026-12-05T09:59:30Z",
    rpoSeconds: 900,
    ok: true,
    ...over,
  };
}

describe("the archives' record, metrics and console table", () => {
  it("records each archive's measure over the last ones, and writes dcctl_pitr.prom", () => {
    recordArchiveStatuses(config, [archive("qn-db-01", {}), archive("qn-db-03", { receiving: false, lagSeconds: undefined, ok: false, notes: ["receiver is not connected"] })]);
    // A later measure of one server replaces its own line only.
    recordArchiveStatuses(config, [archive("qn-db-01", { lagSeconds: 2.5 })]);
    expect(readArchiveStatuses(config).map((a) => [a.host, a.lagSeconds, a.receiving])).toEqual([["qn-db-01", 2.5, true], ["qn-db-03", undefined, false]]);
    const prom = readFileSync(join(work, "metrics", "dcctl_pitr.prom"), "utf8");
    expect(prom).toContain('dcctl_pitr_lag_seconds{host="qn-db-01",engine="postgresql",site="primary"} 2.500');
    expect(prom).toContain('dcctl_pitr_lag_seconds{host="qn-db-03",engine="postgresql",site="primary"} NaN');
    expect(prom).toContain('dcctl_pitr_ok{host="qn-db-03",engine="postgresql",site="primary"} 0');
    expect(prom).toContain(`dcctl_pitr_restorable_to_timestamp_seconds{host="qn-db-01",engine="postgresql",site="primary"} ${Date.parse("2026-12-05T09:59:59Z") / 1000}`);
  });

  it("shows a good archive good, and one unmeasured for five minutes, or not receiving, as bad with the reason", () => {
    const status = {
      generatedAt: now.toISOString(),
      site: "primary",
      summary: { jobs: { ok: 0, overRpo: 0, never: 0, unknown: 0, total: 0 }, replicas: { ok: 0, notOk: 0 } },
      sites: [],
      backup: { jobs: [], replicas: [] },
      repositories: [],
      archives: [archive("qn-db-01", {}), archive("qn-db-02", { measuredAt: "2026-12-05T09:50:00Z" }), archive("qn-db-03", { receiving: false, lagSeconds: undefined, ok: false, notes: ["receiver is not connected"] })],
      runs: [],
      runsTotal: 0,
    } satisfies ConsoleStatus;
    const rows = overviewView(status, consoleTexts("en"), "en", now).archives;
    expect(rows.map((r) => [r.host, r.receiving, r.tone])).toEqual([
      ["qn-db-01", "receiving", "ok"],
      ["qn-db-02", "receiving", "bad"],
      ["qn-db-03", "NOT receiving", "bad"],
    ]);
    expect(rows[0]?.notes).toBeUndefined();
    expect(rows[1]?.notes).toMatch(/^not measured since .*: is dcctl pitr maintain scheduled\?$/);
    expect(rows[2]?.notes).toBe("receiver is not connected");
  });
});

describe("backup status's lines for the archives", () => {
  it("says receiving and the lag when all is well, and what is wrong first otherwise", () => {
    const [good, stale, lost, late] = archiveLines(
      [
        archive("qn-db-01", {}),
        archive("qn-db-02", { measuredAt: "2026-12-05T09:50:00Z" }),
        archive("qn-db-03", { receiving: false, lagSeconds: undefined, baseBackups: 0, ok: false }),
        archive("qn-db-04", { lagSeconds: 1200, ok: false }),
      ],
      now,
    );
    expect(good).toBe("point-in-time archive of qn-db-01: receiving, lag 0.40 s (RPO 15 min), restorable 2026-12-04T17:15:02Z to 2026-12-05T09:59:59Z, measured 2026-12-05T09:59:30Z");
    expect(stale).toMatch(/^point-in-time archive of qn-db-02: NOT MEASURED for 10 min \(is dcctl pitr maintain scheduled\?\), lag 0\.40 s/);
    expect(lost).toMatch(/^point-in-time archive of qn-db-03: NOT RECEIVING, NO BASE BACKUP, lag unknown/);
    expect(late).toMatch(/^point-in-time archive of qn-db-04: OVER RPO, lag 1200\.00 s \(RPO 15 min\)/);
  });
});

describe("a point in time as the operator types it", () => {
  const at = new Date("2026-12-05T12:00:00Z");
  it("takes ISO 8601 with an offset or Z, to the microsecond in the text", () => {
    expect(parsePointInTime("2026-12-05T10:59:00+07:00", "--at", at).toISOString()).toBe("2026-12-05T03:59:00.000Z");
    expect(parsePointInTime("2026-12-05 10:59:00.123456Z", "--at", at).toISOString()).toBe("2026-12-05T10:59:00.123Z");
    expect(parsePointInTime("2026-12-05T10:59Z", "--at", at).toISOString()).toBe("2026-12-05T10:59:00.000Z");
  });
  it("refuses one without an offset, an impossible one, and one after now", () => {
    expect(() => parsePointInTime("2026-12-05T10:59:00", "--at", at)).toThrow(/not a time: give ISO 8601 with an offset/);
    expect(() => parsePointInTime("2026-02-29T10:00:00Z", "--at", at)).toThrow(/no such time/);
    expect(() => parsePointInTime("2026-12-05T24:00:00Z", "--at", at)).toThrow(/no such time/);
    expect(() => parsePointInTime("2026-12-05T12:00:01Z", "--before", at)).toThrow(/^--before 2026-12-05T12:00:01Z: is in the future/);
  });
  const vn = { site: "primary", timeZone: "Asia/Ho_Chi_Minh" };
  it("reads a time without an offset on the site's wall clock, and says the point in UTC and in site time", () => {
    const p = readPointInTime("2026-12-05 10:59:00.123456", "--at", { clock: vn, now: at });
    expect(p.at.toISOString()).toBe("2026-12-05T03:59:00.123Z");
    // PostgreSQL is given the microseconds typed, with the zone's offset.
    expect(p.text).toBe("2026-12-05 10:59:00.123456+07:00");
    expect(pointText(p, vn.timeZone)).toBe("2026-12-05T03:59:00.123456Z (UTC), 2026-12-05 10:59:00.123456+07:00 (Asia/Ho_Chi_Minh)");
    expect(readPointInTime("2026-12-05T10:59", "--before", { clock: vn, now: at })).toEqual({ at: new Date("2026-12-05T03:59:00Z"), text: "2026-12-05 10:59:00+07:00" });
    // With an offset the site's clock changes nothing.
    expect(readPointInTime("2026-12-05T10:59:00Z", "--at", { clock: vn, now: at }).at.toISOString()).toBe("2026-12-05T10:59:00.000Z");
    expect(pointText({ at: new Date("2026-12-05T10:59:00Z") }, vn.timeZone)).toBe("2026-12-05T10:59:00Z (UTC), 2026-12-05 17:59:00+07:00 (Asia/Ho_Chi_Minh)");
  });
  it("refuses a site time that is still to come, one a zone's clocks skipped or repeated, and one where the site has no zone", () => {
    // 12:00Z is 19:00 in Hanoi: 19:00:01 there is a second from now.
    expect(() => readPointInTime("2026-12-05 19:00:01", "--at", { clock: vn, now: at })).toThrow(/^--at 2026-12-05 19:00:01: is in the future \(now 2026-12-05T12:00:00\.000Z, 2026-12-05 19:00:00\+07:00 in Asia\/Ho_Chi_Minh\)$/);
    const berlin = { site: "primary", timeZone: "Europe/Berlin" };
    expect(() => readPointInTime("2026-03-29 02:30:00", "--at", { clock: berlin, now: at })).toThrow(/^--at "2026-03-29 02:30:00": no such time in Europe\/Berlin \(its clocks skipped it\)$/);
    expect(() => readPointInTime("2026-10-25 02:30:00", "--at", { clock: berlin, now: at })).toThrow(/^--at "2026-10-25 02:30:00": happened twice in Europe\/Berlin \(its clocks went back\): give the offset$/);
    expect(readPointInTime("2026-10-25 03:30:00", "--at", { clock: berlin, now: at }).text).toBe("2026-10-25 03:30:00+01:00");
    expect(() => readPointInTime("2026-12-05 10:59", "--at", { clock: { site: "primary" }, now: at })).toThrow(/^--at "2026-12-05 10:59": not a time: give ISO 8601 with an offset, .* \(a time without one is read in the site's timeZone:, which site primary does not set\)$/);
    expect(() => readPointInTime("2026-12-05 1059", "--at", { clock: vn, now: at })).toThrow(/^--at "2026-12-05 1059": not a time: give ISO 8601 with an offset, e\.g\. .*, or primary's wall clock \(Asia\/Ho_Chi_Minh\) without one: 2026-12-05 10:59:00$/);
  });
});

describe("how pitr status ends", () => {
  const lag = (s: { lagSeconds?: number }) => `${s.lagSeconds ?? "?"} s`;
  it("0 when every archive is within its RPO; 4 when one is not", () => {
    expect(archivesVerdict([archive("qn-db-01", {})], lag)).toEqual({ code: 0 });
    expect(archivesVerdict([archive("qn-db-01", {}), archive("qn-db-04", { ok: false, lagSeconds: 1200 })], lag)).toEqual({ code: 4, line: "1 of 2 archives not within RPO (first: qn-db-04: lag 1200 s)" });
  });
  it("7 when an archived server did not answer, whatever else: judged by what this site's archive holds", () => {
    const lost = archive("qn-db-01", { ok: false, receiving: false, answered: false, notes: ["qn-db-01 did not answer: timed out after 5 s"] });
    expect(archivesVerdict([archive("qn-db-04", { ok: false, lagSeconds: 1200 }), lost], lag)).toEqual({
      code: 7,
      line: `1 of 2 archived servers did not answer (first: qn-db-01): judged by what this site's archive holds, qn-db-01 restorable ${lost.earliest ?? ""} to ${lost.latest ?? ""}`,
    });
  });
});
