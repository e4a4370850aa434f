import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { cacheDir } from "./tools.js";

/**
 * The data of YAML files dcctl has read before, kept by the SHA-256 of their text in <cache>/yaml/ (the folder that
 * holds the tools dcctl runs, so trusting it adds nothing). Loading the yaml library and parsing the site files cold
 * costs ~60 ms, which every timer's `dcctl backup run` would pay for the same unchanged files; a text seen before is
 * read back as JSON instead, and a changed file is simply a new text. Only the data is kept: lines, for `file:line`
 * messages, are needed only when something is wrong, and then the file is parsed for real, so every message is the
 * parser's own. A file with a syntax error, or data JSON cannot carry exactly, is never kept.
 */

/** A parsed YAML file as its readers use it (inventory/yaml-source.ts's YamlSource). */
export interface ParsedYaml {
  readonly displayPath: string;
  readonly data: unknown;
  readonly syntaxProblems: string[];
  lineOf(path: readonly (string | number)[]): number;
  problem(path: readonly (string | number)[], message: string): string;
}

/** Texts above this are parsed every time: a province's site file is tens of KiB, and hashing a huge one costs. */
const MAX_CACHED_LENGTH = 1024 * 1024;
/** Entries kept; past it the half least recently read goes (every edit of a file leaves its old text behind). */
const MAX_ENTRIES = 400;
/** Data nodes a kept file may have: aliases can make a small file's data huge, and JSON would repeat it in full. */
const MAX_NODES = 200_000;
const FORMAT = 1;

const require = createRequire(import.meta.url);
let yamlVersion: string | undefined;

/**
 * The file parsed by `parse` (inventory/yaml-source.ts's parseYamlSource), or its data from the cache; the parser's
 * own code and the yaml library's version are part of the key, so a change to either is a miss.
 */
export function cachedYaml(file: string, text: string, parse: (file: string, text: string) => ParsedYaml, displayPath: (file: string) => string): ParsedYaml {
  if (text.length > MAX_CACHED_LENGTH) return parse(file, text);
  const dir = join(cacheDir(), "yaml");
  yamlVersion ??= (require("yaml/package.json") as { version: string }).version;
  const key = createHash("sha256").update(`${FORMAT}\0${yamlVersion}\0${parse.toString()}\0${text}`).digest("hex");
  const path = join(dir, `${key}.json`);
  const kept = readEntry(path);
  if (kept) {
    let parsed: ParsedYaml | undefined;
    const real = (): ParsedYaml => (parsed ??= parse(file, text));
    return { displayPath: displayPath(file), data: kept.data, syntaxProblems: [], lineOf: (p) => real().lineOf(p), problem: (p, m) => real().problem(p, m) };
  }
  const source = parse(file, text);
  if (!source.syntaxProblems.length && jsonExact(source.data, { left: MAX_NODES })) writeEntry(dir, path, source.data);
  return source;
}

function readEntry(path: string): { data: unknown } | undefined {
  let entry: { format?: unknown; data?: unknown };
  try {
    entry = JSON.parse(readFileSync(path, "utf8")) as typeof entry;
  } catch {
    return undefined;
  }
  if (typeof entry !== "object" || entry === null || entry.format !== FORMAT || !("data" in entry)) return undefined;
  try {
    // Its time is when it was last read: pruning keeps the files in use, however many others came and went.
    const now = new Date();
    utimesSync(path, now, now);
  } catch {
    // Read-only: it may be pruned sooner, nothing more.
  }
  return { data: entry.data };
}

/** Written whole or not at all (a reader never sees half a file); a cache that cannot be written is no error. */
function writeEntry(dir: string, path: string, data: unknown): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const partial = `${path}.${process.pid}.partial`;
    writeFileSync(partial, JSON.stringify({ format: FORMAT, data }), { mode: 0o600 });
    renameSync(partial, path);
    prune(dir);
  } catch {
    // Read-only home, full disk: the next run parses again.
  }
}

function prune(dir: string): void {
  const names = readdirSync(dir);
  if (names.length <= MAX_ENTRIES) return;
  const aged = names.map((name) => ({ name, at: mtimeOf(join(dir, name)) })).sort((a, b) => a.at - b.at);
  for (const { name } of aged.slice(0, aged.length - MAX_ENTRIES / 2)) rmSync(join(dir, name), { force: true });
}

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** Whether JSON gives back exactly this value: plain objects and arrays of strings, finite numbers, booleans, null. */
function jsonExact(value: unknown, budget: { left: number }): boolean {
  if (--budget.left < 0) return false;
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value) && !Object.is(value, -0);
  if (Array.isArray(value)) return value.length === Object.keys(value).length && value.every((v) => jsonExact(v, budget));
  if (typeof value !== "object" || Object.getPrototypeOf(value) !== Object.prototype) return false;
  return Object.getOwnPropertySymbols(value).length === 0 && Object.values(value).every((v) => jsonExact(v, budget));
}
