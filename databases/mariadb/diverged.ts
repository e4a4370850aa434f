import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { DcctlError } from "../../util/errors.js";
import { makeDir } from "../../util/dirs.js";
import { mariadbArgv, type MariadbReplicationEnd } from "./connection.js";
import { mariadbQuery } from "./query.js";
import { keptFiles, streamToFile } from "../keep.js";
import type { DivergedWrites } from "../replication.js";

/**
 * What a former MariaDB primary holds that its new primary lacks: per GTID domain, the event groups of its binary log
 * after the last GTID the new primary applied from it (its gtid_slave_pos, kept through the promotion). A re-seed
 * drops them; they are decoded from the former primary's own server (mariadb-binlog --read-from-remote-server, the
 * row events both as replayable BINLOG statements and, -v, as readable pseudo-SQL) into the keep folder.
 */

/** "0-1-500,1-1-7" as domain → [server, seqno]. */
function gtids(pos: string): Map<string, [string, number]> {
  const out = new Map<string, [string, number]>();
  for (const g of pos.split(",").map((x) => x.trim()).filter(Boolean)) {
    const [domain = "", server = "", seqno = ""] = g.split("-");
    out.set(domain, [server, Number(seqno)]);
  }
  return out;
}

/** The event groups of a decode: their GTIDs and times (the decode is run with TZ=UTC). */
export function parseBinlogDecode(text: string): { gtid: string; at: number }[] {
  const out: { gtid: string; at: number }[] = [];
  for (const m of text.matchAll(/^#(\d\d)(\d\d)(\d\d)\s+(\d+):(\d\d):(\d\d) server id \d+ .*\tGTID (\d+-\d+-\d+)/gm)) {
    const [, yy = "", mo = "", dd = "", hh = "", mi = "", ss = "", gtid = ""] = m;
    out.push({ gtid, at: Date.UTC(2000 + Number(yy), Number(mo) - 1, Number(dd), Number(hh), Number(mi), Number(ss)) });
  }
  return out;
}

/**
 * Measures and keeps what `former` (a former primary, not a replica) has logged past what `primary` applied from it.
 * Undefined when nothing: no binary log to tell, or the new primary has every GTID it logged.
 */
export async function mariadbDiverged(primary: MariadbReplicationEnd, former: MariadbReplicationEnd, keepDir: string): Promise<DivergedWrites | undefined> {
  const [logBin = "", formerPos = ""] = (await mariadbQuery(former.exec, former.conn, "SELECT @@log_bin, @@gtid_binlog_pos;\n")).trim().split("\t");
  if (logBin !== "1" || !formerPos) return undefined;
  const [applied = ""] = (await mariadbQuery(primary.exec, primary.conn, "SELECT @@gtid_slave_pos;\n")).trim().split("\t");
  // Only a shared history has a fork: the domains the new primary once replicated (a server that never was a replica
  // has no gtid_slave_pos, and a fresh standby's own few GTIDs are not writes it lost).
  const known = gtids(applied);
  const ahead = [...gtids(formerPos)].filter(([domain, [, seqno]]) => known.has(domain) && seqno > (known.get(domain)?.[1] ?? 0));
  if (!ahead.length) return undefined;
  const start = ahead.map(([domain]) => `${domain}-${known.get(domain)?.[0] ?? 0}-${known.get(domain)?.[1] ?? 0}`);

  const made = !existsSync(keepDir);
  makeDir(keepDir);
  const [firstLog = ""] = (await mariadbQuery(former.exec, former.conn, "SHOW BINARY LOGS;\n")).trim().split("\n")[0]?.split("\t") ?? [];
  if (!firstLog) throw new DcctlError(`${former.host.name}: SHOW BINARY LOGS lists none`);
  // The client's own options but one: mariadb-binlog knows no --default-character-set.
  const base = mariadbArgv(former.conn, "mariadb-binlog", []).filter((a) => !a.startsWith("--default-character-set"));
  const file = join(keepDir, "binlog-decode.sql");
  await streamToFile(former.exec, ["env", "TZ=UTC", ...base, "--read-from-remote-server", "--to-last-log", "--verbose", `--start-position=${start.join(",")}`, firstLog], file);
  const groups = parseBinlogDecode(readFileSync(file, "utf8"));
  if (!groups.length) {
    if (made) rmSync(keepDir, { recursive: true, force: true });
    return undefined;
  }
  const times = groups.map((g) => g.at).sort((a, b) => a - b);
  return {
    host: former.host.name,
    engine: "mariadb",
    forkedAt: `GTID ${applied || "none"}`,
    endsAt: `GTID ${formerPos}`,
    writes: groups.length,
    firstAt: new Date(times[0] ?? 0).toISOString(),
    lastAt: new Date(times[times.length - 1] ?? 0).toISOString(),
    kept: keepDir,
    ...keptFiles(keepDir),
    notes: [`GTIDs ${groups[0]?.gtid} … ${groups[groups.length - 1]?.gtid} decoded from ${former.host.name}'s binary log (binlog-decode.sql: replayable, rows as ### comments)`],
  };
}
