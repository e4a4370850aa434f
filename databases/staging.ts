import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeAtomic } from "../util/files.js";
import { isRunning, procStat } from "../util/process.js";

/**
 * The ledger of temporary databases a restore fills before renaming them to their real name
 * (`<state>/restore/staging/<name>.json`): each is named here, durably, before it is created, and its entry goes once
 * it is renamed or dropped. A restore killed in between (SIGKILL, an OOM kill, a crash) leaves a database of the size
 * of the dump under a random name; its entry says which, on which host, and by which process, so that the next restore
 * onto that host, or `dcctl dr resume`, drops it — but never one whose restore still runs.
 */

export interface StagingEntry {
  /** The temporary database's name. */
  database: string;
  /** The engine whose server holds it (a registered name). */
  engine: string;
  /** The inventory host whose server holds it. */
  host: string;
  /** The database being restored, and the name it was to get. */
  restoring: string;
  into: string;
  /** Filled whole: the swap (drop the old database, rename this one) may have begun. */
  complete?: boolean;
  pid: number;
  /** The process's start time (clock ticks since boot): a pid taken over by another process is not the restore. */
  pidStart?: string;
  at: string;
}

export class StagingLedger {
  constructor(readonly dir: string) {}

  private file(database: string): string {
    return join(this.dir, `${database}.json`);
  }

  /** Names the database before it exists: written whole and synced, its folder entry too. */
  record(e: Omit<StagingEntry, "pid" | "pidStart" | "at">): StagingEntry {
    const pidStart = procStat(process.pid)?.start;
    const entry: StagingEntry = { ...e, pid: process.pid, ...(pidStart ? { pidStart } : {}), at: new Date().toISOString() };
    writeAtomic(this.file(e.database), JSON.stringify(entry) + "\n", 0o600);
    const fd = openSync(this.dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return entry;
  }

  remove(database: string): void {
    rmSync(this.file(database), { force: true });
  }

  entries(): StagingEntry[] {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => n.endsWith(".json"));
    } catch {
      return [];
    }
    return names.flatMap((n) => {
      try {
        return [JSON.parse(readFileSync(join(this.dir, n), "utf8")) as StagingEntry];
      } catch {
        // Half written by a crash (writeAtomic leaves only a .tmp file then): nothing was created after it.
        return [];
      }
    });
  }

  /** The entries whose restore is gone (its process ended without removing them), of one host or of all. */
  left(host?: string): StagingEntry[] {
    const alive = (e: StagingEntry) => isRunning(e.pid) && (e.pidStart === undefined || procStat(e.pid)?.start === e.pidStart);
    return this.entries().filter((e) => (host === undefined || e.host === host) && !alive(e));
  }

  /**
   * Settles what dead restores left (of one host, or of all), each with `settle`, and removes their entries; returns a
   * note per database dropped and per failure. One that cannot be settled now keeps its entry for the next try.
   */
  async dropLeft(settle: (e: StagingEntry) => Promise<"dropped" | "renamed">, host?: string): Promise<{ dropped: string[]; failed: string[] }> {
    const dropped: string[] = [];
    const failed: string[] = [];
    for (const e of this.left(host)) {
      try {
        const how = await settle(e);
        this.remove(e.database);
        if (how === "dropped") dropped.push(`dropped ${e.engine} database ${e.database} on ${e.host}, left by a restore of ${e.restoring} (pid ${e.pid}, started ${e.at}) that did not finish`);
      } catch (err) {
        failed.push(`could not drop ${e.engine} database ${e.database} on ${e.host}, left by a restore that did not finish: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    return { dropped, failed };
  }
}

/** The ledger of a state folder (the backup config's stateDir). */
export function stagingLedger(stateDir: string): StagingLedger {
  return new StagingLedger(join(stateDir, "restore", "staging"));
}
