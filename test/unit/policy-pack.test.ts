import { readFileSync } from "node:fs";
import * as vsphere from "@pulumi/vsphere";
import { describe, expect, it } from "vitest";
import { loadSites, type Site } from "../../inventory/index.js";
import { policies } from "../../stacks/policy/policies.js";
import { declareSite, type DrMode } from "../../stacks/site-stack.js";
import { policyResources, recordVsphere, runPolicies, settled, unknownIds, type Registered } from "../helpers/vsphere-mocks.js";

// The policy pack run, as the engine runs it, over resources that Pulumi's mock runtime registered through the real
// @pulumi/vsphere classes, with the property dependencies the engine would send. Twice each: with every ID known (an
// update, `up`), and with every ID unknown (the first preview of a stack, where a policy that reads an ID is skipped
// by @pulumi/policy and the pack would pass silently).

const sites = loadSites();

async function registerSite(site: Site, mode: DrMode): Promise<Registered[]> {
  const { registered } = await recordVsphere(`${site.site}-${mode}`);
  await settled(declareSite(site, { mode }).resources);
  return registered;
}

/** Both ways the engine can show the pack a stack: IDs known, and IDs all unknown. */
async function violations(registered: Registered[]) {
  const ids = new Set(registered.map((r) => r.id));
  const known = await runPolicies(policies, policyResources(registered));
  const preview = await runPolicies(policies, policyResources(registered, (r) => unknownIds(r.inputs, ids) as Record<string, unknown>));
  return { known, preview };
}

/** A stack written by hand, as a careless engineer could: the pack, not the inventory, must stop it. */
async function rogueStack(): Promise<Registered[]> {
  const { registered } = await recordVsphere("rogue");
  const dc = vsphere.getDatacenterOutput({ name: "DC" });
  const cluster = vsphere.getComputeClusterOutput({ name: "C", datacenterId: dc.id });
  const dvs = vsphere.getDistributedVirtualSwitchOutput({ name: "DVS", datacenterId: dc.id });
  const pool = new vsphere.ResourcePool("pool", { name: "tier-1", parentResourcePoolId: cluster.resourcePoolId });
  const dmz = new vsphere.DistributedPortGroup("dmz", { name: "pg-dmz", distributedVirtualSwitchUuid: dvs.id, vlanId: 40 });
  const app = new vsphere.DistributedPortGroup("app", { name: "pg-application", distributedVirtualSwitchUuid: dvs.id, vlanId: 30 });
  const category = (name: string) => new vsphere.TagCategory(name, { name, cardinality: "SINGLE", associableTypes: ["VirtualMachine"] });
  const [role, backup, siteCat] = [category("secondary-role"), category("secondary-backup-policy"), category("secondary-site")];
  const tag = (cat: vsphere.TagCategory, name: string) => new vsphere.Tag(`${name}-tag`, { name, categoryId: cat.id });
  const [db, appTag, hourly, secondary] = [tag(role, "db"), tag(role, "app"), tag(backup, "db-hourly"), tag(siteCat, "secondary")];
  // A database on the DMZ, in no anti-affinity rule, and the secondary's only database (fewer than the primary's tier 1).
  const rogueDb = new vsphere.VirtualMachine("rogue-db-01", { name: "rogue-db-01", resourcePoolId: pool.id, networkInterfaces: [{ networkId: dmz.id }], tags: [db.id, hourly.id, secondary.id] });
  // A server nobody backs up.
  const untagged = new vsphere.VirtualMachine("untagged-01", { name: "untagged-01", resourcePoolId: pool.id, networkInterfaces: [{ networkId: app.id }], tags: [appTag.id, secondary.id] });
  await settled([rogueDb, untagged]);
  return registered;
}

describe("the policy pack under Pulumi's mock runtime, over the real vsphere tokens", () => {
  it("passes both sites as the stacks declare them, in every DR mode, whether IDs are known or not", async () => {
    for (const [site, mode] of [[sites.primary, "standby"], [sites.secondary, "standby"], [sites.secondary, "active"], [sites.secondary, "drill"]] as const) {
      const registered = await registerSite(site, mode);
      expect(registered.filter((r) => r.type === "vsphere:index/virtualMachine:VirtualMachine").length, `${site.site} ${mode}`).toBeGreaterThan(0);
      const { known, preview } = await violations(registered);
      for (const found of [known, preview]) expect(Object.fromEntries(found), `${site.site} ${mode}`).toEqual(Object.fromEntries(policies.map((p) => [p.name, []])));
    }
  });

  it("fires every policy of the pack on a violating stack, with IDs known and in a first preview", async () => {
    const { known, preview } = await violations(await rogueStack());
    const tier1 = sites.primary.hosts.filter((h) => h.role === "db" && h.drTier === 1).length;
    const expected = {
      "vm-has-backup-policy-tag": ["VM untagged-01 has no backup-policy tag: every server must be backed up"],
      "no-database-on-dmz": ["database VM rogue-db-01 is on the DMZ network pg-dmz"],
      "database-anti-affinity": ["database VM rogue-db-01 is in no anti-affinity rule"],
      "secondary-standby-capacity": [`the secondary has 1 standby database VMs but the primary has ${tier1} tier-1 database servers`],
    };
    for (const found of [known, preview]) {
      expect(Object.fromEntries(found)).toEqual(expected);
      // Every policy the pack has was exercised and fired: a policy that matches no resource (a token that drifted
      // from the SDK, a property read the provider does not have) cannot pass unnoticed.
      expect([...found.values()].filter((v) => v.length > 0)).toHaveLength(policies.length);
    }
  });

  it("is served with exactly the policies tested here", () => {
    const entry = readFileSync(new URL("../../stacks/policy/index.ts", import.meta.url), "utf8");
    expect(entry).toMatch(/new PolicyPack\("dcctl", \{ policies \}\)/);
    expect(new Set(policies.map((p) => p.name)).size).toBe(4);
  });
});
