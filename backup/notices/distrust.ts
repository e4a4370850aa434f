import { hostname } from "node:os";
import type { RepositoryName } from "../policies.js";
import type { BackupConfig } from "../repositories.js";
import { notifyAll, type Message, type NotifyResult } from "../../notify/index.js";
import { distrustLine, type JudgedSnapshot } from "../trust.js";

/**
 * The message sent when snapshots this site does not trust are first found in the repository it keeps: on the
 * `failure` channel (it is an alarm, and sites that ask for failures are the ones watching), once per snapshot, by
 * whichever listing found them (status, prune, the console, a restore), from arrival-ledger.ts.
 */
export function distrustMessage(config: BackupConfig, repository: RepositoryName, found: JudgedSnapshot[], at: Date, host: string = hostname()): Message {
  const kinds = [...new Set(found.flatMap((s) => (s.distrust ?? []).map((d) => d.kind)))].sort();
  const lines = [
    `${found.length} snapshot${found.length === 1 ? "" : "s"} in repository ${repository} ${found.length === 1 ? "is" : "are"} not trusted at the ${config.site} site (dcctl on ${host}, ${at.toISOString()}):`,
    "",
    ...found.map((s) => `- ${distrustLine(s)}`),
    "",
    "They are kept for investigation: not counted as good backups, never restored unless named with --snapshot, and",
    "neither kept in a place nor removed by retention. Whoever wrote them held the repository's password: for",
    "snapshots that reached this site from another, that site's management host. See docs/operator/threat-model.md.",
    "",
    "Check with: dcctl backup status; dcctl backup snapshots --json",
  ];
  if (config.notify?.consoleUrl) lines.push(`Console: ${config.notify.consoleUrl}/`);
  return {
    event: "failure",
    subject: `[dcctl] ${kinds.map((k) => k.toUpperCase()).join(" and ")} snapshots at ${config.site}: ${found.length} in repository ${repository}`,
    text: lines.join("\n") + "\n",
    ...(config.notify?.consoleUrl ? { link: `${config.notify.consoleUrl}/` } : {}),
    run: `trust-${at.toISOString().replace(/[-:]/g, "").replace(/\..*$/, "")}-${process.pid}`,
    status: "failed",
  };
}

/** Sends {@link distrustMessage} on the site's channels; [] when it has none or does not want failures. Never throws. */
export function notifyDistrust(config: BackupConfig, repository: RepositoryName, found: JudgedSnapshot[], at: Date): Promise<NotifyResult[]> {
  return notifyAll(config.notify, distrustMessage(config, repository, found, at));
}
