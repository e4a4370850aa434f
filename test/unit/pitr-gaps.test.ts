import { describe, expect, it } from "vitest";
import { checkCovered, type ArchiveStatus } from "../../databases/pitr.js";
import { walGaps } from "../../databases/postgresql/pitr.js";
import { binlogGaps } from "../../databases/mariadb/pitr.js";

/**
 * A gap in a point-in-time archive, found from its listing before a restore touches anything: WAL segments or binary
 * log files missing between a base backup and the newest held (fabricated listings), and the refusal it makes.
 */
const seg = (tli: number, log: number, s: number) => [tli, log, s].map((n) => n.toString(16).toUpperCase().padStart(8, "0")).join("");

describe("WAL segments missing after a base backup", () => {
  it("none when every segment from the base backup's first to the newest is held, across a log id and a timeline", () => {
    const held = [seg(1, 0, 0xfe), seg(1, 0, 0xff), seg(1, 1, 0), seg(1, 1, 1), seg(2, 1, 1), seg(2, 1, 2)];
    expect(walGaps(seg(1, 0, 0xfe), held)).toEqual([]);
    // Segments before the base backup, or of an older timeline than its, do not count.
    expect(walGaps(seg(2, 1, 1), [seg(1, 0, 5), seg(1, 1, 3), seg(2, 1, 1), seg(2, 1, 2)])).toEqual([]);
  });
  it("names the first missing segment of each run, how many, and the one held before it", () => {
    const held = [seg(1, 0, 4), seg(1, 0, 5), seg(1, 0, 9), seg(1, 0, 0xa), seg(1, 0, 0xc)];
    expect(walGaps(seg(1, 0, 4), held)).toEqual([
      { missing: seg(1, 0, 6), count: 3, before: seg(1, 0, 5), after: seg(1, 0, 9), position: 6, lastMissing: 8 },
      { missing: seg(1, 0, 0xb), count: 1, before: seg(1, 0, 0xa), after: seg(1, 0, 0xc), position: 0xb, lastMissing: 0xb },
    ]);
    // The base backup's own first segment missing: nothing before it.
    expect(walGaps(seg(1, 0, 4), [seg(1, 0, 6)])).toEqual([{ missing: seg(1, 0, 4), count: 2, after: seg(1, 0, 6), position: 4, lastMissing: 5 }]);
  });
});

describe("binary log files missing after a base backup", () => {
  it("none when the numbers run on from the base backup's file", () => {
    expect(binlogGaps("mysql-bin.000003", ["mysql-bin.000001", "mysql-bin.000003", "mysql-bin.000004", "mysql-bin.000005"])).toEqual([]);
  });
  it("a number skipped is a file the archive never got (the receiver down longer than the server kept it)", () => {
    expect(binlogGaps("mysql-bin.000003", ["mysql-bin.000003", "mysql-bin.000004", "mysql-bin.000008", "mysql-bin.000009", "other.000005"])).toEqual([{ missing: "mysql-bin.000005", count: 3, before: "mysql-bin.000004", lastMissing: 7 }]);
    expect(binlogGaps("mysql-bin.000003", ["mysql-bin.000005"])).toEqual([{ missing: "mysql-bin.000003", count: 2, lastMissing: 4 }]);
  });
});

describe("a restore into a gap is refused before anything is touched", () => {
  const status: ArchiveStatus = {
    host: "qn-db-01",
    receiving: true,
    earliest: "2026-12-05T00:10:00.000Z",
    latest: "2026-12-05T12:00:00.000Z",
    baseBackups: 2,
    notes: [],
    measuredAt: "2026-12-05T12:00:00.000Z",
    gaps: [{ what: "WAL segment", missing: seg(1, 0, 6), count: 3, before: seg(1, 0, 5), from: "2026-12-05T03:00:00.000Z", resumesAt: "2026-12-05T06:15:00.000Z" }],
  };
  const at = (iso: string) => () => checkCovered(status, new Date(iso), "--at");
  it("refuses a point inside it, naming the first missing segment and the span that cannot be reached", () => {
    expect(at("2026-12-05T04:00:00Z")).toThrow(
      `--at 2026-12-05T04:00:00.000Z: the archive of qn-db-01 lacks 3 WAL segments from ${seg(1, 0, 6)} (after ${seg(1, 0, 5)}): no point from 2026-12-05T03:00:00.000Z to 2026-12-05T06:15:00.000Z can be reached (the next base backup's end); nothing was touched`,
    );
  });
  it("takes a point before it, or after the next base backup's end", () => {
    expect(at("2026-12-05T02:59:59Z")).not.toThrow();
    expect(at("2026-12-05T06:15:01Z")).not.toThrow();
  });
  it("with no base backup after it, nothing after it is reachable", () => {
    const binlog: ArchiveStatus = { ...status, host: "qn-db-04", gaps: [{ what: "binary log file", missing: "mysql-bin.000005", count: 1, before: "mysql-bin.000004", from: "2026-12-05T03:00:00.000Z" }] };
    expect(() => checkCovered(binlog, new Date("2026-12-05T11:00:00Z"), "--before")).toThrow(
      "--before 2026-12-05T11:00:00.000Z: the archive of qn-db-04 lacks binary log file mysql-bin.000005 (after mysql-bin.000004): no point from 2026-12-05T03:00:00.000Z to now can be reached (until a base backup after it: dcctl pitr base-backup); nothing was touched",
    );
  });
});
