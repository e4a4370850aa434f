import { PolicyPack, type ResourceValidationPolicy, type StackValidationPolicy } from "@pulumi/policy";
import { loadSites } from "../../inventory/index.js";
import { tokens } from "../../provider/tokens.js";
import { dbOnDmz, dbWithoutAntiAffinity, missingBackupTag, standbyShortfall, type PortGroupInputs, type RuleInputs, type VmInputs } from "./rules.js";

const everyVmBackedUp: ResourceValidationPolicy = {
  name: "vm-has-backup-policy-tag",
  description: "Every VM carries a backup-policy tag.",
  enforcementLevel: "mandatory",
  validateResource: (args, reportViolation) => {
    if (args.type !== tokens.VirtualMachine) return;
    const problem = missingBackupTag(args.props as VmInputs);
    if (problem) reportViolation(problem);
  },
};

function ofType<T>(resources: { type: string; props: Record<string, unknown> }[], type: string): T[] {
  return resources.filter((r) => r.type === type).map((r) => r.props as T);
}

const noDatabaseOnDmz: StackValidationPolicy = {
  name: "no-database-on-dmz",
  description: "No database VM is attached to a DMZ port group.",
  enforcementLevel: "mandatory",
  validateStack: (args, reportViolation) => {
    const problems = dbOnDmz(ofType<VmInputs>(args.resources, tokens.VirtualMachine), ofType<PortGroupInputs>(args.resources, tokens.DistributedPortGroup));
    problems.forEach((p) => reportViolation(p));
  },
};

const databasesSpread: StackValidationPolicy = {
  name: "database-anti-affinity",
  description: "Every database VM is in an anti-affinity rule.",
  enforcementLevel: "mandatory",
  validateStack: (args, reportViolation) => {
    const problems = dbWithoutAntiAffinity(ofType<VmInputs>(args.resources, tokens.VirtualMachine), ofType<RuleInputs>(args.resources, tokens.AntiAffinityRule));
    problems.forEach((p) => reportViolation(p));
  },
};

const standbyCapacity: StackValidationPolicy = {
  name: "secondary-standby-capacity",
  description: "The secondary has at least as many standby database servers as the primary has tier-1 databases.",
  enforcementLevel: "mandatory",
  validateStack: (args, reportViolation) => {
    const vms = ofType<VmInputs>(args.resources, tokens.VirtualMachine);
    if (!vms.some((vm) => vm.tags?.some((t) => t.category?.endsWith("-site") && t.tag === "secondary"))) return;
    const problem = standbyShortfall(vms, loadSites().primary);
    if (problem) reportViolation(problem);
  },
};

new PolicyPack("dcctl", {
  policies: [everyVmBackedUp, noDatabaseOnDmz, databasesSpread, standbyCapacity],
});
