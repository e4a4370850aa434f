/**
 * The site inventory as the loader hands it out: one `Site` per data centre, read from stacks/sites/<site>.yaml.
 * Field names are those of the YAML files; optional YAML fields arrive here with their defaults applied
 * (host.datastore, host.ssh, host.services, host.activeOnly, network.isolated, drTier.drillEveryDays).
 */

export const SITE_NAMES = ["primary", "secondary"] as const;
/** `primary`: the new data centre. `secondary`: the former one, keeping backups, standbys and the drill network. */
export type SiteName = (typeof SITE_NAMES)[number];

export const ROLES = ["db", "app", "backup", "digitization"] as const;
/** `backup` is the management-and-backup role. */
export type Role = (typeof ROLES)[number];

export const NETWORK_PURPOSES = ["management", "database", "application", "dmz", "backup", "drill"] as const;
export type NetworkPurpose = (typeof NETWORK_PURPOSES)[number];

export const TEMPLATE_OSES = ["linux", "windows"] as const;
export type TemplateOs = (typeof TEMPLATE_OSES)[number];

export interface VCenter {
  /** vSphere datacenter name. */
  datacenter: string;
  /** Compute cluster name. */
  cluster: string;
  esxiHosts: string[];
  /** The first one is the default datastore of a host. */
  datastores: string[];
  dvSwitch: string;
}

export interface Template {
  name: string;
  os: TemplateOs;
}

/** One VLAN (port group on the site's distributed switch). */
export interface Network {
  name: string;
  vlan: number;
  /** IPv4 network, e.g. 10.10.20.0/24. */
  cidr: string;
  gateway: string;
  purpose: NetworkPurpose;
  /** True for the drill network: nothing routes in or out. Default false. */
  isolated: boolean;
}

/** How often a tier's services must be drilled when the site file does not say (`drTiers[].drillEveryDays`). */
export const DEFAULT_DRILL_EVERY_DAYS = 90;

export interface DrTier {
  tier: number;
  rpoMinutes: number;
  rtoMinutes: number;
  /** Days between drills that prove the tier's RPO and RTO: past it, `dcctl dr readiness` calls a service overdue. Default 90. */
  drillEveryDays: number;
}

export interface Disk {
  label: string;
  sizeGb: number;
}

export interface SshEndpoint {
  /** The address to reach the host at: `ssh.host` from the YAML, otherwise the host's ip. */
  host: string;
  /** Default 22. */
  port: number;
  /** Default "dcctl". */
  user: string;
}

export interface Host {
  name: string;
  role: Role;
  cpus: number;
  memoryGb: number;
  disks: Disk[];
  /** The name of a network of the same site. */
  network: string;
  /** Static IPv4 address inside the network's cidr. */
  ip: string;
  /** The name of a template of the same site. */
  template: string;
  /** A datastore of the site; default the site's first datastore. */
  datastore: string;
  /** A backup policy name; the policies themselves are defined by the backup engine. */
  backupPolicy: string;
  /** A tier listed in the site's drTiers. */
  drTier: number;
  /** Free list: postgresql, mariadb, portal, lgsp, mail, ... Default []. */
  services: string[];
  ssh: SshEndpoint;
  /** True: the VM exists only when the secondary stack runs with dr:mode=active (failover). Default false. */
  activeOnly: boolean;
  /** Secondary only: the primary host this warm standby takes over. */
  standbyFor?: string;
}

export interface Site {
  site: SiteName;
  description: string;
  domain: string;
  dnsServers: string[];
  /** The IANA zone of the site's wall clock (inventory `timeZone:`), when the file names one. */
  timeZone?: string;
  vcenter: VCenter;
  templates: Template[];
  networks: Network[];
  drTiers: DrTier[];
  hosts: Host[];
}

/** Both sites, as `loadSites` returns them. */
export interface Sites {
  primary: Site;
  secondary: Site;
}

/** A host with the site it belongs to (the rows of `dcctl inventory show --json`). */
export type SiteHost = Host & { site: SiteName };
