import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DcctlError, errorMessage } from "../../util/errors.js";
import { lastLine } from "../../util/process.js";
import { makeDir } from "../../util/dirs.js";
import { expectOk } from "../../hosts/executor.js";
import { pgArgv } from "./connection.js";
import { pgQuery } from "./query.js";
import { keptFiles, streamToFile } from "../keep.js";
import { asOsUser, type PgReplicationEnd } from "./server.js";
import type { DivergedWrites } from "../replication.js";

/**
 * What a former PostgreSQL primary holds past the point where its new primary's history forked from it: the new
 * primary's timeline history names the LSN where it left the timeline they share; everything the former primary wrote
 * after that LSN is what pg_rewind (or a fresh copy) throws away. It is read from the former primary's own WAL files
 * (pg_waldump, so a stopped server is measured too), counted in transactions that changed user data, and kept: the
 * WAL segments from the fork on, their decode, and — while the server runs — the rows those transactions left.
 */

const pgBin = (end: PgReplicationEnd, program: string): string => pgArgv(end.conn, program, [])[0] ?? program;

const parseLsn = (s: string): bigint => {
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(s.trim());
  if (!m?.[1] || !m[2]) throw new DcctlError(`not an LSN: ${JSON.stringify(s)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
};
const lsnText = (n: bigint): string => `${(n >> 32n).toString(16).toUpperCase()}/${(n & 0xffffffffn).toString(16).toUpperCase()}`;
const hex8 = (n: bigint | number): string => n.toString(16).toUpperCase().padStart(8, "0");
/** The WAL segment file holding `lsn` on timeline `tli`. */
export const segmentName = (tli: number, lsn: bigint, segSize: bigint): string => `${hex8(tli)}${hex8(lsn / segSize / (0x100000000n / segSize))}${hex8((lsn / segSize) % (0x100000000n / segSize))}`;

/** A timeline's ancestry from its history file: each timeline it descends from, with the LSN where it was left; its own is open. */
export function ancestry(tli: number, history: string): Map<number, bigint | undefined> {
  const out = new Map<number, bigint | undefined>();
  for (const line of history.split("\n")) {
    const [parent, switchpoint] = line.trim().split(/\s+/);
    if (!parent || line.trim().startsWith("#") || !switchpoint) continue;
    out.set(Number(parent), parseLsn(switchpoint));
  }
  out.set(tli, undefined);
  return out;
}

/**
 * The newest timeline both histories hold and where the first of them left it: the fork. Undefined when both are on
 * the same timeline still (no promotion separates them: nothing diverged).
 */
export function forkPoint(a: Map<number, bigint | undefined>, b: Map<number, bigint | undefined>): { tli: number; lsn: bigint } | undefined {
  const common = [...a.keys()].filter((t) => b.has(t));
  if (!common.length) throw new DcctlError("their timeline histories share no timeline");
  const tli = Math.max(...common);
  const ends = [a.get(tli), b.get(tli)].filter((e): e is bigint => e !== undefined);
  if (!ends.length) return undefined;
  return { tli, lsn: ends.reduce((x, y) => (x < y ? x : y)) };
}

/** pg_controldata of the data directory (as the server's account: it reads global/pg_control), field by field. */
async function controlData(end: PgReplicationEnd): Promise<Map<string, string>> {
  const argv = asOsUser(end.server, [pgBin(end, "pg_controldata"), "-D", end.server.dataDir]);
  const out = expectOk(await end.exec.run(argv, { env: { LC_ALL: "C" } }), argv, end.exec.target).stdout;
  return new Map(out.split("\n").flatMap((l) => {
    const i = l.indexOf(":");
    return i > 0 ? [[l.slice(0, i).trim(), l.slice(i + 1).trim()] as [string, string]] : [];
  }));
}

/** One transaction of the decode: when it committed, the relations it wrote (db/relfilenode), where its new tuples are. */
interface Txn {
  /** Its own xid and its subtransactions': a row's xmin is one of them. */
  xids: Set<string>;
  rels: Set<string>;
  /** db/relfilenode → "(blk,off)" of the tuples it inserted or updated; a relation with a multi-insert is read whole. */
  tuples: Map<string, Set<string>>;
  wholeRels: Set<string>;
  committedAt?: number;
}

const RECORD = /^rmgr: (\S+)\s+len \(rec\/tot\):\s*\d+\/\s*\d+, tx:\s*(\d+), lsn: ([0-9A-F]+\/[0-9A-F]+), prev \S+ desc: (.*)$/;

/** Reads pg_waldump's text: the committed transactions and what they touched; the last record's LSN. */
export function parseWaldump(text: string): { committed: Map<string, Txn>; lastLsn?: string } {
  const txns = new Map<string, Txn>();
  const txn = (xid: string): Txn => {
    let t = txns.get(xid);
    if (!t) txns.set(xid, (t = { xids: new Set([xid]), rels: new Set(), tuples: new Map(), wholeRels: new Set() }));
    return t;
  };
  const committed = new Map<string, Txn>();
  let lastLsn: string | undefined;
  for (const line of text.split("\n")) {
    const m = RECORD.exec(line);
    if (!m) continue;
    const [, rmgr = "", xid = "0", lsn = "", desc = ""] = m;
    lastLsn = lsn;
    if (rmgr === "Transaction") {
      const c = /^COMMIT (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?) UTC/.exec(desc);
      if (!c || xid === "0") continue;
      const t = txn(xid);
      t.committedAt = Date.parse(`${c[1]}T${c[2]}Z`);
      // Subtransactions' records carry their own xids: they commit with their parent.
      for (const sub of /subxacts:((?: \d+)+)/.exec(desc)?.[1]?.trim().split(" ") ?? []) {
        t.xids.add(sub);
        const s = txns.get(sub);
        if (!s) continue;
        for (const r of s.rels) t.rels.add(r);
        for (const [r, tids] of s.tuples) for (const tid of tids) (t.tuples.get(r) ?? t.tuples.set(r, new Set()).get(r))?.add(tid);
        for (const r of s.wholeRels) t.wholeRels.add(r);
      }
      committed.set(xid, t);
      continue;
    }
    if (xid === "0") continue;
    const refs = [...line.matchAll(/blkref #(\d+): rel \d+\/(\d+)\/(\d+)(?: fork \w+)? blk (\d+)/g)];
    if (!refs.length) continue;
    const t = txn(xid);
    for (const r of refs) t.rels.add(`${r[2]}/${r[3]}`);
    if (rmgr === "Heap") {
      // The new tuple's offset: INSERT off N, or after "; new off N" of an update; its block is blkref #0.
      const off = /(?:^INSERT(?:\+INIT)? off (\d+))|(?:; new off (\d+))/.exec(desc);
      const first = refs.find((r) => r[1] === "0");
      if (off && first) {
        const rel = `${first[2]}/${first[3]}`;
        (t.tuples.get(rel) ?? t.tuples.set(rel, new Set()).get(rel))?.add(`(${first[4]},${off[1] ?? off[2]})`);
      }
    } else if (rmgr === "Heap2" && desc.startsWith("MULTI_INSERT")) {
      for (const r of refs) t.wholeRels.add(`${r[2]}/${r[3]}`);
    }
  }
  return { committed, ...(lastLsn ? { lastLsn } : {}) };
}

interface RelInfo {
  db: string;
  schema: string;
  name: string;
  kind: string;
}

/** Names of the relations a decode touched, per database of the running server (shared catalogs: db 0, none). */
async function relationNames(end: PgReplicationEnd, keys: Set<string>): Promise<Map<string, RelInfo>> {
  const byDb = new Map<string, string[]>();
  for (const k of keys) {
    const [db = "0", node = ""] = k.split("/");
    if (db !== "0") byDb.set(db, [...(byDb.get(db) ?? []), node]);
  }
  const out = new Map<string, RelInfo>();
  if (!byDb.size) return out;
  const dbs = await pgQuery(end.exec, end.conn, "postgres", "SELECT oid, datname FROM pg_database WHERE oid = ANY(:'oids'::oid[]) AND datallowconn;\n", { oids: `{${[...byDb.keys()].join(",")}}` });
  for (const row of dbs.split("\n").filter(Boolean)) {
    const [oid = "", datname = ""] = row.split("|");
    const sql = "SELECT pg_relation_filenode(c.oid), n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE pg_relation_filenode(c.oid) = ANY(:'nodes'::oid[]);\n";
    const rels = await pgQuery(end.exec, end.conn, datname, sql, { nodes: `{${(byDb.get(oid) ?? []).join(",")}}` });
    for (const r of rels.split("\n").filter(Boolean)) {
      const [node = "", schema = "", name = "", kind = ""] = r.split("|");
      out.set(`${oid}/${node}`, { db: datname, schema, name, kind });
    }
  }
  return out;
}

const isUser = (r: RelInfo | undefined) => r !== undefined && r.schema !== "pg_catalog" && r.schema !== "information_schema" && !r.schema.startsWith("pg_toast");

/**
 * Measures and keeps what `former` (a former primary, running or stopped) holds past the fork from `primary`'s history.
 * Undefined when nothing that changed data lies past it. Throws when it cannot be measured.
 */
export async function pgDiverged(primary: PgReplicationEnd, former: PgReplicationEnd, keepDir: string, running: boolean): Promise<DivergedWrites | undefined> {
  // No cluster there to read (a new host's empty data directory): nothing it could hold.
  const control = await controlData(former).catch(() => undefined);
  if (!control) return undefined;
  const state = control.get("Database cluster state") ?? "";
  // A replica (running or shut down in recovery) has no writes of its own.
  if (/recovery/.test(state) && !/crash/.test(state)) return undefined;
  const formerTli = Number(control.get("Latest checkpoint's TimeLineID"));
  const segSize = BigInt(control.get("Bytes per WAL segment") ?? "16777216");
  const [walFile = "", primaryId = ""] = (await pgQuery(primary.exec, primary.conn, "postgres", "SELECT pg_walfile_name(pg_current_wal_lsn()), (SELECT system_identifier FROM pg_control_system());\n")).trim().split("|");
  if (primaryId !== control.get("Database system identifier")) return undefined;
  const primaryTli = parseInt(walFile.slice(0, 8), 16);
  const history = async (end: PgReplicationEnd, tli: number, sql: boolean) => {
    if (tli <= 1) return "";
    if (sql) return pgQuery(end.exec, end.conn, "postgres", "SELECT pg_read_file('pg_wal/' || :'name');\n", { name: `${hex8(tli)}.history` });
    const argv = asOsUser(end.server, ["cat", "--", `${end.server.dataDir.replace(/\/+$/, "")}/pg_wal/${hex8(tli)}.history`]);
    return expectOk(await end.exec.run(argv), argv, end.exec.target).stdout;
  };
  const fork = forkPoint(ancestry(primaryTli, await history(primary, primaryTli, true)), ancestry(formerTli, await history(former, formerTli, false)));
  if (!fork) return undefined;
  // Its WAL's end while it runs; a stopped server's WAL is read until it ends.
  const end = running ? parseLsn(await pgQuery(former.exec, former.conn, "postgres", "SELECT pg_current_wal_insert_lsn();\n")) : undefined;
  if (end !== undefined && end <= fork.lsn) return undefined;

  // The folder is the kept copy's: one made only to look, where nothing was found, goes again.
  const made = !existsSync(keepDir);
  makeDir(keepDir);
  const nothing = () => void (made && rmSync(keepDir, { recursive: true, force: true }));
  const walDir = `${former.server.dataDir.replace(/\/+$/, "")}/pg_wal`;
  const decodeFile = join(keepDir, "waldump.txt");
  const dump = asOsUser(former.server, ["env", "TZ=UTC", pgBin(former, "pg_waldump"), "--path", walDir, "--timeline", String(fork.tli), "--start", lsnText(fork.lsn), ...(end !== undefined ? ["--end", lsnText(end)] : [])]);
  // Exit 1 where the WAL ends ("invalid record length"): that is the end of a stopped server's history.
  const res = await streamToFile(former.exec, dump, decodeFile, [0, 1]);
  const decoded = parseWaldump(readFileSync(decodeFile, "utf8"));
  if (res.code !== 0 && !decoded.lastLsn) {
    if (/could not find a valid record after/.test(res.stderr)) return nothing();
    throw new DcctlError(`pg_waldump of ${former.host.name} from ${lsnText(fork.lsn)}: ${lastLine(res.stderr) || "no output"}`);
  }
  const notes: string[] = [];
  const names = running ? await relationNames(former, new Set([...decoded.committed.values()].flatMap((t) => [...t.rels]))) : new Map<string, RelInfo>();
  // Stopped, relations cannot be named: user relations are told by their file numbers (FirstNormalObjectId on).
  const userRel = (key: string) => (running ? isUser(names.get(key)) : !key.startsWith("0/") && Number(key.split("/")[1]) >= 16384);
  if (!running) notes.push(`${former.host.name} is not running: transactions counted by the relation files they wrote, rows not dumped`);
  // A transaction that began before the fork and committed after it wrote its rows where the decode does not look:
  // counted (it is lost with its commit), its rows searched for in every table the others wrote.
  const straddling = [...decoded.committed.entries()].filter(([, t]) => t.rels.size === 0);
  const writes = [...decoded.committed.entries()].filter(([, t]) => t.rels.size === 0 || [...t.rels].some(userRel));
  if (straddling.length) notes.push(`${straddling.length} of them began before the fork (their rows are found by transaction id alone)`);
  if (!writes.length) return nothing();

  const walEnd = end ?? (decoded.lastLsn ? parseLsn(decoded.lastLsn) : fork.lsn);
  const segments = await walSegments(former, walDir, fork.tli, segmentName(fork.tli, fork.lsn, segSize), segmentName(fork.tli, walEnd, segSize));
  const tarArgv = asOsUser(former.server, ["tar", "-C", walDir, "-czf", "-", "--", ...segments]);
  await streamToFile(former.exec, tarArgv, join(keepDir, `wal-${hex8(fork.tli)}-from-${lsnText(fork.lsn).replace("/", "-")}.tar.gz`));
  if (running) notes.push(...(await dumpRows(former, keepDir, writes, names)));

  const times = writes.map(([, t]) => t.committedAt).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  const kept = keptFiles(keepDir);
  return {
    host: former.host.name,
    engine: "postgresql",
    forkedAt: `LSN ${lsnText(fork.lsn)} on timeline ${fork.tli}`,
    endsAt: `LSN ${lsnText(walEnd)}`,
    writes: writes.length,
    ...(times.length ? { firstAt: new Date(times[0] ?? 0).toISOString(), lastAt: new Date(times[times.length - 1] ?? 0).toISOString() } : {}),
    kept: keepDir,
    ...kept,
    notes: [`WAL segments ${segments.join(", ")} and their decode (waldump.txt)`, ...notes],
  };
}

/** The segment files of a timeline from the fork's to the end's (recycled ones ahead of the end hold nothing of it). */
async function walSegments(former: PgReplicationEnd, walDir: string, tli: number, from: string, to: string): Promise<string[]> {
  const argv = asOsUser(former.server, ["ls", "-1", "--", walDir]);
  const names = expectOk(await former.exec.run(argv), argv, former.exec.target).stdout.split("\n");
  const segs = names.filter((n) => /^[0-9A-F]{24}$/.test(n) && n.startsWith(hex8(tli)) && n >= from && n <= to).sort();
  if (!segs.includes(from)) throw new DcctlError(`${former.host.name}: WAL segment ${from}, where its history forked, is no longer in ${walDir}`);
  return [...segs, ...names.filter((n) => /^[0-9A-F]{8}\.history$/.test(n))];
}

/** The rows the diverged transactions left in user tables (inserted or updated, still there), one CSV per table. */
async function dumpRows(former: PgReplicationEnd, keepDir: string, writes: [string, Txn][], names: Map<string, RelInfo>): Promise<string[]> {
  const tables = new Map<string, { xids: Set<string>; tids: Set<string>; whole: boolean }>();
  const straddling = writes.filter(([, t]) => t.rels.size === 0).flatMap(([, t]) => [...t.xids]);
  for (const [, t] of writes) {
    for (const key of t.rels) {
      const rel = names.get(key);
      if (!isUser(rel) || rel?.kind !== "r") continue;
      const e = tables.get(key) ?? { xids: new Set<string>(), tids: new Set<string>(), whole: false };
      for (const x of t.xids) e.xids.add(x);
      for (const tid of t.tuples.get(key) ?? []) e.tids.add(tid);
      if (t.wholeRels.has(key) || straddling.length) e.whole = true;
      for (const x of straddling) e.xids.add(x);
      tables.set(key, e);
    }
  }
  const notes: string[] = [];
  for (const [key, e] of tables) {
    const rel = names.get(key);
    if (!rel || (!e.tids.size && !e.whole)) continue;
    const file = `rows-${rel.db}.${rel.schema}.${rel.name}.csv`.replace(/[^A-Za-z0-9._-]/g, "_");
    // By the tuples' places (a TID scan) unless a multi-insert wrote some, and only those the transactions left.
    const where = `${e.whole ? "" : "ctid = ANY(:'tids'::tid[]) AND "}xmin::text = ANY(:'xids'::text[])`;
    try {
      const csv = await pgQuery(former.exec, former.conn, rel.db, `COPY (SELECT * FROM :"schema".:"name" WHERE ${where}) TO STDOUT WITH (FORMAT csv, HEADER);\n`, {
        schema: rel.schema,
        name: rel.name,
        tids: `{${[...e.tids].map((x) => `"${x}"`).join(",")}}`,
        xids: `{${[...e.xids].join(",")}}`,
      });
      writeFileSync(join(keepDir, file), csv, { mode: 0o600 });
      notes.push(`${rel.db}: ${rel.schema}.${rel.name}: ${Math.max(0, csv.split("\n").filter(Boolean).length - 1)} rows written past the fork (${file})`);
    } catch (e) {
      notes.push(`${rel.db}: ${rel.schema}.${rel.name}: rows not dumped: ${errorMessage(e)}`);
    }
  }
  return notes;
}
