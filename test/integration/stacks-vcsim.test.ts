import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSites, type Site } from "../../inventory/index.js";
import { shapeOf } from "../../lab/site-shape.js";
import { startVcsim, type Vcsim } from "../../lab/vcsim.js";
import { govc } from "../../provider/connection.js";
import * as pulumi from "@pulumi/pulumi";
import * as vsphere from "../../provider/sdk.js";
import { inlineStack, localBackend, type StateBackend } from "../../stacks/automation.js";
import { policyPackDir, siteStack } from "../../stacks/infra.js";

const sites = loadSites();
const dir = mkdtempSync(join(tmpdir(), "dcctl-stacks-"));
const sims: Partial<Record<"primary" | "secondary", Vcsim>> = {};
let backend: StateBackend;

function sim(site: "primary" | "secondary"): Vcsim {
  const s = sims[site];
  if (!s) throw new Error(`no vcsim for ${site}`);
  return s;
}

async function stackFor(site: Site, mode?: "standby" | "active") {
  const { connection } = sim(site.site);
  return siteStack(site.site, { backend, mode, vcenter: { url: connection.url, user: connection.username, password: connection.password, insecure: true } });
}

/** Programs written by hand, as a careless stack could: the policy pack, not the inventory, must stop them. */
const secretConfig = () => ({ "vcenter:password": { value: sim("primary").connection.password, secret: true } });
function common() {
  const { connection } = sim("primary");
  const password = new pulumi.Config("vcenter").requireSecret("password");
  return { connection: { url: connection.url, username: connection.username, password, insecure: true }, datacenter: sites.primary.vcenter.datacenter };
}
function loneVm(name: string, network: pulumi.Input<string>, tags: { category: string; tag: string }[]) {
  const dc = sites.primary.vcenter;
  new vsphere.VirtualMachine(name, {
    ...common(), name, folder: "", cluster: dc.cluster, resourcePool: "tier-1", datastore: dc.datastores[0] ?? "",
    template: sites.primary.templates[0]?.name ?? "", network, numCpus: 1, memoryMb: 512, disks: [], tags,
    customization: { hostName: name, domain: "lab", ipv4Address: "10.10.30.250", ipv4Netmask: "255.255.255.0", gateway: "10.10.30.1", dnsServers: [] },
  });
}

const ls = async (site: Site, path: string) => (await govc(sim(site.site).connection, ["ls", `/${site.vcenter.datacenter}/${path}`])).split("\n").filter(Boolean);

beforeAll(async () => {
  backend = localBackend(join(dir, "state"));
  sims.primary = await startVcsim(join(dir, "primary"), shapeOf(sites.primary));
  sims.secondary = await startVcsim(join(dir, "secondary"), shapeOf(sites.secondary));
});

afterAll(async () => {
  await Promise.all(Object.values(sims).map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe("pulumi up of both sites against two vCenter simulators", () => {
  it("passes the policy pack in preview and creates the primary's 33 VMs in their role folders", async () => {
    const stack = await stackFor(sites.primary);
    const preview = await stack.preview({ policyPacks: [policyPackDir] });
    expect(preview.changeSummary.create).toBeGreaterThan(33);
    const up = await stack.up({ policyPacks: [policyPackDir] });
    expect(up.summary.result).toBe("succeeded");
    const p = sites.primary;
    for (const [role, n] of [["db", 6], ["app", 20], ["backup", 5], ["digitization", 2]] as const) {
      expect(await ls(p, `vm/primary/${role}`), role).toHaveLength(n);
    }
    const outputs = await stack.outputs();
    expect((outputs.hosts?.value as unknown[]).length).toBe(33);
    expect(JSON.stringify(await stack.exportStack())).not.toContain(`"${sim("primary").connection.password}"`);
  });

  it("tags each VM, spreads the databases with an anti-affinity rule and customises the static address", async () => {
    const p = sites.primary;
    const conn = sim("primary").connection;
    const db = p.hosts.find((h) => h.role === "db");
    if (!db) throw new Error("no db host");
    const vmPath = `/${p.vcenter.datacenter}/vm/primary/db/${db.name}`;
    const attached = (await govc(conn, ["tags.attached.ls", "-r", vmPath])).split("\n").filter(Boolean).sort();
    expect(attached).toEqual([db.backupPolicy, "db", "primary", `tier-${db.drTier}`].sort());
    const rule = await govc(conn, ["cluster.rule.ls", "-cluster", `/${p.vcenter.datacenter}/host/${p.vcenter.cluster}`, "-name", "primary-db-anti-affinity", "-l"]);
    expect(rule.split("\n").filter(Boolean).map((l) => l.replace(/ \(VM\)$/, "")).sort()).toEqual(p.hosts.filter((h) => h.role === "db").map((h) => h.name).sort());
    const info = JSON.parse(await govc(conn, ["vm.info", "-json", vmPath])) as { virtualMachines: { guest: { ipAddress: string; hostName: string } }[] };
    expect(info.virtualMachines[0]?.guest).toMatchObject({ ipAddress: db.ip, hostName: db.name });
  });

  it("brings up exactly the secondary's application tier when dr:mode turns active, and removes it in standby", async () => {
    const s = sites.secondary;
    const allVms = async () => (await govc(sim("secondary").connection, ["find", `/${s.vcenter.datacenter}/vm/secondary`, "-type", "m"])).split("\n").filter(Boolean).map((p) => p.split("/").pop() ?? "");
    const standby = await stackFor(s, "standby");
    expect((await standby.up({ policyPacks: [policyPackDir] })).summary.result).toBe("succeeded");
    const before = await allVms();
    const active = await stackFor(s, "active");
    const up = await active.up({ policyPacks: [policyPackDir] });
    const added = (await allVms()).filter((n) => !before.includes(n)).sort();
    expect(added).toEqual(s.hosts.filter((h) => h.activeOnly).map((h) => h.name).sort());
    expect(up.summary.resourceChanges?.delete ?? 0).toBe(0);
    await (await stackFor(s, "standby")).up();
    expect((await allVms()).sort()).toEqual([...before].sort());
  });

  it("refuses, through the policy pack, a database VM placed on the DMZ (even where the inventory check was bypassed)", async () => {
    const stack = await inlineStack("db-on-dmz", async () => {
      const dmz = new vsphere.DistributedPortGroup("dmz", { ...common(), dvSwitch: sites.primary.vcenter.dvSwitch, name: "pg-dmz", vlanId: 40, purpose: "dmz" });
      loneVm("rogue-db-01", dmz.name, [{ category: "primary-role", tag: "db" }, { category: "primary-backup-policy", tag: "db-hourly" }]);
    }, localBackend(join(dir, "state-dmz")), secretConfig());
    await expect(stack.preview({ policyPacks: [policyPackDir] })).rejects.toThrow(/database VM rogue-db-01 is on the DMZ network pg-dmz/);
  });

  it("refuses, through the policy pack, a VM that carries no backup-policy tag", async () => {
    const stack = await inlineStack("untagged", async () => {
      loneVm("untagged-01", "VM Network", [{ category: "primary-role", tag: "app" }]);
    }, localBackend(join(dir, "state-untagged")), secretConfig());
    await expect(stack.preview({ policyPacks: [policyPackDir] })).rejects.toThrow(/VM untagged-01 has no backup-policy tag/);
  });

  it("destroys both stacks and leaves no VM behind", async () => {
    for (const site of [sites.primary, sites.secondary]) {
      await (await stackFor(site)).destroy();
      const left = await govc(sim(site.site).connection, ["find", `/${site.vcenter.datacenter}/vm`, "-type", "m", "-name", "*-*-0*"]);
      expect(left.trim(), site.site).toBe("");
    }
  });
});
