import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { SiteName } from "../inventory/index.js";

/** What `dcctl lab up` hands the supervisor (lab-config.json): the data set and the portal's database password. */
export interface LabConfig {
  sizeMb: number;
  seed: number;
  portalPassword: string;
  /** The password of the lab's `dcctl` MariaDB account (used by backups and restores). */
  dbPassword: string;
  /**
   * The PostgreSQL superuser's password, the same on every server of the lab: a standby is a copy of its primary,
   * roles included, so after `replication setup` it has the primary's anyway. Absent in labs made before it existed.
   */
  pgPassword?: string;
  /** The WAN link's cap between the sites, Mbit/s each way. */
  wanMbit: number;
  /** The primary's portal files a dossier this often (0: never). */
  writeEveryMs: number;
}

/** The lab's lab-config.json, or undefined before the first `lab up`. */
export function readLabConfig(dir: string): LabConfig | undefined {
  const file = labPaths(dir).config;
  return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as LabConfig) : undefined;
}

/** Where each part of the lab lives inside its folder. */
export function labPaths(dir: string) {
  return {
    config: join(dir, "lab-config.json"),
    /** The shell settings that make `dcctl lab …` find this lab from any shell (`source <lab>/env`). */
    envFile: join(dir, "env"),
    log: join(dir, "supervisor.log"),
    /** The supervisor's control socket: dbctl asks it there to stop or start a host's PostgreSQL (lab/server-control.ts). */
    control: join(dir, "supervisor.sock"),
    sites: join(dir, "sites"),
    /** The lab's own key (whoever runs the lab, and its tests): a login on every host. */
    clientKey: join(dir, "ssh", "id_ed25519"),
    /**
     * Each site's control plane's key (its repositories file's ssh.keyFile): a login on its own hosts and the other
     * site's database and application hosts (failover, failback), on the other site's management host only its records.
     */
    siteKey: (site: SiteName) => join(dir, "ssh", `${site}_ed25519`),
    knownHosts: join(dir, "ssh", "known_hosts"),
    portalPgpass: join(dir, "secrets", "portal.pgpass"),
    /** The replication account's password (dcctl replication setup), on the DR runner. */
    replicationPass: join(dir, "secrets", "replication.pass"),
    pulumi: join(dir, "pulumi"),
    policiesFile: join(dir, "policies.yaml"),
    runbooks: join(dir, "runbooks"),
    /** The last dossier the primary's portal wrote: `{"code","at"}` (see lab/portal/server.ts). */
    lastWritten: join(dir, "run", "portal-last-written.json"),
    /** Each site's control plane, as its management host keeps it: its repositories file, its state (see docs/operator/deployment.md). */
    reposFile: (site: SiteName) => join(dir, "control", site, "repositories.yaml"),
    stateDir: (site: SiteName) => join(dir, "control", site, "state"),
    /** Where each lab run's stacks are applied from (vcsim forgets everything when it stops: one per supervisor). */
    pulumiOf: (supervisorPid: number, site: SiteName) => join(dir, "pulumi", String(supervisorPid), site),
  };
}
