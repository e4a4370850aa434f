import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { makeDir } from "../util/dirs.js";
import { errorMessage } from "../util/errors.js";
import { isAlive, run, startServer, type ServerProcess } from "../util/process.js";
import { repoRoot } from "../util/tools.js";
import { freezerGroup } from "./freezer.js";
import { labNetwork } from "./lab.js";
import { drillHostDown, drillHosts, drillHostUp, inNetns, managementNetns, pidsInNetns, type NetHost } from "./network.js";
import { placed } from "./placement.js";
import { PG_BIN_DIR, startPostgres, type Postgres } from "./postgres.js";
import { labServices } from "./topology.js";

/**
 * The drill's own hosts on the isolated drill network, for the lab's drill runbook (command step and its clean-up):
 *   drill-net.js up LAB RUN SCRATCH_DB   the drill copies: a PostgreSQL holding a copy of the scratch database the
 *                                        drill restored on the restore-test server (drill-db), the portal on it
 *                                        (drill-app), checked over HTTP from inside the drill network, and the
 *                                        isolation checked both ways; one line out
 *   drill-net.js down LAB RUN            everything of it stopped and removed, namespaces included
 * The copy is made through the database servers' Unix sockets, as a vSphere drill clones disks rather than sending
 * data across networks: nothing on the drill network can reach production, nor production it.
 */
const [action, dir = "", runId = "", scratchDb = ""] = process.argv.slice(2);
const stateFile = () => join(dir, "run", `drill-net-${runId}.json`);
const workDir = () => join(dir, "drill", runId);

interface DrillNetState {
  pid: number;
  phase: "starting" | "ready" | "failed";
  summary?: string;
  error?: string;
}

function writeState(s: DrillNetState): void {
  writeFileSync(`${stateFile()}.tmp`, JSON.stringify(s) + "\n");
  renameSync(`${stateFile()}.tmp`, stateFile());
}

function readState(): DrillNetState | undefined {
  return existsSync(stateFile()) ? (JSON.parse(readFileSync(stateFile(), "utf8")) as DrillNetState) : undefined;
}

/** Whether a TCP connection to host:port opens within ms (false on refusal, unreachability or silence). */
function opens(host: string, port: number, ms = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(ms, () => done(false));
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

/** From a production namespace: whether host:port opens there (bash's /dev/tcp, bounded by timeout). */
async function opensFrom(netns: string, host: string, port: number): Promise<boolean> {
  const res = await run(...inNetns(netns, ["timeout", "3", "bash", "-c", `exec 3<>/dev/tcp/${host}/${port}`]));
  return res.code === 0;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

/** The long-lived part, run inside drill-app's namespace: it owns the drill copies until `down`. */
async function serve(): Promise<void> {
  const { sites, net } = labNetwork(dir);
  const hosts = drillHosts(net, sites);
  const servers: { stop(): Promise<void> }[] = [];
  const stopAll = async () => {
    for (const s of servers.reverse()) await s.stop().catch(() => undefined);
  };
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => void stopAll().then(() => process.exit(0)));
  try {
    writeState({ pid: process.pid, phase: "starting" });
    const freezer = freezerGroup(net.id, "secondary");
    const pg: Postgres = await startPostgres({ dir: join(workDir(), "db"), host: hosts.db.address, port: 5432, placement: { netns: hosts.db.netns, freezer } });
    servers.push(pg);
    // The scratch copy the drill restored on the secondary's restore-test server (its backup host), copied socket to
    // socket into the drill's own server.
    const backupHosts = new Set(sites.secondary.hosts.filter((h) => h.role === "backup").map((h) => h.name));
    const source = labServices(sites).find((s) => s.site === "secondary" && s.kind === "postgresql" && s.host !== undefined && backupHosts.has(s.host));
    if (!source?.host) throw new Error("the lab has no restore-test PostgreSQL on the secondary's backup host");
    const password = randomBytes(12).toString("hex");
    await pg.psql(`CREATE ROLE portal LOGIN PASSWORD '${password}'; CREATE DATABASE portal OWNER portal;`);
    const copy = await run("bash", [
      "-o", "pipefail", "-c",
      '"$0/pg_dump" -h "$1" -p 5432 -U postgres --no-owner --no-privileges "$2" | "$0/psql" -X -q -v ON_ERROR_STOP=1 -h "$3" -p 5432 -U postgres -d portal',
      PG_BIN_DIR, join(dir, "db", source.host, "run"), scratchDb, pg.socketDir,
    ]);
    if (copy.code !== 0) throw new Error(`copying ${scratchDb} into the drill network failed: ${copy.stderr.trim().split("\n").pop() ?? ""}`);
    await pg.psql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO portal", "portal");
    const pgpass = join(workDir(), "portal.pgpass");
    writeFileSync(pgpass, `${hosts.db.address}:5432:portal:portal:${password}\n`, { mode: 0o600 });
    const main = join(repoRoot, "dist", "lab", "portal", "main.js");
    const portal: ServerProcess = await startServer("drill portal", ...placed({ netns: hosts.app.netns, freezer }, process.execPath, [main, `${hosts.app.address}:8080`, `${hosts.db.address}:5432`, "portal", "portal"]), {
      env: { ...process.env, PGPASSFILE: pgpass },
      waitFor: { host: hosts.app.address, port: 8080 },
    });
    servers.push(portal);

    // Served inside the drill network, from the drill's own copy.
    const health = await get(`http://${hosts.app.address}:8080/health`);
    const dossier = await get(`http://${hosts.app.address}:8080/dossiers/QN-2026-00000001`);
    if (health.status !== 200 || !health.body.includes('"status":"ok"') || dossier.status !== 200) throw new Error(`the drill's portal does not serve its copy: /health ${health.status} ${health.body.slice(0, 80)}, dossier ${dossier.status}`);

    // Isolation, both ways: production unreachable from the drill network, the drill copies from production.
    const production = labServices(sites).filter((s) => s.kind === "postgresql" || s.kind === "portal" || s.kind === "rest-server");
    const leaks: string[] = [];
    for (const s of production) if (await opens(s.address, s.port)) leaks.push(`drill network → ${s.address}:${s.port} (${s.name})`);
    for (const site of ["primary", "secondary"] as const) {
      const mgmt = managementNetns(net, sites, site);
      for (const [h, port] of [[hosts.app, 8080], [hosts.db, 5432]] as [NetHost, number][]) {
        if (await opensFrom(mgmt, h.address, port)) leaks.push(`${site} management → ${h.address}:${port}`);
      }
    }
    if (leaks.length) throw new Error(`the drill network is not isolated: ${leaks.join("; ")}`);
    const summary =
      `drill portal at ${hosts.app.address}:8080 serves a copy of ${scratchDb} (${JSON.parse(health.body).dossiers as number} dossiers) on the isolated drill network; ` +
      `unreachable from it: ${production.map((s) => `${s.address}:${s.port}`).join(", ")}; unreachable from both sites' management hosts: ${hosts.app.address}:8080, ${hosts.db.address}:5432`;
    writeState({ pid: process.pid, phase: "ready", summary });
  } catch (e) {
    await stopAll();
    writeState({ pid: process.pid, phase: "failed", error: errorMessage(e) });
    process.exit(1);
  }
  setInterval(() => undefined, 1 << 30);
}

async function up(): Promise<void> {
  const { sites, net } = labNetwork(dir);
  const hosts = drillHosts(net, sites);
  makeDir(workDir());
  for (const h of [hosts.db, hosts.app]) await drillHostUp(net, h);
  rmSync(stateFile(), { force: true });
  const out = openSync(join(dir, "logs", `drill-net-${runId}.log`), "a");
  const child = spawn(...inNetns(hosts.app.netns, [process.execPath, join(repoRoot, "dist", "lab", "drill-net.js"), "serve", dir, runId, scratchDb]), { detached: true, stdio: ["ignore", out, out] });
  closeSync(out);
  child.unref();
  const deadline = Date.now() + 120_000;
  for (;;) {
    const s = readState();
    if (s?.phase === "ready") return void process.stdout.write(`${s.summary ?? ""}\n`);
    if (s?.phase === "failed") throw new Error(s.error ?? "the drill network did not come up");
    if ((child.pid === undefined || !isAlive(child.pid)) && s === undefined) throw new Error("the drill network's keeper exited at once");
    if (Date.now() > deadline) throw new Error("the drill network was not ready after 2 minutes");
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function down(): Promise<void> {
  const { sites, net } = labNetwork(dir);
  const hosts = drillHosts(net, sites);
  const s = readState();
  if (s && isAlive(s.pid)) {
    process.kill(s.pid, "SIGTERM");
    const deadline = Date.now() + 30_000;
    while (isAlive(s.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  }
  // Whatever still runs in the drill's namespaces goes with them.
  for (const h of [hosts.db, hosts.app]) {
    for (const pid of await pidsInNetns(h.netns)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    await drillHostDown(h);
  }
  rmSync(workDir(), { recursive: true, force: true });
  rmSync(stateFile(), { force: true });
  process.stdout.write(`drill network of ${runId} removed\n`);
}

try {
  if (!dir || !runId || (action !== "down" && !scratchDb)) throw new Error("usage: drill-net.js up LAB RUN SCRATCH_DB | down LAB RUN");
  if (action === "up") await up();
  else if (action === "serve") await serve();
  else if (action === "down") await down();
  else throw new Error("usage: drill-net.js up LAB RUN SCRATCH_DB | down LAB RUN");
} catch (e) {
  process.stderr.write(`${errorMessage(e)}\n`);
  process.exit(1);
}
