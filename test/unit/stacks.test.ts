import { describe, expect, it } from "vitest";
import { loadSites } from "../../inventory/index.js";
import { tokens } from "../../provider/tokens.js";
import { planSite, type PlannedResource } from "../../stacks/plan.js";

const sites = loadSites();
const ofType = (planned: PlannedResource[], type: string) => planned.filter((r) => r.type === type);
type Tag = { category: string; tag: string };
const tagOf = (vm: PlannedResource, category: string) => (vm.inputs.tags as Tag[]).find((t) => t.category.endsWith(`-${category}`))?.tag;

describe("site stacks under Pulumi's mock runtime", () => {
  it("declares the primary's 6 database, 20 application, 5 backup and 2 digitisation VMs", async () => {
    const vms = ofType(await planSite(sites.primary, "standby"), tokens.VirtualMachine);
    const count = (role: string) => vms.filter((vm) => tagOf(vm, "role") === role).length;
    expect(vms).toHaveLength(33);
    expect([count("db"), count("app"), count("backup"), count("digitization")]).toEqual([6, 20, 5, 2]);
  });

  it("tags every VM with role, DR tier, backup policy and site, and places it by the inventory", async () => {
    const vms = ofType(await planSite(sites.primary, "standby"), tokens.VirtualMachine);
    for (const vm of vms) {
      const host = sites.primary.hosts.find((h) => h.name === vm.inputs.name);
      expect(host, String(vm.inputs.name)).toBeDefined();
      if (!host) continue;
      expect(tagOf(vm, "role")).toBe(host.role);
      expect(tagOf(vm, "dr-tier")).toBe(`tier-${host.drTier}`);
      expect(tagOf(vm, "backup-policy")).toBe(host.backupPolicy);
      expect(tagOf(vm, "site")).toBe("primary");
      expect(vm.inputs.network).toBe(`pg-${host.network}`);
      expect((vm.inputs.customization as { ipv4Address: string }).ipv4Address).toBe(host.ip);
      expect(vm.inputs.folder).toBe(`primary/${host.role}`);
    }
  });

  it("keeps every database and every backup VM in its role's anti-affinity rule", async () => {
    const planned = await planSite(sites.primary, "standby");
    const rules = ofType(planned, tokens.AntiAffinityRule);
    const members = (role: string) => rules.find((r) => r.inputs.name === `primary-${role}-anti-affinity`)?.inputs.virtualMachines;
    expect(members("db")).toEqual(sites.primary.hosts.filter((h) => h.role === "db").map((h) => h.name));
    expect(members("backup")).toEqual(sites.primary.hosts.filter((h) => h.role === "backup").map((h) => h.name));
    expect(rules).toHaveLength(2);
  });

  it("declares one port group per VLAN and one resource pool per DR tier", async () => {
    const planned = await planSite(sites.primary, "standby");
    expect(ofType(planned, tokens.DistributedPortGroup).map((p) => p.inputs.vlanId)).toEqual(sites.primary.networks.map((n) => n.vlan));
    expect(ofType(planned, tokens.ResourcePool).map((p) => p.inputs.name)).toEqual(sites.primary.drTiers.map((t) => `tier-${t.tier}`));
  });

  it("adds exactly the secondary's application tier in dr:mode=active", async () => {
    const names = async (mode: "standby" | "active") => ofType(await planSite(sites.secondary, mode), tokens.VirtualMachine).map((vm) => String(vm.inputs.name));
    const standby = await names("standby");
    const active = await names("active");
    const activeOnly = sites.secondary.hosts.filter((h) => h.activeOnly).map((h) => h.name);
    expect(activeOnly.length).toBeGreaterThan(0);
    expect(active.filter((n) => !standby.includes(n)).sort()).toEqual([...activeOnly].sort());
    expect(standby.some((n) => activeOnly.includes(n))).toBe(false);
  });

  it("adds, in dr:mode=drill, copies of the standby databases and the failover-only tier on the isolated drill network", async () => {
    const vms = async (mode: "standby" | "drill") => ofType(await planSite(sites.secondary, mode), tokens.VirtualMachine);
    const standby = (await vms("standby")).map((vm) => String(vm.inputs.name));
    const drill = await vms("drill");
    const copies = drill.filter((vm) => !standby.includes(String(vm.inputs.name)));
    const originals = sites.secondary.hosts.filter((h) => (h.role === "db" && h.standbyFor) || h.activeOnly);
    expect(copies.map((vm) => vm.inputs.name).sort()).toEqual(originals.map((h) => `${h.name}-drill`).sort());
    for (const vm of copies) {
      const original = originals.find((h) => `${h.name}-drill` === vm.inputs.name);
      expect(vm.inputs.network).toBe("pg-drill");
      expect((vm.inputs.customization as { ipv4Address: string }).ipv4Address).toBe(`10.20.90.${original?.ip.split(".")[3] ?? "?"}`);
    }
    const dbRule = ofType(await planSite(sites.secondary, "drill"), tokens.AntiAffinityRule).find((r) => r.inputs.name === "secondary-db-anti-affinity");
    expect(dbRule?.inputs.virtualMachines).toEqual(expect.arrayContaining(copies.filter((vm) => tagOf(vm, "role") === "db").map((vm) => vm.inputs.name)));
  });

  it("never lets the vCenter password into the planned inputs", async () => {
    const planned = await planSite(sites.secondary, "active");
    expect(JSON.stringify(planned)).not.toContain("plan-placeholder");
  });
});
