import type { Executor } from "../../hosts/index.js";
import type { BackupProgress, BackupSummary, Restic } from "../restic/index.js";

/** The kinds of data a job backs up. */
export type SourceKind = "files" | "postgresql" | "mariadb";

/** One unit a job backs up into one snapshot: a set of paths, or one database (or a server's globals). */
export interface SourceItem {
  kind: SourceKind;
  /** Stable and unique within a job: "files", "postgresql/portal", "postgresql/_globals", "mariadb/mail". */
  name: string;
  /** Tags recorded on the snapshot besides the job's own (e.g. "db:portal", "source:postgresql"). */
  tags: string[];
}

export interface SourceBackupOptions {
  /** The inventory host name recorded as the snapshot's host (restic --host). */
  host: string;
  /** The job's tags (e.g. "dcctl", "job:<job>"); the item's own tags are added. */
  tags: string[];
  onProgress?: (p: BackupProgress) => void;
}

/**
 * A kind of data on a host and how it reaches restic. Implementations stream straight into restic (no temporary
 * file on the host) and guarantee that a failed dump leaves no snapshot: `backup` throws and nothing is kept.
 */
export interface DataSource {
  readonly kind: SourceKind;
  /** What this source backs up on the host right now (databases are listed on the server). */
  items(exec: Executor): Promise<SourceItem[]>;
  backup(exec: Executor, restic: Restic, item: SourceItem, opts: SourceBackupOptions): Promise<BackupSummary>;
}
