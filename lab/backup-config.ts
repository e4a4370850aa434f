import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadSites } from "../inventory/index.js";
import { Restic, ResticRepoMissingError } from "../backup/restic/index.js";
import { repoRoot } from "../util/tools.js";
import { labPaths, type LabConfig } from "./paths.js";
import type { LabState } from "./state.js";

/** A secret file created once with a random value (mode 0600), then kept: repositories outlive lab restarts. */
function secretFile(path: string): string {
  if (!existsSync(path)) writeFileSync(path, randomBytes(18).toString("base64url") + "\n", { mode: 0o600 });
  return path;
}

/** The environment that points dcctl at the lab: `source <lab>/env` in a shell, or passed to child processes. */
export function labEnv(dir: string): Record<string, string> {
  const paths = labPaths(dir);
  return {
    DCCTL_SITES_DIR: paths.sites,
    DCCTL_REPOS_FILE: paths.reposFile,
    DCCTL_POLICIES_FILE: paths.policiesFile,
    DCCTL_STATE_DIR: paths.stateDir,
  };
}

/**
 * Writes what the backup and DR engines need to work on the lab: repository passwords, the databases' login files,
 * the lab's policies, the repositories file (one as seen from each site) and the env file; initialises both
 * repositories on first use. Idempotent.
 */
export async function writeLabBackupConfig(dir: string, state: LabState, config: LabConfig): Promise<void> {
  const paths = labPaths(dir);
  const secrets = join(dir, "secrets");
  mkdirSync(secrets, { recursive: true, mode: 0o700 });
  mkdirSync(paths.stateDir, { recursive: true });
  const sites = loadSites(paths.sites);

  const pgLines: string[] = [];
  const dbHosts: Record<string, { postgresql?: { host: string; port: number }; mariadb?: { host: string; port: number } }> = {};
  for (const s of state.services) {
    if (!s.host) continue;
    if (s.kind === "postgresql") {
      const pw = readFileSync(join(dir, "db", s.host, "superuser.password"), "utf8").trim();
      pgLines.push(`${s.address}:${s.port}:*:postgres:${pw}`);
      dbHosts[s.host] = { ...dbHosts[s.host], postgresql: { host: s.address, port: s.port } };
    }
    if (s.kind === "mariadb") dbHosts[s.host] = { ...dbHosts[s.host], mariadb: { host: s.address, port: s.port } };
  }
  const pgpass = join(secrets, "postgres.pgpass");
  writeFileSync(pgpass, pgLines.join("\n") + "\n", { mode: 0o600 });
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
  const common = {
    ssh: { keyFile: paths.clientKey, knownHosts: paths.knownHosts },
    stateDir: paths.stateDir,
    concurrency: 4,
    databases: {
      postgresql: { port: 5432, user: "postgres", passFile: pgpass, binDir: "/usr/lib/postgresql/15/bin" },
      mariadb: { port: 3306, defaultsFile: mycnf },
      hosts: dbHosts,
    },
  };
  const backupServer = (site: "primary" | "secondary") => sites[site].hosts.filter((h) => h.role === "backup").map((h) => h.name);
  writeFileSync(paths.reposFile, stringify({ site: "primary", repositories: repos, localHosts: backupServer("primary"), ...common }));
  // At the secondary its own repository is reached on disk, past the rest-server's --append-only: only it prunes.
  const ownSecondary = { url: join(dir, "repos", "secondary", "secondary"), passwordFile: pass.secondary };
  writeFileSync(paths.reposFileSecondary, stringify({ site: "secondary", repositories: { ...repos, secondary: ownSecondary }, localHosts: backupServer("secondary"), ...common }));

  for (const site of ["primary", "secondary"] as const) {
    const restic = new Restic(repos[site]);
    try {
      await restic.catConfig();
    } catch (e) {
      if (!(e instanceof ResticRepoMissingError)) throw e;
      await restic.init();
    }
  }
  writeFileSync(paths.envFile, Object.entries(labEnv(dir)).map(([k, v]) => `export ${k}=${v}`).join("\n") + "\n");
  writeLabRunbooks(dir, state);
}

/** The lab's runbooks, from the templates in lab/runbooks with this lab's folder and addresses filled in. */
function writeLabRunbooks(dir: string, state: LabState): void {
  const paths = labPaths(dir);
  const sites = loadSites(paths.sites);
  const service = (kind: string, site: "primary" | "secondary") => state.services.find((s) => s.kind === kind && s.site === site);
  const db = service("postgresql", "primary");
  const drDb = service("postgresql", "secondary");
  const mariadb = service("mariadb", "primary");
  const anySecondary = service("sshd", "secondary");
  // The portal hosts: the primary's first (started by the lab), the secondary's activeOnly one (started by failover).
  const primaryApp = sites.primary.hosts.find((h) => h.role === "app" && h.services.includes("portal"));
  const secondaryApp = sites.secondary.hosts.find((h) => h.role === "app" && h.services.includes("portal"));
  if (!db || !drDb || !mariadb || !anySecondary || !primaryApp || !secondaryApp) {
    throw new Error("the lab lacks a PostgreSQL at each site, a MariaDB at the primary or a portal host at each site");
  }
  // The drill network of the lab: its own address in the secondary's range, where nothing else listens.
  const drill = anySecondary.address.replace(/\.\d+$/, ".91");
  const values: Record<string, string> = {
    "@REPO@": repoRoot,
    "@LAB@": dir,
    "@DRILL@": drill,
    "@DB@": db.address,
    "@DRDB@": drDb.address,
    "@MARIADB@": mariadb.address,
    "@PRIMARY_APP@": primaryApp.ssh.host,
    "@SECONDARY_APP@": secondaryApp.ssh.host,
  };
  mkdirSync(paths.runbooks, { recursive: true });
  for (const sub of ["run", "logs", "dns"]) mkdirSync(join(dir, sub), { recursive: true });
  for (const name of ["drill", "failover", "failback"]) {
    const template = readFileSync(join(repoRoot, "lab", "runbooks", `${name}.yaml`), "utf8");
    const filled = Object.entries(values).reduce((text, [k, v]) => text.replaceAll(k, v), template);
    writeFileSync(join(paths.runbooks, `${name}.yaml`), filled);
  }
  // The lab's DNS (lab/dns-update.ts rewrites it): the service name at the primary until a failover moves it.
  const hostsFile = join(dir, "dns", "hosts");
  if (!existsSync(hostsFile)) writeFileSync(hostsFile, `# the lab's DNS: ADDRESS NAME\n${primaryApp.ssh.host} portal.lab\n`);
  linkPulumiState(dir, state);
}

/**
 * The DR engine's infra steps (cli/dr.ts) and `dcctl infra` keep their Pulumi state in $DCCTL_STATE_DIR/pulumi; the
 * lab applied its stacks with the state in <lab>/pulumi/<supervisor pid> (vcsim forgets everything when it stops, so
 * each run of the lab has its own). Point the former at the latter, so that a runbook's `infra` step finds the
 * lab's stacks with their vCenter address and credentials. A real folder there (not ours) is left alone.
 */
function linkPulumiState(dir: string, state: LabState): void {
  const paths = labPaths(dir);
  const link = join(paths.stateDir, "pulumi");
  const target = join(paths.pulumi, String(state.supervisorPid));
  mkdirSync(paths.stateDir, { recursive: true });
  let current: string | undefined;
  try {
    current = lstatSync(link).isSymbolicLink() ? readlinkSync(link) : "(not a link)";
  } catch {
    current = undefined;
  }
  if (current === target || current === "(not a link)") return;
  if (current !== undefined) rmSync(link, { force: true });
  symlinkSync(target, link);
}
