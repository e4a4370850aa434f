import type { SshEndpoint } from "../inventory/index.js";
import { DcctlError } from "../util/errors.js";
import type { Executor } from "./executor.js";
import { LocalExecutor } from "./local.js";
import { SshExecutor } from "./ssh.js";

/**
 * The one way dcctl reaches a host: this machine for the hosts the site's configuration names local, otherwise SSH
 * with the configured key (or agent) and host keys pinned in the configured known_hosts. Backup runs, restores, DR
 * steps, replication and the console's probes all come through here, so that one host is never reached under two
 * rules.
 */

/** What reaching hosts needs from the site's configuration (the backup config has these fields). */
export interface HostAccess {
  /** The configuration file, named in errors. */
  file: string;
  /** Hosts that are this machine: run there without SSH. */
  localHosts: readonly string[];
  ssh: { keyFile?: string; knownHosts?: string };
}

/** A host as the inventory describes it: its name and how to reach it. */
export interface HostRef {
  name: string;
  ssh: SshEndpoint;
}

/**
 * An executor for the host. SSH needs a known_hosts named in the configuration: there is no default file and no
 * "accept whatever key the host presents", so a configuration that pins nothing reaches no host over SSH.
 */
export function connectHost(host: HostRef, access: HostAccess): Executor {
  if (access.localHosts.includes(host.name)) return new LocalExecutor();
  if (!access.ssh.knownHosts) throw new DcctlError(`${access.file}: ssh.knownHosts is required to reach ${host.name} (host keys are pinned)`);
  return new SshExecutor({ host: host.ssh.host, port: host.ssh.port, user: host.ssh.user, privateKeyPath: access.ssh.keyFile, knownHostsPath: access.ssh.knownHosts });
}

/** Executors shared by host name for a whole run (one SSH connection per host), closed together at its end. */
export interface HostPool {
  (host: HostRef): Executor;
  closeAll(): Promise<void>;
}

export function hostPool(access: HostAccess): HostPool {
  const open = new Map<string, Executor>();
  const get = (host: HostRef): Executor => {
    let e = open.get(host.name);
    if (!e) open.set(host.name, (e = connectHost(host, access)));
    return e;
  };
  return Object.assign(get, { closeAll: async () => void (await Promise.allSettled([...open.values()].map((e) => e.close()))) });
}
