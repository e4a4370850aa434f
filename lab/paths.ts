import { join } from "node:path";

/** What `dcctl lab up` hands the supervisor (lab-config.json): the data set and the portal's database password. */
export interface LabConfig {
  sizeMb: number;
  seed: number;
  portalPassword: string;
  /** The password of the lab's `dcctl` MariaDB account (used by backups and restores). */
  dbPassword: string;
}

/** Where each part of the lab lives inside its folder. */
export function labPaths(dir: string) {
  return {
    config: join(dir, "lab-config.json"),
    log: join(dir, "supervisor.log"),
    sites: join(dir, "sites"),
    clientKey: join(dir, "ssh", "id_ed25519"),
    knownHosts: join(dir, "ssh", "known_hosts"),
    portalPgpass: join(dir, "secrets", "portal.pgpass"),
    pulumi: join(dir, "pulumi"),
    reposFile: join(dir, "repositories.yaml"),
    reposFileSecondary: join(dir, "repositories-secondary.yaml"),
    policiesFile: join(dir, "policies.yaml"),
    stateDir: join(dir, "state"),
    runbooks: join(dir, "runbooks"),
    envFile: join(dir, "env"),
  };
}
