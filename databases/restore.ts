import { PassThrough } from "node:stream";
import { DcctlError, errorMessage, ExitCode, InputError } from "../util/errors.js";
import type { ExecCompletion, Executor } from "../hosts/executor.js";
import type { Restic } from "../restic/index.js";
import { RemoteRestic, reachableFromHosts } from "../restic/remote.js";
import type { DumpPlacement } from "./dump.js";

/** The target database exists and the caller did not ask to overwrite it; nothing was changed. */
export class RestoreTargetExistsError extends DcctlError {
  constructor(
    message: string,
    readonly database: string,
  ) {
    // Overwriting is a destructive action that needs confirmation (--yes): "not confirmed" is what happened.
    super(message, ExitCode.notConfirmed);
  }
}

export interface RestoreCommon {
  restic: Restic;
  /** A snapshot id, or "latest": the newest snapshot of this database (of `host`, when given). */
  snapshot: string;
  /** The database as it was backed up (its name in the snapshot's tags and file name). */
  db: string;
  /** Only consider snapshots of this host (the inventory host recorded at backup). */
  host?: string;
  /** Where the restore command runs: the target database server's host. */
  targetExec: Executor;
  /** The database to restore into; default `db`. */
  targetDb?: string;
  /** Replace the target database if it exists. Without it an existing target is refused and left untouched. */
  overwrite: boolean;
  /**
   * PostgreSQL only: pg_restore --jobs on the target host (default: its processor count, 2 to 8). Above 1 the dump is
   * first restored as a file on the host (pg_restore reads a file, not a pipe, in parallel); 1 streams it.
   */
  jobs?: number;
}

export interface DbRestoreResult {
  snapshotId: string;
  targetDb: string;
  /** Whether an existing database was replaced. */
  replaced: boolean;
  /** Temporary databases of restores onto this host that did not finish, dropped first (one line each). */
  notes?: string[];
}

/**
 * The newest snapshot carrying all these tags (of `host`, when given), or the one the id given (full or short) names
 * among them. A database with no snapshot, or an id that is none of its snapshots, is bad input: found by one listing,
 * before anything on the target is touched.
 */
export async function resolveSnapshot(restic: Restic, snapshot: string, tags: string[], host?: string): Promise<string> {
  const snaps = await restic.snapshots({ tags, ...(host ? { host } : {}) });
  const newest = snaps.reduce<(typeof snaps)[number] | undefined>((best, s) => (!best || Date.parse(s.time) > Date.parse(best.time) ? s : best), undefined);
  const of = `${tags.join(", ")}${host ? ` of host ${host}` : ""} in ${restic.repo.url.replace(/\/\/[^@/]*@/, "//")}`;
  if (!newest) throw new InputError([`no snapshot tagged ${of}${await backedUpDatabases(restic, tags, host)}`]);
  if (snapshot === "latest") return newest.id;
  const chosen = snaps.find((s) => s.id === snapshot || s.short_id === snapshot || (snapshot.length >= 8 && s.id.startsWith(snapshot)));
  if (!chosen) throw new InputError([`snapshot ${snapshot} is none of the ${snaps.length} tagged ${of} (newest: ${newest.short_id} of ${newest.time.replace(/\.\d+/, "")})`]);
  return chosen.id;
}

/** For the message: the databases the host does have snapshots of, from the same source (engine). */
async function backedUpDatabases(restic: Restic, tags: string[], host?: string): Promise<string> {
  const source = tags.filter((t) => t.startsWith("source:"));
  const all = await restic.snapshots({ tags: source, ...(host ? { host } : {}) }).catch(() => []);
  const names = [...new Set(all.flatMap((s) => (s.tags ?? []).filter((t) => t.startsWith("db:")).map((t) => t.slice(3))))].sort();
  return names.length ? ` (databases with snapshots there: ${names.join(", ")})` : "";
}

/**
 * `restic dump SNAPSHOT FILE | argv` with argv run by the executor (over SSH: restic's output becomes the remote
 * command's stdin). Whichever side fails first stops the other, so neither waits for ever on a pipe.
 */
export async function pipeDump(restic: Restic, snapshotId: string, file: string, exec: Executor, argv: string[], env: Record<string, string>): Promise<void> {
  const pipe = new PassThrough();
  const cmd = exec.stream(argv, { stdin: pipe, env });
  // Its stdout must be read or it stalls; pg_restore and mariadb print nothing there worth keeping.
  cmd.stdout.resume();
  let dumpSettled = false;
  // Set when the consumer failed while restic was still writing: restic's own failure is then only the consequence.
  let stoppedByConsumer = false;
  const consumer = cmd.done.then(
    (c: ExecCompletion) => {
      if (c.code === 0) return;
      stopDump();
      const last = c.stderr.split("\n").map((l) => l.trim()).filter(Boolean).pop() ?? `exit code ${c.code}`;
      throw new DcctlError(`${argv[0] ?? "restore"} on ${exec.target} failed (exit ${c.code}): ${last}`);
    },
    (e: unknown) => {
      stopDump();
      throw e;
    },
  );
  function stopDump(): void {
    if (!dumpSettled) stoppedByConsumer = true;
    // The consumer no longer reads: end restic's dump instead of letting it block on a full pipe.
    pipe.destroy();
  }
  const dumping = restic.dump(snapshotId, file, pipe).then(
    () => void (dumpSettled = true),
    (e: unknown) => {
      dumpSettled = true;
      // Without this, the target command would wait for the rest of its input for ever.
      cmd.kill();
      throw e;
    },
  );
  const [dumped, consumed] = await Promise.allSettled([dumping, consumer]);
  if (dumped.status === "rejected" && consumed.status === "rejected") {
    // Both ends failed; which one caused it cannot always be told from the order the reports arrive in, so say both.
    const [cause, effect] = stoppedByConsumer ? [consumed.reason, dumped.reason] : [dumped.reason, consumed.reason];
    throw new DcctlError(`${errorMessage(cause)} (then: ${errorMessage(effect)})`);
  }
  if (dumped.status === "rejected") throw dumped.reason;
  if (consumed.status === "rejected") throw consumed.reason;
}

/** Whether restic can restore on the target host itself: another host that reaches the repository's URL. */
export function restoresOnHost(exec: Executor, restic: Restic, placement: DumpPlacement): boolean {
  return exec.target !== "local" && placement.resticOnHost !== false && reachableFromHosts(restic.repo.url);
}

/** The target host's processors, 2 to 8: pg_restore --jobs for a restore (a restore is what the host is for then). */
export async function processors(exec: Executor): Promise<number> {
  const res = await exec.run(["nproc"]).catch(() => undefined);
  const n = Number(res?.code === 0 ? res.stdout.trim() : NaN);
  return Number.isInteger(n) ? Math.min(8, Math.max(2, n)) : 2;
}

/**
 * Makes a private temporary folder on the host (mode 0700, under /var/tmp: a dump can outgrow a RAM-backed /tmp) and
 * keeps it for as long as the SSH channel of this command stays open: its end, however it comes (the work done,
 * dcctl killed, the connection lost; a root login too, which sshd signals nothing), removes the folder. Prints it.
 */
const TEMP_DIR_SCRIPT = `d=$(mktemp -d /var/tmp/dcctl-restore-XXXXXXXX) || exit 1
trap 'rm -rf -- "$d"' EXIT
trap 'exit 1' HUP INT TERM
echo "$d"
while IFS= read -r _; do :; done`;

/** One file of a snapshot restored by restic on the host into such a folder, handed to `use`, then removed. */
export async function onHostFile(exec: Executor, restic: Restic, snapshotId: string, file: string, use: (path: string) => Promise<void>): Promise<void> {
  const hold = new PassThrough();
  const holder = exec.stream(["sh", "-c", TEMP_DIR_SCRIPT, "dcctl-restore-temp"], { stdin: hold });
  try {
    const dir = await firstLine(holder.stdout);
    if (!dir.startsWith("/var/tmp/dcctl-restore-")) {
      const c = await holder.done;
      throw new DcctlError(`cannot make a temporary folder on ${exec.target} for the restore: ${c.stderr.trim().split("\n").pop() || `exit ${c.code}`}`);
    }
    await new RemoteRestic(exec, restic).restore(snapshotId, dir, { include: [file] });
    await use(dir + file);
  } finally {
    hold.end();
    await holder.done.catch(() => undefined);
  }
}

/** The first line a stream prints ("" if it ends first); the rest is read and dropped. */
function firstLine(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    let done = false;
    const finish = () => {
      if (!done) resolve(text.split("\n")[0] ?? "");
      done = true;
    };
    stream.on("data", (b: Buffer) => {
      text += b.toString("utf8");
      if (text.includes("\n")) finish();
    });
    stream.once("end", finish);
    stream.once("close", finish);
  });
}

export function refusal(db: string, what: string, exec: Executor): RestoreTargetExistsError {
  return new RestoreTargetExistsError(`database ${db} already exists on ${what} at ${exec.target}; not restoring over it without overwrite (--yes)`, db);
}

export function checkName(db: string): void {
  if (!db || db.includes("\0") || db.includes("\n")) throw new InputError([`not a usable database name: ${JSON.stringify(db)}`]);
}
