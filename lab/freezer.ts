import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SiteName } from "../inventory/index.js";
import { DcctlError } from "../util/errors.js";

/**
 * One cgroup v1 freezer group per lab site: every server of the site's hosts starts inside it (its children follow),
 * so `lab fail` stops the whole site at once. A frozen server keeps its sockets: connections to it are accepted by
 * the kernel and then hang, as they do when a data centre goes dark, rather than being refused.
 */
const ROOT = "/sys/fs/cgroup/freezer";

export function freezerGroup(netId: string, site: SiteName): string {
  return join(ROOT, `${netId}-${site}`);
}

export function createFreezer(group: string): void {
  if (!existsSync(ROOT)) throw new DcctlError(`the lab needs the cgroup v1 freezer at ${ROOT} to fail a site`);
  mkdirSync(group, { recursive: true });
}

/** The command line that joins the group, then execs `cmd` (same pid): `sh` writes its own pid, then execs. */
export function inFreezer(group: string, cmd: string, args: readonly string[]): [string, string[]] {
  return ["sh", ["-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', group, cmd, ...args]];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Freezes or thaws the group and waits until the kernel says it is so (freezing takes a moment per task). */
export async function setFrozen(group: string, frozen: boolean): Promise<void> {
  if (!existsSync(group)) return;
  const want = frozen ? "FROZEN" : "THAWED";
  writeFileSync(join(group, "freezer.state"), want);
  const deadline = Date.now() + 10_000;
  while (readFileSync(join(group, "freezer.state"), "utf8").trim() !== want) {
    if (Date.now() > deadline) throw new DcctlError(`${group} did not become ${want} within 10 s`);
    await sleep(20);
  }
}

export function isFrozen(group: string): boolean {
  return existsSync(group) && readFileSync(join(group, "freezer.state"), "utf8").trim() === "FROZEN";
}

/** The pids in the group (empty when it does not exist). */
export function pidsIn(group: string): number[] {
  if (!existsSync(group)) return [];
  return readFileSync(join(group, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
}

/** Removes the group once it is empty (thawed first: a frozen task cannot even die). */
export async function removeFreezer(group: string): Promise<void> {
  if (!existsSync(group)) return;
  await setFrozen(group, false);
  try {
    rmdirSync(group);
  } catch (e) {
    throw new DcctlError(`cannot remove ${group}: ${(e as Error).message} (still running: ${pidsIn(group).join(", ")})`);
  }
}
