import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { parseDocument, type YAMLMap, type YAMLSeq } from "yaml";
import { loadSites, type SiteName, type Sites } from "../inventory/index.js";
import { makeDir } from "../util/dirs.js";
import { DcctlError, ExitCode } from "../util/errors.js";
import { isAlive, lastLine, run } from "../util/process.js";
import { repoRoot } from "../util/tools.js";
import { labEnv, writeLabBackupConfig, writeLabEnvFile } from "./backup-config.js";
import { createFreezer, freezerGroup, isFrozen, removeFreezer, setFrozen } from "./freezer.js";
import { capWan, DEFAULT_WAN_MBIT, inNetns, managementNetns, netnsExists, networkDown, networkUp, planNetwork, processesIn, setWan, type LabNetwork } from "./network.js";
import { labPaths, readLabConfig, type LabConfig } from "./paths.js";
import { keygen } from "./sshd.js";
import { readLabState, stateFile, type LabState } from "./state.js";
import { labServices, type LabService } from "./topology.js";

export interface LabUpOptions {
  dir: string;
  sizeMb?: number;
  seed?: number;
  /** The WAN link's cap between the sites, Mbit/s (default 100). */
  wanMbit?: number;
  /** How often the primary's portal files a dossier, ms (default 1000; 0: never). */
  writeEveryMs?: number;
  /** Apply both site stacks to the lab's vCenters (default true). */
  provision?: boolean;
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The lab's own copy of the site files, with ssh.user set to whoever runs it. */
function writeSites(dir: string): void {
  const paths = labPaths(dir);
  makeDir(paths.sites);
  const user = userInfo().username;
  for (const file of readdirSync(join(repoRoot, "lab", "sites")).filter((f) => f.endsWith(".yaml"))) {
    const doc = parseDocument(readFileSync(join(repoRoot, "lab", "sites", file), "utf8"));
    for (const host of (doc.get("hosts") as YAMLSeq<YAMLMap>).items) host.set("ssh", doc.createNode({ user }));
    writeFileSync(join(paths.sites, file), doc.toString());
  }
}

function prepare(dir: string, opts: LabUpOptions): LabConfig {
  const paths = labPaths(dir);
  for (const sub of ["ssh", "secrets", "repos", "logs", "run"]) makeDir(join(dir, sub));
  writeSites(dir);
  const previous = readLabConfig(dir);
  const config: LabConfig = {
    sizeMb: opts.sizeMb ?? previous?.sizeMb ?? 2,
    seed: opts.seed ?? previous?.seed ?? 2026,
    portalPassword: previous?.portalPassword ?? randomBytes(12).toString("hex"),
    dbPassword: previous?.dbPassword ?? randomBytes(12).toString("hex"),
    pgPassword: previous?.pgPassword ?? randomBytes(12).toString("hex"),
    wanMbit: opts.wanMbit ?? previous?.wanMbit ?? DEFAULT_WAN_MBIT,
    writeEveryMs: opts.writeEveryMs ?? previous?.writeEveryMs ?? 1_000,
  };
  writeFileSync(paths.config, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
  const pgs = labServices(loadSites(paths.sites)).filter((s) => s.kind === "postgresql");
  writeFileSync(paths.portalPgpass, pgs.map((s) => `${s.address}:${s.port}:*:portal:${config.portalPassword}`).join("\n") + "\n", { mode: 0o600 });
  return config;
}

/**
 * As root, the database servers run as an unprivileged account, which must be able to enter the lab's folder: make
 * the folder itself enterable, and refuse (naming the culprit) when a parent folder shuts it out.
 */
function checkReachable(dir: string): void {
  if (process.getuid?.() !== 0) return;
  chmodSync(dir, 0o755);
  for (let d = dirname(dir); d !== dirname(d); d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) {
      throw new DcctlError(`the lab's folder ${dir} is inside ${d}, which other accounts cannot enter (the lab's databases run unprivileged): set DCCTL_LAB_DIR elsewhere`, ExitCode.badInput);
    }
  }
}

async function waitForSupervisor(dir: string, pid: number, log: (l: string) => void): Promise<LabState> {
  const deadline = Date.now() + 600_000;
  let reported = 0;
  for (;;) {
    const state = readLabState(dir);
    if (state && state.supervisorPid === pid) {
      for (const s of state.services.slice(reported)) log(`  ${s.name.padEnd(28)} ${s.address}:${s.port}`);
      reported = state.services.length;
      if (state.phase === "ready") return state;
      if (state.phase === "failed") throw new DcctlError(`lab up failed: ${state.error ?? "unknown error"} (log: ${labPaths(dir).log})`);
    }
    if (!isAlive(pid)) {
      const tail = existsSync(labPaths(dir).log) ? lastLine(readFileSync(labPaths(dir).log, "utf8")) : "";
      throw new DcctlError(`the lab's supervisor exited before the lab was ready${tail ? `: ${tail}` : ""}`);
    }
    if (Date.now() > deadline) throw new DcctlError(`the lab was not ready after 10 minutes (log: ${labPaths(dir).log})`);
    await sleep(200);
  }
}

/** The lab's network plan, from its own copy of the site files. */
export function labNetwork(dir: string): { sites: Sites; net: LabNetwork } {
  const sites = loadSites(labPaths(dir).sites);
  return { sites, net: planNetwork(dir, sites) };
}

/**
 * Brings the two-site lab up: its network (namespaces, bridges, WAN), every server under one supervisor process in
 * its host's namespace, then each site's repository and stack from inside that site's management namespace. On a lab
 * that is already up it only checks it, so running it twice is harmless.
 */
export async function labUp(opts: LabUpOptions): Promise<LabState> {
  const log = opts.log ?? (() => undefined);
  const dir = opts.dir;
  const paths = labPaths(dir);
  if (process.getuid?.() !== 0) throw new DcctlError("dcctl lab up needs root: the lab builds its two sites from network namespaces");
  makeDir(dir);
  checkReachable(dir);
  const existing = readLabState(dir);
  let state: LabState;
  if (existing && isAlive(existing.supervisorPid) && existing.phase !== "failed") {
    log(`lab already running (supervisor pid ${existing.supervisorPid})`);
    state = await waitForSupervisor(dir, existing.supervisorPid, () => undefined);
  } else {
    const config = prepare(dir, opts);
    if (!existsSync(paths.clientKey)) await keygen(paths.clientKey, "dcctl-lab");
    for (const site of ["primary", "secondary"] as const) if (!existsSync(paths.siteKey(site))) await keygen(paths.siteKey(site), `dcctl-lab-${site}`);
    const { sites, net } = labNetwork(dir);
    await clearLeftovers(net, log);
    await networkUp(net, config.wanMbit);
    for (const site of ["primary", "secondary"] as const) createFreezer(freezerGroup(net.id, site));
    log(`starting the lab in ${dir} (WAN ${config.wanMbit} Mbit/s)`);
    const out = openSync(paths.log, "a");
    // The supervisor lives in the primary's management namespace: from there it sees every server answer.
    const child = spawn(...inNetns(managementNetns(net, sites, "primary"), [process.execPath, join(repoRoot, "dist", "lab", "supervisor.js"), dir]), { detached: true, stdio: ["ignore", out, out] });
    closeSync(out);
    child.unref();
    try {
      if (child.pid === undefined) throw new DcctlError("could not start the lab's supervisor");
      state = await waitForSupervisor(dir, child.pid, log);
    } catch (e) {
      // A lab that did not come up leaves nothing running and no namespace behind.
      await labDown(dir);
      throw e;
    }
  }
  const config = readLabConfig(dir);
  if (!config) throw new DcctlError(`the lab's ${paths.config} is missing: run dcctl lab down, then dcctl lab up`);
  writeLabBackupConfig(dir, state, config);
  writeLabEnvFile(dir);
  // The two sites are set up side by side, as two sites' teams would: each applies its own stack to its own vCenter.
  const provisioned = await Promise.all(
    (["primary", "secondary"] as const).map(async (site) => ({ site, res: await inSite(dir, site, [process.execPath, join(repoRoot, "dist", "lab", "provision.js"), dir, site, ...(opts.provision === false ? ["--no-stack"] : [])]) })),
  );
  for (const { site, res } of provisioned) {
    if (res.code !== 0) throw new DcctlError(`setting up the lab's ${site} site failed: ${lastLine(res.stderr) || lastLine(res.stdout) || `exit ${res.code}`}`);
    if (res.stdout.trim()) log(res.stdout.trim());
  }
  return state;
}

/** Processes and namespaces a lab that was not stopped cleanly (machine reboot aside) left behind. */
async function clearLeftovers(net: LabNetwork, log: (l: string) => void): Promise<void> {
  for (const site of ["primary", "secondary"] as const) await setFrozen(freezerGroup(net.id, site), false);
  const pids = await processesIn(net);
  if (pids.length) log(`stopping ${pids.length} processes an earlier lab left in its namespaces`);
  for (const pid of pids) signal(pid, "SIGKILL");
  await networkDown(net);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Gone meanwhile.
  }
}

/** Runs a command inside a site's management namespace with that site's environment, collecting its output. */
export function inSite(dir: string, site: SiteName, argv: string[]): ReturnType<typeof run> {
  const { cmd, args, env } = siteCommand(dir, site, argv);
  return run(cmd, args, { env });
}

/**
 * The argv and environment that run a command on a site's management host: inside its namespace, with its control
 * plane's environment. `dcctl` as the command is this dcctl.
 */
export function siteCommand(dir: string, site: SiteName, argv: string[]): { cmd: string; args: string[]; env: NodeJS.ProcessEnv } {
  const { sites, net } = labNetwork(dir);
  const ns = managementNetns(net, sites, site);
  if (!netnsExists(ns)) throw new DcctlError("the lab is not running (start it with `dcctl lab up`)");
  const [first, ...rest] = argv;
  const command = first === "dcctl" ? [process.execPath, join(repoRoot, "dist", "cli", "main.js"), ...rest] : argv;
  const [cmd, args] = inNetns(ns, command);
  return { cmd, args, env: { ...process.env, ...labEnv(dir, site) } };
}

export interface ServiceStatus extends LabService {
  pid: number;
  running: boolean;
}

export interface LabStatus {
  state?: LabState;
  services: ServiceStatus[];
  /** The sites `lab fail` took down. */
  failed: SiteName[];
  wanMbit?: number;
}

export function labStatus(dir: string): LabStatus {
  const state = readLabState(dir);
  if (!state) return { services: [], failed: [] };
  const { net } = labNetwork(dir);
  const failed = (["primary", "secondary"] as const).filter((s) => isFrozen(freezerGroup(net.id, s)));
  const config = readLabConfig(dir);
  return { state, services: state.services.map((s) => ({ ...s, running: isAlive(s.pid) })), failed, ...(config ? { wanMbit: config.wanMbit } : {}) };
}

/**
 * Loses a site as a real outage does: the WAN is cut (each router silently drops what is bound for the other site)
 * and every server of the site is frozen, so connections to it hang rather than being refused. `heal` undoes both.
 */
export async function labFail(dir: string, site: SiteName): Promise<void> {
  const { net } = labNetwork(dir);
  if (!readLabState(dir)) throw new DcctlError("the lab is not running (start it with `dcctl lab up`)");
  await setWan(net, "cut");
  await setFrozen(freezerGroup(net.id, site), true);
}

/** Changes the bandwidth cap of a running lab's WAN, and keeps it for the lab's next `up`. */
export async function labWan(dir: string, mbit: number): Promise<void> {
  const config = readLabConfig(dir);
  if (!readLabState(dir) || !config) throw new DcctlError("the lab is not running (start it with `dcctl lab up`)");
  await capWan(labNetwork(dir).net, mbit);
  writeFileSync(labPaths(dir).config, JSON.stringify({ ...config, wanMbit: mbit }, null, 2) + "\n", { mode: 0o600 });
}

export async function labHeal(dir: string): Promise<SiteName[]> {
  const { net } = labNetwork(dir);
  if (!readLabState(dir)) throw new DcctlError("the lab is not running (start it with `dcctl lab up`)");
  const healed = (["primary", "secondary"] as const).filter((s) => isFrozen(freezerGroup(net.id, s)));
  for (const site of ["primary", "secondary"] as const) await setFrozen(freezerGroup(net.id, site), false);
  await setWan(net, "up");
  return healed;
}

/**
 * Stops every process the lab started (through its supervisor, then whatever still runs in its namespaces, such as a
 * portal a runbook started), and removes its namespaces and freezer groups. Its folder stays.
 */
export async function labDown(dir: string, log: (l: string) => void = () => undefined): Promise<{ stopped: number }> {
  const state = readLabState(dir);
  const { net } = existsSync(labPaths(dir).sites) ? labNetwork(dir) : { net: undefined };
  // A frozen process cannot even die.
  if (net) for (const site of ["primary", "secondary"] as const) await setFrozen(freezerGroup(net.id, site), false);
  if (state && isAlive(state.supervisorPid)) process.kill(state.supervisorPid, "SIGTERM");
  const deadline = Date.now() + 90_000;
  while (state && isAlive(state.supervisorPid) && Date.now() < deadline) await sleep(200);
  // A supervisor killed hard would leave its servers: end them by process group, as a last resort.
  for (const s of state?.services ?? []) {
    if (!isAlive(s.pid)) continue;
    log(`stopping leftover ${s.name} (pid ${s.pid})`);
    signal(-s.pid, "SIGKILL");
  }
  if (net) {
    const rest = await processesIn(net);
    if (rest.length) log(`stopping ${rest.length} more processes in the lab's namespaces`);
    for (const pid of rest) signal(pid, "SIGKILL");
    const until = Date.now() + 10_000;
    while ((await processesIn(net)).length > 0 && Date.now() < until) await sleep(100);
    await networkDown(net);
    for (const site of ["primary", "secondary"] as const) await removeFreezer(freezerGroup(net.id, site));
  }
  rmSync(stateFile(dir), { force: true });
  return { stopped: state?.services.length ?? 0 };
}
