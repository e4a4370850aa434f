import type { Site } from "../../inventory/index.js";

/** The subset of a VM's inputs the rules read, as the engine hands them to the policy pack. */
export interface VmInputs {
  name?: string;
  network?: string;
  tags?: { category?: string; tag?: string }[];
}

export interface PortGroupInputs {
  name?: string;
  purpose?: string;
}

export interface RuleInputs {
  virtualMachines?: string[];
}

const tagValue = (vm: VmInputs, category: string) => vm.tags?.find((t) => t.category?.endsWith(`-${category}`))?.tag;

export function missingBackupTag(vm: VmInputs): string | undefined {
  return tagValue(vm, "backup-policy") ? undefined : `VM ${vm.name ?? "?"} has no backup-policy tag: every server must be backed up`;
}

export function dbOnDmz(vms: VmInputs[], portGroups: PortGroupInputs[]): string[] {
  const dmz = new Set(portGroups.filter((pg) => pg.purpose === "dmz").map((pg) => pg.name));
  return vms.filter((vm) => tagValue(vm, "role") === "db" && vm.network !== undefined && dmz.has(vm.network)).map((vm) => `database VM ${vm.name ?? "?"} is on the DMZ network ${vm.network ?? ""}`);
}

export function dbWithoutAntiAffinity(vms: VmInputs[], rules: RuleInputs[]): string[] {
  const spread = new Set(rules.flatMap((r) => r.virtualMachines ?? []));
  return vms.filter((vm) => tagValue(vm, "role") === "db" && !spread.has(vm.name ?? "")).map((vm) => `database VM ${vm.name ?? "?"} is in no anti-affinity rule`);
}

/** The secondary must be able to take over every tier-1 database of the primary. */
export function standbyShortfall(vms: VmInputs[], primary: Site): string | undefined {
  const needed = primary.hosts.filter((h) => h.role === "db" && h.drTier === 1).length;
  const standbys = vms.filter((vm) => tagValue(vm, "role") === "db").length;
  return standbys >= needed ? undefined : `the secondary has ${standbys} standby database VMs but the primary has ${needed} tier-1 database servers`;
}
