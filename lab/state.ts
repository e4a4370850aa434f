import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { VcenterConnection } from "./govc.js";
import { stateDir } from "../util/state.js";
import type { LabService } from "./topology.js";

/**
 * The lab's one folder: everything it creates lives below it, and `lab down` removes nothing. As root the servers
 * that refuse root (PostgreSQL) run as an unprivileged account, which cannot enter root's home: /var/lib then.
 */
export function labDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DCCTL_LAB_DIR) return resolve(env.DCCTL_LAB_DIR);
  if (env.DCCTL_STATE_DIR || process.getuid?.() !== 0) return join(stateDir(env), "lab");
  return "/var/lib/dcctl/lab";
}

export interface RunningService extends LabService {
  pid: number;
}

/** What the supervisor publishes in lab.json: its own pid, each server's pid and address, and the vCenters. */
export interface LabState {
  supervisorPid: number;
  startedAt: string;
  /** "starting" until every server answers; "ready"; or "failed" with `error`. */
  phase: "starting" | "ready" | "failed";
  error?: string;
  services: RunningService[];
  vcenters: Partial<Record<"primary" | "secondary", VcenterConnection>>;
  seeded?: { dossiers: number; documents: number; accounts: number };
}

export const stateFile = (dir: string) => join(dir, "lab.json");

export function readLabState(dir: string): LabState | undefined {
  const file = stateFile(dir);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8")) as LabState;
}

/** Written atomically (temp file + rename): a reader never sees half a file. Mode 0600: it holds the vCenter password. */
export function writeLabState(dir: string, state: LabState): void {
  const tmp = `${stateFile(dir)}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
  renameSync(tmp, stateFile(dir));
}

