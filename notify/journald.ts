import { spawn } from "node:child_process";
import { statSync } from "node:fs";
import { SEVERITIES, type FeedEvent } from "./events.js";
import { FACILITIES, type Facility } from "./soc-config.js";

/**
 * An event as a journal entry with fields of its own (DCCTL_EVENT_ID=DCCTL-1001, DCCTL_TARGET=…), so that
 * `journalctl DCCTL_EVENT_ID=DCCTL-2003` finds every failover and a journal forwarder can ship the fields as they are.
 *
 * journald's native protocol is a datagram on the AF_UNIX socket /run/systemd/journal/socket; Node has no AF_UNIX
 * datagram socket, so the entry goes through util-linux's `logger --journald` (Debian's bsdutils, which every
 * Debian system has), which hands the fields to libsystemd's sd_journal_sendv(): that native protocol, field for
 * field. One entry per logger run; each value is one line (a newline would start another field), so line breaks
 * become spaces.
 */

export const JOURNAL_SOCKET = "/run/systemd/journal/socket";

/** How long one entry may take: journald answers in milliseconds, and an emitting action never waits on it anyway. */
const JOURNALD_TIMEOUT_MS = 5_000;

/**
 * Whether this process runs under systemd with a journal to write to: a unit's process has INVOCATION_ID (and
 * JOURNAL_STREAM when its output goes to the journal), and journald's socket is there.
 */
export function underSystemd(env: NodeJS.ProcessEnv = process.env, socket = JOURNAL_SOCKET): boolean {
  if (!env.INVOCATION_ID && !env.JOURNAL_STREAM) return false;
  try {
    return statSync(socket).isSocket();
  } catch {
    return false;
  }
}

/** A journal field name: upper-case letters, digits and "_", not starting with "_" (those are journald's own). */
function fieldName(key: string): string {
  return `DCCTL_${key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/[^A-Za-z0-9]+/g, "_").toUpperCase()}`.slice(0, 64);
}

/** The entry's fields, in order: journald's well-known ones, then ours. */
export function journalFields(e: FeedEvent, facility: Facility): [string, string][] {
  const fields: [string, string | undefined][] = [
    ["MESSAGE", `${e.id} ${e.message}`],
    ["PRIORITY", String(SEVERITIES[e.severity])],
    ["SYSLOG_FACILITY", String(FACILITIES[facility])],
    ["SYSLOG_IDENTIFIER", "dcctl"],
    ["DCCTL_EVENT_ID", e.id],
    ["DCCTL_EVENT_UID", e.uid],
    ["DCCTL_EVENT_TIME", e.at],
    ["DCCTL_SITE", e.site],
    ["DCCTL_USER", e.user],
    ["DCCTL_SUDO_USER", e.sudoUser],
    ["DCCTL_APPROVER", e.approver],
    ["DCCTL_ACTION", e.action],
    ["DCCTL_TARGET", e.target],
    ["DCCTL_RUN_ID", e.run],
    ["DCCTL_OUTCOME", e.outcome],
    ["DCCTL_CHAIN_SEQ", e.chain ? String(e.chain.seq) : undefined],
    ["DCCTL_CHAIN_HEAD", e.chain ? `sha256:${e.chain.hash}` : undefined],
    ...Object.entries(e.data ?? {}).map(([k, v]): [string, string] => [fieldName(k), v]),
  ];
  return fields.filter((f): f is [string, string] => f[1] !== undefined).map(([k, v]) => [k, v.replace(/[\r\n]+/g, " ")]);
}

/** Writes one entry; rejects with one line when logger cannot be run or says it could not. */
export function sendToJournal(e: FeedEvent, facility: Facility): Promise<void> {
  const input = journalFields(e, facility)
    .map(([k, v]) => `${k}=${v}\n`)
    .join("");
  return new Promise((resolve, reject) => {
    const child = spawn("logger", ["--journald"], { stdio: ["pipe", "ignore", "pipe"], timeout: JOURNALD_TIMEOUT_MS });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.once("error", (err) => reject(new Error(`journald: cannot run logger: ${err.message}`)));
    child.once("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`journald: logger --journald ${signal ? `was stopped (${signal})` : `exited ${code ?? "?"}`}${stderr.trim() ? `: ${stderr.trim().split("\n")[0] ?? ""}` : ""}`));
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(input);
  });
}
