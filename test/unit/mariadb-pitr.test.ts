import { describe, expect, it } from "vitest";
import { parseBinlogText, replayPlan, stopSecond } from "../../databases/mariadb/binlog.js";
import { basesToKeep, parseBinlogInfo, receiverServerId } from "../../databases/mariadb/pitr.js";

/** mariadb-binlog --base64-output=decode-rows of a file (TZ=UTC): DDL, two row transactions, one still being written. */
const TEXT = `# at 4
#261205 18:46:23 server id 7  end_log_pos 256 CRC32 0x2ecac83a 	Start: binlog v 4, server v 10.11.19-MariaDB-0+deb12u1-log created 261205 18:46:23 at startup
ROLLBACK/*!*/;
# at 256
#261205 18:46:23 server id 7  end_log_pos 285 CRC32 0x66bf7cf3 	Gtid list []
# at 285
#261205 18:46:23 server id 7  end_log_pos 330 CRC32 0x1e79d224 	Binlog checkpoint mariadb-bin.000002
# at 330
#261205 18:46:26 server id 7  end_log_pos 372 CRC32 0x73c5642e 	GTID 0-7-6 ddl
# at 372
#261205 18:46:26 server id 7  end_log_pos 515 CRC32 0xbab5d7f9 	Query	thread_id=4	exec_time=0	error_code=0	xid=6
CREATE TABLE mail.t (id int primary key auto_increment, at datetime(6))
# at 515
#261205 18:46:26 server id 7  end_log_pos 557 CRC32 0x9e38cc5e 	GTID 0-7-7 trans
START TRANSACTION
# at 557
# at 618
#261205 18:46:26 server id 7  end_log_pos 618 CRC32 0x544aab1f 	Annotate_rows:
#Q> INSERT INTO mail.t(at) VALUES (NOW(6))
#261205 18:46:26 server id 7  end_log_pos 664 CRC32 0x810c41de 	Table_map: \`mail\`.\`t\` mapped to number 18
# at 664
#261205 18:46:26 server id 7  end_log_pos 710 CRC32 0x3bd7f998 	Write_rows: table id 18 flags: STMT_END_F
# at 710
#261205 18:46:27 server id 7  end_log_pos 741 CRC32 0x4eb3fda1 	Xid = 7
COMMIT/*!*/;
# at 741
#261205  8:46:29 server id 7  end_log_pos 783 CRC32 0xfdb06577 	GTID 0-7-8 cid=12 trans
START TRANSACTION
# at 783
#261205  8:46:29 server id 7  end_log_pos 844 CRC32 0x4d8adf63 	Annotate_rows:
`.split("\n");

describe("MariaDB's point-in-time archive: reading the binary log", () => {
  it("cuts a file's text into transactions: where each starts and ends, its last event's second, the open one not committed", () => {
    const txs = parseBinlogText("mariadb-bin.000002", TEXT);
    expect(txs.map((t) => [t.gtid, t.start, t.end, t.at.toISOString(), t.committed])).toEqual([
      ["0-7-6", 330, 515, "2026-12-05T18:46:26.000Z", true],
      ["0-7-7", 515, 741, "2026-12-05T18:46:27.000Z", true],
      ["0-7-8", 741, 844, "2026-12-05T08:46:29.000Z", false],
    ]);
  });

  it("stops on the point's second: a whole second keeps what is before it; within one, --at keeps it and --before drops it", () => {
    const whole = new Date("2026-12-05T18:46:27Z");
    expect([stopSecond(whole, true), stopSecond(whole, false)]).toEqual([whole.getTime(), whole.getTime()]);
    const within = new Date("2026-12-05T18:46:27.400Z");
    expect([stopSecond(within, true), stopSecond(within, false)]).toEqual([Date.parse("2026-12-05T18:46:28Z"), whole.getTime()]);
  });

  it("replays up to the first transaction at or past the stop, and never one left open", () => {
    const txs = parseBinlogText("mariadb-bin.000002", TEXT);
    const at27 = replayPlan(txs, Date.parse("2026-12-05T18:46:27Z"));
    expect([at27.apply.map((t) => t.gtid), at27.next?.gtid]).toEqual([["0-7-6"], "0-7-7"]);
    const all = replayPlan(txs, Date.parse("2026-12-06T00:00:00Z"));
    expect([all.apply.map((t) => t.gtid), all.next]).toEqual([["0-7-6", "0-7-7"], undefined]);
  });
});

describe("MariaDB's point-in-time archive: base backups and receivers", () => {
  it("reads xtrabackup_binlog_info, and refuses what is not one", () => {
    expect(parseBinlogInfo("mariadb-bin.000002\t1698\t0-7-8\n")).toEqual({ binlogFile: "mariadb-bin.000002", binlogPosition: 1698, gtid: "0-7-8" });
    expect(() => parseBinlogInfo("")).toThrow(/xtrabackup_binlog_info is not file, position and GTID: ""/);
    expect(() => parseBinlogInfo("mariadb-bin.000002\tx\n")).toThrow(/not file, position and GTID/);
  });

  it("keeps the base backups of the window and the newest one before it", () => {
    const now = new Date("2026-12-10T00:00:00Z");
    const b = (day: number) => ({ id: String(day), endTime: `2026-12-0${day}T00:00:00Z` });
    expect(basesToKeep([b(1), b(2), b(4), b(9)], 7, now).map((x) => x.id)).toEqual(["2", "4", "9"]);
    expect(basesToKeep([b(1)], 7, now).map((x) => x.id)).toEqual(["1"]);
  });

  it("gives each site's receiver a server id of its own, above any a server is given by hand", () => {
    const [p, s] = [receiverServerId("primary"), receiverServerId("secondary")];
    expect(p).not.toBe(s);
    for (const id of [p, s]) expect(id >= 4_000_000_000 && id <= 4_294_967_295).toBe(true);
  });
});
