import { withEnv } from "../hosts/quote.js";
import type { Executor } from "../hosts/executor.js";
import { resticVersion, supportsStdinFromCommand, type BackupProgress, type BackupSummary, type Restic, type StdinBackupOptions } from "../restic/index.js";
import { RemoteRestic, reachableFromHosts } from "../restic/remote.js";

/** One database (or a server's globals) that a dump source stores as a snapshot of its own. */
export interface DumpItem<K extends string = string> {
  /** The engine's name. */
  kind: K;
  /** Stable and unique within a job: "<engine>/<database>". */
  name: string;
  /** Tags recorded on the snapshot besides the job's own ("source:<engine>", "db:<database>"). */
  tags: string[];
}

export interface DumpOptions {
  /** The inventory host name recorded as the snapshot's host (restic --host). */
  host: string;
  /** The job's tags (e.g. "dcctl", "job:<job>"); the item's own tags are added. */
  tags: string[];
  onProgress?: (p: BackupProgress) => void;
}

/**
 * An engine's backup source: the databases of a server, each dumped into a snapshot of its own. A failed dump leaves
 * no snapshot: `backup` throws and nothing is kept. (backup/sources/source.ts's DataSource is its shape.)
 */
export interface DumpSource<K extends string = string> {
  readonly kind: K;
  /** The databases the server holds right now that the source takes. */
  items(exec: Executor): Promise<DumpItem<K>[]>;
  backup(exec: Executor, restic: Restic, item: DumpItem, opts: DumpOptions): Promise<BackupSummary>;
}

/** Where a database dump meets restic; the engines' connection settings carry it (`resticOnHost`). */
export interface DumpPlacement {
  /**
   * Run restic on the database host (default true, when the repository is a URL): false streams every dump through
   * dcctl instead, for a host that may not reach the repository or may not run a copied restic.
   */
  resticOnHost?: boolean;
}

/**
 * Stores a dump command's output as one file of a snapshot, a failed command leaving none.
 *
 * - On another host, when the repository is a URL that host can reach: restic runs there (restic/remote.ts)
 *   and runs the dump itself with --stdin-from-command. The dump never crosses the network; only what restic adds to
 *   the repository does, compressed and deduplicated. Measured on the lab's 1.15 GB portal (bench/db-backup.ts), it
 *   is also the fastest way: no relay through dcctl's process, nor SSH encryption of every byte of the dump.
 * - Otherwise (this machine's own databases, a repository that is a path here, `resticOnHost: false`): the dump is
 *   streamed over the executor into the local restic (Restic.backupStream and its relay).
 */
export async function dumpIntoRestic(exec: Executor, restic: Restic, argv: string[], env: Record<string, string>, placement: DumpPlacement, opts: StdinBackupOptions): Promise<BackupSummary> {
  // The host runs this machine's restic (pushed), which needs --stdin-from-command (0.17) to run the dump itself.
  if (exec.target !== "local" && placement.resticOnHost !== false && reachableFromHosts(restic.repo.url) && supportsStdinFromCommand(await resticVersion(restic.bin))) {
    return new RemoteRestic(exec, restic).backupCommand(withEnv(argv, env), opts);
  }
  return restic.backupStream(exec.stream(argv, { env }), opts);
}
