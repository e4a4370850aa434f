import { describe, expect, it } from "vitest";
import { ancestry, forkPoint, parseWaldump, segmentName } from "../../databases/postgresql/diverged.js";
import { parseBinlogDecode } from "../../databases/mariadb/diverged.js";
import { describeDiverged, DivergedWritesError } from "../../databases/replication.js";
import { ExitCode } from "../../util/errors.js";

/**
 * How a former primary's writes past the fork are found in what PostgreSQL and MariaDB print: timeline histories,
 * pg_waldump's and mariadb-binlog's text (samples taken from PostgreSQL 15 and MariaDB 10.11 as Debian ships them).
 */

// pg_waldump of: INSERT; UPDATE (HOT); INSERT; a savepoint's INSERT (subtransaction 726); one commit; then a COPY.
const WALDUMP = `rmgr: Heap        len (rec/tot):     64/    64, tx:        725, lsn: 0/01524DD8, prev 0/015248A0, desc: INSERT off 2 flags 0x00, blkref #0: rel 1663/5/16384 blk 0
rmgr: Btree       len (rec/tot):     64/    64, tx:        725, lsn: 0/01524E18, prev 0/01524DD8, desc: INSERT_LEAF off 2, blkref #0: rel 1663/5/16389 blk 1
rmgr: Heap        len (rec/tot):     69/    69, tx:        725, lsn: 0/01524E58, prev 0/01524E18, desc: HOT_UPDATE off 1 xmax 725 flags 0x20 ; new off 3 xmax 0, blkref #0: rel 1663/5/16384 blk 0
rmgr: Heap        len (rec/tot):     61/    61, tx:        725, lsn: 0/01524EA0, prev 0/01524E58, desc: INSERT off 4 flags 0x00, blkref #0: rel 1663/5/16384 blk 0
rmgr: Heap        len (rec/tot):     63/    63, tx:        726, lsn: 0/01524F20, prev 0/01524EE0, desc: INSERT off 5 flags 0x00, blkref #0: rel 1663/5/16384 blk 0
rmgr: Transaction len (rec/tot):     46/    46, tx:        725, lsn: 0/01524FA0, prev 0/01524F60, desc: COMMIT 2026-12-05 08:25:04.332384 UTC; subxacts: 726
rmgr: Heap2       len (rec/tot):     71/    71, tx:        727, lsn: 0/01524FD0, prev 0/01524FA0, desc: MULTI_INSERT 1 tuples flags 0x02, blkref #0: rel 1663/5/16384 blk 0
rmgr: Heap        len (rec/tot):     63/    63, tx:        728, lsn: 0/01525000, prev 0/01524FD0, desc: INSERT off 9 flags 0x00, blkref #0: rel 1663/5/16384 blk 0
rmgr: Transaction len (rec/tot):     34/    34, tx:        727, lsn: 0/01525058, prev 0/01525018, desc: COMMIT 2026-12-05 08:25:04.339577 UTC
rmgr: XLOG        len (rec/tot):    114/   114, tx:          0, lsn: 0/01525080, prev 0/01525058, desc: CHECKPOINT_ONLINE redo 0/1525048; tli 1; prev tli 1
`;

const BINLOG = `#261205  8:20:35 server id 7  end_log_pos 285 CRC32 0x315d0426 \tGtid list []
#700101  0:00:00 server id 7  end_log_pos 610 CRC32 0xf172637c \tGtid list [0-7-2]
# at 365
#261205  8:20:39 server id 7  end_log_pos 652 CRC32 0xbf226e2e \tGTID 0-7-3 trans
START TRANSACTION
### INSERT INTO \`m\`.\`a\`
#261205  8:20:41 server id 7  end_log_pos 862 CRC32 0xaa4f2b3b \tGTID 0-7-4 trans
`;

describe("a former PostgreSQL primary's WAL past the fork", () => {
  it("counts committed transactions with their commit times, the rows' places and every xid a row may carry", () => {
    const { committed, lastLsn } = parseWaldump(WALDUMP);
    expect([...committed.keys()]).toEqual(["725", "727"]);
    const first = committed.get("725");
    expect(first?.committedAt).toBe(Date.parse("2026-12-05T08:25:04.332384Z"));
    expect([...(first?.xids ?? [])]).toEqual(["725", "726"]);
    expect([...(first?.rels ?? [])].sort()).toEqual(["5/16384", "5/16389"]);
    expect([...(first?.tuples.get("5/16384") ?? [])].sort()).toEqual(["(0,2)", "(0,3)", "(0,4)", "(0,5)"]);
    // A multi-insert does not name its tuples: the table is read whole (by xmin).
    expect([...(committed.get("727")?.wholeRels ?? [])]).toEqual(["5/16384"]);
    // 728 never committed: not a write. The last record is where the decode ended.
    expect(lastLsn).toBe("0/01525080");
  });

  it("finds the fork from the timeline histories: where the newer history left the timeline both share", () => {
    const promoted = ancestry(2, "1\t0/5000148\tno recovery target specified\n");
    const formerPrimary = ancestry(1, "");
    expect(forkPoint(promoted, formerPrimary)).toEqual({ tli: 1, lsn: 0x5000148n });
    // Promoted twice since (a failback, a second failover): the fork from the first timeline stays where it was.
    expect(forkPoint(ancestry(3, "1\t0/5000148\tx\n2\t0/9000000\tx\n"), formerPrimary)).toEqual({ tli: 1, lsn: 0x5000148n });
    // Both on one timeline still: nothing forked.
    expect(forkPoint(formerPrimary, ancestry(1, ""))).toBeUndefined();
    expect(() => forkPoint(ancestry(2, "3\t0/1\tx\n"), formerPrimary)).toThrow(/share no timeline/);
  });

  it("names the WAL segment holding an LSN", () => {
    expect(segmentName(1, 0x5000148n, 16777216n)).toBe("000000010000000000000005");
    expect(segmentName(2, 0x1_0300_0000n, 16777216n)).toBe("000000020000000100000003");
  });
});

describe("a former MariaDB primary's binary log past what its new primary applied", () => {
  it("reads the event groups' GTIDs and times (UTC) from mariadb-binlog's decode, not its GTID lists", () => {
    expect(parseBinlogDecode(BINLOG)).toEqual([
      { gtid: "0-7-3", at: Date.parse("2026-12-05T08:20:39Z") },
      { gtid: "0-7-4", at: Date.parse("2026-12-05T08:20:41Z") },
    ]);
  });
});

describe("the refusal", () => {
  it("is exit 5 and one line naming the count, the time range, the fork and the kept copy", () => {
    const d = { host: "qn-db-01", engine: "postgresql" as const, forkedAt: "LSN 0/5000148 on timeline 1", endsAt: "LSN 0/5003000", writes: 8, firstAt: "2026-12-05T02:01:00.000Z", lastAt: "2026-12-05T02:03:00.000Z", kept: "/var/lib/dcctl/dr/runs/x/diverged/qn-db-01", files: [], bytes: 0, notes: [] };
    expect(describeDiverged(d)).toBe(
      "qn-db-01 holds 8 writes written 2026-12-05T02:01:00.000Z – 2026-12-05T02:03:00.000Z past where its new primary's history forked (LSN 0/5000148 on timeline 1; it goes on to LSN 0/5003000); a copy is kept in /var/lib/dcctl/dr/runs/x/diverged/qn-db-01",
    );
    const e = new DivergedWritesError(d);
    expect(e.exitCode).toBe(ExitCode.notConfirmed);
    expect(e.message).not.toContain("\n");
    expect(e.message).toMatch(/--discard-diverged/);
  });
});
