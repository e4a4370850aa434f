import { homedir } from "node:os";
import { join } from "node:path";

/** dcctl's state folder: $DCCTL_STATE_DIR, or ~/.local/state/dcctl (as cli/infra.ts uses for Pulumi state). */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DCCTL_STATE_DIR ? env.DCCTL_STATE_DIR : join(homedir(), ".local", "state", "dcctl");
}

export function runsDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(stateDir(env), "dr", "runs");
}

export function runDir(runId: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(runsDir(env), runId);
}

export function locksDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(stateDir(env), "dr", "locks");
}

/** A run id that sorts by time and says what ran: 20261122T060102Z-drill-3f9a. */
export function newRunId(kind: string, now: Date, random: string): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `${stamp}-${kind}-${random}`;
}
