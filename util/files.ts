import { closeSync, constants, fstatSync, fsyncSync, openSync, readSync, renameSync, writeSync, type Stats } from "node:fs";
import { dirname } from "node:path";
import { makeDir } from "./dirs.js";

/**
 * Writes a file whole or not at all: into a temporary file in the same folder, synced, then renamed over the old one
 * (atomic on POSIX), so a reader or a crash sees the old content or the new, never half of it.
 */
export function writeAtomic(path: string, content: string, mode = 0o644): void {
  makeDir(dirname(path));
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, "w", mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Makes a new file's name durable too: without it a crash can lose a fsynced file whose folder entry was not. */
export function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The whole text of a small file an operator names (a YAML file, a token, a certificate), or an error saying why not,
 * before a byte is read: only a regular file of at most `maxBytes` (as `stat` says) is read. /dev/zero would never
 * end, a FIFO would block until a writer comes, a folder fails late; each is refused at once. Opened without blocking
 * (a FIFO waits for a writer otherwise) and checked on the open descriptor, so what was checked is what is read. An
 * error of the system keeps its `code` (ENOENT, EACCES); a refusal has none, and its message says why.
 */
export function readSmallFile(path: string, maxBytes: number, what = "a file"): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new Error(`it is ${kindOf(stat)}, not a file; refused unread`);
    if (stat.size > maxBytes) throw new Error(`${sizeText(stat.size)} is larger than the ${sizeText(maxBytes)} dcctl reads from ${what}; refused unread`);
    // One byte more than stat said: a file still growing is noticed, and never read past the limit.
    const buffer = Buffer.alloc(stat.size + 1);
    let length = 0;
    for (let n; length < buffer.length && (n = readSync(fd, buffer, length, buffer.length - length, null)) > 0; ) length += n;
    if (length > stat.size) throw new Error("it grew while being read; refused");
    return buffer.toString("utf8", 0, length);
  } finally {
    closeSync(fd);
  }
}

function kindOf(stat: Stats): string {
  if (stat.isDirectory()) return "a folder";
  if (stat.isFIFO()) return "a FIFO (named pipe)";
  if (stat.isCharacterDevice()) return "a character device";
  if (stat.isBlockDevice()) return "a block device";
  if (stat.isSocket()) return "a socket";
  return "not a regular file";
}

function sizeText(bytes: number): string {
  const [value, unit] = bytes >= 1024 * 1024 ? [bytes / 1024 / 1024, "MiB"] : bytes >= 1024 ? [bytes / 1024, "KiB"] : [bytes, "bytes"];
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
}
