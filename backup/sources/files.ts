import type { Executor } from "../../hosts/index.js";
import { ResticError, ResticIncompleteError, type BackupSummary, type Restic, type StreamSource } from "../../restic/index.js";
import { RemoteRestic, reachableFromHosts } from "../../restic/remote.js";
import type { DataSource, SourceBackupOptions, SourceItem } from "./source.js";

export interface FilesSourceOptions {
  /** Absolute paths on the host. */
  paths: string[];
  /** Exclude patterns: a leading "/" anchors at the root, otherwise the pattern matches at any depth (`*.log`). */
  excludes?: string[];
}

/** The file a remote host's tar stream is stored under in its snapshot. */
export function filesStreamName(host: string): string {
  return `files/${host}.tar`;
}

/** The tag that marks a snapshot of a files source. */
export const FILES_TAG = "source:files";

/**
 * Files and folders of a host, read by restic itself wherever they are, so that its change detection skips every
 * file whose size, mtime and inode match the parent snapshot (picked by restic by --host and the paths, both stable:
 * the inventory name and the policy's paths) without reading or sending it:
 * - on the machine dcctl runs on (the local executor), by the local restic;
 * - on another host, by restic run there over SSH against the repository's URL (restic/remote.ts: the binary
 *   pushed by dcctl, the password over the channel), when the repository is a URL the host can reach;
 * - otherwise (a repository that is a path on this machine) as before: `tar -c` run there and its stream stored by
 *   `restic backup --stdin` as files/<host>.tar, read whole every time; a tar that fails or is cut off leaves no
 *   snapshot (see Restic.backupStream).
 * Whichever way, a snapshot that lacks files (unreadable, or a path that does not exist on a remote host, which tar
 * refused too) is forgotten and the item fails.
 */
export class FilesSource implements DataSource {
  readonly kind = "files" as const;
  readonly paths: string[];
  readonly excludes: string[];

  constructor(opts: FilesSourceOptions) {
    if (opts.paths.length === 0) throw new Error("a files source needs at least one path");
    const relative = opts.paths.filter((p) => !p.startsWith("/"));
    if (relative.length) throw new Error(`files source paths must be absolute: ${relative.join(", ")}`);
    this.paths = [...opts.paths];
    this.excludes = [...(opts.excludes ?? [])];
  }

  async items(_exec: Executor): Promise<SourceItem[]> {
    return [{ kind: "files", name: "files", tags: [FILES_TAG] }];
  }

  async backup(exec: Executor, restic: Restic, item: SourceItem, opts: SourceBackupOptions): Promise<BackupSummary> {
    const tags = [...opts.tags, ...item.tags];
    if (exec.target === "local") return this.backupLocal(restic, opts, tags);
    if (reachableFromHosts(restic.repo.url)) return this.backupOnHost(exec, restic, opts, tags);
    return this.backupTar(exec, restic, opts, tags);
  }

  private async backupOnHost(exec: Executor, restic: Restic, opts: SourceBackupOptions, tags: string[]): Promise<BackupSummary> {
    try {
      const result = await new RemoteRestic(exec, restic).backup(this.paths, { excludes: this.excludes, tags, host: opts.host, onProgress: opts.onProgress });
      const missing = result.warnings.filter((w) => /does not exist, skipping$/.test(w));
      if (missing.length) {
        // A policy's path that the host lacks: the snapshot is not what the policy promises (tar refused it too).
        if (result.snapshot_id) await restic.forgetIds([result.snapshot_id]);
        throw new ResticError(`${missing.map((w) => w.replace(/, skipping$/, "")).join("; ")} on ${exec.target}; no snapshot kept in ${restic.where}`, "backup", 0);
      }
      return result;
    } catch (e) {
      if (e instanceof ResticIncompleteError && e.snapshotId) await restic.forgetIds([e.snapshotId]);
      throw e;
    }
  }

  private async backupTar(exec: Executor, restic: Restic, opts: SourceBackupOptions, tags: string[]): Promise<BackupSummary> {
    const stream = exec.stream(tarCreateArgv(this.paths, this.excludes));
    const source: StreamSource = {
      stdout: stream.stdout,
      // GNU tar exits 1 with --create only when a file changed while it was read: the archive is whole, the file is
      // as of some moment during the backup (what restic itself accepts). 2 and above are real failures.
      done: stream.done.then((d) => (d.code === 1 && !d.signal ? { ...d, code: 0 } : d)),
      kill: () => stream.kill(),
    };
    return restic.backupStream(source, { filename: filesStreamName(opts.host), host: opts.host, tags, onProgress: opts.onProgress });
  }

  private async backupLocal(restic: Restic, opts: SourceBackupOptions, tags: string[]): Promise<BackupSummary> {
    try {
      return await restic.backup(this.paths, { excludes: this.excludes, tags, host: opts.host, onProgress: opts.onProgress });
    } catch (e) {
      // Unreadable files: restic wrote a snapshot that lacks them. It must not count as a good backup.
      if (e instanceof ResticIncompleteError && e.snapshotId) await restic.forgetIds([e.snapshotId]);
      throw e;
    }
  }
}

/**
 * The tar command line run on a remote host. Members are stored relative to "/" (`-C /`, no leading slash), so the
 * archive extracts anywhere. Anchored excludes ("/var/cache") are matched from the root, the others at any depth.
 */
export function tarCreateArgv(paths: string[], excludes: string[]): string[] {
  const argv = ["tar", "-C", "/", "-cf", "-"];
  const anchored = excludes.filter((e) => e.startsWith("/"));
  const floating = excludes.filter((e) => !e.startsWith("/"));
  if (anchored.length) argv.push("--anchored", ...anchored.map((e) => `--exclude=${e.replace(/^\/+/, "")}`));
  if (floating.length) argv.push("--no-anchored", ...floating.map((e) => `--exclude=${e}`));
  argv.push("--", ...paths.map((p) => p.replace(/^\/+/, "") || "."));
  return argv;
}
