import { existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { DcctlError } from "../util/errors.js";
import { isAlive } from "../util/process.js";

/**
 * A `pulumi up` killed together with the DR run (SIGKILL, OOM) leaves its lock in the file backend
 * (.pulumi/locks/organization/<project>/<stack>/<id>.json: pid, hostname), and every later `up` of the stack then
 * refuses ("the stack is currently locked"): a resumed failover could never get past its infra step. Same rule as the
 * DR lock: a lock held by a process that is gone from this machine is a crash's; it is removed, with a note.
 */
export function clearStaleStackLocks(backendDir: string, project: string, stack: string): string[] {
  const dir = join(backendDir, ".pulumi", "locks", "organization", project, stack);
  if (!existsSync(dir)) return [];
  const notes: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
    let lock: { pid?: unknown; hostname?: unknown; timestamp?: unknown };
    try {
      lock = JSON.parse(readFileSync(join(dir, file), "utf8")) as typeof lock;
    } catch {
      continue;
    }
    if (lock.hostname !== hostname() || typeof lock.pid !== "number" || isAlive(lock.pid)) continue;
    rmSync(join(dir, file), { force: true });
    rmSync(join(dir, `${file}.attrs`), { force: true });
    notes.push(`removed the lock of stack ${stack} left by pulumi pid ${lock.pid} (gone) since ${String(lock.timestamp)}`);
  }
  return notes;
}

/**
 * A `pulumi up` killed while creating leaves "pending creates" in the state: the object may exist, half made, in vCenter
 * without the state knowing it, and a second `up` fails on it (the provider's clone finds the VM's files already
 * there). Only someone looking at vCenter can say what to keep, so the step stops with what to do, once, instead of a
 * retried page of engine output.
 */
export async function refuseHalfCreated(stack: { exportStack(): Promise<{ deployment: unknown }> }, site: string, backendDir: string): Promise<void> {
  const deployment = (await stack.exportStack()).deployment as { pending_operations?: { type?: string; resource?: { urn?: string } }[] } | undefined;
  const creating = (deployment?.pending_operations ?? []).filter((o) => o.type === "creating").map((o) => o.resource?.urn?.split("::").pop() ?? "?");
  if (!creating.length) return;
  throw new DcctlError(
    `stack ${site}: an earlier pulumi up was cut off while creating ${creating.join(", ")}; each may exist half made in vCenter, unknown to the state. ` +
      `Remove what is half made in vCenter, then run \`pulumi refresh --clear-pending-creates --stack ${site}\` in ${backendDir} (PULUMI_CONFIG_PASSPHRASE_FILE=${join(backendDir, "passphrase")}), then resume`,
  );
}

/**
 * The engine's own error lines out of the Automation API's error, which carries the whole output of the run: one line
 * for the operator, e.g. "pulumi preview of stack primary failed: missing provider configuration vsphere:vsphereServer".
 */
export function engineFailure(e: unknown, what: string): unknown {
  const text = e instanceof Error ? e.message : String(e);
  const lines = [...new Set(text.split("\n").map((l) => l.trim()).filter((l) => l.startsWith("error: ") && l !== "error: update failed" && l !== "error: preview failed"))];
  return lines.length ? new DcctlError(`${what} failed: ${lines.map((l) => l.slice(7)).join("; ")}`) : e;
}

