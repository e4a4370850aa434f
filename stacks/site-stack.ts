import * as pulumi from "@pulumi/pulumi";
import { parseCidr, formatIpv4 } from "../inventory/ipv4.js";
import { ROLES, drillNetwork, type Host, type Role, type Site } from "../inventory/index.js";
import * as vsphere from "../provider/sdk.js";

import type { DrMode } from "./dr-mode.js";

export { DR_MODES, type DrMode } from "./dr-mode.js";

export interface SiteStackArgs {
  connection: vsphere.ConnectionArgs;
  /** Only the secondary distinguishes modes; hosts with `activeOnly` exist only in `active`. */
  mode: DrMode;
}

/** The roles whose VMs must never share an ESXi host: losing one host must not take two of them. */
export const ANTI_AFFINITY_ROLES: readonly Role[] = ["db", "backup"];

/** Tag categories attached to every VM, and where each VM's tag value comes from. */
export const TAG_CATEGORIES = {
  role: (h: Host) => h.role,
  "dr-tier": (h: Host) => `tier-${h.drTier}`,
  "backup-policy": (h: Host) => h.backupPolicy,
  site: (_h: Host, site: Site) => site.site,
} as const;
type TagCategoryName = keyof typeof TAG_CATEGORIES;

export interface HostOutput {
  name: string;
  role: Role;
  site: string;
  address: string;
}

export const portGroupName = (network: string) => `pg-${network}`;
export const resourcePoolName = (tier: number) => `tier-${tier}`;
export const roleFolder = (site: Site, role: Role) => `${site.site}/${role}`;

export function hostsInMode(site: Site, mode: DrMode): Host[] {
  const present = site.hosts.filter((h) => mode === "active" || !h.activeOnly);
  return mode === "drill" ? [...present, ...drillCopies(site)] : present;
}

/** The suffix that names a drill copy: qn-dr-db-01 → qn-dr-db-01-drill. */
export const DRILL_SUFFIX = "-drill";

/**
 * What a drill brings up: a copy of each standby database server and of each application host that exists only after
 * failover, on the isolated drill network, at the same last octet as the original (10.20.20.11 → 10.20.90.11), so
 * the drill can run the real services against restored data without any route to production.
 */
export function drillCopies(site: Site): Host[] {
  const net = drillNetwork(site);
  if (!net) return [];
  const base = net.cidr.split("/")[0]?.split(".").slice(0, 3).join(".") ?? "";
  return site.hosts
    .filter((h) => (h.role === "db" && h.standbyFor !== undefined) || (h.role === "app" && h.activeOnly))
    .map((h) => ({ ...h, name: `${h.name}${DRILL_SUFFIX}`, network: net.name, ip: `${base}.${h.ip.split(".")[3] ?? "0"}`, activeOnly: false, standbyFor: undefined }));
}

function netmaskOf(cidr: string): string {
  const parsed = parseCidr(cidr);
  if (!parsed.ok) throw new Error(`bad cidr ${cidr}: ${parsed.reason}`);
  const prefix = parsed.net.prefix;
  return formatIpv4(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
}

/** Networks, folders, tags and resource pools of one site: everything its VMs are placed into. */
export class SiteFoundation extends pulumi.ComponentResource {
  readonly portGroups: Map<string, vsphere.DistributedPortGroup> = new Map();
  readonly roleFolders: Map<Role, vsphere.Folder> = new Map();
  readonly pools: Map<number, vsphere.ResourcePool> = new Map();
  readonly tags: Map<string, vsphere.Tag> = new Map();
  readonly tagCategories: vsphere.TagCategory[] = [];
  readonly siteFolder: vsphere.Folder;
  readonly lookups: pulumi.Output<vsphere.InventoryObject[]>;

  constructor(site: Site, args: SiteStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dcctl:site:Foundation", site.site, {}, opts);
    const child = { parent: this };
    const { connection } = args;
    const dc = site.vcenter.datacenter;
    const common = { connection, datacenter: dc };

    // Fail the preview early, naming the object, when vCenter lacks something the inventory relies on.
    const paths = [
      `/${dc}`,
      `/${dc}/host/${site.vcenter.cluster}`,
      `/${dc}/network/${site.vcenter.dvSwitch}`,
      ...site.vcenter.datastores.map((d) => `/${dc}/datastore/${d}`),
      ...site.templates.map((t) => `/${dc}/vm/${t.name}`),
    ];
    this.lookups = pulumi.all(paths.map((path) => vsphere.getInventoryObject({ connection, path }, child)));

    for (const net of site.networks) {
      const name = portGroupName(net.name);
      this.portGroups.set(net.name, new vsphere.DistributedPortGroup(`${site.site}-${name}`, { ...common, dvSwitch: site.vcenter.dvSwitch, name, vlanId: net.vlan, purpose: net.purpose }, child));
    }

    const siteFolder = new vsphere.Folder(`${site.site}-folder`, { ...common, path: site.site }, child);
    this.siteFolder = siteFolder;
    for (const role of ROLES) {
      this.roleFolders.set(role, new vsphere.Folder(`${site.site}-folder-${role}`, { ...common, path: roleFolder(site, role) }, { parent: this, dependsOn: [siteFolder] }));
    }

    for (const tier of site.drTiers) {
      this.pools.set(tier.tier, new vsphere.ResourcePool(`${site.site}-pool-tier-${tier.tier}`, { ...common, cluster: site.vcenter.cluster, name: resourcePoolName(tier.tier) }, child));
    }

    for (const [category, valueOf] of Object.entries(TAG_CATEGORIES) as [TagCategoryName, (h: Host, s: Site) => string][]) {
      const cat = new vsphere.TagCategory(`${site.site}-tagcat-${category}`, { connection, name: `${site.site}-${category}`, cardinality: "SINGLE", description: `dcctl ${category} of a VM` }, child);
      this.tagCategories.push(cat);
      for (const value of new Set(site.hosts.map((h) => valueOf(h, site)))) {
        this.tags.set(`${category}/${value}`, new vsphere.Tag(`${site.site}-tag-${category}-${value}`, { connection, category: cat.name, name: value }, child));
      }
    }
    this.registerOutputs({});
  }

  /** Every resource this component declared, for those who need to wait on or list them. */
  resources(): pulumi.CustomResource[] {
    return [...this.portGroups.values(), this.siteFolder, ...this.roleFolders.values(), ...this.pools.values(), ...this.tagCategories, ...this.tags.values()];
  }

  tagRefsFor(host: Host, site: Site): { category: pulumi.Output<string>; tag: pulumi.Output<string> }[] {
    return (Object.entries(TAG_CATEGORIES) as [TagCategoryName, (h: Host, s: Site) => string][]).map(([category, valueOf]) => {
      const tag = this.tags.get(`${category}/${valueOf(host, site)}`);
      if (!tag) throw new Error(`no tag ${category}/${valueOf(host, site)}`);
      return { category: tag.category, tag: tag.name };
    });
  }
}

/** The VMs of one role at one site, and the anti-affinity rule that spreads them where the role needs it. */
export class RoleGroup extends pulumi.ComponentResource {
  readonly vms: vsphere.VirtualMachine[] = [];
  readonly antiAffinityRule?: vsphere.ComputeClusterVmAntiAffinityRule;

  constructor(site: Site, role: Role, hosts: Host[], foundation: SiteFoundation, args: SiteStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("dcctl:site:RoleGroup", `${site.site}-${role}`, {}, opts);
    const dc = site.vcenter.datacenter;
    for (const host of hosts) {
      const network = site.networks.find((n) => n.name === host.network);
      const pg = foundation.portGroups.get(host.network);
      const pool = foundation.pools.get(host.drTier);
      const folder = foundation.roleFolders.get(role);
      if (!network || !pg || !pool || !folder) throw new Error(`host ${host.name}: inventory not validated`);
      this.vms.push(
        new vsphere.VirtualMachine(
          host.name,
          {
            connection: args.connection,
            datacenter: dc,
            name: host.name,
            folder: roleFolder(site, role),
            cluster: site.vcenter.cluster,
            resourcePool: pool.name,
            datastore: host.datastore,
            // Through the lookup, so that a missing template fails with its name before any clone starts.
            // (unsecret: the look-up carries the connection's secret, which the template's name does not need.)
            template: pulumi.unsecret(foundation.lookups.apply(() => host.template)),
            network: pg.name,
            numCpus: host.cpus,
            memoryMb: host.memoryGb * 1024,
            disks: host.disks.map((d) => ({ label: d.label, sizeGb: d.sizeGb })),
            customization: {
              hostName: host.name,
              domain: site.domain,
              ipv4Address: host.ip,
              ipv4Netmask: netmaskOf(network.cidr),
              gateway: network.gateway,
              dnsServers: site.dnsServers,
            },
            tags: foundation.tagRefsFor(host, site),
            annotation: `dcctl ${site.site} ${role}; backup ${host.backupPolicy}; DR tier ${host.drTier}`,
          },
          { parent: this, dependsOn: [folder] },
        ),
      );
    }
    if (ANTI_AFFINITY_ROLES.includes(role) && this.vms.length >= 2) {
      this.antiAffinityRule = new vsphere.ComputeClusterVmAntiAffinityRule(
        `${site.site}-${role}-anti-affinity`,
        { connection: args.connection, datacenter: dc, cluster: site.vcenter.cluster, name: `${site.site}-${role}-anti-affinity`, virtualMachines: this.vms.map((vm) => vm.name) },
        { parent: this },
      );
    }
    this.registerOutputs({});
  }
}

/**
 * Declares one site from its validated inventory: the foundation, then one component per role.
 * Pure apart from the resources it registers, so tests call it directly under the mock runtime.
 */
export interface DeclaredSite {
  foundation: SiteFoundation;
  groups: RoleGroup[];
  hosts: HostOutput[];
  /** Every custom resource declared, in declaration order. */
  resources: pulumi.CustomResource[];
}

export function declareSite(site: Site, args: SiteStackArgs): DeclaredSite {
  const foundation = new SiteFoundation(site, args);
  const present = hostsInMode(site, args.mode);
  const groups = ROLES.map((role) => new RoleGroup(site, role, present.filter((h) => h.role === role), foundation, args));
  const hosts = present.map((h) => ({ name: h.name, role: h.role, site: site.site, address: h.ip }));
  const resources = [...foundation.resources(), ...groups.flatMap((g) => [...g.vms, ...(g.antiAffinityRule ? [g.antiAffinityRule] : [])])];
  return { foundation, groups, hosts, resources };
}
