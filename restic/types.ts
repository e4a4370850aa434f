/** The parts of restic's `--json` output that dcctl reads (restic 0.17/0.18 field names). */

/** The last message of `restic backup --json` ("message_type": "summary"). */
export interface BackupSummary {
  files_new: number;
  files_changed: number;
  files_unmodified: number;
  dirs_new: number;
  dirs_changed: number;
  dirs_unmodified: number;
  data_blobs: number;
  tree_blobs: number;
  data_added: number;
  data_added_packed?: number;
  total_files_processed: number;
  total_bytes_processed: number;
  /** Seconds. */
  total_duration: number;
  backup_start?: string;
  backup_end?: string;
  /** Absent when restic ran with --dry-run. */
  snapshot_id?: string;
}

/** One element of `restic snapshots --json`. */
export interface Snapshot {
  id: string;
  short_id: string;
  time: string;
  tree: string;
  paths: string[];
  hostname: string;
  username?: string;
  tags?: string[];
  parent?: string;
  /** For a snapshot made by `copy`: the id it has in the source repository. */
  original?: string;
  program_version?: string;
  summary?: Partial<BackupSummary>;
}

/** One group of `restic forget --json`. */
export interface ForgetGroup {
  host: string;
  tags: string[] | null;
  paths: string[] | null;
  keep: Snapshot[] | null;
  remove: Snapshot[] | null;
}

/** `restic stats --json`; which fields appear depends on --mode. */
export interface RepoStats {
  total_size: number;
  total_file_count?: number;
  snapshots_count: number;
  total_blob_count?: number;
  total_uncompressed_size?: number;
  compression_ratio?: number;
}

/** `restic cat config`. */
export interface RepoConfig {
  version: number;
  id: string;
  chunker_polynomial: string;
}

/** The summary message of `restic restore --json`. */
export interface RestoreSummary {
  total_files: number;
  files_restored: number;
  files_skipped?: number;
  total_bytes: number;
  bytes_restored: number;
}

/** The summary message of `restic check --json`. */
export interface CheckSummary {
  num_errors: number;
  broken_packs: string[] | null;
  suggest_repair_index: boolean;
  suggest_prune: boolean;
}
