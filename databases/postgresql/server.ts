import type { ServerEnd } from "../replication.js";
import type { PgConnection } from "./connection.js";

/** How dcctl controls a PostgreSQL server on its host: where its data is, who owns it, how it starts and stops. */
export interface PgServerControl {
  /** The cluster's data directory on the host. */
  dataDir: string;
  /** The OS account that owns the data directory and runs the server (PostgreSQL refuses root). */
  osUser: string;
  /** Argument vectors run on the host (as the SSH login) that start and stop the server: pg_ctlcluster, systemctl, … */
  start: string[];
  stop: string[];
}

/** Debian's cluster 15/main. */
export const DEBIAN_PG_SERVER: PgServerControl = {
  dataDir: "/var/lib/postgresql/15/main",
  osUser: "postgres",
  start: ["pg_ctlcluster", "15", "main", "start"],
  stop: ["pg_ctlcluster", "15", "main", "stop", "-m", "fast"],
};

/** A host's PostgreSQL as replication sees it: how to log in for SQL, and how to control the server. */
export interface PgReplicationEnd extends ServerEnd {
  conn: PgConnection;
  server: PgServerControl;
}

/** An argument vector run as the server's OS account (its data directory is that account's alone). */
export const asOsUser = (server: PgServerControl, argv: string[]): string[] => ["runuser", "-u", server.osUser, "--", ...argv];
