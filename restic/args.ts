import { InputError } from "../util/errors.js";
import type { BackupOptions, ForgetOptions, KeepPolicy, ResticOptions, ResticRepo, RestoreOptions, RunBound, SnapshotFilter, StdinBackupOptions } from "./options.js";

/**
 * Every restic command line dcctl runs, here or on a host (remote.ts), is built here: a command and its arguments.
 * The repository and its passwords never appear in them (they go by environment or a file); paths and snapshot ids
 * always follow `--`, so that nothing a host or a snapshot is called can be read as a flag.
 */
export interface ResticCommand {
  command: string;
  args: string[];
}

/** The flags every command carries from the wrapper's options, placed right after the command. */
export function globalFlags(o: Pick<ResticOptions, "retryLock" | "limitUploadKiB">): string[] {
  return [...(o.retryLock ? ["--retry-lock", o.retryLock] : []), ...(o.limitUploadKiB ? ["--limit-upload", String(o.limitUploadKiB)] : [])];
}

/** `insecureKdf`: a key that opens at once, made only by restic's debug build (Restic.init's throwaway keys). */
export function initCommand(o: { insecureKdf?: boolean } = {}): ResticCommand {
  return { command: "init", args: ["--json", ...(o.insecureKdf ? ["--insecure-kdf"] : [])] };
}

/** `restic backup`'s arguments for paths, here or on a host: JSON output, tags, host, excludes, the paths. */
export function backupPathArgs(paths: string[], opts: BackupOptions): string[] {
  if (paths.length === 0) throw new InputError(["restic backup needs at least one path"]);
  const args = ["--json", ...backupFlags(opts)];
  for (const e of opts.excludes ?? []) args.push("--exclude", e);
  for (const f of opts.excludeFiles ?? []) args.push("--exclude-file", f);
  if (opts.oneFileSystem) args.push("--one-file-system");
  args.push("--", ...paths);
  return args;
}

export function backupFlags(opts: { tags?: string[]; host?: string }): string[] {
  const args: string[] = [];
  for (const t of opts.tags ?? []) args.push("--tag", t);
  if (opts.host) args.push("--host", opts.host);
  return args;
}

export function backupPathsCommand(paths: string[], opts: BackupOptions): ResticCommand {
  return { command: "backup", args: backupPathArgs(paths, opts) };
}

/** A backup of what `argv` prints, restic running it (restic ≥ 0.17): nothing is saved when it exits non-zero. */
export function backupFromCommand(argv: string[], opts: StdinBackupOptions): ResticCommand {
  if (argv.length === 0) throw new InputError(["backup command is empty"]);
  return { command: "backup", args: ["--json", ...backupFlags(opts), "--stdin-filename", opts.filename, "--stdin-from-command", "--", ...argv] };
}

/** A backup of restic's standard input (restic < 0.17). */
export function backupFromStdin(opts: StdinBackupOptions): ResticCommand {
  return { command: "backup", args: ["--json", ...backupFlags(opts), "--stdin", "--stdin-filename", opts.filename] };
}

function filterFlags(f: SnapshotFilter): string[] {
  const args: string[] = [];
  if (f.host) args.push("--host", f.host);
  // One --tag with a comma list: a snapshot must carry every tag (several --tag flags would mean "any of").
  if (f.tags?.length) args.push("--tag", f.tags.join(","));
  for (const p of f.paths ?? []) args.push("--path", p);
  return args;
}

function policyFlags(p: KeepPolicy): string[] {
  const flags: [keyof KeepPolicy, string][] = [
    ["keepLast", "--keep-last"],
    ["keepHourly", "--keep-hourly"],
    ["keepDaily", "--keep-daily"],
    ["keepWeekly", "--keep-weekly"],
    ["keepMonthly", "--keep-monthly"],
    ["keepYearly", "--keep-yearly"],
  ];
  const args: string[] = [];
  const problems: string[] = [];
  for (const [key, flag] of flags) {
    const n = p[key];
    if (n === undefined) continue;
    if (!Number.isInteger(n) || n < 1) problems.push(`${key} must be a whole number ≥ 1, not ${n}`);
    else args.push(flag, String(n));
  }
  if (problems.length) throw new InputError(problems);
  // restic refuses an empty policy too, but only after opening the repository; and "keep nothing" is never what we mean.
  if (args.length === 0) throw new InputError(["a keep policy needs at least one keep* rule"]);
  return args;
}

export function snapshotsCommand(filter: SnapshotFilter): ResticCommand {
  return { command: "snapshots", args: ["--json", ...filterFlags(filter)] };
}

export function forgetCommand(policy: KeepPolicy, opts: ForgetOptions): ResticCommand {
  const args = ["--json", ...policyFlags(policy), ...filterFlags(opts)];
  if (opts.groupBy !== undefined) args.push("--group-by", opts.groupBy);
  if (opts.prune) args.push("--prune");
  if (opts.dryRun) args.push("--dry-run");
  return { command: "forget", args };
}

export function forgetIdsCommand(ids: string[]): ResticCommand {
  return { command: "forget", args: ["--", ...ids] };
}

export function pruneCommand(opts: { maxUnused?: string }): ResticCommand {
  return { command: "prune", args: opts.maxUnused ? ["--max-unused", opts.maxUnused] : [] };
}

export function checkCommand(opts: { readDataSubset?: string }): ResticCommand {
  const args = ["--json"];
  if (opts.readDataSubset) args.push("--read-data-subset", opts.readDataSubset);
  return { command: "check", args };
}

/** The source repository's location goes by environment (RESTIC_FROM_REPOSITORY), like our own: it may carry credentials. */
export function copyCommand(from: ResticRepo, opts: SnapshotFilter & { snapshotIds?: string[]; bound?: RunBound }): ResticCommand {
  const args = ["--from-password-file", from.passwordFile, ...filterFlags(opts)];
  if (opts.snapshotIds?.length) args.push("--", ...opts.snapshotIds);
  return { command: "copy", args };
}

/** Tags (on a host): one --tag with a comma list, the snapshot must carry all of them (`latest` among the host's files snapshots). */
export function restoreCommand(snapshot: string, target: string, opts: RestoreOptions & { tags?: string[] }): ResticCommand {
  const args = ["--json", "--target", target];
  for (const i of opts.include ?? []) args.push("--include", i);
  for (const e of opts.exclude ?? []) args.push("--exclude", e);
  if (opts.host) args.push("--host", opts.host);
  if (opts.tags?.length) args.push("--tag", opts.tags.join(","));
  args.push("--", snapshot);
  return { command: "restore", args };
}

export function dumpCommand(snapshot: string, file: string): ResticCommand {
  return { command: "dump", args: ["--", snapshot, file] };
}

export function statsCommand(opts: { mode?: string; snapshotIds?: string[] }): ResticCommand {
  const args = ["--json"];
  if (opts.mode) args.push("--mode", opts.mode);
  if (opts.snapshotIds?.length) args.push("--", ...opts.snapshotIds);
  return { command: "stats", args };
}

export function unlockCommand(opts: { removeAll?: boolean }): ResticCommand {
  return { command: "unlock", args: opts.removeAll ? ["--remove-all"] : [] };
}

export function listLocksCommand(): ResticCommand {
  return { command: "list", args: ["--no-lock", "locks"] };
}

export function catLockCommand(id: string): ResticCommand {
  return { command: "cat", args: ["--no-lock", "lock", id] };
}

export function catConfigCommand(): ResticCommand {
  return { command: "cat", args: ["config"] };
}
