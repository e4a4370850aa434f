import { join } from "node:path";
import type { BackupConfig } from "./repositories.js";

/** Folders under the state dir; one place so that run, prune, status and the run ledger agree. */
export function backupStatePaths(config: Pick<BackupConfig, "stateDir" | "metricsFile">): { locksDir: string; reportsDir: string; stateFile: string; metricsFile: string } {
  const base = join(config.stateDir, "backup");
  return { locksDir: join(base, "locks"), reportsDir: join(base, "reports"), stateFile: join(base, "job-state.json"), metricsFile: config.metricsFile };
}
