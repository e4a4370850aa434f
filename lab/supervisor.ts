import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSites, type Sites } from "../inventory/index.js";
import { errorMessage } from "../util/errors.js";
import { isAlive, startServer, waitForPort, type ServerProcess } from "../util/process.js";
import { repoRoot } from "../util/tools.js";
import { startMariadb, type Mariadb } from "./mariadb.js";
import { PG_BIN_DIR, serverAccount, serverOptions, startPostgres, stopGently, type Postgres } from "./postgres.js";
import { startRestServer } from "./rest-server.js";
import { seedMail, seedPortal } from "./seed.js";
import { shapeOf } from "./site-shape.js";
import { startSshd } from "./sshd.js";
import { labDir, writeLabState, type LabState, type RunningService } from "./state.js";
import { labServices, portalDatabase, type LabService } from "./topology.js";
import { startVcsim } from "./vcsim.js";
import { labPaths, readLabConfig, type LabConfig } from "./paths.js";
import { planNetwork, type LabNetwork } from "./network.js";
import { serveControl } from "./server-control.js";
import { placed, placementOf } from "./placement.js";
import { authorizedKeyLine } from "../backup/peer-access.js";

/**
 * The lab's supervisor: one long-lived process that starts every server of the two-site lab, each in its host's
 * network namespace and its site's freezer group, publishes their pids and addresses in lab.json, and stops them all,
 * newest first, when it receives SIGTERM (`dcctl lab down`). Keeping the servers as its children means none of them
 * outlives the lab, whatever happens to the CLI. It runs in the primary's management namespace, from where it can
 * reach every host to see that it answers. A PostgreSQL server that replication stops and starts again (through
 * lab/dbctl.ts, on a re-seeded or rewound data directory) is stopped and started by the supervisor too, over its
 * control socket (lab/server-control.ts): the process lab.json names is always its child.
 */
const dir = process.argv[2] ?? labDir();
const paths = labPaths(dir);
const config: LabConfig =
  readLabConfig(dir) ??
  (() => {
    throw new Error(`${paths.config} is missing: the supervisor is started by dcctl lab up`);
  })();
const stops: { name: string; stop(): Promise<void> }[] = [];
const state: LabState = { supervisorPid: process.pid, startedAt: new Date().toISOString(), phase: "starting", services: [], vcenters: {} };
const log = (line: string) => appendFileSync(paths.log, `${new Date().toISOString()} ${line}\n`);

/** Each host's PostgreSQL as it runs now: the process the lab started, or the one a later start put in its place. */
const postgresOf = new Map<string, ServerProcess>();

function started(svc: LabService, proc: ServerProcess, stop: () => Promise<void>): void {
  const running: RunningService = { ...svc, pid: proc.pid };
  state.services.push(running);
  stops.push({ name: svc.name, stop });
  writeLabState(dir, state);
  log(`started ${svc.name} at ${svc.address}:${svc.port} (pid ${proc.pid})`);
}

async function startAll(sites: Sites, net: LabNetwork): Promise<void> {
  const services = labServices(sites);
  const pgs = new Map<string, Postgres>();
  const mariadbs = new Map<string, Mariadb>();
  const knownHosts: string[] = [];
  for (const svc of services) {
    const hostDir = (what: string) => join(dir, what, svc.host ?? svc.site);
    switch (svc.kind) {
      case "vcsim": {
        const site = sites[svc.site];
        rmSync(hostDir("vcsim"), { recursive: true, force: true });
        const sim = await startVcsim(hostDir("vcsim"), shapeOf(site), { host: svc.address, port: svc.port, placement: placementOf(net, svc) });
        state.vcenters[svc.site] = sim.connection;
        started(svc, sim.server, sim.stop);
        break;
      }
      case "rest-server": {
        const rs = await startRestServer({ dataDir: join(dir, "repos", svc.site), host: svc.address, port: svc.port, appendOnly: svc.site === "secondary", placement: placementOf(net, svc) });
        started(svc, rs.process, rs.stop);
        break;
      }
      case "sshd": {
        const sshd = await startSshd({
          stateDir: hostDir("ssh"),
          host: svc.address,
          port: svc.port,
          authorizedKeyPath: `${paths.clientKey}.pub`,
          moreAuthorizedKeys: siteKeyLines(sites, svc),
          keepHostKey: true,
          placement: placementOf(net, svc),
        });
        knownHosts.push(readFileSync(sshd.knownHostsPath, "utf8").trim());
        writeFileSync(paths.knownHosts, knownHosts.join("\n") + "\n");
        started(svc, sshd.process, sshd.stop);
        break;
      }
      case "postgresql": {
        const pg = await startPostgres({ dir: hostDir("db"), host: svc.address, port: svc.port, placement: placementOf(net, svc), superuserPassword: config.pgPassword });
        pgs.set(svc.host ?? "", pg);
        // A streaming standby is read-only and has its primary's roles already.
        if ((await pg.psql("SELECT pg_is_in_recovery()")).trim() === "f") {
          await pg.psql(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'portal') THEN CREATE ROLE portal LOGIN PASSWORD '${config.portalPassword}'; END IF; END $$;`);
        }
        postgresOf.set(svc.host ?? "", pg.process);
        started(svc, pg.process, () => stopPostgres(svc.host ?? ""));
        break;
      }
      case "mariadb": {
        const db = await startMariadb({ dir: hostDir("db"), host: svc.address, port: svc.port, placement: placementOf(net, svc) });
        mariadbs.set(svc.host ?? "", db);
        // The account backups, restores and replication set-up log in with, over TCP from the lab's networks (which
        // exist only inside it); replication set-up grants the replication account its rights, hence GRANT OPTION.
        // Each server's own, kept out of the binary log: on a replica a local write would clash with its primary's.
        await db.sql(`SET SESSION sql_log_bin = 0; CREATE USER IF NOT EXISTS 'dcctl'@'%' IDENTIFIED BY '${config.dbPassword}'; GRANT ALL PRIVILEGES ON *.* TO 'dcctl'@'%' WITH GRANT OPTION; FLUSH PRIVILEGES;`);
        started(svc, db.process, db.stop);
        break;
      }
      case "portal": {
        const dbSvc = portalDatabase(services, svc.site);
        const pg = dbSvc?.host ? pgs.get(dbSvc.host) : undefined;
        if (!dbSvc || !pg) throw new Error(`no PostgreSQL at ${svc.site} for the portal on ${svc.host ?? "?"}`);
        if (!state.seeded) await seed(sites, pgs, mariadbs);
        const main = join(repoRoot, "dist", "lab", "portal", "main.js");
        // The primary's first portal keeps filing dossiers, so that losing the site loses some (see lab/portal).
        const writes = config.writeEveryMs > 0 && svc.site === "primary" && !state.services.some((s) => s.kind === "portal") ? [String(config.writeEveryMs), paths.lastWritten] : [];
        const proc = await startServer(svc.name, ...placed(placementOf(net, svc), process.execPath, [main, `${svc.address}:${svc.port}`, `${dbSvc.address}:${dbSvc.port}`, "portal", "portal", ...writes]), {
          env: { ...process.env, PGPASSFILE: paths.portalPgpass },
          waitFor: { host: svc.address, port: svc.port },
        });
        started(svc, proc, proc.stop);
        break;
      }
    }
  }
  if (!state.seeded) await seed(sites, pgs, mariadbs);
}

const running = (p: ServerProcess | undefined): p is ServerProcess => p !== undefined && p.child.exitCode === null && p.child.signalCode === null;

/** The postmaster's pid from its data directory's pid file, when that process runs (one the supervisor did not start). */
/**
 * Who else logs in to a host, as a real deployment sets it up: each site's own key everywhere, except that on a
 * management host the other site's key runs `dcctl peer-records serve` and nothing else (backup/peer-access.ts).
 */
function siteKeyLines(sites: Sites, svc: LabService): string[] {
  const management = sites[svc.site].hosts.find((h) => h.name === svc.host)?.role === "backup";
  return (["primary", "secondary"] as const).map((site) => {
    const key = readFileSync(`${paths.siteKey(site)}.pub`, "utf8");
    if (site === svc.site || !management) return key.trim();
    return authorizedKeyLine(key, { dcctl: [process.execPath, join(repoRoot, "dist", "cli", "main.js")], stateDir: paths.stateDir(svc.site), source: `${paths.siteKey(site)}.pub` });
  });
}

function postmasterPid(host: string): number | undefined {
  const file = join(dir, "db", host, "data", "postmaster.pid");
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
}

/** Fast shutdown (SIGINT) of a host's PostgreSQL, waiting until it is gone; the whole group after a minute. */
async function stopPostgres(host: string): Promise<void> {
  const proc = postgresOf.get(host);
  if (running(proc)) await stopGently(proc, "SIGINT", 60_000);
  const stray = postmasterPid(host);
  if (stray === undefined) return;
  process.kill(stray, "SIGINT");
  const deadline = Date.now() + 60_000;
  while (isAlive(stray)) {
    if (Date.now() > deadline) throw new Error(`PostgreSQL on ${host} (pid ${stray}) did not stop within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts a host's PostgreSQL on its data directory as the lab first did (its address, port and socket folder, in its
 * namespace and its site's freezer group), unless it runs; returns its pid. The caller (dbctl, in the host's
 * namespace) waits for it to listen: from here a host across a cut WAN cannot be reached.
 */
async function startPostgresAgain(host: string, net: LabNetwork): Promise<number> {
  const proc = postgresOf.get(host);
  if (running(proc)) return proc.pid;
  const stray = postmasterPid(host);
  if (stray !== undefined) return stray;
  const svc = state.services.find((s) => s.kind === "postgresql" && s.host === host);
  if (!svc) throw new Error(`the lab has no PostgreSQL on ${host}`);
  const base = join(dir, "db", host);
  const account = await serverAccount("dcctl-lab");
  const again = await startServer(svc.name, ...placed(placementOf(net, svc), join(PG_BIN_DIR, "postgres"), ["-D", join(base, "data"), ...serverOptions(svc.address, svc.port, join(base, "run"))], account));
  again.child.once("exit", (code, signal) => {
    if (!stopping) log(`${svc.name} (pid ${again.pid}) exited (${signal ?? `code ${code ?? "?"}`})${again.output().trim() ? `: ${again.output().trim().split("\n").pop() ?? ""}` : ""}`);
  });
  postgresOf.set(host, again);
  state.services = state.services.map((s) => (s === svc ? { ...s, pid: again.pid } : s));
  writeLabState(dir, state);
  log(`started ${svc.name} again at ${svc.address}:${svc.port} (pid ${again.pid})`);
  return again.pid;
}

/** Serves dbctl's requests, one at a time per host (a stop and a start of one server never overlap). */
async function serveDbctl(net: LabNetwork): Promise<void> {
  const queues = new Map<string, Promise<unknown>>();
  await serveControl(paths.control, (action, host) => {
    if (stopping) return Promise.reject(new Error("the lab is stopping"));
    const next = (queues.get(host) ?? Promise.resolve())
      .catch(() => undefined)
      .then(async () => {
        log(`dbctl: ${action} ${host}`);
        if (action === "start") return startPostgresAgain(host, net);
        await stopPostgres(host);
        return undefined;
      });
    queues.set(host, next);
    return next;
  });
}

/** Seeds the primary's databases (once: a restarted lab keeps its data) and lets the portal read the dossiers. */
async function seed(sites: Sites, pgs: Map<string, Postgres>, mariadbs: Map<string, Mariadb>): Promise<void> {
  const opts = { sizeMb: config.sizeMb, seed: config.seed };
  const primaryHosts = new Set(sites.primary.hosts.map((h) => h.name));
  const seeded = { dossiers: 0, documents: 0, accounts: 0 };
  for (const [host, pg] of pgs) {
    if (!primaryHosts.has(host)) continue;
    const r = await seedPortal(pg, opts);
    await pg.psql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO portal; GRANT INSERT ON dossiers TO portal", "portal");
    seeded.dossiers += r.dossiers;
    seeded.documents += r.documents;
    log(`portal data on ${host}: ${r.dossiers} dossiers, ${r.documents} documents${r.created ? " (generated)" : " (kept)"}`);
  }
  for (const [host, db] of mariadbs) {
    if (!primaryHosts.has(host)) continue;
    const r = await seedMail(db, opts);
    seeded.accounts += r.accounts;
    log(`mail data on ${host}: ${r.accounts} accounts${r.created ? " (generated)" : " (kept)"}`);
  }
  state.seeded = seeded;
  writeLabState(dir, state);
}

async function stopAll(): Promise<void> {
  for (const s of stops.reverse()) {
    try {
      await s.stop();
      log(`stopped ${s.name}`);
    } catch (e) {
      log(`could not stop ${s.name}: ${errorMessage(e)}`);
    }
  }
  stops.length = 0;
}

let stopping = false;
async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    await stopAll();
    rmSync(join(dir, "lab.json"), { force: true });
    rmSync(paths.control, { force: true });
    log("lab stopped");
  }
  process.exit(code);
}
process.on("SIGTERM", () => void shutdown(0));
process.on("SIGINT", () => void shutdown(0));

try {
  mkdirSync(dir, { recursive: true });
  writeLabState(dir, state);
  const sites = loadSites(paths.sites);
  const net = planNetwork(dir, sites);
  await serveDbctl(net);
  await startAll(sites, net);
  for (const s of state.services) await waitForPort(s.address, s.port, 10_000);
  state.phase = "ready";
  writeLabState(dir, state);
  log("lab ready");
} catch (e) {
  state.phase = "failed";
  state.error = errorMessage(e);
  writeLabState(dir, state);
  log(`lab failed: ${state.error}`);
  stopping = true;
  await stopAll();
  rmSync(paths.control, { force: true });
  process.exit(1);
}
// Stay up: the servers are our children; SIGTERM ends the lab.
setInterval(() => undefined, 1 << 30);
