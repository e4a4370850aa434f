import { existsSync } from "node:fs";
import { backupConfigPath, loadBackupConfig } from "../backup/repositories.js";
import { emitEvent, refusalEmitted } from "../notify/event-feed.js";

/**
 * DCCTL-3101 for a command that ended refused (exit 5: a destructive action not confirmed, or a guard), unless the
 * command already told the SOC of the refusal in its own event (a restore's DCCTL-1102 with outcome refused). Quietly
 * nothing where this machine has no repositories file, or one without a `soc:` section.
 */
export function tellRefusal(argv: string[], reason: string): void {
  if (refusalEmitted() || !existsSync(backupConfigPath())) return;
  let config;
  try {
    config = loadBackupConfig();
  } catch {
    return;
  }
  // The words as typed: dcctl takes no secret on its command line (DESIGN.md), so they can go as they are.
  const command = ["dcctl", ...argv].join(" ");
  emitEvent(config, "action.refused", { target: command, outcome: "refused", message: `refused: ${command}: ${reason}`, data: { command, reason } });
}
