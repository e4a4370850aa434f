import { createRequire } from "node:module";
import { isAbsolute, relative, resolve } from "node:path";
import { readSmallFile } from "../util/files.js";

// Loaded by the first parse, not by importing this module: a reader whose file util/yaml-cache.ts knows never needs
// the yaml library, which costs ~30 ms to load.
const yaml = (): typeof import("yaml") => createRequire(import.meta.url)("yaml") as typeof import("yaml");

/** A path into the parsed data, e.g. ["hosts", 3, "ip"]. */
export type DataPath = readonly (string | number)[];

/** A parsed YAML file that still knows where each of its nodes came from. */
export interface YamlSource {
  /** The file as the user should see it in messages: relative to the working directory when inside it. */
  readonly displayPath: string;
  /** The data (plain JS), undefined when the file has syntax errors. */
  readonly data: unknown;
  /** `file:line: message` for every YAML syntax error. */
  readonly syntaxProblems: string[];
  /** The 1-based line of the node at `path` (of its key, for a mapping entry); the nearest existing parent's line otherwise. */
  lineOf(path: DataPath): number;
  /** `file:line: message` for the node at `path`. */
  problem(path: DataPath, message: string): string;
}

export function displayPath(file: string): string {
  const rel = relative(process.cwd(), resolve(file));
  return rel && !rel.startsWith("..") && !isAbsolute(rel) ? rel : resolve(file);
}

/**
 * The largest YAML file dcctl reads (inventories, policies, runbooks, repositories): a province's site file is tens
 * of KiB; past this a file is a mistake or an attack, and parsing it would only end in an out-of-memory crash.
 */
export const MAX_YAML_BYTES = 4 * 1024 * 1024;
/**
 * The text of a YAML file dcctl reads (inventories, policies, runbooks, repositories): refused before reading when it
 * is no regular file (a FIFO, /dev/zero, a folder) or, by its size on disk, larger than MAX_YAML_BYTES. Throws like
 * readFileSync: a system error with its code (ENOENT…), a refusal with a message and no code.
 */
export function readYamlFile(path: string): string {
  return readSmallFile(path, MAX_YAML_BYTES, "a YAML file");
}

/** Aliases a file may use: enough for real anchors, far too few for an "alias bomb" to expand. */
export const MAX_YAML_ALIASES = 100;

export function parseYamlSource(file: string, text: string): YamlSource {
  const shown = displayPath(file);
  const refused = (message: string): YamlSource => ({ displayPath: shown, data: undefined, syntaxProblems: [message], lineOf: () => 1, problem: (_p, m) => `${shown}:1: ${m}` });
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_YAML_BYTES) return refused(`${shown}: ${(bytes / 1024 / 1024).toFixed(1)} MiB is larger than the ${MAX_YAML_BYTES / 1024 / 1024} MiB dcctl reads from a YAML file; refused unread`);
  const { LineCounter, isMap, isScalar, isSeq, parseDocument } = yaml();
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line;

  // The first syntax error is the one to fix: the parser's later complaints are mostly its consequences
  // (one tab or mis-indented key can make it reject every following line), so they are summed up in one line.
  const syntaxProblems: string[] = [];
  const [first, next] = doc.errors;
  if (first) {
    syntaxProblems.push(`${shown}:${lineAt(first.pos[0])}: YAML syntax error: ${first.message.split("\n")[0] ?? first.message}`);
  }
  if (next) {
    const more = doc.errors.length - 1;
    syntaxProblems.push(
      `${shown}:${lineAt(next.pos[0])}: ${more} more YAML syntax error${more === 1 ? "" : "s"} from here on, probably caused by the first; fix it and run again`,
    );
  }

  const lineOf = (path: DataPath): number => {
    let node: unknown = doc.contents;
    let line = 1;
    for (const key of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
        if (!pair) break;
        if (isScalar(pair.key) && pair.key.range) line = lineAt(pair.key.range[0]);
        node = pair.value;
      } else if (isSeq(node) && typeof key === "number") {
        const item: unknown = node.items[key];
        if (!item) break;
        if ((isMap(item) || isSeq(item) || isScalar(item)) && item.range) line = lineAt(item.range[0]);
        node = item;
      } else {
        break;
      }
    }
    return line;
  };

  let data: unknown;
  if (!syntaxProblems.length) {
    try {
      data = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
    } catch (e) {
      // The yaml library refuses an excessive alias expansion here (a "billion laughs" file).
      syntaxProblems.push(`${shown}:1: YAML refused: ${e instanceof Error ? e.message : String(e)} (at most ${MAX_YAML_ALIASES} aliases)`);
    }
  }
  return {
    displayPath: shown,
    data: syntaxProblems.length ? undefined : data,
    syntaxProblems,
    lineOf,
    problem: (path, message) => `${shown}:${lineOf(path)}: ${message}`,
  };
}
