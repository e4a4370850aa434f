import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { documentRows, dossierRows, prng } from "./dataset.js";

/**
 * The documents an application host of the lab keeps on disk — its portal's filed dossiers (text, which compresses)
 * and their scans (which do not) — and how they change from one day to the next: what the lab's ransomware test and
 * the anomaly bench back up, then encrypt as ransomware would.
 */

export interface DocumentsOptions {
  dossiers?: number;
  scans?: number;
  /** The same seed writes the same dossiers, which a repository that saw them already stores no second time. */
  seed?: number;
}

/** What one ordinary day did to a tree. */
export interface DayChange {
  updated: number;
  filed: number;
  scans: number;
  archived: number;
}

const KiB = 1024;

/** A dossier as the portal files it: its record and the exchange of documents about it, a few KiB of text. */
function dossierText(seed: number, rows: number): string {
  return ["mã hồ sơ,họ tên,số định danh,thủ tục,cơ quan,trạng thái,ngày nộp,hạn,ngày quyết định\n", ...dossierRows(rows, seed), "\nvăn bản trao đổi\n", ...documentRows(Math.ceil(rows / 2), seed)].join("");
}

function dossierFile(dir: string, n: number): string {
  return join(dir, "dossiers", `QN-2026-${String(n).padStart(6, "0")}.csv`);
}

/** A scanned page: as incompressible as a JPEG or PDF scan is. */
function writeScan(dir: string, name: string, bytes: number): void {
  writeFileSync(join(dir, "scans", name), randomBytes(bytes));
}

/** Writes a tree of dossiers and scans under `dir` (dossiers/, scans/). */
export function writeDocuments(dir: string, o: DocumentsOptions = {}): void {
  const r = prng(o.seed ?? 1);
  mkdirSync(join(dir, "dossiers"), { recursive: true });
  mkdirSync(join(dir, "scans"), { recursive: true });
  for (let n = 1; n <= (o.dossiers ?? 240); n++) writeFileSync(dossierFile(dir, n), dossierText((o.seed ?? 1) * 100_003 + n, 20 + Math.floor(r() * 40)));
  for (let n = 1; n <= (o.scans ?? 12); n++) writeScan(dir, `scan-${String(n).padStart(4, "0")}.pdf`, (64 + Math.floor(r() * 192)) * KiB);
}

/**
 * One ordinary day of the portal: a few dossiers change status (a line added), a few are filed, now and then a scan
 * comes in, now and then a dossier is archived away. Deterministic from `day` and `seed`.
 */
export function ordinaryDay(dir: string, day: number, seed = 1): DayChange {
  const r = prng(day * 7919 + seed * 104_729);
  const names = readdirSync(join(dir, "dossiers")).sort();
  const numbers = names.map((n) => Number(/(\d+)\.csv$/.exec(n)?.[1] ?? 0));
  let next = Math.max(0, ...numbers) + 1;
  const change: DayChange = { updated: 1 + Math.floor(r() * 5), filed: 1 + Math.floor(r() * 3), scans: r() < 0.3 ? 1 : 0, archived: r() < 0.2 ? 1 : 0 };
  for (let i = 0; i < change.updated; i++) {
    const name = names[Math.floor(r() * names.length)];
    if (name) appendFileSync(join(dir, "dossiers", name), [...dossierRows(1 + Math.floor(r() * 3), seed * 7_001 + day * 31 + i)].join(""));
  }
  for (let i = 0; i < change.filed; i++) writeFileSync(dossierFile(dir, next++), dossierText(seed * 9_973 + day * 1_000 + i, 20 + Math.floor(r() * 40)));
  if (change.scans) writeScan(dir, `scan-day-${String(day).padStart(4, "0")}.pdf`, (100 + Math.floor(r() * 500)) * KiB);
  if (change.archived) {
    const victim = names[Math.floor(r() * names.length)];
    if (victim && existsSync(join(dir, "dossiers", victim))) rmSync(join(dir, "dossiers", victim));
  }
  return change;
}

/** A digitisation campaign: `count` scans filed at once, new files that do not compress. */
export function scanCampaign(dir: string, count: number, seed = 1): number {
  const r = prng(seed * 65_537 + count);
  let bytes = 0;
  for (let n = 1; n <= count; n++) {
    const size = (100 + Math.floor(r() * 200)) * KiB;
    writeScan(dir, `campaign-${seed}-${String(n).padStart(4, "0")}.pdf`, size);
    bytes += size;
  }
  return bytes;
}

/**
 * The command that encrypts every file under `path` in place, run on the host as ransomware would (sh, find,
 * openssl): each file replaced by its AES-256-CBC ciphertext under the same name.
 */
export function encryptInPlaceArgv(path: string): string[] {
  const each = 'for f do openssl enc -aes-256-cbc -pbkdf2 -pass pass:x -in "$f" -out "$f.locked" && mv -f "$f.locked" "$f" || exit 1; done';
  return ["sh", "-c", 'find "$1" -type f -exec sh -c "$2" sh {} +', "sh", path, each];
}
