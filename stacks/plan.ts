import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import type { Site } from "../inventory/index.js";
import { declareSite, type DrMode } from "./site-stack.js";

/** One resource as the program declares it: what `dcctl infra plan` prints. */
export interface PlannedResource {
  type: string;
  name: string;
  /** The ID the mock gave it, in the real provider's form; other resources' inputs refer to it. */
  id: string;
  inputs: Record<string, unknown>;
}

/** A stable UUID from a name, so a plan reads the same on every run. */
function uuidOf(name: string): string {
  const h = createHash("sha256").update(name).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** A distributed switch's UUID as vCenter writes it: 16 hex pairs, a dash in the middle ("50 1d … 3f-7e 43 … 2f"). */
function dvsUuidOf(name: string): string {
  const pairs = createHash("sha256").update(`dvs/${name}`).digest("hex").slice(0, 32).match(/../g) ?? [];
  return `${pairs.slice(0, 8).join(" ")}-${pairs.slice(8).join(" ")}`;
}

/** A stable managed-object number from a name (vCenter's moref suffix). */
const moref = (prefix: string, name: string) => `${prefix}-${parseInt(createHash("sha256").update(name).digest("hex").slice(0, 6), 16) % 100000}`;

/**
 * The ID the real provider gives a new resource of each type: a managed object reference for inventory objects, the
 * tagging service's URNs for tags, the BIOS UUID for a VM (what the provider keys VMs by), `<cluster id>:<key>` for a
 * DRS rule.
 */
function mockId(type: string, name: string, inputs: Record<string, unknown>): string {
  switch (type) {
    case "vsphere:index/folder:Folder":
      return moref("group-v", name);
    case "vsphere:index/resourcePool:ResourcePool":
      return moref("resgroup", name);
    case "vsphere:index/distributedPortGroup:DistributedPortGroup":
      return moref("dvportgroup", name);
    case "vsphere:index/tagCategory:TagCategory":
      return `urn:vmomi:InventoryServiceCategory:${uuidOf(name)}:GLOBAL`;
    case "vsphere:index/tag:Tag":
      return `urn:vmomi:InventoryServiceTag:${uuidOf(name)}:GLOBAL`;
    case "vsphere:index/virtualMachine:VirtualMachine":
      return uuidOf(name);
    case "vsphere:index/computeClusterVmAntiAffinityRule:ComputeClusterVmAntiAffinityRule":
      return `${String(inputs.computeClusterId)}:${parseInt(uuidOf(name).slice(0, 4), 16)}`;
    default:
      return `${name}-id`;
  }
}

/** What the real provider's look-ups answer for an object of that name: the fields the stacks read. */
export function mockLookup(token: string, inputs: Record<string, unknown>): Record<string, unknown> {
  const name = String(inputs.name ?? "");
  const datacenterId = inputs.datacenterId;
  switch (token) {
    case "vsphere:index/getDatacenter:getDatacenter":
      return { id: moref("datacenter", name), name, virtualMachines: [] };
    case "vsphere:index/getComputeCluster:getComputeCluster":
      return { id: moref("domain-c", name), name, datacenterId, resourcePoolId: moref("resgroup", `${name}/Resources`) };
    case "vsphere:index/getDatastore:getDatastore":
      return { id: moref("datastore", name), name, datacenterId };
    case "vsphere:index/getDistributedVirtualSwitch:getDistributedVirtualSwitch":
      // The real look-up's id is the switch's UUID (what DistributedPortGroup.distributedVirtualSwitchUuid takes).
      return { id: dvsUuidOf(name), name, datacenterId, uplinks: ["uplink1", "uplink2"] };
    case "vsphere:index/getVirtualMachine:getVirtualMachine":
      return {
        id: uuidOf(`template/${name}`),
        uuid: uuidOf(`template/${name}`),
        moid: moref("vm", name),
        name,
        datacenterId,
        guestId: "debian12_64Guest",
        scsiType: "pvscsi",
        networkInterfaceTypes: ["vmxnet3"],
        disks: [{ label: "disk0", size: 20, thinProvisioned: true, eagerlyScrub: false, unitNumber: 0 }],
      };
    case "vsphere:index/getNetwork:getNetwork":
      return { id: moref("network", name), name, datacenterId, type: "Network" };
    default:
      throw new Error(`mock vCenter: no answer for ${token}`);
  }
}

/**
 * Mocks for Pulumi's runtime that answer as the real vSphere provider would: get* look-ups with realistic IDs and
 * fields, new resources with IDs of the real form. `record` sees every registered resource.
 */
export function vsphereMocks(record: (r: PlannedResource) => void = () => undefined): pulumi.runtime.Mocks {
  return {
    newResource: (args) => {
      const inputs = args.inputs as Record<string, unknown>;
      const id = mockId(args.type, args.name, inputs);
      record({ type: args.type, name: args.name, id, inputs: visible(inputs) });
      return { id, state: { ...inputs, ...(args.type === "vsphere:index/virtualMachine:VirtualMachine" ? { uuid: id, moid: moref("vm", args.name) } : {}) } };
    },
    call: (args) => mockLookup(args.token, args.inputs as Record<string, unknown>),
  };
}

function visible(inputs: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(inputs).filter(([, v]) => v !== undefined));
}

/**
 * Runs the site's program under Pulumi's mock runtime (no engine, no vCenter) and returns every resource it declares,
 * in declaration order. The look-ups answer as vCenter would for the objects the inventory names. Credentials are
 * provider configuration, which the program never reads, so none is needed and none can appear in the plan.
 */
export async function planSite(site: Site, mode: DrMode): Promise<PlannedResource[]> {
  const planned: PlannedResource[] = [];
  await pulumi.runtime.setMocks(vsphereMocks((r) => planned.push(r)), "dcctl", site.site, true);
  // The SDK stamps every promise it makes with `new Error().stack`, for a leak report that a mock run never prints:
  // at 3,300 VMs formatting those stacks was half the plan's CPU and most of its garbage. Without frames it is cheap;
  // our own errors keep their messages, which is all the CLI shows.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    const declared = declareSite(site, { mode });
    await new Promise<void>((resolve) => pulumi.all(declared.resources.map((r) => r.urn)).apply(() => resolve()));
    return planned;
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}
