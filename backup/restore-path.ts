import { posix } from "node:path";
import { PassThrough } from "node:stream";
import { DcctlError, ExitCode, InputError } from "../util/errors.js";
import { expectOk, type Executor } from "../hosts/index.js";
import type { Restic, Snapshot, SnapshotFilter } from "../restic/index.js";
import { RemoteRestic, TargetOccupiedError, reachableFromHosts } from "../restic/remote.js";
import { FILES_TAG, filesStreamName } from "./sources/files.js";
import { chooseSnapshot, distrustLine, isTrusted, passedOverLine, type JudgedSnapshot } from "./trust.js";

/**
 * Restores a path from a files snapshot to its host or another one. Two snapshot forms exist (see FilesSource):
 * - a snapshot of real paths (a local backup, or restic run on the host): restored by `restic restore --include`
 *   where the files go — this machine's restic for a local target, restic run on the target host over SSH
 *   (restic/remote.ts) when the repository is a URL it can reach, which reads only what it restores;
 *   otherwise `restic dump <dir>` (restic writes a folder as tar) into tar on the target;
 * - an older remote host's tar stream (/files/<host>.tar), extracted with `restic dump | tar -x` over the target's
 *   executor (the whole stream is read to find the member).
 * Either way the files land at <destination>/<path>: destination "/" puts them back where they were.
 */

export interface PathRestoreOptions {
  restic: Restic;
  /** The inventory host whose backup is restored (the snapshot's host). */
  host: string;
  /** The absolute path as it was backed up (a folder or a file inside the backed-up paths). */
  path: string;
  /** A snapshot id (or its short form) or "latest". */
  snapshot: string;
  /** Where the files are written: the original host's executor or another host's. */
  targetExec: Executor;
  /** The folder the path is recreated under; default "/" (in place). */
  destination?: string;
  /** Asked when the place the files land already has content; should throw to refuse. Without it: refuse (exit 5). */
  confirm?: (action: string) => Promise<void>;
  /**
   * How snapshots are listed and judged (arrival-ledger.ts listJudged): `latest` is then the newest this site trusts.
   * Without it they are taken as restic lists them (tests of the restore alone).
   */
  list?: (filter: SnapshotFilter) => Promise<JudgedSnapshot[]>;
  /** Told one line for each thing the operator should know of the choice (a distrusted snapshot named or passed over). */
  onNote?: (line: string) => void;
}

export interface PathRestoreResult {
  snapshotId: string;
  /** Where the path now is on the target. */
  restoredTo: string;
  target: string;
}

export class RestoreTargetNotEmptyError extends DcctlError {
  constructor(message: string) {
    super(message, ExitCode.notConfirmed);
  }
}

export async function restorePath(o: PathRestoreOptions): Promise<PathRestoreResult> {
  if (!o.path.startsWith("/")) throw new InputError([`dcctl restore: --path must be absolute, not ${o.path}`]);
  const path = posix.normalize(o.path).replace(/\/+$/, "") || "/";
  const destination = posix.normalize(o.destination ?? "/");
  if (!destination.startsWith("/")) throw new InputError([`dcctl restore: the destination must be absolute, not ${destination}`]);
  const landing = posix.join(destination, path);
  const exec = o.targetExec;
  // The snapshot lookup (a restic run here) goes beside the look at the target, and beside the restore itself below.
  const lookup = findSnapshot(o.restic, o.host, o.snapshot, o.list, o.onNote);
  lookup.catch(() => undefined);
  const member = path.replace(/^\/+/, "") || ".";
  const stream = "/" + filesStreamName(o.host);
  const onHost = exec.target !== "local" && reachableFromHosts(o.restic.repo.url);

  // `latest` by restic on the target host, if the place is empty (checked there in the same command): it picks the
  // same snapshot as the lookup (the newest files snapshot of the host) and starts at once rather than after it, one
  // restic start less to wait for. Not when snapshots are judged: restic's latest is the newest by its claim. Were that snapshot an older tar stream, the path matches nothing in it and nothing
  // is written: the tar way follows. A place with content goes the way below, which asks first.
  if (onHost && o.snapshot === "latest" && !o.list && path !== "/" && !stream.startsWith(`${path}/`)) {
    const [found, restored] = await Promise.allSettled([lookup, new RemoteRestic(exec, o.restic).restore("latest", destination, { include: [path], host: o.host, tags: [FILES_TAG], ifEmpty: landing })]);
    if (found.status === "rejected") throw found.reason;
    const snap = found.value;
    const occupied = restored.status === "rejected" && restored.reason instanceof TargetOccupiedError;
    if (!occupied) {
      if (snap.paths.includes(stream)) await dumpIntoTar(o.restic, snap.id, stream, exec, destination, member);
      else if (!insidePaths(path, snap)) throw notInside(path, snap);
      else if (restored.status === "rejected") throw restored.reason;
      return { snapshotId: snap.id, restoredTo: landing, target: exec.target };
    }
  }

  // A restore must not silently mix old files into a folder someone is using: ask (or refuse) when it has content.
  const probe = await exec.run(["sh", "-c", 'if [ -d "$1" ]; then find "$1" -mindepth 1 -maxdepth 1 -print -quit; elif [ -e "$1" ]; then echo "$1"; fi', "sh", landing]);
  expectOk(probe, ["sh"], exec.target);
  const occupied = probe.stdout.trim() !== "";
  const snap = await lookup;
  if (occupied) {
    const action = `overwrite the existing ${landing} on ${exec.target} with ${path} from snapshot ${snap.short_id} of ${o.host}`;
    if (!o.confirm) throw new RestoreTargetNotEmptyError(`refusing to ${action} without --yes: it is not empty`);
    await o.confirm(action);
  }
  if (snap.paths.includes(stream)) {
    await dumpIntoTar(o.restic, snap.id, stream, exec, destination, member);
  } else if (!insidePaths(path, snap)) {
    throw notInside(path, snap);
  } else if (exec.target === "local") {
    await o.restic.restore(snap.id, destination, { include: [path] });
  } else if (onHost) {
    await new RemoteRestic(exec, o.restic).restore(snap.id, destination, { include: [path] });
  } else {
    await dumpIntoTar(o.restic, snap.id, path, exec, destination, member);
  }
  return { snapshotId: snap.id, restoredTo: landing, target: exec.target };
}

function insidePaths(path: string, snap: Snapshot): boolean {
  return snap.paths.some((p) => path === p || path.startsWith(p.endsWith("/") ? p : `${p}/`));
}

function notInside(path: string, snap: Snapshot): InputError {
  return new InputError([`dcctl restore: ${path} is not inside the paths of snapshot ${snap.short_id} (${snap.paths.join(", ")})`]);
}

/**
 * The files snapshot of `host` named by id (full or short) or "latest": with `list`, the newest this site trusts
 * (trust.ts), saying which distrusted ones it passed over, and that a named one is distrusted.
 */
export async function findSnapshot(restic: Restic, host: string, snapshot: string, list?: PathRestoreOptions["list"], onNote?: (line: string) => void): Promise<Snapshot> {
  const snaps: JudgedSnapshot[] = list ? await list({ host, tags: ["dcctl", FILES_TAG] }) : await restic.snapshots({ host, tags: [FILES_TAG] });
  const { chosen, passedOver } = chooseSnapshot(snaps, snapshot);
  for (const s of passedOver) onNote?.(passedOverLine(s));
  if (chosen && !isTrusted(chosen)) onNote?.(`restoring a snapshot this site does not trust, as named: ${distrustLine(chosen).replace(/^snapshot /, "")}`);
  // Bad input either way: a host without a files backup, or an id that is none of its snapshots.
  if (!chosen) throw new InputError([`no ${snapshot === "latest" && snaps.length ? "trusted " : ""}files snapshot ${snapshot === "latest" ? "" : `${snapshot} `}of host ${host} in ${restic.where}`]);
  return chosen;
}

/**
 * `restic dump SNAP FILE | tar -x -C DEST MEMBER` with tar run by the executor. Whichever side fails first stops the
 * other, so neither waits for ever on a pipe; a tar that extracted nothing (member not in the archive) fails.
 */
async function dumpIntoTar(restic: Restic, snapshotId: string, file: string, exec: Executor, destination: string, member: string): Promise<void> {
  expectOk(await exec.run(["mkdir", "-p", "--", destination]), ["mkdir"], exec.target);
  const pipe = new PassThrough();
  const tar = exec.stream(["tar", "-x", "-f", "-", "-C", destination, "--", member], { stdin: pipe });
  tar.stdout.resume();
  const tarDone = tar.done.then((c) => {
    if (c.code !== 0) pipe.destroy();
    return c;
  });
  let dumpError: unknown;
  try {
    await restic.dump(snapshotId, file, pipe);
  } catch (e) {
    dumpError = e;
    tar.kill();
  }
  const c = await tarDone;
  if (c.code !== 0) {
    const last = c.stderr.split("\n").map((l) => l.trim()).filter(Boolean).pop() ?? `exit ${c.code}`;
    throw new DcctlError(`tar on ${exec.target} could not extract ${member}: ${last}`);
  }
  if (dumpError) throw dumpError;
}
