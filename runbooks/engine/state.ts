import { join } from "node:path";
import { stateDir } from "../../util/state.js";

export { stateDir };

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
