import { accessSync, constants, existsSync, statSync, statfsSync } from "node:fs";
import { errorMessage } from "../util/errors.js";
import { run } from "../util/process.js";
import { ensureStateFormat } from "../util/state-format.js";
import { stateDir } from "../util/state.js";
import { dcctlVersion, toolPath } from "../util/tools.js";
import { loadSites } from "../inventory/index.js";
import { readKnownHosts, knownHostsName } from "../hosts/known-hosts.js";
import { expandJobs } from "./jobs.js";
import { loadPolicies, REPOSITORY_NAMES } from "./policies.js";
import { backupConfigPath, loadBackupConfig, resticFor, type BackupConfig } from "./repositories.js";
import { resticVersion, supportsStdinFromCommand } from "../restic/version.js";

/**
 * `dcctl doctor`: is this management host ready to run dcctl? One line per check, each with what to do when it is
 * not: the state folder's format, the tools and their versions, the config files (repositories, inventory, policies),
 * the SSH key and known_hosts against the hosts this site backs up, each repository answering within a bound, the
 * clock, and the disk under the state folder. Nothing is changed (but the state folder's format mark, as any start).
 */

export type CheckName = "state" | "tools" | "config" | "ssh" | "repositories" | "clock" | "disk";
export const CHECK_NAMES: readonly CheckName[] = ["state", "tools", "config", "ssh", "repositories", "clock", "disk"];

export interface CheckLine {
  check: CheckName;
  state: "ok" | "warn" | "fail";
  what: string;
  /** What to do about it, when it is not ok. */
  fix?: string;
}

export interface DoctorOptions {
  only?: readonly CheckName[];
  env?: NodeJS.ProcessEnv;
  /** Bound of each repository probe. */
  probeMs?: number;
}

const ok = (check: CheckName, what: string): CheckLine => ({ check, state: "ok", what });
const bad = (check: CheckName, state: "warn" | "fail", what: string, fix: string): CheckLine => ({ check, state, what, fix });

export async function doctor(opts: DoctorOptions = {}): Promise<CheckLine[]> {
  const env = opts.env ?? process.env;
  const want = (c: CheckName) => !opts.only || opts.only.includes(c);
  const lines: CheckLine[] = [];
  if (want("state")) lines.push(stateCheck(env));
  if (want("tools")) lines.push(...(await toolChecks(env)));
  let config: BackupConfig | undefined;
  if (want("config") || want("ssh") || want("repositories") || want("disk")) {
    const res = configChecks(env);
    config = res.config;
    if (want("config")) lines.push(...res.lines);
  }
  if (want("ssh")) lines.push(...sshChecks(config, env));
  if (want("repositories")) lines.push(...(await repositoryChecks(config, opts.probeMs ?? 15_000)));
  if (want("clock")) lines.push(await clockCheck());
  if (want("disk")) lines.push(diskCheck(config, env));
  return lines;
}

function stateCheck(env: NodeJS.ProcessEnv): CheckLine {
  const where = stateDir(env);
  try {
    const res = ensureStateFormat(where, dcctlVersion());
    const history = res.migrations.map((m) => `; migrated ${m.from}→${m.to} at ${m.at} by dcctl ${m.dcctl}: ${m.note}`).join("");
    return ok("state", `${where}: format ${res.format}, readable by dcctl ${dcctlVersion()}${history}`);
  } catch (e) {
    return bad("state", "fail", errorMessage(e), "install the dcctl release that wrote this state, or a newer one");
  }
}

async function toolChecks(env: NodeJS.ProcessEnv): Promise<CheckLine[]> {
  const lines: CheckLine[] = [ok("tools", `dcctl ${dcctlVersion()} on Node.js ${process.versions.node}`)];
  const restic = toolPath("restic", env);
  try {
    const v = await resticVersion(restic);
    lines.push(
      supportsStdinFromCommand(v)
        ? ok("tools", `${v.text} (${restic})`)
        : bad("tools", "warn", `${v.text} (${restic}) is older than 0.17: a failed dump is found and forgotten after the fact`, "install restic 0.17 or newer"),
    );
  } catch (e) {
    lines.push(bad("tools", "fail", `restic: ${errorMessage(e)}`, "install restic (the release ships one in libexec/) or put it on PATH"));
  }
  for (const [name, args, why] of [
    ["pulumi", ["version"], "dcctl infra and the DR steps that change the stacks"],
    ["rest-server", ["--version"], "serving this site's repository"],
  ] as const) {
    const bin = toolPath(name, env);
    const res = await run(bin, args, { timeoutMs: 15_000 }).catch((e: unknown) => ({ code: -1, stdout: "", stderr: errorMessage(e) }));
    const said = res.stdout.trim().split("\n")[0] ?? "";
    lines.push(res.code === 0 ? ok("tools", `${said.startsWith(name) ? said : `${name} ${said}`} (${bin})`) : bad("tools", "warn", `${name}: not found or not working (${res.stderr.trim().split("\n").pop() ?? ""})`, `needed for ${why}`));
  }
  return lines;
}

function configChecks(env: NodeJS.ProcessEnv): { config?: BackupConfig; lines: CheckLine[] } {
  const lines: CheckLine[] = [];
  let config: BackupConfig | undefined;
  const path = backupConfigPath(env);
  try {
    config = loadBackupConfig(path, env);
    lines.push(ok("config", `${config.file}: site ${config.site}, repositories ${REPOSITORY_NAMES.filter((n) => config?.repositories[n]).join(", ") || "none"}`));
  } catch (e) {
    lines.push(bad("config", "fail", firstLine(e), `write ${path} (or set DCCTL_REPOS_FILE); see the operator's guide`));
  }
  try {
    const jobs = expandJobs(loadSites(), loadPolicies());
    lines.push(ok("config", `inventory and policies: ${jobs.length} backup jobs`));
  } catch (e) {
    lines.push(bad("config", "fail", firstLine(e), "dcctl inventory validate names every problem as file:line"));
  }
  return { ...(config ? { config } : {}), lines };
}

function sshChecks(config: BackupConfig | undefined, env: NodeJS.ProcessEnv): CheckLine[] {
  if (!config) return [bad("ssh", "fail", "not checked: the repositories file could not be read", "fix the config first")];
  const lines: CheckLine[] = [];
  const key = config.ssh.keyFile;
  if (key) {
    try {
      accessSync(key, constants.R_OK);
      const mode = statSync(key).mode & 0o777;
      lines.push((mode & 0o077) === 0 ? ok("ssh", `key ${key}`) : bad("ssh", "fail", `key ${key} is readable by others (mode 0${mode.toString(8)})`, `chmod 600 ${key}`));
    } catch (e) {
      lines.push(bad("ssh", "fail", `key ${key}: ${errorMessage(e)}`, "create the key (ssh-keygen -t ed25519) or fix ssh.keyFile"));
    }
  } else if (env.SSH_AUTH_SOCK) {
    lines.push(ok("ssh", `no key file: the agent at ${env.SSH_AUTH_SOCK}`));
  } else {
    lines.push(bad("ssh", "fail", "no ssh.keyFile and no SSH agent", "set ssh.keyFile in the repositories file"));
  }
  // The same rule as hosts/connect.ts: no configured known_hosts, no SSH (there is no default file).
  const known = config.ssh.knownHosts;
  if (!known) return [...lines, bad("ssh", "fail", `no ssh.knownHosts in ${config.file}: no host can be reached over SSH`, "ssh-keyscan each host once, check the keys by hand, write them to a file and name it as ssh.knownHosts")];
  if (!existsSync(known)) return [...lines, bad("ssh", "fail", `known_hosts ${known} is missing`, `ssh-keyscan each host once, check the keys by hand, and write them to ${known}`)];
  try {
    const entries = readKnownHosts(known);
    const jobs = expandJobs(loadSites(), loadPolicies()).filter((j) => j.site === config.site && !config.localHosts.includes(j.host));
    const names = new Set(entries.flatMap((e) => e.patterns));
    const missing = [...new Set(jobs.map((j) => knownHostsName(j.ssh.host, j.ssh.port)))].filter((n) => !names.has(n));
    lines.push(
      missing.length === 0
        ? ok("ssh", `known_hosts ${known}: ${entries.length} keys, every host this site backs up is pinned`)
        : bad("ssh", "warn", `known_hosts ${known} has no key for ${missing.join(", ")} (hashed entries are not matched here)`, "ssh-keyscan those hosts, check the keys, add them"),
    );
  } catch (e) {
    lines.push(bad("ssh", "fail", firstLine(e), `fix ${known}`));
  }
  return lines;
}

async function repositoryChecks(config: BackupConfig | undefined, probeMs: number): Promise<CheckLine[]> {
  if (!config) return [bad("repositories", "fail", "not checked: the repositories file could not be read", "fix the config first")];
  const names = REPOSITORY_NAMES.filter((n) => config.repositories[n]);
  // Side by side, each bounded: a site that does not answer costs one bound, not one per repository.
  return Promise.all(
    names.map(async (name): Promise<CheckLine> => {
      const restic = resticFor(config, name, { signal: AbortSignal.timeout(probeMs) });
      const start = Date.now();
      try {
        await restic.catConfig();
        return ok("repositories", `${name} (${restic.where}) answered in ${((Date.now() - start) / 1000).toFixed(1)} s`);
      } catch (e) {
        return bad("repositories", "fail", `${name} (${restic.where}): ${firstLine(e)}`, "check the URL, the password file and the route to the rest-server");
      }
    }),
  );
}

async function clockCheck(): Promise<CheckLine> {
  // Restic's retention and every RPO are judged by this clock; systemd says whether it is synchronised.
  const res = await run("timedatectl", ["show", "-p", "NTPSynchronized", "--value"], { timeoutMs: 5_000 }).catch(() => undefined);
  const now = new Date().toISOString();
  if (!res || res.code !== 0) return bad("clock", "warn", `${now}; whether it is synchronised is unknown (no timedatectl answer)`, "run chrony or systemd-timesyncd against the province's time servers");
  return res.stdout.trim() === "yes" ? ok("clock", `${now}, synchronised`) : bad("clock", "warn", `${now}, not synchronised`, "enable NTP: timedatectl set-ntp true, or chrony");
}

function diskCheck(config: BackupConfig | undefined, env: NodeJS.ProcessEnv): CheckLine {
  let dir = config?.stateDir ?? env.DCCTL_STATE_DIR ?? "/";
  while (!existsSync(dir) && dir !== "/") dir = dir.replace(/\/[^/]+\/?$/, "") || "/";
  const fs = statfsSync(dir);
  const free = fs.bavail * fs.bsize;
  const share = fs.bavail / Math.max(1, fs.blocks);
  const what = `${dir}: ${(free / 2 ** 30).toFixed(1)} GiB free (${(share * 100).toFixed(0)} %)`;
  return free < 2 ** 30 || share < 0.05 ? bad("disk", "warn", what, "free space there: run reports, journals and restic's cache grow") : ok("disk", what);
}

function firstLine(e: unknown): string {
  return errorMessage(e).split("\n")[0] ?? "";
}
