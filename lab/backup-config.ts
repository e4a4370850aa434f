import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { parse, stringify } from "yaml";
import { loadSites } from "../inventory/index.js";
import { Restic, ResticRepoMissingError } from "../restic/index.js";
import type { SiteName } from "../inventory/index.js";
import { makeDir } from "../util/dirs.js";
import { quoteArg } from "../hosts/quote.js";
import { repoRoot, toolPath } from "../util/tools.js";
import { labPaths, type LabConfig } from "./paths.js";
import type { LabState } from "./state.js";
import type { PgServerControl } from "../databases/postgresql/server.js";

/** A secret file created once with a random value (mode 0600), then kept: repositories outlive lab restarts. */
function secretFile(path: string): string {
  if (!existsSync(path)) writeFileSync(path, randomBytes(18).toString("base64url") + "\n", { mode: 0o600 });
  return path;
}

/**
 * The environment of a site's management host: dcctl pointed at the lab and at that site's control plane. `dcctl lab
 * exec SITE` and `lab shell SITE` set it inside the site's management namespace.
 */
export function labEnv(dir: string, site: SiteName): Record<string, string> {
  const paths = labPaths(dir);
  return {
    // `dcctl` typed in `lab shell` is this dcctl, whichever checkout's set-up put one on PATH last.
    PATH: `${join(repoRoot, "bin")}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    DCCTL_LAB_DIR: dir,
    DCCTL_SITE: site,
    DCCTL_SITES_DIR: paths.sites,
    DCCTL_REPOS_FILE: paths.reposFile(site),
    DCCTL_POLICIES_FILE: paths.policiesFile,
    DCCTL_STATE_DIR: paths.stateDir(site),
  };
}

/**
 * `<lab>/env`: what makes the README's and the demo's commands work as typed in any shell of this machine — this
 * checkout's dcctl first on PATH, and the lab's folder when it is not the default one.
 */
export function writeLabEnvFile(dir: string): void {
  const lines = [
    `# dcctl's lab in ${dir}: \`source\` this file, then type the README's commands (dcctl lab status, dcctl lab exec ...)`,
    `export DCCTL_LAB_DIR=${quoteArg(dir)}`,
    `export PATH=${quoteArg(join(repoRoot, "bin"))}:"$PATH"`,
  ];
  writeFileSync(labPaths(dir).envFile, lines.join("\n") + "\n", { mode: 0o644 });
}

/**
 * Writes what the backup and DR engines need to work on the lab: repository passwords, the databases' login files,
 * the lab's policies and each site's repositories file. Touches no server (the lab's network is only reachable from
 * inside it: each site initialises its own repository, see provision.ts). Idempotent.
 */
export function writeLabBackupConfig(dir: string, state: LabState, config: LabConfig): void {
  const paths = labPaths(dir);
  const secrets = join(dir, "secrets");
  mkdirSync(secrets, { recursive: true, mode: 0o700 });
  const sites = loadSites(paths.sites);

  const pgLines: string[] = [];
  const dbHosts: Record<string, { postgresql?: { host: string; port: number; server: PgServerControl }; mariadb?: { host: string; port: number } }> = {};
  for (const s of state.services) {
    if (!s.host) continue;
    if (s.kind === "postgresql") {
      const pw = readFileSync(join(dir, "db", s.host, "superuser.password"), "utf8").trim();
      // Any port: a point-in-time restore's scratch server (dcctl restore --at) has the same accounts on another one.
      pgLines.push(`${s.address}:*:*:postgres:${pw}`);
      // The lab's service control (lab/dbctl.ts), run on the host over SSH as pg_ctlcluster would be.
      const dbctl = (action: string) => [process.execPath, join(repoRoot, "dist", "lab", "dbctl.js"), action, dir, s.host ?? ""];
      const server = { dataDir: join(dir, "db", s.host, "data"), osUser: "dcctl-lab", start: dbctl("start"), stop: dbctl("stop") };
      dbHosts[s.host] = { ...dbHosts[s.host], postgresql: { host: s.address, port: s.port, server } };
    }
    if (s.kind === "mariadb") dbHosts[s.host] = { ...dbHosts[s.host], mariadb: { host: s.address, port: s.port } };
  }
  const pgpass = join(secrets, "postgres.pgpass");
  writeFileSync(pgpass, pgLines.join("\n") + "\n", { mode: 0o600 });
  secretFile(paths.replicationPass);
  const mycnf = join(secrets, "mariadb.cnf");
  writeFileSync(mycnf, `[client]\nuser=dcctl\npassword=${config.dbPassword}\n`, { mode: 0o600 });

  writeFileSync(paths.policiesFile, readFileSync(join(repoRoot, "lab", "policies.yaml"), "utf8").replaceAll("@LAB@", dir));
  for (const sub of ["etc", "srv"]) mkdirSync(join(dir, "hosts", sub), { recursive: true });
  writeFileSync(join(dir, "hosts", "etc", "portal.conf"), `# the lab portal\nlisten=8080\ndatabase=portal\n`);
  writeFileSync(join(dir, "hosts", "srv", "README.txt"), "Hồ sơ số hoá của Cổng dịch vụ công (lab)\n");

  const restServer = (site: "primary" | "secondary") => state.services.find((s) => s.kind === "rest-server" && s.site === site);
  const primaryRs = restServer("primary");
  const secondaryRs = restServer("secondary");
  if (!primaryRs || !secondaryRs) throw new Error("the lab has no rest-server at each site");
  const pass = { primary: secretFile(join(secrets, "restic-primary.pass")), secondary: secretFile(join(secrets, "restic-secondary.pass")) };
  const repos = {
    primary: { url: `rest:http://${primaryRs.address}:${primaryRs.port}/primary/`, passwordFile: pass.primary },
    secondary: { url: `rest:http://${secondaryRs.address}:${secondaryRs.port}/secondary/`, passwordFile: pass.secondary },
  };
  // The lab's hosts share this machine's disk: the restic set-up installed is their own, and nothing is copied to them.
  const restic = toolPath("restic");
  const common = {
    ...(isAbsolute(restic) ? { hostRestic: { path: restic } } : {}),
    replication: { passwordFile: paths.replicationPass },
    concurrency: 4,
    databases: {
      postgresql: { port: 5432, user: "postgres", passFile: pgpass, binDir: "/usr/lib/postgresql/15/bin" },
      mariadb: { port: 3306, defaultsFile: mycnf },
      hosts: dbHosts,
    },
  };
  const backupServer = (site: "primary" | "secondary") => sites[site].hosts.filter((h) => h.role === "backup").map((h) => h.name);
  // At the secondary its own repository is reached on disk, past the rest-server's --append-only: only it prunes.
  const ownSecondary = { url: join(dir, "repos", "secondary", "secondary"), passwordFile: pass.secondary };
  const repositories = { primary: repos, secondary: { ...repos, secondary: ownSecondary } };
  for (const site of ["primary", "secondary"] as const) {
    makeDir(paths.stateDir(site));
    // Each site reads the other's last runs and verifies from its management host, where that site keeps them.
    const other = site === "primary" ? "secondary" : "primary";
    const peers = { [other]: { stateDir: paths.stateDir(other) } };
    // Each site logs in with its own key (a lab started before there were site keys: the lab's).
    const ssh = { keyFile: existsSync(paths.siteKey(site)) ? paths.siteKey(site) : paths.clientKey, knownHosts: paths.knownHosts };
    writeFileSync(paths.reposFile(site), stringify({ site, repositories: repositories[site], localHosts: backupServer(site), stateDir: paths.stateDir(site), peers, ssh, ...common }));
  }
  writeLabRunbooks(dir, state);
}

/** A site's own repository, created on first use: run at that site (inside its management namespace). */
export async function initSiteRepository(dir: string, site: SiteName): Promise<void> {
  const url = (parse(readFileSync(labPaths(dir).reposFile(site), "utf8")) as { repositories: Record<string, { url: string; passwordFile: string }> }).repositories[site];
  if (!url) throw new Error(`the lab's repositories file of ${site} has no repository ${site}`);
  const restic = new Restic(url);
  try {
    await restic.catConfig();
  } catch (e) {
    if (!(e instanceof ResticRepoMissingError)) throw e;
    // A lab's key protects nothing real: made to open at once (Restic.init), as every drill and test opens it often.
    await restic.init({ throwawayKey: true });
  }
}

/** The lab's runbooks, from the templates in lab/runbooks with this lab's folder and addresses filled in. */
function writeLabRunbooks(dir: string, state: LabState): void {
  const paths = labPaths(dir);
  const sites = loadSites(paths.sites);
  const service = (kind: string, site: "primary" | "secondary") => state.services.find((s) => s.kind === kind && s.site === site);
  const db = service("postgresql", "primary");
  // The portal's standby: the secondary's PostgreSQL that stands by for a primary host (not the restore-test server).
  const standbys = new Set(sites.secondary.hosts.filter((h) => h.standbyFor !== undefined).map((h) => h.name));
  const drDb = state.services.find((s) => s.kind === "postgresql" && s.site === "secondary" && s.host !== undefined && standbys.has(s.host));
  const mariadb = service("mariadb", "primary");
  // The portal hosts: the primary's first (started by the lab), the secondary's activeOnly one (started by failover).
  const primaryApp = sites.primary.hosts.find((h) => h.role === "app" && h.services.includes("portal"));
  const secondaryApp = sites.secondary.hosts.find((h) => h.role === "app" && h.services.includes("portal"));
  if (!db || !drDb || !mariadb || !primaryApp || !secondaryApp) {
    throw new Error("the lab lacks a PostgreSQL at each site, a MariaDB at the primary or a portal host at each site");
  }
  const values: Record<string, string> = {
    "@REPO@": repoRoot,
    "@LAB@": dir,
    "@DB@": db.address,
    "@DRDB@": drDb.address,
    "@MARIADB@": mariadb.address,
    "@PRIMARY_APP@": primaryApp.ip,
    "@SECONDARY_APP@": secondaryApp.ip,
  };
  mkdirSync(paths.runbooks, { recursive: true });
  for (const sub of ["run", "logs", "dns"]) mkdirSync(join(dir, sub), { recursive: true });
  for (const name of ["drill", "failover", "failback", "recover"]) {
    const template = readFileSync(join(repoRoot, "lab", "runbooks", `${name}.yaml`), "utf8");
    const filled = Object.entries(values).reduce((text, [k, v]) => text.replaceAll(k, v), template);
    writeFileSync(join(paths.runbooks, `${name}.yaml`), filled);
  }
  // The lab's DNS (lab/dns-update.ts rewrites it): the service name at the primary until a failover moves it.
  const hostsFile = join(dir, "dns", "hosts");
  if (!existsSync(hostsFile)) writeFileSync(hostsFile, `# the lab's DNS: ADDRESS NAME\n${primaryApp.ip} portal.lab\n`);
}
