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

type Resources = { type: string; props: Record<string, unknown> }[];

function ofType<T>(resources: Resources, type: string): T[] {
  return resources.filter((r) => r.type === type).map((r) => r.props as T);
}

/** A mandatory policy over the whole stack: `check` returns one line per violation. */
function stackPolicy(name: string, description: string, check: (resources: Resources) => string[]): StackValidationPolicy {
  return {
    name,
    description,
    enforcementLevel: "mandatory",
    validateStack: (args, reportViolation) => check(args.resources).forEach((p) => reportViolation(p)),
  };
}

const noDatabaseOnDmz = stackPolicy("no-database-on-dmz", "No database VM is attached to a DMZ port group.", (rs) =>
  dbOnDmz(ofType<VmInputs>(rs, tokens.VirtualMachine), ofType<PortGroupInputs>(rs, tokens.DistributedPortGroup)),
);

const databasesSpread = stackPolicy("database-anti-affinity", "Every database VM is in an anti-affinity rule.", (rs) =>
  dbWithoutAntiAffinity(ofType<VmInputs>(rs, tokens.VirtualMachine), ofType<RuleInputs>(rs, tokens.AntiAffinityRule)),
);

const standbyCapacity = stackPolicy(
  "secondary-standby-capacity",
  "The secondary has at least as many standby database servers as the primary has tier-1 databases.",
  (rs) => {
    const vms = ofType<VmInputs>(rs, tokens.VirtualMachine);
    if (!vms.some((vm) => vm.tags?.some((t) => t.category?.endsWith("-site") && t.tag === "secondary"))) return [];
    const problem = standbyShortfall(vms, loadSites().primary);
    return problem ? [problem] : [];
  },
);

new PolicyPack("dcctl", {
  policies: [everyVmBackedUp, noDatabaseOnDmz, databasesSpread, standbyCapacity],
});
