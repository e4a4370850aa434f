import type { Executor } from "../exec/index.js";
import { ResticIncompleteError, type BackupSummary, type Restic, type StreamSource } from "../restic/index.js";
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
 * Files and folders of a host. On the machine dcctl runs on (the local executor) restic reads them itself, which
 * keeps restic's per-file deduplication and change detection. On another host nothing but tar needs to be
 * installed: `tar -c` runs there over the executor and its stream goes into `restic backup --stdin` as
 * files/<host>.tar; a tar that fails or is cut off leaves no snapshot (see Restic.backupStream).
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
