import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { parseDocument, type YAMLMap, type YAMLSeq } from "yaml";
import { loadSites } from "../inventory/index.js";
import { localBackend } from "../stacks/automation.js";
import { engineFailure } from "../stacks/guards.js";
import { policyPackDir, siteStack } from "../stacks/infra.js";
import { DcctlError, ExitCode } from "../util/errors.js";
import { isAlive, lastLine } from "../util/process.js";
import { repoRoot } from "../util/tools.js";
import { writeLabBackupConfig } from "./backup-config.js";
import { labPaths, type LabConfig } from "./paths.js";
import { keygen } from "./sshd.js";
import { readLabState, stateFile, type LabState } from "./state.js";
import { labServices, type LabService } from "./topology.js";

export interface LabUpOptions {
  dir: string;
  sizeMb?: number;
  seed?: number;
  /** Apply both site stacks to the lab's vCenters (default true). */
  provision?: boolean;
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    sock.setTimeout(1_000, () => {
      sock.destroy();
      resolve(false);
    });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

/**
 * The lab's own copy of the site files, with ssh.user set to whoever runs it (no root needed where possible), and the
 * loopback addresses moved from 127.0.x.y to NET.x.y when DCCTL_LAB_NET is set, so a second lab (a test's) can run
 * beside the first.
 */
function writeSites(dir: string): void {
  const paths = labPaths(dir);
  mkdirSync(paths.sites, { recursive: true });
  const user = userInfo().username;
  const net = process.env.DCCTL_LAB_NET;
  if (net !== undefined && !/^127\.\d{1,3}$/.test(net)) throw new DcctlError(`DCCTL_LAB_NET must look like 127.N, not "${net}"`, ExitCode.badInput);
  for (const file of readdirSync(join(repoRoot, "lab", "sites")).filter((f) => f.endsWith(".yaml"))) {
    const doc = parseDocument(readFileSync(join(repoRoot, "lab", "sites", file), "utf8"));
    for (const host of (doc.get("hosts") as YAMLSeq<YAMLMap>).items) {
      const ssh = host.get("ssh") as YAMLMap;
      ssh.set("user", user);
      if (net) ssh.set("host", String(ssh.get("host")).replace(/^127\.0\./, `${net}.`));
    }
    writeFileSync(join(paths.sites, file), doc.toString());
  }
}

function prepare(dir: string, opts: LabUpOptions): LabConfig {
  const paths = labPaths(dir);
  for (const sub of ["ssh", "secrets", "repos", "logs"]) mkdirSync(join(dir, sub), { recursive: true, mode: 0o755 });
  writeSites(dir);
  const previous = existsSync(paths.config) ? (JSON.parse(readFileSync(paths.config, "utf8")) as LabConfig) : undefined;
  const config: LabConfig = {
    sizeMb: opts.sizeMb ?? previous?.sizeMb ?? 2,
    seed: opts.seed ?? previous?.seed ?? 2026,
    portalPassword: previous?.portalPassword ?? randomBytes(12).toString("hex"),
    dbPassword: previous?.dbPassword ?? randomBytes(12).toString("hex"),
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

/** Refuses to start when another program holds one of the lab's addresses: a clear message instead of a hang. */
async function checkPortsFree(services: LabService[]): Promise<void> {
  const taken: string[] = [];
  for (const s of services) if (await listening(s.address, s.port)) taken.push(`${s.address}:${s.port} (${s.name})`);
  if (taken.length > 0) throw new DcctlError(`cannot start the lab: already in use by another program: ${taken.join(", ")}`);
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

/**
 * Brings the two-site lab up: every server under one supervisor process, then both site stacks applied to the lab's
 * vCenters with the real engine. On a lab that is already up it only checks it, so running it twice is harmless.
 */
export async function labUp(opts: LabUpOptions): Promise<LabState> {
  const log = opts.log ?? (() => undefined);
  const dir = opts.dir;
  const paths = labPaths(dir);
  mkdirSync(dir, { recursive: true });
  checkReachable(dir);
  const existing = readLabState(dir);
  let state: LabState;
  if (existing && isAlive(existing.supervisorPid) && existing.phase !== "failed") {
    log(`lab already running (supervisor pid ${existing.supervisorPid})`);
    state = await waitForSupervisor(dir, existing.supervisorPid, () => undefined);
  } else {
    prepare(dir, opts);
    if (!existsSync(paths.clientKey)) await keygen(paths.clientKey, "dcctl-lab");
    await checkPortsFree(labServices(loadSites(paths.sites)));
    log(`starting the lab in ${dir}`);
    const out = openSync(paths.log, "a");
    const child = spawn(process.execPath, [join(repoRoot, "dist", "lab", "supervisor.js"), dir], { detached: true, stdio: ["ignore", out, out] });
    closeSync(out);
    child.unref();
    if (child.pid === undefined) throw new DcctlError("could not start the lab's supervisor");
    state = await waitForSupervisor(dir, child.pid, log);
  }
  const config = JSON.parse(readFileSync(paths.config, "utf8")) as LabConfig;
  await writeLabBackupConfig(dir, state, config);
  if (opts.provision !== false) await provision(dir, state, log);
  return state;
}

/** Applies both site stacks to the lab's simulated vCenters (state in the lab folder, lost with the simulators). */
async function provision(dir: string, state: LabState, log: (l: string) => void): Promise<void> {
  const paths = labPaths(dir);
  const backend = localBackend(join(paths.pulumi, String(state.supervisorPid)));
  for (const site of ["primary", "secondary"] as const) {
    const vc = state.vcenters[site];
    if (!vc) throw new DcctlError(`the lab has no vCenter for ${site}`);
    const stack = await siteStack(site, { backend, sitesDir: paths.sites, mode: "standby", vcenter: { url: vc.url, user: vc.username, password: vc.password, insecure: true } });
    const res = await stack.up({ policyPacks: [policyPackDir] }).catch((e: unknown) => {
      throw engineFailure(e, `pulumi up of the lab's stack ${site}`);
    });
    const changes = Object.entries(res.summary.resourceChanges ?? {}).map(([k, v]) => `${k} ${v}`).join(", ");
    log(`stack ${site}: ${changes}`);
  }
}

export interface ServiceStatus extends LabService {
  pid: number;
  running: boolean;
}

export function labStatus(dir: string): { state?: LabState; services: ServiceStatus[] } {
  const state = readLabState(dir);
  if (!state) return { services: [] };
  return { state, services: state.services.map((s) => ({ ...s, running: isAlive(s.pid) })) };
}

/** Stops every process the lab started (through its supervisor) and removes nothing else. */
export async function labDown(dir: string, log: (l: string) => void = () => undefined): Promise<{ stopped: number }> {
  const state = readLabState(dir);
  if (!state) return { stopped: 0 };
  if (isAlive(state.supervisorPid)) process.kill(state.supervisorPid, "SIGTERM");
  const deadline = Date.now() + 90_000;
  while (isAlive(state.supervisorPid) && Date.now() < deadline) await sleep(200);
  // A supervisor killed hard would leave its servers: end them by process group, as a last resort.
  for (const s of state.services) {
    if (!isAlive(s.pid)) continue;
    log(`stopping leftover ${s.name} (pid ${s.pid})`);
    try {
      process.kill(-s.pid, "SIGKILL");
    } catch {
      // Gone meanwhile.
    }
  }
  rmSync(stateFile(dir), { force: true });
  return { stopped: state.services.length };
}
