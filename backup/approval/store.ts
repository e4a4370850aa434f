import { createHash } from "node:crypto";
import { chmodSync, closeSync, constants, fchmodSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readSync, readdirSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { makeDir } from "../../util/dirs.js";
import { DcctlError } from "../../util/errors.js";
import { ApprovalRequiredError } from "./refusal.js";
import { userNameOf } from "./identity.js";
import type { ApprovalGrant, ApprovalRequest, ApprovalUse } from "./request.js";

/**
 * The folder of requests, approvals and uses, one file each per code: CODE.request.json written by the requester,
 * CODE.approval.json by the approver, CODE.used.json by the run that used it. Operators share it through a group;
 * mode 3770 (setgid: files take the folder's group; sticky: nobody but a file's owner, the folder's owner and root
 * may remove or rename it). Each file is created once, never rewritten, and read for who its owner is: a process
 * writes files owned by its own user, so a file that says "approved by minh" but is owned by lan is lan's forgery.
 * Root owns what it writes through sudo; root can be anyone, and what it says inside is taken (docs/operator/approvals.md).
 */

const MODE = 0o3770;
const FILE_MODE = 0o640;
const MAX_BYTES = 64 * 1024;

export type Kind = "request" | "approval" | "used";

/** A file of the folder as read: its text, and the user that owns it. */
export interface Owned<T> {
  value: T;
  text: string;
  sha256: string;
  uid: number;
  /** The owner's name, trusted for every uid but root's (see authorOf). */
  owner: string | undefined;
}

export class ApprovalStore {
  private constructor(readonly dir: string) {}

  /**
   * The folder, checked; when missing, made (mode 3770, the group of this process or the parent's setgid) by a request,
   * or undefined for a reader (a list or an approval has nothing to read there yet, and makes nothing).
   */
  static open(dir: string): ApprovalStore;
  static open(dir: string, create: false): ApprovalStore | undefined;
  static open(dir: string, create = true): ApprovalStore | undefined {
    let st;
    try {
      st = lstatSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new DcctlError(`approvals folder ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      if (!create) return undefined;
      makeDir(dirname(dir));
      try {
        mkdirSync(dir);
        // Not left to the umask: the second operator must be able to write here.
        chmodSync(dir, MODE);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw new DcctlError(`cannot create the approvals folder ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      st = lstatSync(dir);
    }
    const problem = folderProblem(st.isSymbolicLink(), st.isDirectory(), st.mode);
    if (problem) throw new DcctlError(`approvals folder ${dir}: ${problem}`);
    return new ApprovalStore(dir);
  }

  path(code: string, kind: Kind): string {
    return join(this.dir, `${code}.${kind}.json`);
  }

  /** The codes that have a request, oldest file name order (the caller sorts by time). */
  codes(): string[] {
    return readdirSync(this.dir)
      .map((f) => /^([0-9A-Z]+)\.request\.json$/.exec(f)?.[1])
      .filter((c): c is string => c !== undefined)
      .sort();
  }

  /** Writes a file of the folder that must not exist yet; false when it does (another process was first). */
  create(code: string, kind: Kind, value: ApprovalRequest | ApprovalGrant | ApprovalUse): boolean {
    let fd: number;
    try {
      fd = openSync(this.path(code, kind), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, FILE_MODE);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw new DcctlError(`cannot write ${this.path(code, kind)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    try {
      // Readable by the group whatever this user's umask: the other operator reads it.
      fchmodSync(fd, FILE_MODE);
      writeSync(fd, JSON.stringify(value, null, 2) + "\n");
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return true;
  }

  /**
   * A file of the folder, or undefined when there is none. Refused (not read): a symbolic link, anything but a
   * regular file, a file with more than one name (a hard link to someone else's file keeps that owner), one too large.
   */
  read<T>(code: string, kind: Kind): Owned<T> | undefined {
    const path = this.path(code, kind);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (e) {
      const c = (e as NodeJS.ErrnoException).code;
      if (c === "ENOENT") return undefined;
      throw new ApprovalRequiredError(`${path}: ${c === "ELOOP" ? "a symbolic link; refused" : (c ?? String(e))}`, c === "ELOOP" ? "forged" : "unreadable");
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new ApprovalRequiredError(`${path}: not a regular file; refused`, "forged");
      if (st.nlink !== 1) throw new ApprovalRequiredError(`${path}: has ${st.nlink} names (a hard link keeps another file's owner); refused`, "forged");
      if (st.size > MAX_BYTES) throw new ApprovalRequiredError(`${path}: larger than ${MAX_BYTES} bytes; refused`, "unreadable");
      const buf = Buffer.alloc(st.size);
      let n = 0;
      for (let k; n < buf.length && (k = readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += k;
      const text = buf.toString("utf8", 0, n);
      let value: T;
      try {
        value = JSON.parse(text) as T;
      } catch {
        throw new ApprovalRequiredError(`${path}: not JSON (being written, or damaged); refused`, "unreadable");
      }
      return { value, text, sha256: createHash("sha256").update(text).digest("hex"), uid: st.uid, owner: userNameOf(st.uid) };
    } finally {
      closeSync(fd);
    }
  }
}

/** Why a folder cannot hold approvals safely, or undefined. Exported for the unit tests of the rule. */
export function folderProblem(symlink: boolean, directory: boolean, mode: number): string | undefined {
  if (symlink) return "is a symbolic link; name the folder itself";
  if (!directory) return "is not a folder";
  if (mode & 0o002) return `is writable by every user (mode ${octal(mode)}): chmod 3770 it, group the operators`;
  if (mode & 0o020 && !(mode & 0o1000)) return `is writable by its group without the sticky bit (mode ${octal(mode)}): any operator could remove another's approval or use record; chmod +t it`;
  return undefined;
}

function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8)}`;
}

/**
 * Who wrote a file, as far as the system proves it: its owner. A file owned by root is root's word (sudo names the
 * person inside it, and root could forge any owner anyway); any other owner must be the user the file names, or the
 * file is refused as forged.
 */
export function authorOf(file: Pick<Owned<unknown>, "uid" | "owner">, claimed: string, what: string): string {
  if (file.uid === 0) return claimed;
  if (file.owner === claimed) return claimed;
  throw new ApprovalRequiredError(`${what} says it was written by ${claimed}, but its file is owned by ${file.owner ?? `uid ${file.uid}`}: refused as forged`, "forged");
}
