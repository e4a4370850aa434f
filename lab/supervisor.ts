import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSites, type Sites } from "../inventory/index.js";
import { errorMessage } from "../util/errors.js";
import { startServer, waitForPort, type ServerProcess } from "../util/process.js";
import { repoRoot } from "../util/tools.js";
import { startMariadb, type Mariadb } from "./mariadb.js";
import { startPostgres, type Postgres } from "./postgres.js";
import { startRestServer } from "./rest-server.js";
import { seedMail, seedPortal } from "./seed.js";
import { shapeOf } from "./site-shape.js";
import { startSshd } from "./sshd.js";
import { labDir, writeLabState, type LabState, type RunningService } from "./state.js";
import { labServices, portalDatabase, type LabService } from "./topology.js";
import { startVcsim } from "./vcsim.js";
import { labPaths, readLabConfig, type LabConfig } from "./paths.js";
import { planNetwork } from "./network.js";
import { placed, placementOf } from "./placement.js";

/**
 * The lab's supervisor: one long-lived process that starts every server of the two-site lab, each in its host's
 * network namespace and its site's freezer group, publishes their pids and addresses in lab.json, and stops them all,
 * newest first, when it receives SIGTERM (`dcctl lab down`). Keeping the servers as its children means none of them
 * outlives the lab, whatever happens to the CLI. It runs in the primary's management namespace, from where it can
 * reach every host to see that it answers.
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

function started(svc: LabService, proc: ServerProcess, stop: () => Promise<void>): void {
  const running: RunningService = { ...svc, pid: proc.pid };
  state.services.push(running);
  stops.push({ name: svc.name, stop });
  writeLabState(dir, state);
  log(`started ${svc.name} at ${svc.address}:${svc.port} (pid ${proc.pid})`);
}

async function startAll(sites: Sites): Promise<void> {
  const services = labServices(sites);
  const net = planNetwork(dir, sites);
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
        const sshd = await startSshd({ stateDir: hostDir("ssh"), host: svc.address, port: svc.port, authorizedKeyPath: `${paths.clientKey}.pub`, keepHostKey: true, placement: placementOf(net, svc) });
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
        started(svc, pg.process, pg.stop);
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
  await startAll(sites);
  for (const s of state.services) await waitForPort(s.address, s.port, 10_000);
  state.phase = "ready";
  writeLabState(dir, state);
  log("lab ready");
} catch (e) {
  state.phase = "failed";
  state.error = errorMessage(e);
  writeLabState(dir, state);
  log(`lab failed: ${state.error}`);
  await stopAll();
  process.exit(1);
}
// Stay up: the servers are our children; SIGTERM ends the lab.
setInterval(() => undefined, 1 << 30);
