import { describe, expect, it } from "vitest";
import { loadSites, type Site } from "../../inventory/index.js";
import { mockLookup, planSite, type PlannedResource } from "../../stacks/plan.js";
import { declareSite } from "../../stacks/site-stack.js";
import { recordVsphere, settled } from "../helpers/vsphere-mocks.js";

// The site stacks under Pulumi's mock runtime, written against the real @pulumi/vsphere: the mocks (stacks/plan.ts,
// test/helpers/vsphere-mocks.ts) answer the get* look-ups as vCenter would and give new resources IDs of the real
// provider's form, and resources refer to each other by those IDs, as they will against vCenter.

const sites = loadSites();
const T = {
  vm: "vsphere:index/virtualMachine:VirtualMachine",
  folder: "vsphere:index/folder:Folder",
  pool: "vsphere:index/resourcePool:ResourcePool",
  pg: "vsphere:index/distributedPortGroup:DistributedPortGroup",
  category: "vsphere:index/tagCategory:TagCategory",
  tag: "vsphere:index/tag:Tag",
  rule: "vsphere:index/computeClusterVmAntiAffinityRule:ComputeClusterVmAntiAffinityRule",
};

/** A plan with its references followed by ID. */
function resolver(planned: PlannedResource[]) {
  const byId = new Map(planned.map((r) => [r.id, r]));
  const get = (id: unknown) => {
    const r = byId.get(String(id));
    if (!r) throw new Error(`no resource with id ${String(id)}`);
    return r;
  };
  const tagsOf = (vm: PlannedResource) =>
    (vm.inputs.tags as string[]).map((id) => {
      const tag = get(id);
      return { category: String(get(tag.inputs.categoryId).inputs.name), tag: String(tag.inputs.name) };
    });
  const tagOf = (vm: PlannedResource, category: string) => tagsOf(vm).find((t) => t.category.endsWith(`-${category}`))?.tag;
  return { get, tagsOf, tagOf, ofType: (type: string) => planned.filter((r) => r.type === type) };
}

type Vm = {
  name: string;
  resourcePoolId: string;
  datastoreId: string;
  folder: string;
  numCpus: number;
  memory: number;
  guestId: string;
  networkInterfaces: { networkId: string; adapterType: string }[];
  disks: { label: string; size: number; thinProvisioned: boolean }[];
  clone: {
    templateUuid: string;
    customize: {
      linuxOptions: { hostName: string; domain: string };
      networkInterfaces: { ipv4Address: string; ipv4Netmask: number }[];
      ipv4Gateway: string;
      dnsServerLists: string[];
    };
  };
  waitForGuestNetTimeout: number;
};
const vmInputs = (vm: PlannedResource) => vm.inputs as unknown as Vm;
const lookup = (token: string, name: string) => mockLookup(`vsphere:index/${token}:${token}`, { name });

describe("site stacks under Pulumi's mock runtime (the real @pulumi/vsphere shapes)", () => {
  it("declares the primary's 6 database, 20 application, 5 backup and 2 digitisation VMs", async () => {
    const r = resolver(await planSite(sites.primary, "standby"));
    const vms = r.ofType(T.vm);
    const count = (role: string) => vms.filter((vm) => r.tagOf(vm, "role") === role).length;
    expect(vms).toHaveLength(33);
    expect([count("db"), count("app"), count("backup"), count("digitization")]).toEqual([6, 20, 5, 2]);
  });

  it("tags every VM by tag ID with role, DR tier, backup policy and site, and places and clones it by the inventory", async () => {
    const site = sites.primary;
    const r = resolver(await planSite(site, "standby"));
    const vms = r.ofType(T.vm);
    expect(vms.length).toBeGreaterThan(0);
    for (const vm of vms) {
      const host = site.hosts.find((h) => h.name === vm.inputs.name);
      expect(host, String(vm.inputs.name)).toBeDefined();
      if (!host) continue;
      const network = site.networks.find((n) => n.name === host.network);
      const v = vmInputs(vm);
      expect(v.resourcePoolId).toMatch(/^resgroup-\d+$/);
      expect(v.clone.templateUuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(r.tagsOf(vm).sort((a, b) => a.category.localeCompare(b.category))).toEqual([
        { category: "primary-backup-policy", tag: host.backupPolicy },
        { category: "primary-dr-tier", tag: `tier-${host.drTier}` },
        { category: "primary-role", tag: host.role },
        { category: "primary-site", tag: "primary" },
      ]);
      expect(r.get(v.resourcePoolId).inputs.name).toBe(`tier-${host.drTier}`);
      expect(v.networkInterfaces).toEqual([{ networkId: expect.stringMatching(/^dvportgroup-\d+$/) as unknown, adapterType: "vmxnet3" }]);
      expect(r.get(v.networkInterfaces[0]?.networkId).inputs.name).toBe(`pg-${host.network}`);
      expect(v.datastoreId).toBe(lookup("getDatastore", host.datastore).id);
      expect(v.folder).toBe(`primary/${host.role}`);
      expect([v.numCpus, v.memory]).toEqual([host.cpus, host.memoryGb * 1024]);
      expect(v.disks).toEqual(host.disks.map((d) => ({ label: d.label, size: d.sizeGb, thinProvisioned: true })));
      const template = lookup("getVirtualMachine", host.template);
      expect(v.clone.templateUuid).toBe(template.uuid);
      expect(v.guestId).toBe(template.guestId);
      expect(v.clone.customize).toEqual({
        linuxOptions: { hostName: host.name, domain: site.domain },
        networkInterfaces: [{ ipv4Address: host.ip, ipv4Netmask: Number(network?.cidr.split("/")[1]) }],
        ipv4Gateway: network?.gateway,
        dnsServerLists: site.dnsServers,
      });
      expect(v.waitForGuestNetTimeout).toBe(5);
    }
  });

  it("keeps every database and every backup VM in its role's anti-affinity rule, by VM ID, in the site's cluster", async () => {
    const site = sites.primary;
    const r = resolver(await planSite(site, "standby"));
    const rules = r.ofType(T.rule);
    const members = (role: string) => (rules.find((x) => x.inputs.name === `primary-${role}-anti-affinity`)?.inputs.virtualMachineIds as string[]).map((id) => r.get(id).inputs.name);
    expect(members("db")).toEqual(site.hosts.filter((h) => h.role === "db").map((h) => h.name));
    expect(members("backup")).toEqual(site.hosts.filter((h) => h.role === "backup").map((h) => h.name));
    expect(rules).toHaveLength(2);
    for (const rule of rules) expect(rule.inputs).toMatchObject({ computeClusterId: lookup("getComputeCluster", site.vcenter.cluster).id, enabled: true });
  });

  it("declares port groups on the switch's UUID, resource pools under the cluster's root pool, folders and tag categories as the real provider takes them", async () => {
    const site = sites.primary;
    const r = resolver(await planSite(site, "standby"));
    const dvsUuid = lookup("getDistributedVirtualSwitch", site.vcenter.dvSwitch).id;
    expect(dvsUuid).toMatch(/^([0-9a-f]{2} ){7}[0-9a-f]{2}-([0-9a-f]{2} ){7}[0-9a-f]{2}$/);
    const pgs = r.ofType(T.pg);
    expect(pgs.map((p) => p.inputs.vlanId)).toEqual(site.networks.map((n) => n.vlan));
    for (const pg of pgs) expect(pg.inputs.distributedVirtualSwitchUuid).toBe(dvsUuid);
    const pools = r.ofType(T.pool);
    expect(pools.map((p) => p.inputs.name)).toEqual(site.drTiers.map((t) => `tier-${t.tier}`));
    for (const pool of pools) expect(pool.inputs.parentResourcePoolId).toBe(lookup("getComputeCluster", site.vcenter.cluster).resourcePoolId);
    const datacenterId = lookup("getDatacenter", site.vcenter.datacenter).id;
    expect(r.ofType(T.folder).map((f) => f.inputs)).toEqual(["primary", "primary/db", "primary/app", "primary/backup", "primary/digitization"].map((path) => ({ path, type: "vm", datacenterId })));
    for (const cat of r.ofType(T.category)) expect(cat.inputs).toMatchObject({ cardinality: "SINGLE", associableTypes: ["VirtualMachine"] });
    for (const tag of r.ofType(T.tag)) expect(r.get(tag.inputs.categoryId).type).toBe(T.category);
    expect(r.ofType(T.tag).map((t) => t.id).every((id) => /^urn:vmomi:InventoryServiceTag:[0-9a-f-]{36}:GLOBAL$/.test(id))).toBe(true);
  });

  it("looks up the datacenter, cluster, switch, datastores and templates with the get* functions, each inside the datacenter", async () => {
    const site: Site = sites.primary;
    const { invoked } = await recordVsphere("lookups");
    await settled(declareSite(site, { mode: "standby" }).resources);
    const names = (fn: string) => invoked.filter((i) => i.token === `vsphere:index/${fn}:${fn}`).map((i) => i.inputs.name).sort();
    expect(names("getDatacenter")).toEqual([site.vcenter.datacenter]);
    expect(names("getComputeCluster")).toEqual([site.vcenter.cluster]);
    expect(names("getDistributedVirtualSwitch")).toEqual([site.vcenter.dvSwitch]);
    expect(names("getDatastore")).toEqual([...new Set([...site.vcenter.datastores, ...site.hosts.map((h) => h.datastore)])].sort());
    expect(names("getVirtualMachine")).toEqual(site.templates.map((t) => t.name).sort());
    const dcId = lookup("getDatacenter", site.vcenter.datacenter).id;
    for (const i of invoked.filter((x) => !x.token.endsWith("getDatacenter"))) expect(i.inputs.datacenterId, i.token).toBe(dcId);
  });

  it("adds exactly the secondary's application tier in dr:mode=active", async () => {
    const names = async (mode: "standby" | "active") => resolver(await planSite(sites.secondary, mode)).ofType(T.vm).map((vm) => String(vm.inputs.name));
    const standby = await names("standby");
    const active = await names("active");
    const activeOnly = sites.secondary.hosts.filter((h) => h.activeOnly).map((h) => h.name);
    expect(activeOnly.length).toBeGreaterThan(0);
    expect(active.filter((n) => !standby.includes(n)).sort()).toEqual([...activeOnly].sort());
    expect(standby.some((n) => activeOnly.includes(n))).toBe(false);
  });

  it("adds, in dr:mode=drill, copies of the standby databases and the failover-only tier on the isolated drill network", async () => {
    const standby = resolver(await planSite(sites.secondary, "standby")).ofType(T.vm).map((vm) => String(vm.inputs.name));
    const r = resolver(await planSite(sites.secondary, "drill"));
    const copies = r.ofType(T.vm).filter((vm) => !standby.includes(String(vm.inputs.name)));
    const originals = sites.secondary.hosts.filter((h) => (h.role === "db" && h.standbyFor) || h.activeOnly);
    expect(copies.map((vm) => vm.inputs.name).sort()).toEqual(originals.map((h) => `${h.name}-drill`).sort());
    for (const vm of copies) {
      const original = originals.find((h) => `${h.name}-drill` === vm.inputs.name);
      const v = vmInputs(vm);
      expect(r.get(v.networkInterfaces[0]?.networkId).inputs.name).toBe("pg-drill");
      expect(v.clone.customize.networkInterfaces[0]?.ipv4Address).toBe(`10.20.90.${original?.ip.split(".")[3] ?? "?"}`);
    }
    const dbRule = r.ofType(T.rule).find((x) => x.inputs.name === "secondary-db-anti-affinity");
    const members = (dbRule?.inputs.virtualMachineIds as string[]).map((id) => r.get(id).inputs.name);
    expect(members).toEqual(expect.arrayContaining(copies.filter((vm) => r.tagOf(vm, "role") === "db").map((vm) => vm.inputs.name)));
  });

  it("gives no resource a connection or credentials: they are the vsphere provider's configuration", async () => {
    const planned = await planSite(sites.secondary, "active");
    const keys = new Set(planned.flatMap((p) => Object.keys(p.inputs)));
    for (const k of ["connection", "password", "user", "vsphereServer", "datacenter"]) expect(keys.has(k), k).toBe(false);
    // The real provider's resources, and our two component types that group them.
    expect(planned.filter((p) => !p.type.startsWith("vsphere:index/")).map((p) => p.type)).toEqual(expect.arrayContaining(["dcctl:site:Foundation", "dcctl:site:RoleGroup"]));
    expect(new Set(planned.map((p) => p.type.split(":")[0]))).toEqual(new Set(["vsphere", "dcctl"]));
  });
});
