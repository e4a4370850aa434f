import { argvSchema, port, selection, text } from "../schema.js";
import type { PostgresSourceOptions } from "./dump.js";
import type { PgServerControl } from "./server.js";

/**
 * A PostgreSQL server's settings: how its databases are reached, and how replication controls the server. In the
 * repositories file (backup/repositories.ts):
 *
 *   databases:
 *     postgresql: { port: 5432, user: dcctl_backup, passFile: /home/dcctl/.pgpass, globals: without-role-passwords }
 *     # servers that replication seeds or promotes: the data directory, its owner, how the server starts and stops
 *     # on its host (default Debian's 15/main with pg_ctlcluster)
 *     #   postgresql: { server: { dataDir: /var/lib/postgresql/15/main, osUser: postgres, start: [...], stop: [...] } }
 */
export type PgSettings = PostgresSourceOptions & { server?: Partial<PgServerControl> };

/** `databases.postgresql` (and a host's) in the repositories file. */
export const PG_SETTINGS_SCHEMA = {
  type: "object",
  additionalProperties: false,
  properties: {
    host: text,
    port,
    user: text,
    passFile: text,
    binDir: text,
    ...selection,
    globals: { enum: [true, false, "without-role-passwords"] },
    resticOnHost: { type: "boolean" },
    server: { type: "object", additionalProperties: false, properties: { dataDir: text, osUser: text, start: argvSchema, stop: argvSchema } },
  },
} as const;

/** What `databases.postgresql` holds when the file says nothing. */
export const PG_DEFAULTS: PgSettings = { port: 5432, user: "dcctl_backup" };
