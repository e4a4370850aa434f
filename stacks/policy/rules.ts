import { isDmzName, type Site } from "../../inventory/index.js";

/**
 * The pack's rules over a site as the policy pack sees it, references already resolved (see index.ts): a VM's tags as
 * category and tag names, its networks as port group names, a rule's members as VM names. The real provider links
 * resources by ID (VirtualMachine.tags holds tag IDs, networkInterfaces[].networkId a port group's ID,
 * virtualMachineIds the VMs' IDs), and those IDs are unknown in a preview of anything not yet created; names are
 * plain inputs, known in every preview.
 */
export interface VmView {
  name: string;
  tags: { category: string; tag: string }[];
  /** The port groups its network interfaces are on, by name. */
  networks: string[];
}

export interface PortGroupView {
  name: string;
}

export interface RuleView {
  name: string;
  /** The VMs the rule keeps apart, by name. */
  virtualMachines: string[];
}

/** A DMZ port group is one whose name has the word `dmz` in it (inventory/query.ts isDmzName). */
export { isDmzName };

const tagValue = (vm: VmView, category: string) => vm.tags.find((t) => t.category.endsWith(`-${category}`))?.tag;

export function missingBackupTag(vm: VmView): string | undefined {
  return tagValue(vm, "backup-policy") ? undefined : `VM ${vm.name} has no backup-policy tag: every server must be backed up`;
}

export function dbOnDmz(vms: VmView[], portGroups: PortGroupView[]): string[] {
  const dmz = new Set(portGroups.map((pg) => pg.name).filter(isDmzName));
  return vms.flatMap((vm) => (tagValue(vm, "role") === "db" ? vm.networks.filter((n) => dmz.has(n)).map((n) => `database VM ${vm.name} is on the DMZ network ${n}`) : []));
}

export function dbWithoutAntiAffinity(vms: VmView[], rules: RuleView[]): string[] {
  const spread = new Set(rules.flatMap((r) => r.virtualMachines));
  return vms.filter((vm) => tagValue(vm, "role") === "db" && !spread.has(vm.name)).map((vm) => `database VM ${vm.name} is in no anti-affinity rule`);
}

/** Whether the VMs are the secondary's: their site tag says so. */
export function isSecondary(vms: VmView[]): boolean {
  return vms.some((vm) => tagValue(vm, "site") === "secondary");
}

/** The secondary must be able to take over every tier-1 database of the primary. */
export function standbyShortfall(vms: VmView[], primary: Site): string | undefined {
  const needed = primary.hosts.filter((h) => h.role === "db" && h.drTier === 1).length;
  const standbys = vms.filter((vm) => tagValue(vm, "role") === "db").length;
  return standbys >= needed ? undefined : `the secondary has ${standbys} standby database VMs but the primary has ${needed} tier-1 database servers`;
}
