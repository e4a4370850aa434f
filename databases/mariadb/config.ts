import { port, selection, text } from "../schema.js";
import type { MariadbSourceOptions } from "./dump.js";

/**
 * A MariaDB server's settings: how its databases are reached. In the repositories file (backup/repositories.ts):
 *
 *   databases:
 *     mariadb: { port: 3306, defaultsFile: /home/dcctl/.my.cnf }
 *     hosts: { qn-db-04: { mariadb: { port: 3307 } } }   # per-host differences
 */
export type MariadbSettings = MariadbSourceOptions;

/** `databases.mariadb` (and a host's) in the repositories file. */
export const MARIADB_SETTINGS_SCHEMA = {
  type: "object",
  additionalProperties: false,
  properties: { host: text, port, user: text, defaultsFile: text, binDir: text, ...selection, resticOnHost: { type: "boolean" } },
} as const;

/** What `databases.mariadb` holds when the file says nothing. */
export const MARIADB_DEFAULTS: MariadbSettings = { port: 3306 };
