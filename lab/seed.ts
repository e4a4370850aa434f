import { spawn } from "node:child_process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { join } from "node:path";
import { DcctlError } from "../util/errors.js";
import { MAIL_SCHEMA, PORTAL_SCHEMA, documentRows, dossierRows, mailAccounts, rowCounts } from "./dataset.js";
import type { Mariadb } from "./mariadb.js";
import { PG_BIN_DIR, type Postgres } from "./postgres.js";

export interface SeedOptions {
  /** Roughly how many megabytes of data (default 2: a two-minute demo). */
  sizeMb: number;
  seed: number;
}

export interface SeedResult {
  dossiers: number;
  documents: number;
  accounts: number;
  /** False when the data was already there (seeding is idempotent). */
  created: boolean;
}

/** Streams CSV rows into `COPY table FROM STDIN` through psql: no temporary file, constant memory at any size. */
async function copyInto(pg: Postgres, db: string, table: string, rows: Iterable<string>): Promise<void> {
  const psql = spawn(join(PG_BIN_DIR, "psql"), ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.socketDir, "-p", String(pg.port), "-U", pg.superuser, "-d", db, "-c", `COPY ${table} FROM STDIN WITH (FORMAT csv)`], { stdio: ["pipe", "ignore", "pipe"] });
  let stderr = "";
  psql.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number>((resolve) => psql.on("close", (code) => resolve(code ?? 1)));
  await pipeline(Readable.from(rows), psql.stdin);
  const code = await exited;
  if (code !== 0) throw new DcctlError(`loading ${db}.${table} failed: ${stderr.trim()}`);
}

/** The portal's database (dossiers, LGSP document exchange) on a PostgreSQL server; done once, then left as it is. */
export async function seedPortal(pg: Postgres, opts: SeedOptions): Promise<SeedResult> {
  const counts = rowCounts(opts.sizeMb);
  const exists = (await pg.psql("SELECT 1 FROM pg_database WHERE datname = 'portal'")).trim() === "1";
  if (!exists) await pg.psql("CREATE DATABASE portal");
  await pg.psql(PORTAL_SCHEMA, "portal");
  const have = Number((await pg.psql("SELECT count(*) FROM dossiers", "portal")).trim());
  if (have > 0) {
    const docs = Number((await pg.psql("SELECT count(*) FROM document_exchange", "portal")).trim());
    return { dossiers: have, documents: docs, accounts: 0, created: false };
  }
  await copyInto(pg, "portal", "dossiers", dossierRows(counts.dossiers, opts.seed));
  await copyInto(pg, "portal", "document_exchange", documentRows(counts.documents, opts.seed));
  await pg.psql("ANALYZE", "portal");
  return { dossiers: counts.dossiers, documents: counts.documents, accounts: 0, created: true };
}

const sqlString = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;

/** The mail server's account metadata on a MariaDB server; done once. */
export async function seedMail(db: Mariadb, opts: SeedOptions): Promise<SeedResult> {
  const counts = rowCounts(opts.sizeMb);
  await db.sql("CREATE DATABASE IF NOT EXISTS mail CHARACTER SET utf8mb4");
  await db.sql(MAIL_SCHEMA, "mail");
  const have = Number((await db.sql("SELECT count(*) FROM accounts", "mail")).trim());
  if (have > 0) return { dossiers: 0, documents: 0, accounts: have, created: false };
  let batch: string[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await db.sql(`INSERT INTO accounts VALUES ${batch.join(",")};`, "mail");
    batch = [];
  };
  for (const [id, address, name, dept, quota, used, login, active] of mailAccounts(counts.accounts, opts.seed)) {
    batch.push(`(${id},${sqlString(address)},${sqlString(name)},${sqlString(dept)},${quota},${used},${sqlString(login)},${active})`);
    if (batch.length >= 500) await flush();
  }
  await flush();
  return { dossiers: 0, documents: 0, accounts: counts.accounts, created: true };
}
