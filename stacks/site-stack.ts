import * as pulumi from "@pulumi/pulumi";
import * as vsphere from "@pulumi/vsphere";
import { parseCidr } from "../inventory/ipv4.js";
import { ROLES, drillNetwork, isDmzName, type Host, type Network, type Role, type Site } from "../inventory/index.js";

import type { DrMode } from "./dr-mode.js";

export { DR_MODES, type DrMode } from "./dr-mode.js";

export interface SiteStackArgs {
  /** Only the secondary distinguishes modes; hosts with `activeOnly` exist only in `active`. */
  mode: DrMode;
  /**
   * The vSphere provider every resource and look-up goes through. Default: Pulumi's default provider, configured by
   * the stack's `vsphere:user`, `vsphere:password` (secret), `vsphere:vsphereServer` and `vsphere:allowUnverifiedSsl`.
   */
  provider?: vsphere.Provider;
  /**
   * VMs that `dcctl infra import` adopted (stack config `dcctl:adopted`): made by hand, not cloned by this stack. The
   * engine leaves their `clone`, `waitForGuestNetTimeout` and disk labels as the state has them (vSphere records none
   * of these), so adopting a server never plans its replacement; everything vSphere does record is still managed.
   */
  adopted?: ReadonlySet<string>;
}

/** The inputs of a VM that only its creation uses: an adopted VM's state has none of them. */
export const ADOPTED_VM_IGNORED = ["clone", "waitForGuestNetTimeout", "disks[*].label"] as const;

/** The component types of a site stack (URN type segments), for import. */
export const FOUNDATION_TYPE = "dcctl:site:Foundation";
export const ROLE_GROUP_TYPE = "dcctl:site:RoleGroup";

/**
 * The Pulumi names (the last part of the URN) the site stack gives its resources; `dcctl infra import` finds the same
 * objects under the same names, so keep the two in step through these.
 */
export const resourceNames = {
  foundation: (site: Site) => site.site,
  portGroup: (site: Site, network: string) => `${site.site}-pg-${network}`,
  siteFolder: (site: Site) => `${site.site}-folder`,
  roleFolder: (site: Site, role: Role) => `${site.site}-folder-${role}`,
  pool: (site: Site, tier: number) => `${site.site}-pool-tier-${tier}`,
  tagCategory: (site: Site, category: string) => `${site.site}-tagcat-${category}`,
  tag: (site: Site, category: string, value: string) => `${site.site}-tag-${category}-${value}`,
  roleGroup: (site: Site, role: Role) => `${site.site}-${role}`,
  antiAffinityRule: (site: Site, role: Role) => `${site.site}-${role}-anti-affinity`,
} as const;

/** The vSphere name of a tag category: `<site>-<category>`. */
export const tagCategoryName = (site: Site, category: string) => `${site.site}-${category}`;

/** Whether a role's VMs get an anti-affinity rule: the role needs spreading and has at least two of them. */
export const hasAntiAffinityRule = (role: Role, vmCount: number) => ANTI_AFFINITY_ROLES.includes(role) && vmCount >= 2;
/** The roles whose VMs must never share an ESXi host: losing one host must not take two of them. */
export const ANTI_AFFINITY_ROLES: readonly Role[] = ["db", "backup"];

/** Tag categories attached to every VM, and where each VM's tag value comes from. */
export const TAG_CATEGORIES = {
  role: (h: Host) => h.role,
  "dr-tier": (h: Host) => `tier-${h.drTier}`,
  "backup-policy": (h: Host) => h.backupPolicy,
  site: (_h: Host, site: Site) => site.site,
} as const;
export type TagCategoryName = keyof typeof TAG_CATEGORIES;

export interface HostOutput {
  name: string;
  role: Role;
  site: string;
  address: string;
}

/**
 * The port group of a network: `pg-<network>`. A DMZ network's port group always carries the word `dmz` in its name
 * (`pg-dmz`, or `pg-dmz-<network>` when the network's own name lacks it): the name is how the policy pack, and an
 * operator in the vSphere client, tell a DMZ port group (see isDmzName, and docs/engineer/stacks.md: "How a DMZ port
 * group is recognised").
 */
export function portGroupName(network: Pick<Network, "name" | "purpose">): string {
  if (network.purpose === "dmz" && !isDmzName(network.name)) return `pg-dmz-${network.name}`;
  return `pg-${network.name}`;
}
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

/** The prefix length of a cidr: the real provider takes clone.customize.networkInterfaces[].ipv4Netmask as a number. */
function prefixOf(cidr: string): number {
  const parsed = parseCidr(cidr);
  if (!parsed.ok) throw new Error(`bad cidr ${cidr}: ${parsed.reason}`);
  return parsed.net.prefix;
}

/** The tag categories' associable type: these tags go on virtual machines only. */
const VM_TYPE = "VirtualMachine";

/**
 * How long `pulumi up` waits for each new VM's guest to report a routable address (minutes; the real provider's
 * default, said out loud): customization has then run, and the backup engine can reach the host.
 */
export const WAIT_FOR_GUEST_NET_MINUTES = 5;

/** What the site's vCenter must already hold, looked up by name (a missing one fails the preview, named). */
export interface SiteLookups {
  datacenter: pulumi.Output<vsphere.GetDatacenterResult>;
  cluster: pulumi.Output<vsphere.GetComputeClusterResult>;
  dvSwitch: pulumi.Output<vsphere.GetDistributedVirtualSwitchResult>;
  datastores: Map<string, pulumi.Output<vsphere.GetDatastoreResult>>;
  templates: Map<string, pulumi.Output<vsphere.GetVirtualMachineResult>>;
}

/** Networks, folders, tags and resource pools of one site: everything its VMs are placed into. */
export class SiteFoundation extends pulumi.ComponentResource {
  readonly portGroups: Map<string, vsphere.DistributedPortGroup> = new Map();
  readonly roleFolders: Map<Role, vsphere.Folder> = new Map();
  readonly pools: Map<number, vsphere.ResourcePool> = new Map();
  readonly tags: Map<string, vsphere.Tag> = new Map();
  readonly tagCategories: vsphere.TagCategory[] = [];
  readonly siteFolder: vsphere.Folder;
  readonly lookups: SiteLookups;

  constructor(site: Site, args: SiteStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super(FOUNDATION_TYPE, resourceNames.foundation(site), {}, opts);
    const child: pulumi.CustomResourceOptions = { parent: this, provider: args.provider };
    const invoke: pulumi.InvokeOutputOptions = { parent: this, provider: args.provider };
    const vc = site.vcenter;

    const datacenter = vsphere.getDatacenterOutput({ name: vc.datacenter }, invoke);
    const datacenterId = datacenter.id;
    const byName = <T>(names: string[], get: (name: string) => pulumi.Output<T>) => new Map([...new Set(names)].map((n) => [n, get(n)] as const));
    this.lookups = {
      datacenter,
      cluster: vsphere.getComputeClusterOutput({ name: vc.cluster, datacenterId }, invoke),
      dvSwitch: vsphere.getDistributedVirtualSwitchOutput({ name: vc.dvSwitch, datacenterId }, invoke),
      datastores: byName([...vc.datastores, ...site.hosts.map((h) => h.datastore)], (name) => vsphere.getDatastoreOutput({ name, datacenterId }, invoke)),
      templates: byName(site.templates.map((t) => t.name), (name) => vsphere.getVirtualMachineOutput({ name, datacenterId }, invoke)),
    };

    for (const net of site.networks) {
      const name = portGroupName(net);
      this.portGroups.set(
        net.name,
        new vsphere.DistributedPortGroup(
          resourceNames.portGroup(site, net.name),
          {
            name,
            // The real provider's DVS look-up answers with the switch's UUID as its id.
            distributedVirtualSwitchUuid: this.lookups.dvSwitch.id,
            vlanId: net.vlan,
            description: `dcctl ${site.site} network ${net.name}: ${net.purpose}, VLAN ${net.vlan}, ${net.cidr}`,
          },
          child,
        ),
      );
    }

    const siteFolder = new vsphere.Folder(resourceNames.siteFolder(site), { path: site.site, type: "vm", datacenterId }, child);
    this.siteFolder = siteFolder;
    for (const role of ROLES) {
      this.roleFolders.set(role, new vsphere.Folder(resourceNames.roleFolder(site, role), { path: roleFolder(site, role), type: "vm", datacenterId }, { ...child, dependsOn: [siteFolder] }));
    }

    for (const tier of site.drTiers) {
      this.pools.set(
        tier.tier,
        new vsphere.ResourcePool(resourceNames.pool(site, tier.tier), { name: resourcePoolName(tier.tier), parentResourcePoolId: this.lookups.cluster.resourcePoolId }, child),
      );
    }

    for (const [category, valueOf] of Object.entries(TAG_CATEGORIES) as [TagCategoryName, (h: Host, s: Site) => string][]) {
      const cat = new vsphere.TagCategory(
        resourceNames.tagCategory(site, category),
        { name: tagCategoryName(site, category), cardinality: "SINGLE", associableTypes: [VM_TYPE], description: `dcctl ${category} of a VM` },
        child,
      );
      this.tagCategories.push(cat);
      for (const value of new Set(site.hosts.map((h) => valueOf(h, site)))) {
        this.tags.set(`${category}/${value}`, new vsphere.Tag(resourceNames.tag(site, category, value), { name: value, categoryId: cat.id }, child));
      }
    }
    this.registerOutputs({});
  }

  /** Every resource this component declared, for those who need to wait on or list them. */
  resources(): pulumi.CustomResource[] {
    return [...this.portGroups.values(), this.siteFolder, ...this.roleFolders.values(), ...this.pools.values(), ...this.tagCategories, ...this.tags.values()];
  }

  /** The IDs of the host's tags, one per category (what VirtualMachine.tags takes). */
  tagIdsFor(host: Host, site: Site): pulumi.Output<string>[] {
    return (Object.entries(TAG_CATEGORIES) as [TagCategoryName, (h: Host, s: Site) => string][]).map(([category, valueOf]) => {
      const tag = this.tags.get(`${category}/${valueOf(host, site)}`);
      if (!tag) throw new Error(`no tag ${category}/${valueOf(host, site)}`);
      return tag.id;
    });
  }
}

/** The VMs of one role at one site, and the anti-affinity rule that spreads them where the role needs it. */
export class RoleGroup extends pulumi.ComponentResource {
  readonly vms: vsphere.VirtualMachine[] = [];
  readonly antiAffinityRule?: vsphere.ComputeClusterVmAntiAffinityRule;

  constructor(site: Site, role: Role, hosts: Host[], foundation: SiteFoundation, args: SiteStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super(ROLE_GROUP_TYPE, resourceNames.roleGroup(site, role), {}, opts);
    const { lookups } = foundation;
    for (const host of hosts) {
      const network = site.networks.find((n) => n.name === host.network);
      const pg = foundation.portGroups.get(host.network);
      const pool = foundation.pools.get(host.drTier);
      const folder = foundation.roleFolders.get(role);
      const template = lookups.templates.get(host.template);
      const datastore = lookups.datastores.get(host.datastore);
      if (!network || !pg || !pool || !folder || !template || !datastore) throw new Error(`host ${host.name}: inventory not validated`);
      this.vms.push(
        new vsphere.VirtualMachine(
          host.name,
          {
            name: host.name,
            resourcePoolId: pool.id,
            datastoreId: datastore.id,
            folder: folder.path,
            numCpus: host.cpus,
            memory: host.memoryGb * 1024,
            guestId: template.guestId,
            networkInterfaces: [{ networkId: pg.id, adapterType: template.networkInterfaceTypes.apply((t) => t[0] ?? "vmxnet3") }],
            disks: host.disks.map((d) => ({ label: d.label, size: d.sizeGb, thinProvisioned: true })),
            clone: {
              templateUuid: template.uuid,
              customize: {
                linuxOptions: { hostName: host.name, domain: site.domain },
                networkInterfaces: [{ ipv4Address: host.ip, ipv4Netmask: prefixOf(network.cidr) }],
                ipv4Gateway: network.gateway,
                dnsServerLists: site.dnsServers,
              },
            },
            tags: foundation.tagIdsFor(host, site),
            annotation: `dcctl ${site.site} ${role}; backup ${host.backupPolicy}; DR tier ${host.drTier}`,
            waitForGuestNetTimeout: WAIT_FOR_GUEST_NET_MINUTES,
          },
          { parent: this, provider: args.provider, dependsOn: [folder], ...(args.adopted?.has(host.name) ? { ignoreChanges: [...ADOPTED_VM_IGNORED] } : {}) },
        ),
      );
    }
    if (hasAntiAffinityRule(role, this.vms.length)) {
      this.antiAffinityRule = new vsphere.ComputeClusterVmAntiAffinityRule(
        resourceNames.antiAffinityRule(site, role),
        { computeClusterId: lookups.cluster.id, name: resourceNames.antiAffinityRule(site, role), virtualMachineIds: this.vms.map((vm) => vm.id), enabled: true },
        { parent: this, provider: args.provider },
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
