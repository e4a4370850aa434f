import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as vsphere from "@pulumi/vsphere";
import type { ConfigMap, EngineEvent, PulumiFn, Stack, SummaryEvent } from "@pulumi/pulumi/automation/index.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadSites, type Host, type Site, type SiteName } from "../../inventory/index.js";
import { shapeOf } from "../../lab/site-shape.js";
import { startVcsim, type Vcsim } from "../../lab/vcsim.js";
import { govc } from "../../lab/govc.js";
import { inlineStack, localBackend, type StateBackend } from "../../stacks/automation.js";
import { VSPHERE_CONFIG, policyPackDir, siteStack, vsphereServerOf } from "../../stacks/infra.js";
import { policies } from "../../stacks/policy/policies.js";
import type { DrMode } from "../../stacks/site-stack.js";

/**
 * Both site stacks, as written against @pulumi/vsphere, through the real Pulumi engine, dcctl's Go plugin
 * pulumi-resource-vsphere and the policy pack, against two vCenter simulators; what vCenter then holds is read with
 * govc, never through the stacks.
 */

const sites = loadSites();
const dir = mkdtempSync(join(tmpdir(), "dcctl-stacks-"));
const sims: Partial<Record<SiteName, Vcsim>> = {};
let backend: StateBackend;

const VM_TYPE = "vsphere:index/virtualMachine:VirtualMachine";
const PROVIDER_TYPE = "pulumi:providers:vsphere";
/** How Pulumi's state marks a secret value: this key and value beside `ciphertext` (or `plaintext` when shown). */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

/** The files of the state backend (its stacks' state, history and backups, and their config), not the plugins' home. */
function backendFiles(): string[] {
  return readdirSync(backend.dir, { recursive: true, encoding: "utf8" })
    .filter((f) => !f.startsWith(".pulumi-home") && statSync(join(backend.dir, f)).isFile())
    .sort();
}

/**
 * Every engine operation runs under the current test's abort signal and is tracked: after each test, whatever it left
 * running (it failed or timed out in the middle of `pulumi up`) is interrupted (SIGINT: the engine cancels and exits)
 * and waited for, so the next test never races a stray engine on the same stack, and afterAll does the same before the
 * simulators stop and their folders go.
 */
let abort = new AbortController();
const running = new Set<Promise<unknown>>();
function tracked<T>(op: Promise<T>): Promise<T> {
  running.add(op);
  const done = () => running.delete(op);
  op.then(done, done);
  return op;
}
async function stopRunning(): Promise<void> {
  abort.abort();
  await Promise.allSettled([...running]);
  abort = new AbortController();
}

/** An engine operation's events, and what the test reads from them. */
function recorder() {
  const events: EngineEvent[] = [];
  return {
    onEvent: (e: EngineEvent) => void events.push(e),
    /** The policy violations reported, policy name → messages. */
    violations(): Record<string, string[]> {
      const out: Record<string, string[]> = {};
      for (const { policyEvent: p } of events) if (p) (out[p.policyName] ??= []).push(p.message.trim());
      return out;
    },
    /**
     * The names of the policy packs the engine ran, from the summary event. The engine writes that field as
     * `PolicyPacks` (its Go struct has no JSON tag, see the SDK's SummaryEvent), keyed `NAME|local|DIR` for a local pack.
     */
    packs(): string[] {
      const summary = events.find((e) => e.summaryEvent)?.summaryEvent as (SummaryEvent & { PolicyPacks?: Record<string, string> }) | undefined;
      return Object.keys({ ...summary?.PolicyPacks, ...summary?.policyPacks }).map((k) => k.split("|")[0] ?? k);
    },
    /** The steps the engine took on VMs: operation and the VM's Pulumi name. */
    vmSteps(): { op: string; name: string }[] {
      return events.flatMap(({ resOutputsEvent: r }) => (r && r.metadata.type === VM_TYPE ? [{ op: r.metadata.op, name: r.metadata.urn.split("::").pop() ?? "" }] : []));
    },
  };
}
const policy = () => ({ policyPacks: [policyPackDir], signal: abort.signal });

function sim(site: SiteName): Vcsim {
  const s = sims[site];
  if (!s) throw new Error(`no vcsim for ${site}`);
  return s;
}
const g = (site: SiteName, args: string[]) => govc(sim(site).connection, args);
const lines = (out: string) => out.split("\n").filter(Boolean);

function stackFor(site: Site, mode?: DrMode): Promise<Stack> {
  const { connection } = sim(site.site);
  return siteStack(site.site, { backend, mode, vcenter: { url: connection.url, user: connection.username, password: connection.password, insecure: true } });
}

/** The provider configuration a hand-written program needs, as the real provider takes it: the password a secret. */
function vsphereConfig(site: SiteName): ConfigMap {
  const c = sim(site).connection;
  return {
    [VSPHERE_CONFIG.server]: { value: vsphereServerOf(c.url) },
    [VSPHERE_CONFIG.user]: { value: c.username },
    [VSPHERE_CONFIG.password]: { value: c.password, secret: true },
    [VSPHERE_CONFIG.allowUnverifiedSsl]: { value: "true" },
  };
}

/** The VMs under a folder of a site's datacenter, by name. */
async function vmsUnder(site: Site, folder: string): Promise<string[]> {
  return lines(await g(site.site, ["find", `/${site.vcenter.datacenter}/${folder}`, "-type", "m"])).map((p) => p.split("/").pop() ?? "").sort();
}

interface VmInfo {
  name: string;
  self: { type: string; value: string };
  guest: { ipAddress?: string; hostName?: string };
}

/** Each VM's attached tags as `category/tag`, read from vCenter's tagging service, by VM name. */
async function attachedTags(site: Site, vms: VmInfo[]): Promise<Map<string, string[]>> {
  const byRef = new Map(vms.map((vm) => [`${vm.self.type}:${vm.self.value}`, vm.name]));
  const out = new Map<string, string[]>(vms.map((vm) => [vm.name, []]));
  const categories = JSON.parse(await g(site.site, ["tags.category.ls", "-json"])) as { name: string }[];
  for (const category of categories) {
    const tags = JSON.parse(await g(site.site, ["tags.ls", "-c", category.name, "-json"])) as { id: string; name: string }[];
    for (const tag of tags) {
      for (const ref of JSON.parse(await g(site.site, ["tags.attached.ls", "-json", tag.id])) as string[]) {
        const name = byRef.get(ref);
        if (name) out.get(name)?.push(`${category.name}/${tag.name}`);
      }
    }
  }
  return out;
}

/** The members of a DRS rule of a site's cluster, by VM name. */
async function ruleMembers(site: Site, rule: string): Promise<string[]> {
  const out = await g(site.site, ["cluster.rule.ls", "-cluster", `/${site.vcenter.datacenter}/host/${site.vcenter.cluster}`, "-name", rule, "-l"]);
  return lines(out).map((l) => l.replace(/ \(VM\)$/, "")).sort();
}

interface RogueVm {
  name: string;
  network: "dmz" | "database" | "application";
  /** Tag values by category suffix (`role` → the `primary-role` category); a category left out is not attached. */
  tags: Partial<Record<"role" | "backup-policy" | "site", string>>;
}

/**
 * A program written by hand against @pulumi/vsphere, as a careless engineer could, on the primary's vCenter: port
 * groups (the DMZ one named so), tag categories and tags named as the stacks name theirs, VMs cloned from the template
 * with a static address, and an anti-affinity rule over its database VMs when there are two. The inventory is not
 * consulted: the policy pack alone must stop it.
 */
function rogueProgram(vms: RogueVm[]): PulumiFn {
  return async () => {
    const p = sites.primary;
    const vc = p.vcenter;
    const datacenterId = vsphere.getDatacenterOutput({ name: vc.datacenter }).id;
    const cluster = vsphere.getComputeClusterOutput({ name: vc.cluster, datacenterId });
    const dvs = vsphere.getDistributedVirtualSwitchOutput({ name: vc.dvSwitch, datacenterId });
    const datastore = vsphere.getDatastoreOutput({ name: vc.datastores[0] ?? "", datacenterId });
    const template = vsphere.getVirtualMachineOutput({ name: "tpl-debian-12", datacenterId });
    const pool = new vsphere.ResourcePool("rogue-pool", { name: "rogue", parentResourcePoolId: cluster.resourcePoolId });
    const portGroups = new Map<string, vsphere.DistributedPortGroup>();
    for (const name of new Set(vms.map((vm) => vm.network))) {
      const net = p.networks.find((n) => n.name === name);
      if (!net) throw new Error(`no network ${name}`);
      portGroups.set(name, new vsphere.DistributedPortGroup(`rogue-pg-${name}`, { name: `pg-${name}`, distributedVirtualSwitchUuid: dvs.id, vlanId: net.vlan }));
    }
    const categories = new Map<string, vsphere.TagCategory>();
    const tags = new Map<string, vsphere.Tag>();
    const tagOf = (category: string, value: string) => {
      let cat = categories.get(category);
      if (!cat) {
        cat = new vsphere.TagCategory(`rogue-cat-${category}`, { name: `primary-${category}`, cardinality: "SINGLE", associableTypes: ["VirtualMachine"] });
        categories.set(category, cat);
      }
      const key = `${category}/${value}`;
      let tag = tags.get(key);
      if (!tag) {
        tag = new vsphere.Tag(`rogue-tag-${category}-${value}`, { name: value, categoryId: cat.id });
        tags.set(key, tag);
      }
      return tag.id;
    };
    const declared = vms.map((vm, i) => {
      const net = p.networks.find((n) => n.name === vm.network);
      const pg = portGroups.get(vm.network);
      if (!net || !pg) throw new Error(`no network ${vm.network}`);
      const base = net.cidr.split("/")[0]?.split(".").slice(0, 3).join(".") ?? "";
      const v = new vsphere.VirtualMachine(vm.name, {
        name: vm.name,
        resourcePoolId: pool.id,
        datastoreId: datastore.id,
        numCpus: 1,
        memory: 512,
        guestId: template.guestId,
        networkInterfaces: [{ networkId: pg.id }],
        disks: [{ label: "os", size: 10, thinProvisioned: true }],
        clone: {
          templateUuid: template.uuid,
          customize: {
            linuxOptions: { hostName: vm.name, domain: p.domain },
            networkInterfaces: [{ ipv4Address: `${base}.${250 - i}`, ipv4Netmask: Number(net.cidr.split("/")[1]) }],
            ipv4Gateway: net.gateway,
            dnsServerLists: p.dnsServers,
          },
        },
        tags: Object.entries(vm.tags).map(([category, value]) => tagOf(category, value)),
      });
      return { vm, v };
    });
    const dbs = declared.filter((d) => d.vm.tags.role === "db").map((d) => d.v.id);
    if (dbs.length >= 2) new vsphere.ComputeClusterVmAntiAffinityRule("rogue-db-anti-affinity", { name: "rogue-db-anti-affinity", computeClusterId: cluster.id, virtualMachineIds: dbs, enabled: true });
  };
}

/** A violation as the engine reports it: the policy's description, then the message the policy gave. */
function reported(policyName: string, message: string): string {
  const p = policies.find((x) => x.name === policyName);
  if (!p) throw new Error(`the pack has no policy ${policyName}`);
  return `${p.description}\n${message}`;
}

/** Previews a rogue program with the pack: the preview must fail, and the violations it reported are returned. */
async function refused(stackName: string, vms: RogueVm[]): Promise<Record<string, string[]>> {
  const stack = await inlineStack(stackName, rogueProgram(vms), backend, vsphereConfig("primary"));
  const rec = recorder();
  await expect(tracked(stack.preview({ ...policy(), onEvent: rec.onEvent }))).rejects.toThrow(/preview failed/);
  expect(rec.packs()).toEqual(["dcctl"]);
  // Nothing of the rogue program reached vCenter.
  const names = vms.map((vm) => vm.name);
  expect((await vmsUnder(sites.primary, "vm")).filter((n) => names.includes(n))).toEqual([]);
  return rec.violations();
}

beforeAll(async () => {
  backend = localBackend(join(dir, "state"));
  sims.primary = await startVcsim(join(dir, "primary"), shapeOf(sites.primary));
  sims.secondary = await startVcsim(join(dir, "secondary"), shapeOf(sites.secondary));
});

afterEach(stopRunning);

afterAll(async () => {
  try {
    await stopRunning();
  } finally {
    await Promise.allSettled(Object.values(sims).map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
});

describe("pulumi up of both sites against two vCenter simulators, through @pulumi/vsphere and dcctl's vsphere plugin", () => {
  const p = sites.primary;
  const dbHosts = (site: Site) => site.hosts.filter((h) => h.role === "db");

  it("passes the policy pack in preview and creates the primary's 33 VMs in their role folders", async () => {
    const stack = await stackFor(p);
    const previewed = recorder();
    const preview = await tracked(stack.preview({ ...policy(), onEvent: previewed.onEvent }));
    expect(previewed.packs()).toEqual(["dcctl"]);
    expect(previewed.violations()).toEqual({});
    expect(preview.changeSummary.create).toBeGreaterThan(33);
    expect(previewed.vmSteps().filter((s) => s.op === "create")).toHaveLength(33);

    const applied = recorder();
    const up = await tracked(stack.up({ ...policy(), onEvent: applied.onEvent }));
    expect(up.summary.result).toBe("succeeded");
    expect(applied.packs()).toEqual(["dcctl"]);
    expect(applied.violations()).toEqual({});
    for (const [role, n] of [["db", 6], ["app", 20], ["backup", 5], ["digitization", 2]] as const) {
      const inFolder = lines(await g("primary", ["ls", `/${p.vcenter.datacenter}/vm/primary/${role}`])).map((l) => l.split("/").pop() ?? "").sort();
      expect(inFolder, role).toHaveLength(n);
      expect(inFolder, role).toEqual(p.hosts.filter((h) => h.role === role).map((h) => h.name).sort());
    }

    const outputs = await stack.outputs();
    const hosts = outputs.hosts?.value as { name: string; address: string }[];
    expect(hosts).toHaveLength(33);
    expect(hosts.map((h) => h.name).sort()).toEqual(p.hosts.map((h) => h.name).sort());

    // The password reaches the state only encrypted: the provider's input is a ciphertext in the stack's state file,
    // and no file of the backend holds the value. (Not through stack.exportStack(): it exports with --show-secrets.)
    const password = sim("primary").connection.password;
    const state = JSON.parse(readFileSync(join(backend.dir, ".pulumi", "stacks", "dcctl", "primary.json"), "utf8")) as {
      checkpoint: { latest: { resources: { type: string; inputs?: Record<string, unknown> }[] } };
    };
    const providers = state.checkpoint.latest.resources.filter((r) => r.type === PROVIDER_TYPE);
    expect(providers.length).toBeGreaterThan(0);
    for (const r of providers) expect(r.inputs?.password).toEqual({ [SECRET_SIG]: SECRET_VALUE, ciphertext: expect.any(String) });
    const files = backendFiles();
    expect(files).toContain(join(".pulumi", "stacks", "dcctl", "primary.json"));
    expect(files).toContain("Pulumi.primary.yaml");
    const holding = (value: string) => files.filter((f) => readFileSync(join(backend.dir, f), "utf8").includes(value));
    expect(holding(password)).toEqual([]);
    // The same search finds a plain value of the same config where it is stored: it reads what the files hold.
    expect(holding(vsphereServerOf(sim("primary").connection.url))).toEqual(expect.arrayContaining(["Pulumi.primary.yaml", join(".pulumi", "stacks", "dcctl", "primary.json")]));
  });

  it("tags each VM, spreads the databases with an anti-affinity rule and customises host name and static address", async () => {
    const paths = p.hosts.map((h) => `/${p.vcenter.datacenter}/vm/primary/${h.role}/${h.name}`);
    const info = (JSON.parse(await g("primary", ["vm.info", "-json", ...paths])) as { virtualMachines: VmInfo[] | null }).virtualMachines ?? [];
    expect(info.map((vm) => vm.name).sort()).toEqual(p.hosts.map((h) => h.name).sort());

    // The stacks' tag categories: <site>-role, <site>-dr-tier, <site>-backup-policy, <site>-site.
    const expectedTags = (h: Host) => [`primary-role/${h.role}`, `primary-dr-tier/tier-${h.drTier}`, `primary-backup-policy/${h.backupPolicy}`, "primary-site/primary"].sort();
    const tags = await attachedTags(p, info);
    expect(Object.fromEntries([...tags].map(([name, t]) => [name, t.sort()]))).toEqual(Object.fromEntries(p.hosts.map((h) => [h.name, expectedTags(h)])));

    expect(await ruleMembers(p, "primary-db-anti-affinity")).toEqual(dbHosts(p).map((h) => h.name).sort());
    expect(await ruleMembers(p, "primary-backup-anti-affinity")).toEqual(p.hosts.filter((h) => h.role === "backup").map((h) => h.name).sort());

    const guests = Object.fromEntries(info.map((vm) => [vm.name, { ipAddress: vm.guest.ipAddress, hostName: vm.guest.hostName }]));
    expect(guests).toEqual(Object.fromEntries(p.hosts.map((h) => [h.name, { ipAddress: h.ip, hostName: h.name }])));
  });

  it("brings up exactly the secondary's activeOnly VMs when dr:mode turns active, deleting nothing, and removes them in standby", async () => {
    const s = sites.secondary;
    const activeOnly = s.hosts.filter((h) => h.activeOnly).map((h) => h.name).sort();
    expect(activeOnly.length).toBeGreaterThan(0);
    const ours = () => vmsUnder(s, "vm/secondary");

    const standby = await tracked(stackFor(s, "standby").then((st) => st.up(policy())));
    expect(standby.summary.result).toBe("succeeded");
    const before = await ours();
    expect(before).toEqual(s.hosts.filter((h) => !h.activeOnly).map((h) => h.name).sort());

    const toActive = recorder();
    const active = await tracked(stackFor(s, "active").then((st) => st.up({ ...policy(), onEvent: toActive.onEvent })));
    expect(active.summary.result).toBe("succeeded");
    expect((await ours()).filter((n) => !before.includes(n))).toEqual(activeOnly);
    expect(await ours()).toEqual([...before, ...activeOnly].sort());
    expect(active.summary.resourceChanges?.delete ?? 0).toBe(0);
    expect(active.summary.resourceChanges?.replace ?? 0).toBe(0);
    expect(toActive.vmSteps().filter((st) => st.op !== "same").sort((a, b) => a.name.localeCompare(b.name))).toEqual(activeOnly.map((name) => ({ op: "create", name })));

    const toStandby = recorder();
    const back = await tracked(stackFor(s, "standby").then((st) => st.up({ ...policy(), onEvent: toStandby.onEvent })));
    expect(back.summary.result).toBe("succeeded");
    expect(await ours()).toEqual(before);
    expect(toStandby.vmSteps().filter((st) => st.op !== "same").sort((a, b) => a.name.localeCompare(b.name))).toEqual(activeOnly.map((name) => ({ op: "delete", name })));
  });

  it("refuses, through the policy pack, a database VM placed on the DMZ (even where the inventory check was bypassed)", async () => {
    const tags = { role: "db", "backup-policy": "db-hourly", site: "primary" };
    const found = await refused("db-on-dmz", [
      { name: "rogue-db-01", network: "dmz", tags },
      { name: "rogue-db-02", network: "database", tags },
    ]);
    // Only the DMZ one: both databases are in an anti-affinity rule and backed up; the other is on a non-DMZ network.
    expect(found).toEqual({ "no-database-on-dmz": [reported("no-database-on-dmz", "database VM rogue-db-01 is on the DMZ network pg-dmz")] });
  });

  it("refuses, through the policy pack, a VM that carries no backup-policy tag", async () => {
    const found = await refused("untagged", [
      { name: "untagged-01", network: "application", tags: { role: "app", site: "primary" } },
      { name: "tagged-01", network: "application", tags: { role: "app", "backup-policy": "app-daily", site: "primary" } },
    ]);
    expect(found).toEqual({ "vm-has-backup-policy-tag": [reported("vm-has-backup-policy-tag", "VM untagged-01 has no backup-policy tag: every server must be backed up")] });
  });

  it("destroys both stacks and leaves no VM behind", async () => {
    for (const site of [sites.primary, sites.secondary]) {
      const stack = await stackFor(site);
      const destroyed = await tracked(stack.destroy({ signal: abort.signal }));
      expect(destroyed.summary.result, site.site).toBe("succeeded");
      // What is left in vCenter is what the simulator was given: the templates.
      expect(await vmsUnder(site, "vm"), site.site).toEqual(site.templates.map((t) => t.name).sort());
      const state = await stack.exportStack();
      expect((state.deployment as { resources?: unknown[] }).resources ?? [], site.site).toEqual([]);
    }
  });
});
