/**
 * The database engines dcctl knows, registered by name: everything outside databases/ reaches an engine through
 * here, by the name a host's `services` give it (policies' source kinds, snapshot tags, the repositories file's
 * `databases.<name>`, `restore --engine`, the fence, promote and verify steps, replication pairs).
 *
 * How to add an engine (say `mssql`):
 * 1. Make `databases/mssql/`, each file holding one thing the engine does, as postgresql/ and mariadb/ do:
 *    connection.ts (client argv, quoting), query.ts (run SQL, list databases), dump.ts (the backup source: items,
 *    dump command, tags, file names), restore.ts (into a fresh database, never over one without `overwrite`),
 *    fence.ts (the read-only SQL), replication.ts (setup, status, promote), diverged.ts (what a former primary holds
 *    past the fork), config.ts (its settings' type, JSON schema and defaults), and index.ts assembling a
 *    `DatabaseEngine<"mssql", Settings>` (engine.ts) from them.
 * 2. Add it to ENGINES below. Its name is then a valid policy source kind, `restore --engine` choice and
 *    repositories-file section, and hosts whose services name it are dumped, restored, fenced and replicated by it.
 * 3. Tests under test/integration/ against the real server, like db-backup and replication-<engine>.
 */
import type { DatabaseEngine } from "./engine.js";
import { mariadb } from "./mariadb/index.js";
import { postgresql } from "./postgresql/index.js";

/** In order of preference: a host that runs several is reached through the first for its SQL (engineOf). */
export const ENGINES = { postgresql, mariadb } as const;

export type DbEngine = keyof typeof ENGINES;

/** The database servers dcctl backs up, restores and (DR) fences: named as a host's `services` name them. */
export const DB_ENGINES: readonly DbEngine[] = Object.keys(ENGINES) as DbEngine[];

type SettingsOf<K extends DbEngine> = (typeof ENGINES)[K] extends DatabaseEngine<K, infer S> ? S : never;

/** How the engines reach the servers (the repositories file's `databases`): each engine's settings, and hosts' differences. */
export type DatabaseSettings = { [K in DbEngine]: SettingsOf<K> } & { hosts: Record<string, { [K in DbEngine]?: Partial<SettingsOf<K>> }> };

/** `databases` as the repositories file may give it: every part optional. */
export type RawDatabaseSettings = { [K in DbEngine]?: Partial<SettingsOf<K>> } & { hosts?: DatabaseSettings["hosts"] };

export function isDbEngine(name: string): name is DbEngine {
  return (DB_ENGINES as readonly string[]).includes(name);
}

/** The database engines among a host's services, in registry order. */
export function enginesOf(services: readonly string[]): DbEngine[] {
  return DB_ENGINES.filter((e) => services.includes(e));
}

/**
 * The engine a host's SQL goes to: the first database server it runs (the first registered for a host that names
 * none). A host running several (a restore-test server) is told apart by `among`: the services a runbook step's
 * targets name.
 */
export function engineOf(services: readonly string[], among?: readonly string[]): DbEngine {
  const runs = enginesOf(services);
  return runs.find((e) => among?.includes(e)) ?? runs[0] ?? (DB_ENGINES[0] as DbEngine);
}

/** The JSON schema of the repositories file's `databases`: each engine's section, at the top and per host. */
export function databaseSettingsSchema(): object {
  const each = Object.fromEntries(DB_ENGINES.map((e) => [e, ENGINES[e].settings.schema]));
  return {
    type: "object",
    additionalProperties: false,
    properties: { ...each, hosts: { type: "object", additionalProperties: { type: "object", additionalProperties: false, properties: each } } },
  };
}

/** `databases` with each engine's defaults under what the file gives. */
export function databaseSettings(raw: RawDatabaseSettings | undefined): DatabaseSettings {
  const engines = Object.fromEntries(DB_ENGINES.map((e) => [e, { ...ENGINES[e].settings.defaults, ...raw?.[e] }]));
  return { ...engines, hosts: { ...raw?.hosts } } as DatabaseSettings;
}

/** The job item a snapshot belongs to, from the `source:<engine>` tag and the others its engine gives it. */
export function dumpSnapshotItem(tags: readonly string[]): string | undefined {
  const engine = DB_ENGINES.find((e) => tags.includes(`source:${e}`));
  return engine && ENGINES[engine].snapshotItem(tags);
}
