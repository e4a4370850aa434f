import type { DumpItem, DumpOptions, DumpSource } from "../../databases/dump.js";
import type { DbEngine } from "../../databases/registry.js";

/** The kinds of data a job backs up: files, and each registered database engine's dumps. */
export type SourceKind = "files" | DbEngine;

/** One unit a job backs up into one snapshot: a set of paths, or one database (or a server's globals). */
export type SourceItem = DumpItem<SourceKind>;

export type SourceBackupOptions = DumpOptions;

/**
 * A kind of data on a host and how it reaches restic. Implementations stream straight into restic (no temporary
 * file on the host) and guarantee that a failed dump leaves no snapshot: `backup` throws and nothing is kept.
 */
export type DataSource = DumpSource<SourceKind>;
