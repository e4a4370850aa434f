import * as pulumi from "@pulumi/pulumi";
import { tokens } from "./tokens.js";

/**
 * The typed side of the dcvsphere provider, used by the stacks. Its classes follow @pulumi/vsphere's names so that
 * a stack reads the same; they talk to the dcvsphere plugin (provider/), which drives vCenter through govc.
 */
export interface ConnectionArgs {
  url: pulumi.Input<string>;
  username: pulumi.Input<string>;
  /** Pass a secret (config.requireSecret): it stays encrypted in state and reaches govc only by environment. */
  password: pulumi.Input<string>;
  insecure?: pulumi.Input<boolean>;
}

interface Common {
  connection: pulumi.Input<ConnectionArgs>;
  datacenter: pulumi.Input<string>;
}

export interface FolderArgs extends Common {
  /** Path below the datacenter's VM folder, for example "primary/db". */
  path: pulumi.Input<string>;
}

export class Folder extends pulumi.CustomResource {
  declare readonly inventoryPath: pulumi.Output<string>;
  constructor(name: string, args: FolderArgs, opts?: pulumi.CustomResourceOptions) {
    super(tokens.Folder, name, { ...args, inventoryPath: undefined }, opts);
  }
}

export interface ResourcePoolArgs extends Common {
  cluster: pulumi.Input<string>;
  name: pulumi.Input<string>;
}

export class ResourcePool extends pulumi.CustomResource {
  declare readonly name: pulumi.Output<string>;
  declare readonly inventoryPath: pulumi.Output<string>;
  constructor(name: string, args: ResourcePoolArgs, opts?: pulumi.CustomResourceOptions) {
    super(tokens.ResourcePool, name, { ...args, inventoryPath: undefined }, opts);
  }
}

export interface DistributedPortGroupArgs extends Common {
  dvSwitch: pulumi.Input<string>;
  name: pulumi.Input<string>;
  vlanId: pulumi.Input<number>;
  /** The inventory's purpose of the network (management, database, dmz, ...), kept for the policy pack. */
  purpose?: pulumi.Input<string>;
}

export class DistributedPortGroup extends pulumi.CustomResource {
  declare readonly name: pulumi.Output<string>;
  declare readonly vlanId: pulumi.Output<number>;
  constructor(name: string, args: DistributedPortGroupArgs, opts?: pulumi.CustomResourceOptions) {
    super(tokens.DistributedPortGroup, name, { ...args, inventoryPath: undefined }, opts);
  }
}

export interface TagCategoryArgs {
  connection: pulumi.Input<ConnectionArgs>;
  name: pulumi.Input<string>;
  description?: pulumi.Input<string>;
  cardinality: pulumi.Input<"SINGLE" | "MULTIPLE">;
}

export class TagCategory extends pulumi.CustomResource {
  declare readonly name: pulumi.Output<string>;
  constructor(name: string, args: TagCategoryArgs, opts?: pulumi.CustomResourceOptions) {
    super(tokens.TagCategory, name, args, opts);
  }
}

export interface TagArgs {
  connection: pulumi.Input<ConnectionArgs>;
  /** The category's name (pass TagCategory.name so the tag depends on it). */
  category: pulumi.Input<string>;
  name: pulumi.Input<string>;
  description?: pulumi.Input<string>;
}

export class Tag extends pulumi.CustomResource {
  declare readonly name: pulumi.Output<string>;
  declare readonly category: pulumi.Output<string>;
  constructor(name: string, args: TagArgs, opts?: pulumi.CustomResourceOptions) {
    super(tokens.Tag, name, args, opts);
  }
}

export interface VirtualMachineArgs extends Common {
  name: pulumi.Input<string>;
  /** Folder path below the datacenter's VM folder. */
  folder: pulumi.Input<string>;
  cluster: pulumi.Input<string>;
  resourcePool: pulumi.Input<string>;
  datastore: pulumi.Input<string>;
  template: pulumi.Input<string>;
  network: pulumi.Input<string>;
  numCpus: pulumi.Input<number>;
  memoryMb: pulumi.Input<number>;
  disks: pulumi.Input<pulumi.Input<{ label: pulumi.Input<string>; sizeGb: pulumi.Input<number> }>[]>;
  customization: pulumi.Input<{
    hostName: pulumi.Input<string>;
    domain: pulumi.Input<string>;
    ipv4Address: pulumi.Input<string>;
    ipv4Netmask: pulumi.Input<string>;
    gateway: pulumi.Input<string>;
    dnsServers: pulumi.Input<pulumi.Input<string>[]>;
  }>;
  tags: pulumi.Input<pulumi.Input<{ category: pulumi.Input<string>; tag: pulumi.Input<string> }>[]>;
  annotation?: pulumi.Input<string>;
  powerOn?: pulumi.Input<boolean>;
}

export class VirtualMachine extends pulumi.CustomResource {
  declare readonly name: pulumi.Output<string>;
  declare readonly inventoryPath: pulumi.Output<string>;
  declare readonly moid: pulumi.Output<string>;
  declare readonly guestIpAddress: pulumi.Output<string>;
  declare readonly esxiHost: pulumi.Output<string>;
  constructor(name: string, args: VirtualMachineArgs, opts?: pulumi.CustomResourceOptions) {
    const outputs = { inventoryPath: undefined, moid: undefined, guestIpAddress: undefined, guestHostName: undefined, esxiHost: undefined, powerState: undefined };
    super(tokens.VirtualMachine, name, { ...args, ...outputs }, opts);
  }
}

export interface ComputeClusterVmAntiAffinityRuleArgs extends Common {
  cluster: pulumi.Input<string>;
  name: pulumi.Input<string>;
  /** VM names (pass VirtualMachine.name so the rule depends on the VMs). */
  virtualMachines: pulumi.Input<pulumi.Input<string>[]>;
}

export class ComputeClusterVmAntiAffinityRule extends pulumi.CustomResource {
  declare readonly name: pulumi.Output<string>;
  declare readonly virtualMachines: pulumi.Output<string[]>;
  constructor(name: string, args: ComputeClusterVmAntiAffinityRuleArgs, opts?: pulumi.CustomResourceOptions) {
    super(tokens.AntiAffinityRule, name, args, opts);
  }
}

export interface InventoryObject {
  path: string;
  ref: string;
}

/** Looks up an existing object (datacenter, cluster, datastore, template, switch) by inventory path; fails if absent. */
export function getInventoryObject(
  args: { connection: pulumi.Input<ConnectionArgs>; path: pulumi.Input<string> },
  opts?: pulumi.InvokeOutputOptions,
): pulumi.Output<InventoryObject> {
  return pulumi.runtime.invokeOutput(tokens.getInventoryObject, args, opts);
}
