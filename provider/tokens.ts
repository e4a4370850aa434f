/** The type tokens of the dcvsphere provider: shared by the provider plugin and the SDK classes. */
export const tokens = {
  Folder: "dcvsphere:index:Folder",
  ResourcePool: "dcvsphere:index:ResourcePool",
  DistributedPortGroup: "dcvsphere:index:DistributedPortGroup",
  TagCategory: "dcvsphere:index:TagCategory",
  Tag: "dcvsphere:index:Tag",
  VirtualMachine: "dcvsphere:index:VirtualMachine",
  AntiAffinityRule: "dcvsphere:index:ComputeClusterVmAntiAffinityRule",
  getInventoryObject: "dcvsphere:index:getInventoryObject",
} as const;
