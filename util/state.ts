import { homedir } from "node:os";
import { join, resolve } from "node:path";

/** dcctl's state folder (Pulumi state, locks, run reports, DR journals): $DCCTL_STATE_DIR or ~/.local/state/dcctl. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DCCTL_STATE_DIR ? resolve(env.DCCTL_STATE_DIR) : join(homedir(), ".local", "state", "dcctl");
}
