import type { Sites } from "../../inventory/index.js";
import type { BackupConfig } from "../../backup/repositories.js";
import { loadJobs } from "../../backup/jobs.js";
import { archivedDatabase, archivedDatabases, archivePoints } from "../../backup/pitr.js";
import { checkCovered } from "../../databases/pitr.js";
import { hostPool } from "../../hosts/index.js";
import type { Runbook } from "./model.js";
import { InputError } from "../../util/errors.js";
import { planRunbook } from "./plan.js";
import { sourceOf } from "./steps/restore-db.js";
import type { RecoverPoint } from "./steps/types.js";

/**
 * What `dcctl dr recover` checks before a run starts: every database its restore-db steps bring back is archived for
 * point-in-time recovery at this site, and the archive covers the point. A point outside it is bad input, said in one
 * line naming what the archive covers, with nothing started or touched.
 */
export async function checkRecoverPoint(runbook: Runbook, service: string, sites: Sites, config: BackupConfig, before: RecoverPoint): Promise<string[]> {
  const sources = [...new Set(planRunbook(runbook, sites).flatMap((p) => (p.step.type === "restore-db" ? p.hosts.map((h) => sourceOf(h, p.step.with as { from?: string })) : [])))];
  const archived = archivedDatabases(sites, loadJobs());
  const dbs = sources.map((s) => archivedDatabase(archived, s, `--service ${service}: its database server`));
  if (dbs.length === 0) throw new InputError([`--service ${service}: runbook ${runbook.name} (${runbook.file}) has no restore-db step for it: nothing to recover`]);
  const exec = hostPool(config);
  try {
    const lines: string[] = [];
    for (const db of dbs) {
      const status = await archivePoints(config, db, exec);
      checkCovered(status, before.at, "--before");
      lines.push(`the archive of ${status.host} covers ${status.earliest ?? "-"} to ${status.latest ?? "-"}`);
    }
    return lines;
  } finally {
    await exec.closeAll();
  }
}
