import { UnknownValueError, type PolicyResource, type StackValidationPolicy } from "@pulumi/policy";
import * as vsphere from "@pulumi/vsphere";
import { loadSites } from "../../inventory/index.js";
import { dbOnDmz, dbWithoutAntiAffinity, isSecondary, missingBackupTag, standbyShortfall, type PortGroupView, type RuleView, type VmView } from "./rules.js";

/**
 * The pack's policies over the real provider's resources (`vsphere:index/virtualMachine:VirtualMachine` …, matched
 * through @pulumi/vsphere's own classes, so a token cannot drift from the SDK the stacks use).
 *
 * The real shapes link resources by ID, and an ID is unknown in the preview of anything not yet created: reading one
 * makes @pulumi/policy skip the policy ("can't run … during preview", advisory), which would let the pack pass
 * silently. So references are followed through the engine's property dependencies (a VM's `tags` depend on its Tag
 * resources, `networkInterfaces` on its port groups, a rule's `virtualMachineIds` on its VMs), known in every preview,
 * and only plain inputs (names) are read. A reference the stack does not declare (a literal tag ID, an existing
 * network) resolves to nothing, which fails closed: a VM whose tag cannot be seen has no backup-policy tag.
 */

type ResourceClass = Parameters<PolicyResource["isType"]>[0];

/** A plain string input, or undefined when it is absent or unknown in this preview. */
function knownString(r: PolicyResource, key: string): string | undefined {
  try {
    const v: unknown = r.props[key];
    return typeof v === "string" ? v : undefined;
  } catch (e) {
    if (e instanceof UnknownValueError) return undefined;
    throw e;
  }
}

/** The vSphere name of a resource: its `name` input, else its Pulumi name (which the provider names it by). */
const nameOf = (r: PolicyResource) => knownString(r, "name") ?? r.name;

/** The resources of a class that a property of `r` refers to. */
const referenced = (r: PolicyResource, key: string, cls: ResourceClass) => (r.propertyDependencies[key] ?? []).filter((d) => d.isType(cls));

export function vmView(vm: PolicyResource): VmView {
  const tags = referenced(vm, "tags", vsphere.Tag).flatMap((tag) =>
    referenced(tag, "categoryId", vsphere.TagCategory).map((category) => ({ category: nameOf(category), tag: nameOf(tag) })),
  );
  return { name: nameOf(vm), tags, networks: referenced(vm, "networkInterfaces", vsphere.DistributedPortGroup).map(nameOf) };
}

export function ruleView(rule: PolicyResource): RuleView {
  return { name: nameOf(rule), virtualMachines: referenced(rule, "virtualMachineIds", vsphere.VirtualMachine).map(nameOf) };
}

const ofClass = (resources: PolicyResource[], cls: ResourceClass) => resources.filter((r) => r.isType(cls));
const vmsOf = (rs: PolicyResource[]) => ofClass(rs, vsphere.VirtualMachine).map((vm) => ({ vm, view: vmView(vm) }));

/** A mandatory policy over the whole stack: `check` returns each violation, with the URN of the resource at fault. */
function stackPolicy(name: string, description: string, check: (resources: PolicyResource[]) => { message: string; urn?: string }[]): StackValidationPolicy {
  return {
    name,
    description,
    enforcementLevel: "mandatory",
    validateStack: (args, reportViolation) => check(args.resources).forEach((v) => reportViolation(v.message, v.urn)),
  };
}

const everyVmBackedUp = stackPolicy("vm-has-backup-policy-tag", "Every VM carries a backup-policy tag.", (rs) =>
  vmsOf(rs).flatMap(({ vm, view }) => {
    const problem = missingBackupTag(view);
    return problem ? [{ message: problem, urn: vm.urn }] : [];
  }),
);

const noDatabaseOnDmz = stackPolicy("no-database-on-dmz", "No database VM is attached to a DMZ port group (a port group named with the word dmz).", (rs) => {
  const portGroups: PortGroupView[] = ofClass(rs, vsphere.DistributedPortGroup).map((pg) => ({ name: nameOf(pg) }));
  return dbOnDmz(vmsOf(rs).map((v) => v.view), portGroups).map((message) => ({ message }));
});

const databasesSpread = stackPolicy("database-anti-affinity", "Every database VM is in an anti-affinity rule.", (rs) =>
  dbWithoutAntiAffinity(vmsOf(rs).map((v) => v.view), ofClass(rs, vsphere.ComputeClusterVmAntiAffinityRule).map(ruleView)).map((message) => ({ message })),
);

const standbyCapacity = stackPolicy(
  "secondary-standby-capacity",
  "The secondary has at least as many standby database servers as the primary has tier-1 databases.",
  (rs) => {
    const vms = vmsOf(rs).map((v) => v.view);
    if (!isSecondary(vms)) return [];
    const problem = standbyShortfall(vms, loadSites().primary);
    return problem ? [{ message: problem }] : [];
  },
);

/** Every policy of the pack, in the order the engine reports them. */
export const policies: StackValidationPolicy[] = [everyVmBackedUp, noDatabaseOnDmz, databasesSpread, standbyCapacity];
