import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import * as pulumi from "@pulumi/pulumi";
import * as vsphere from "@pulumi/vsphere";
import type { Stack } from "@pulumi/pulumi/automation/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startVcsim, type Vcsim } from "../../lab/vcsim.js";
import { govc } from "../../lab/govc.js";
import { run } from "../../util/process.js";
import { cacheDir, repoRoot, toolEnv } from "../../util/tools.js";
import { inlineStack, localBackend, vspherePluginDir, type StateBackend } from "../../stacks/automation.js";

/**
 * dcctl's Go plugin pulumi-resource-vsphere (provider/vsphere) through the real engine and the Automation API against
 * vcsim, with the real provider's tokens and property names on raw CustomResources and invokes (no generated SDK).
 */
const T = {
  VirtualMachine: "vsphere:index/virtualMachine:VirtualMachine",
  Folder: "vsphere:index/folder:Folder",
  ResourcePool: "vsphere:index/resourcePool:ResourcePool",
  DistributedPortGroup: "vsphere:index/distributedPortGroup:DistributedPortGroup",
  TagCategory: "vsphere:index/tagCategory:TagCategory",
  Tag: "vsphere:index/tag:Tag",
  AntiAffinityRule: "vsphere:index/computeClusterVmAntiAffinityRule:ComputeClusterVmAntiAffinityRule",
};
const fn = (name: string) => `vsphere:index/${name}:${name}`;

/** A resource of the vsphere package by its token, as a generated SDK class would declare it. */
class Res extends pulumi.CustomResource {
  constructor(type: string, name: string, props: pulumi.Inputs, opts?: pulumi.CustomResourceOptions) {
    super(type, name, props, opts);
  }
}
class VsphereProvider extends pulumi.ProviderResource {
  constructor(name: string, props: pulumi.Inputs) {
    super("vsphere", name, props);
  }
}

const shape = { datacenter: "DC-T", cluster: "C1", esxiHosts: ["esxi-a", "esxi-b"], datastores: ["ds1"], dvSwitch: "DVS1", templates: ["tpl-debian-12", "tpl-debian-13"] };
/** How many cloned VMs the main stack declares (DCCTL_PV_VMS=33 measures a site's worth). */
const VMS = Math.max(2, Number(process.env.DCCTL_PV_VMS ?? 3));
const vmName = (i: number) => `pv-vm-${String(i).padStart(2, "0")}`;
const vmPath = (name: string, folder = "pv") => `/${shape.datacenter}/vm/${folder}/${name}`;

const dir = mkdtempSync(join(tmpdir(), "dcctl-vsphere-plugin-"));
let sim: Vcsim | undefined;
let backend: StateBackend;
const stacks: Stack[] = [];

function vc(): Vcsim {
  if (!sim) throw new Error("vcsim is not running");
  return sim;
}
const g = (args: string[]) => govc(vc().connection, args);
/** The managed object ID of the folder at /DC/vm/NAME (`govc ls -i` of a folder would list its children). */
const folderMoid = async (name: string) => (await g(["find", "-i", `/${shape.datacenter}/vm`, "-type", "f", "-name", name])).trim().split(":")[1] ?? "";
const vmInfo = async (path: string) =>
  (JSON.parse(await g(["vm.info", "-json", path])) as { virtualMachines: { config: { hardware: { numCPU: number; memoryMB: number }; annotation: string; uuid: string }; guest: { hostName: string; ipAddress: string } }[] }).virtualMachines[0];

/** The provider configuration as the real provider takes it, the password as a secret. */
function providerConfig() {
  const c = vc().connection;
  return {
    "vsphere:user": { value: c.username },
    "vsphere:password": { value: c.password, secret: true },
    "vsphere:vsphereServer": { value: c.url },
    "vsphere:allowUnverifiedSsl": { value: "true" },
  };
}

/** Import IDs of objects made by hand with govc, for the program to adopt: the resources' own IDs (UUID, managed
 * object ID) or the real provider's import forms (inventory path, category name, tag as JSON). */
interface HandMade {
  vmUuid: string;
  folderId: string;
  categoryImport: string;
  tagImport: string;
  poolImport: string;
  portGroupId: string;
}

interface ProgramOpts {
  adopt?: HandMade;
  /** Another template for the last VM (a change that needs a new VM). */
  lastTemplate?: string;
  /** Another annotation for the first VM (a change made in place). */
  firstAnnotation?: string;
}

/** The main program: foundation objects, VMS VMs cloned with customisation, an anti-affinity rule, an import. */
function mainProgram(opts: ProgramOpts = {}) {
  return async () => {
    const dc = (await pulumi.runtime.invoke(fn("getDatacenter"), { name: shape.datacenter })) as { id: string };
    const cluster = (await pulumi.runtime.invoke(fn("getComputeCluster"), { name: shape.cluster, datacenterId: dc.id })) as { id: string; resourcePoolId: string };
    const ds = (await pulumi.runtime.invoke(fn("getDatastore"), { name: "ds1", datacenterId: dc.id })) as { id: string };
    const dvs = (await pulumi.runtime.invoke(fn("getDistributedVirtualSwitch"), { name: shape.dvSwitch, datacenterId: dc.id })) as { id: string };
    const tpl = (await pulumi.runtime.invoke(fn("getVirtualMachine"), { name: "tpl-debian-12", datacenterId: dc.id })) as { uuid: string };
    const otherTpl = opts.lastTemplate ? ((await pulumi.runtime.invoke(fn("getVirtualMachine"), { name: opts.lastTemplate, datacenterId: dc.id })) as { uuid: string }) : tpl;
    const vmNet = (await pulumi.runtime.invoke(fn("getNetwork"), { name: "VM Network", datacenterId: dc.id })) as { id: string; type: string };
    const rootPool = (await pulumi.runtime.invoke(fn("getResourcePool"), { name: `${shape.cluster}/Resources`, datacenterId: dc.id })) as { id: string };

    const folder = new Res(T.Folder, "pv-folder", { path: "pv", type: "vm", datacenterId: dc.id });
    const pool = new Res(T.ResourcePool, "pv-pool", { name: "pv-tier-1", parentResourcePoolId: cluster.resourcePoolId });
    const pg = new Res(T.DistributedPortGroup, "pv-pg", { name: "pv-app", distributedVirtualSwitchUuid: dvs.id, vlanId: 30 });
    const cat = new Res(T.TagCategory, "pv-cat", { name: "pv-role", cardinality: "SINGLE", associableTypes: ["VirtualMachine"] });
    const tag = new Res(T.Tag, "pv-tag", { name: "db", categoryId: cat.id });
    const folderPath = (folder as unknown as { path: pulumi.Output<string> }).path;

    const vms: Res[] = [];
    for (let i = 1; i <= VMS; i++) {
      const name = vmName(i);
      vms.push(
        new Res(T.VirtualMachine, name, {
          name,
          resourcePoolId: pool.id,
          datastoreId: ds.id,
          folder: folderPath,
          numCpus: 2,
          memory: 1024,
          guestId: "debian11_64Guest",
          annotation: i === 1 && opts.firstAnnotation ? opts.firstAnnotation : `dcctl test ${name}`,
          tags: [tag.id],
          networkInterfaces: [{ networkId: pg.id }],
          disks: [{ label: "os", size: 20, thinProvisioned: true }],
          clone: {
            templateUuid: i === VMS ? otherTpl.uuid : tpl.uuid,
            customize: {
              linuxOptions: { hostName: name, domain: "lab.local" },
              networkInterfaces: [{ ipv4Address: `10.10.30.${10 + i}`, ipv4Netmask: 24 }],
              ipv4Gateway: "10.10.30.1",
              dnsServerLists: ["10.10.30.2"],
            },
          },
          waitForGuestNetTimeout: 1,
        }),
      );
    }
    new Res(T.AntiAffinityRule, "pv-db-anti-affinity", { name: "pv-db-anti-affinity", computeClusterId: cluster.id, virtualMachineIds: vms.map((v) => v.id) });
    const adopt = opts.adopt;
    if (adopt) {
      new Res(T.VirtualMachine, "hand-made", { name: "hand-made", resourcePoolId: rootPool.id, numCpus: 1, memory: 512, guestId: "otherLinux64Guest" }, { import: adopt.vmUuid });
      new Res(T.Folder, "hand-folder", { path: "hand-folder", type: "vm", datacenterId: dc.id }, { import: adopt.folderId });
      const handCat = new Res(T.TagCategory, "hand-cat", { name: "hand-cat", cardinality: "SINGLE", associableTypes: ["VirtualMachine"] }, { import: adopt.categoryImport });
      new Res(T.Tag, "hand-tag", { name: "hand-tag", categoryId: handCat.id }, { import: adopt.tagImport });
      new Res(T.ResourcePool, "hand-pool", { name: "hand-pool", parentResourcePoolId: cluster.resourcePoolId }, { import: adopt.poolImport });
      new Res(T.DistributedPortGroup, "hand-pg", { name: "hand-pg", distributedVirtualSwitchUuid: dvs.id, vlanId: 40 }, { import: adopt.portGroupId });
    }
    return { vmNetType: vmNet.type, vmIds: vms.map((v) => v.id) };
  };
}

type StateResource = { type: string; urn: string; id?: string; outputs?: Record<string, unknown> };
async function stateResources(stack: Stack): Promise<StateResource[]> {
  const state = (await stack.exportStack()) as { deployment: { resources: StateResource[] } };
  return state.deployment.resources;
}

beforeAll(async () => {
  if (!existsSync(join(vspherePluginDir, "pulumi-resource-vsphere"))) {
    throw new Error(`${vspherePluginDir}/pulumi-resource-vsphere is missing: run scripts/setup.sh (it builds provider/vsphere)`);
  }
  backend = localBackend(join(dir, "state"));
  sim = await startVcsim(join(dir, "vcsim"), shape);
});

afterAll(async () => {
  // Whatever a failed test left: destroy each stack (best effort), then stop vcsim.
  for (const s of stacks) await s.destroy().catch(() => undefined);
  await sim?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("pulumi-resource-vsphere (Go, govmomi) under the real provider's tokens, against vcsim", () => {
  it("passes its Go tests: every input it implements is in schema.json, Diff's in-place and replacing changes, Check's refusals", async () => {
    // Compiled by set-up (`go test -c`) under the plugin's key: compiling it here, cold, ran past this test's limit.
    const key = (await run("bash", [join(repoRoot, "scripts", "vsphere-provider-key.sh")])).stdout.trim();
    const testBinary = join(cacheDir(), "tools", `vsphere-provider-${key}`, "test", "pulumi-resource-vsphere.test");
    if (!existsSync(testBinary)) throw new Error(`${testBinary} is missing: provider/vsphere changed since set-up compiled its tests; run scripts/setup.sh`);
    const res = await run(testBinary, [], { cwd: join(repoRoot, "provider", "vsphere"), env: toolEnv(), timeoutMs: 280_000 });
    expect(res.code, res.stdout + res.stderr).toBe(0);
  });

  let main: Stack;
  const timings: Record<string, number> = {};

  it(`creates a folder, a pool, a port group, a tag category and tag, and ${VMS} VMs cloned with customisation`, async () => {
    main = await inlineStack("pv-main", mainProgram(), backend, providerConfig());
    stacks.push(main);
    const t0 = Date.now();
    const up = await main.up();
    timings.up = Date.now() - t0;
    expect(up.summary.result).toBe("succeeded");
    expect(up.outputs.vmNetType?.value).toBe("Network");

    const conn = vc().connection;
    for (let i = 1; i <= VMS; i++) {
      const info = await vmInfo(vmPath(vmName(i)));
      expect(info?.config.hardware.numCPU).toBe(2);
      expect(info?.config.hardware.memoryMB).toBe(1024);
      expect(info?.config.annotation).toBe(`dcctl test ${vmName(i)}`);
      expect(info?.guest).toMatchObject({ hostName: vmName(i), ipAddress: `10.10.30.${10 + i}` });
      expect((await govc(conn, ["tags.attached.ls", "-r", vmPath(vmName(i))])).trim()).toBe("db");
    }
    // The 20 GB thin disk was added to the clone, and its NIC is on the new port group.
    const devices = JSON.parse(await g(["vm.info", "-json", vmPath(vmName(1))])) as { virtualMachines: { config: { hardware: { device: { capacityInKB?: number; backing?: { thinProvisioned?: boolean; port?: { portgroupKey: string } } }[] } } }[] };
    const hw = devices.virtualMachines[0]?.config.hardware.device ?? [];
    expect(hw.filter((d) => d.capacityInKB === 20 * 1024 * 1024 && d.backing?.thinProvisioned)).toHaveLength(1);
    const pgKey = (await g(["ls", "-i", `/${shape.datacenter}/network/pv-app`])).trim().split(":")[1];
    expect(hw.filter((d) => d.backing?.port?.portgroupKey === pgKey)).toHaveLength(1);
    // The VM's ID is its UUID, and the rule names the VMs it keeps apart.
    const ids = up.outputs.vmIds?.value as string[];
    expect(ids[0]).toBe((await vmInfo(vmPath(vmName(1))))?.config.uuid);
    const rule = await govc(conn, ["cluster.rule.ls", "-cluster", `/${shape.datacenter}/host/${shape.cluster}`, "-name", "pv-db-anti-affinity", "-l"]);
    expect(rule.split("\n").filter(Boolean).map((l) => l.replace(/ \(VM\)$/, "")).sort()).toEqual(Array.from({ length: VMS }, (_, i) => vmName(i + 1)));
    expect(await g(["ls", `/${shape.datacenter}/network`])).toContain("pv-app");
    expect(await g(["find", `/${shape.datacenter}/host/${shape.cluster}/Resources`, "-type", "p", "-name", "pv-tier-1"])).toContain("pv-tier-1");
    // The state file holds the password only encrypted (exportStack would show it decrypted).
    const stateFile = join(backend.dir, ".pulumi", "stacks", "dcctl", "pv-main.json");
    const raw = readFileSync(stateFile, "utf8");
    expect(raw).not.toContain(conn.password);
    expect(raw).toMatch(/"password":\{"4dabf18193072939515e22adb298388d":"1b47061264138c4ac30d75fd1eb44270","ciphertext"/);
    console.log(`vsphere plugin: up of ${VMS} cloned VMs and 6 other resources against vcsim took ${timings.up} ms`);
  });

  it("shows a CPU count changed by hand (govc vm.change -c 4) on refresh, and puts it back in place", async () => {
    await g(["vm.change", "-vm", vmPath(vmName(1)), "-c", "4"]);
    const refresh = await main.refresh();
    expect(refresh.summary.resourceChanges?.update ?? 0).toBe(1);
    const vm1 = (await stateResources(main)).find((r) => r.urn.endsWith(`::${vmName(1)}`));
    expect(vm1?.outputs?.numCpus).toBe(4);
    const preview = await main.preview();
    expect(preview.changeSummary.update).toBe(1);
    expect(preview.changeSummary.replace ?? 0).toBe(0);
    const t0 = Date.now();
    const up = await main.up();
    timings.update = Date.now() - t0;
    expect(up.summary.resourceChanges?.update).toBe(1);
    expect(up.summary.resourceChanges?.replace ?? 0).toBe(0);
    expect((await vmInfo(vmPath(vmName(1))))?.config.hardware.numCPU).toBe(2);
  });

  it("drops a VM destroyed by hand from the state on refresh, and the next up makes it again", async () => {
    // (vcsim derives a VM's UUID from its path, so the new VM has the old UUID; its managed object ID is new.)
    const moid = async () => (await g(["ls", "-i", vmPath(vmName(2))])).trim();
    const before = await moid();
    await g(["vm.destroy", vmPath(vmName(2))]);
    const refresh = await main.refresh();
    expect(refresh.summary.resourceChanges?.delete).toBe(1);
    expect((await stateResources(main)).some((r) => r.urn.endsWith(`::${vmName(2)}`))).toBe(false);
    const up = await main.up();
    expect(up.summary.resourceChanges?.create).toBe(1);
    expect(await moid()).not.toBe(before);
    const after = await vmInfo(vmPath(vmName(2)));
    expect(after?.guest).toMatchObject({ hostName: vmName(2), ipAddress: "10.10.30.12" });
    // The rule follows the new VM.
    const rule = await g(["cluster.rule.ls", "-cluster", `/${shape.datacenter}/host/${shape.cluster}`, "-name", "pv-db-anti-affinity", "-l"]);
    expect(rule).toContain(vmName(2));
  });

  it("plans a new annotation in place, and a new template as a replacement", async () => {
    const annotated = await (await inlineStack("pv-main", mainProgram({ firstAnnotation: "changed" }), backend, providerConfig())).preview({ diff: true });
    expect(annotated.changeSummary).toMatchObject({ update: 1 });
    expect(annotated.changeSummary.replace ?? 0).toBe(0);
    const retemplated = await (await inlineStack("pv-main", mainProgram({ lastTemplate: "tpl-debian-13" }), backend, providerConfig())).preview();
    expect(retemplated.changeSummary.replace).toBe(1);
    // …and the anti-affinity rule follows the new VM's ID in place.
    expect(retemplated.changeSummary.update ?? 0).toBeLessThanOrEqual(1);
  });

  it("imports a VM by UUID, a folder and port group by ID, a pool by path, a category by name and a tag as JSON (all made with govc), and the next up leaves them untouched", async () => {
    const dc = `/${shape.datacenter}`;
    await g(["folder.create", `${dc}/vm/hand-folder`]);
    const folderId = await folderMoid("hand-folder");
    expect(folderId).toMatch(/^group-/);
    const categoryId = (await g(["tags.category.create", "-t", "VirtualMachine", "-m=false", "hand-cat"])).trim();
    const tagId = (await g(["tags.create", "-c", "hand-cat", "hand-tag"])).trim();
    await g(["pool.create", `${dc}/host/${shape.cluster}/Resources/hand-pool`]);
    const poolId = (await g(["find", "-i", `${dc}/host/${shape.cluster}/Resources`, "-type", "p", "-name", "hand-pool"])).trim().split(":")[1] ?? "";
    await g(["dvs.portgroup.add", "-dc", shape.datacenter, "-dvs", shape.dvSwitch, "-vlan", "40", "hand-pg"]);
    const portGroupId = (await g(["find", "-i", `${dc}/network`, "-name", "hand-pg"])).trim().split(":")[1] ?? "";
    expect([categoryId, tagId, poolId, portGroupId].map((id) => id.split(/[-:]/)[0])).toEqual(["urn", "urn", "resgroup", "dvportgroup"]);
    await g(["vm.create", "-dc", shape.datacenter, "-on=false", "-ds", "ds1", "-net", "VM Network", "-pool", `/${shape.datacenter}/host/${shape.cluster}/Resources`, "-folder", `/${shape.datacenter}/vm`, "-c", "1", "-m", "512", "-g", "otherLinux64Guest", "hand-made"]);
    const uuid = (await vmInfo(`/${shape.datacenter}/vm/hand-made`))?.config.uuid ?? "";
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    const imported = await inlineStack("pv-main", mainProgram({
      adopt: {
        vmUuid: uuid, folderId, portGroupId,
        categoryImport: "hand-cat",
        tagImport: JSON.stringify({ category_name: "hand-cat", tag_name: "hand-tag" }),
        poolImport: `${dc}/host/${shape.cluster}/Resources/hand-pool`,
      },
    }), backend, providerConfig());
    const up = await imported.up();
    expect(up.summary.resourceChanges?.import).toBe(6);
    const again = await imported.up();
    expect(again.summary.resourceChanges?.update ?? 0).toBe(0);
    expect(again.summary.resourceChanges?.replace ?? 0).toBe(0);
    expect(again.summary.resourceChanges?.create ?? 0).toBe(0);
    expect((await vmInfo(`/${shape.datacenter}/vm/hand-made`))?.config.uuid).toBe(uuid);
    const state = (await stateResources(imported)).find((r) => r.urn.endsWith("::hand-made"));
    expect(state?.id).toBe(uuid);
    expect(state?.outputs).toMatchObject({ numCpus: 1, memory: 512, guestId: "otherLinux64Guest", imported: true });
    const ids = Object.fromEntries((await stateResources(imported)).map((r) => [r.urn.split("::").pop(), r.id]));
    expect(ids).toMatchObject({ "hand-folder": folderId, "hand-cat": categoryId, "hand-tag": tagId, "hand-pool": poolId, "hand-pg": portGroupId });
  });

  it("takes its configuration from an explicit provider, and refuses an input of the real schema it does not implement in one line", async () => {
    const c = vc().connection;
    const program = (extra: Record<string, unknown>) => async () => {
      const provider = new VsphereProvider("vc", { user: c.username, password: pulumi.secret(c.password), vsphereServer: c.url, allowUnverifiedSsl: true });
      const dc = (await pulumi.runtime.invoke(fn("getDatacenter"), { name: shape.datacenter }, { provider })) as { id: string };
      new Res(T.Folder, "explicit-folder", { path: "pv-explicit", type: "vm", datacenterId: dc.id, ...extra }, { provider });
    };
    const explicit = await inlineStack("pv-explicit", program({}), backend);
    stacks.push(explicit);
    expect((await explicit.up()).summary.result).toBe("succeeded");
    expect(await g(["ls", `/${shape.datacenter}/vm`])).toContain("pv-explicit");

    const refused = await inlineStack("pv-explicit", program({ customAttributes: { "key-1": "x" } }), backend);
    const err = (await refused.preview().then(() => undefined, (e: unknown) => e)) as Error | undefined;
    expect(err, "preview should fail").toBeDefined();
    // The engine repeats a diagnostic (as the step fails, then in its summary): one refusal, on one line.
    const lines = String(err?.message).split("\n").filter((l) => l.includes("customAttributes"));
    const refusals = new Set(lines.map((l) => l.replace(/^.*?error: /, "")));
    expect([...refusals]).toHaveLength(1);
    expect([...refusals][0]).toMatch(/input "customAttributes" is not implemented by dcctl's vsphere plugin; remove it$/);
    await explicit.destroy();
    expect(await g(["ls", `/${shape.datacenter}/vm`])).not.toContain("pv-explicit");
  });

  it("takes its configuration from VSPHERE_* environment variables when the stack sets none", async () => {
    const c = vc().connection;
    const env = { VSPHERE_USER: c.username, VSPHERE_PASSWORD: c.password, VSPHERE_SERVER: c.url, VSPHERE_ALLOW_UNVERIFIED_SSL: "1" };
    const stack = await inlineStack("pv-env", async () => {
      const f = (await pulumi.runtime.invoke(fn("getFolder"), { path: `/${shape.datacenter}/vm/pv` })) as { id: string };
      return { folderId: f.id };
    }, backend, {}, env);
    stacks.push(stack);
    const up = await stack.up();
    expect(up.outputs.folderId?.value).toBe(await folderMoid("pv"));
  });

  it("destroys everything it made, the imported VM too, and leaves the template", async () => {
    const t0 = Date.now();
    await main.destroy();
    timings.destroy = Date.now() - t0;
    const vms = (await g(["find", `/${shape.datacenter}/vm`, "-type", "m"])).split("\n").filter(Boolean);
    expect(vms.sort()).toEqual([`/${shape.datacenter}/vm/tpl-debian-12`, `/${shape.datacenter}/vm/tpl-debian-13`]);
    const left = await g(["ls", `/${shape.datacenter}/vm`]);
    expect(left).not.toContain("/pv");
    expect(left).not.toContain("hand-folder");
    expect(await g(["ls", `/${shape.datacenter}/network`])).not.toContain("pv-app");
    expect(await g(["find", `/${shape.datacenter}/host/${shape.cluster}/Resources`, "-type", "p", "-name", "pv-tier-1"])).toBe("");
    expect((await g(["tags.category.ls"])).trim()).toBe("");
    expect(await g(["ls", `/${shape.datacenter}/network`])).not.toContain("hand-pg");
    expect(await g(["find", `/${shape.datacenter}/host/${shape.cluster}/Resources`, "-type", "p", "-name", "hand-pool"])).toBe("");
    console.log(`vsphere plugin: in-place update ${timings.update} ms, destroy of everything ${timings.destroy} ms`);
  });
});

/** The SHA-1 thumbprint of the certificate vcsim presents, as Node reads it (AA:BB:…). */
function vcsimThumbprint(): Promise<string> {
  const { hostname, port } = new URL(vc().connection.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint);
      socket.end();
    });
    socket.on("error", reject);
  });
}

/** One property of the switch pv-dvs by govc, as JSON. */
const switchProp = async (prop: string): Promise<unknown> =>
  (JSON.parse(await g(["object.collect", "-json", `/${shape.datacenter}/network/pv-dvs`, prop])) as { val: unknown }[])[0]?.val;
/** A collected property that is an array comes as {_value: [...]} from govc's JSON. */
const items = <T>(v: unknown): T[] => (v as { _value?: T[] } | undefined)?._value ?? [];
const switchHosts = async () => items<{ value: string }>(await switchProp("summary.hostMember")).map((h) => h.value).sort();
const switchConfig = async () => (await switchProp("config")) as { maxMtu: number; description: string; uplinkPortPolicy: { uplinkPortName: string[] } };

interface SdkProgramOpts {
  /** The switch's hosts (host MOIDs). */
  hosts: string[];
  description?: string;
}

/**
 * A program written as the real provider's documentation writes one, against @pulumi/vsphere's classes and functions
 * (generated from our schema, so it compiles only if the shapes are the real provider's): a distributed switch with a
 * port group, two VMs cloned with customize.linuxOptions and no customize.networkInterfaces, kept together by an
 * affinity rule, and the host thumbprint and datastore cluster look-ups.
 */
function sdkProgram(opts: SdkProgramOpts) {
  return async () => {
    const dc = await vsphere.getDatacenter({ name: shape.datacenter });
    const cluster = await vsphere.getComputeCluster({ name: shape.cluster, datacenterId: dc.id });
    const tpl = await vsphere.getVirtualMachine({ name: "tpl-debian-12", datacenterId: dc.id });
    const vmNet = await vsphere.getNetwork({ name: "VM Network", datacenterId: dc.id });
    const pod = await vsphere.getDatastoreCluster({ name: "pv-pod", datacenterId: dc.id });
    const { hostname, port } = new URL(vc().connection.url);
    const thumbprint = await vsphere.getHostThumbprint({ address: hostname, port, insecure: true });

    const dvs = new vsphere.DistributedVirtualSwitch("pv-dvs", {
      name: "pv-dvs",
      datacenterId: dc.id,
      uplinks: ["uplink1", "uplink2"],
      activeUplinks: ["uplink1"],
      standbyUplinks: ["uplink2"],
      maxMtu: 9000,
      description: opts.description ?? "dcctl test switch",
      contactName: "lab",
      hosts: opts.hosts.map((hostSystemId) => ({ hostSystemId })),
    });
    const pg = new vsphere.DistributedPortGroup("pv-dvs-pg", { name: "pv-dvs-app", distributedVirtualSwitchUuid: dvs.id, vlanId: 50 });
    const vms = ["pv-nic-01", "pv-nic-02"].map(
      (name) =>
        new vsphere.VirtualMachine(name, {
          name,
          resourcePoolId: cluster.resourcePoolId,
          numCpus: 1,
          memory: 512,
          guestId: "debian11_64Guest",
          networkInterfaces: [{ networkId: vmNet.id }, { networkId: vmNet.id }],
          clone: { templateUuid: tpl.uuid, customize: { linuxOptions: { hostName: name, domain: "lab.local" } } },
          // vcsim reports no guest address without a static one in the customisation: do not wait for one.
          waitForGuestNetTimeout: 0,
        }),
    );
    // enabled said outright: the plugin fills no defaults, so a rule disabled by hand differs only from a program that says so.
    new vsphere.ComputeClusterVmAffinityRule("pv-together", { name: "pv-together", computeClusterId: cluster.id, virtualMachineIds: vms.map((v) => v.id), enabled: true });
    return {
      thumbprint: thumbprint.id,
      podId: pod.id,
      podDatastores: pod.datastores,
      dvsId: dvs.id,
      dvsConfigVersion: dvs.configVersion,
      portGroupSwitch: pg.distributedVirtualSwitchUuid,
      imported: vms.map((v) => v.imported),
    };
  };
}

describe("programs written for the real provider, through @pulumi/vsphere: switch, affinity rule, NIC defaults, thumbprint, datastore cluster", () => {
  let sdk: Stack;
  let hostIds: string[] = [];
  const cluster = () => `/${shape.datacenter}/host/${shape.cluster}`;
  const rule = async () =>
    (JSON.parse(await g(["object.collect", "-json", cluster(), "configurationEx.rule"])) as { val?: unknown }[]).flatMap((c) => items<{ name: string; enabled: boolean }>(c.val)).find((r) => r.name === "pv-together");

  it("makes a switch with hosts and uplinks, VMs customised with linuxOptions alone (one DHCP setting per NIC) and an affinity rule, and looks up a thumbprint and a datastore cluster", async () => {
    // A datastore cluster holding a second datastore, made by hand.
    const dsDir = join(dir, "pv-ds2");
    mkdirSync(dsDir, { recursive: true });
    await g(["datastore.create", "-dc", shape.datacenter, "-type", "local", "-name", "pv-ds2", "-path", dsDir, ...shape.esxiHosts.map((h) => `${cluster()}/${h}`)]);
    await g(["folder.create", "-pod", `/${shape.datacenter}/datastore/pv-pod`]);
    await g(["object.mv", `/${shape.datacenter}/datastore/pv-ds2`, `/${shape.datacenter}/datastore/pv-pod`]);
    const podMoid = (await g(["find", "-i", `/${shape.datacenter}/datastore`, "-name", "pv-pod"])).trim().split(":")[1];
    expect(podMoid).toMatch(/^group-p/);
    hostIds = (await g(["find", "-i", cluster(), "-type", "h"])).split("\n").filter(Boolean).map((l) => l.split(":")[1] ?? "").sort();
    expect(hostIds).toHaveLength(2);

    sdk = await inlineStack("pv-sdk", sdkProgram({ hosts: [hostIds[0] ?? ""] }), backend, providerConfig());
    stacks.push(sdk);
    const t0 = Date.now();
    const up = await sdk.up();
    console.log(`vsphere plugin: up of a switch, a port group, 2 VMs with default NIC settings and an affinity rule took ${Date.now() - t0} ms`);
    expect(up.summary.result).toBe("succeeded");

    expect(up.outputs.thumbprint?.value).toBe(await vcsimThumbprint());
    expect(up.outputs.podId?.value).toBe(podMoid);
    expect(up.outputs.podDatastores?.value).toEqual(["pv-ds2"]);
    // The switch's ID is its UUID, which the port group takes.
    expect(up.outputs.dvsId?.value).toBe(await switchProp("uuid"));
    expect(up.outputs.portGroupSwitch?.value).toBe(up.outputs.dvsId?.value);
    expect(await switchConfig()).toMatchObject({ maxMtu: 9000, description: "dcctl test switch", uplinkPortPolicy: { uplinkPortName: ["uplink1", "uplink2"] } });
    expect(await switchHosts()).toEqual([hostIds[0]]);
    expect(await g(["ls", `/${shape.datacenter}/network`])).toContain("pv-dvs-app");
    // Customised with a host name, and one (DHCP) setting for each of the two NICs.
    for (const name of ["pv-nic-01", "pv-nic-02"]) {
      const info = JSON.parse(await g(["vm.info", "-json", `/${shape.datacenter}/vm/${name}`])) as { virtualMachines: { guest: { hostName: string; net: unknown[] } }[] };
      expect(info.virtualMachines[0]?.guest.hostName).toBe(name);
      expect(info.virtualMachines[0]?.guest.net).toHaveLength(2);
    }
    expect(await rule()).toMatchObject({ enabled: true });
    expect(await g(["cluster.rule.info", "-cluster", cluster(), "-name", "pv-together"])).toContain("Type: ClusterAffinityRuleSpec");
    const members = await g(["cluster.rule.ls", "-cluster", cluster(), "-name", "pv-together", "-l"]);
    expect(members.split("\n").filter(Boolean).map((l) => l.replace(/ \(VM\)$/, "")).sort()).toEqual(["pv-nic-01", "pv-nic-02"]);
    expect(up.outputs.imported?.value).toEqual([false, false]);
  });

  it("refreshes to no change, shows an affinity rule disabled by hand, and the next up enables it again", async () => {
    const clean = await sdk.refresh();
    expect(clean.summary.resourceChanges?.update ?? 0).toBe(0);
    expect(clean.summary.resourceChanges?.delete ?? 0).toBe(0);
    await g(["cluster.rule.change", "-cluster", cluster(), "-name", "pv-together", "-enable=false"]);
    const drift = await sdk.refresh();
    expect(drift.summary.resourceChanges?.update).toBe(1);
    const up = await sdk.up();
    expect(up.summary.resourceChanges?.update).toBe(1);
    expect(up.summary.resourceChanges?.replace ?? 0).toBe(0);
    expect(await rule()).toMatchObject({ enabled: true });
  });

  it("adds a host to the switch in place, and says so when the server does not apply a switch setting (vcsim applies hosts only)", async () => {
    const both = await inlineStack("pv-sdk", sdkProgram({ hosts: hostIds }), backend, providerConfig());
    const up = await both.up();
    expect(up.summary.resourceChanges).toMatchObject({ update: 1 });
    expect(up.summary.resourceChanges?.replace ?? 0).toBe(0);
    expect(await switchHosts()).toEqual(hostIds);

    const described = await inlineStack("pv-sdk", sdkProgram({ hosts: hostIds, description: "changed" }), backend, providerConfig());
    const err = (await described.up().then(() => undefined, (e: unknown) => e)) as Error | undefined;
    expect(String(err?.message)).toMatch(/the server accepted the reconfiguration of switch \S+ but did not apply description/);
    expect(await switchConfig()).toMatchObject({ description: "dcctl test switch" });
  });

  it("destroys the switch, its port group, the VMs and the rule, and leaves the datastore cluster", async () => {
    await sdk.destroy();
    // (vcsim leaves a destroyed switch's uplink port group, pv-dvs-DVUplinks-N, behind; vCenter does not.)
    const network = (await g(["ls", `/${shape.datacenter}/network`])).split("\n");
    expect(network).not.toContain(`/${shape.datacenter}/network/pv-dvs`);
    expect(network).not.toContain(`/${shape.datacenter}/network/pv-dvs-app`);
    expect(await g(["find", `/${shape.datacenter}/vm`, "-type", "m", "-name", "pv-nic-*"])).toBe("");
    expect(await rule()).toBeUndefined();
    expect(await g(["ls", `/${shape.datacenter}/datastore`])).toContain("pv-pod");
  });
});
