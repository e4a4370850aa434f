import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as vsphere from "../provider/sdk.js";
import { govc } from "../provider/connection.js";
import { inlineStack, localBackend } from "../stacks/automation.js";
import { startVcsim, type VcenterShape } from "./vcsim.js";

const shape: VcenterShape = {
  datacenter: "SMOKE-DC",
  cluster: "SMOKE-Cluster",
  esxiHosts: ["esxi-01", "esxi-02"],
  datastores: ["ds-smoke"],
  dvSwitch: "SMOKE-DVS",
  templates: ["tpl-debian-12"],
};

/** The smoke stack: one folder and one VM cloned into it, with a static address. */
function smokeProgram(): void {
  const cfg = new pulumi.Config("vcenter");
  const connection = { url: cfg.require("url"), username: cfg.require("user"), password: cfg.requireSecret("password"), insecure: true };
  const common = { connection, datacenter: shape.datacenter };
  const pg = new vsphere.DistributedPortGroup("pg-app", { ...common, dvSwitch: shape.dvSwitch, name: "pg-app", vlanId: 30 });
  const pool = new vsphere.ResourcePool("pool", { ...common, cluster: shape.cluster, name: "smoke" });
  const folder = new vsphere.Folder("folder", { ...common, path: "smoke" });
  new vsphere.VirtualMachine(
    "vm",
    {
      ...common,
      name: "smoke-app-01",
      folder: "smoke",
      cluster: shape.cluster,
      resourcePool: pool.name,
      datastore: "ds-smoke",
      template: "tpl-debian-12",
      network: pg.name,
      numCpus: 2,
      memoryMb: 2048,
      disks: [{ label: "os", sizeGb: 20 }],
      customization: { hostName: "smoke-app-01", domain: "lab.local", ipv4Address: "10.99.30.11", ipv4Netmask: "255.255.255.0", gateway: "10.99.30.1", dnsServers: ["10.99.10.10"] },
      tags: [],
    },
    { dependsOn: [folder] },
  );
}

export interface SmokeResult {
  folderAfterUp: string;
  vmAfterUp: { name: string; ipAddress: string; powerState: string };
  secretInState: boolean;
  vmsAfterDestroy: string;
  vcsimPid: number;
}

/**
 * Proves the chain engine → provider plugin → govc → simulator: up the smoke stack against a fresh vcsim, read what
 * vCenter holds with govc, destroy, stop the simulator. Everything lives in a temporary folder, removed at the end.
 * `password` is the one the stack presents to the simulator (random by default).
 */
export async function runSmoke(log: (line: string) => void = () => undefined, opts: { password?: string } = {}): Promise<SmokeResult> {
  const dir = mkdtempSync(join(tmpdir(), "dcctl-smoke-"));
  const sim = await startVcsim(dir, shape, { password: opts.password });
  try {
    log(`vcsim listening at ${sim.connection.url} (pid ${sim.server.pid})`);
    const stack = await inlineStack("smoke", async () => smokeProgram(), localBackend(join(dir, "state")), {
      "vcenter:url": { value: sim.connection.url },
      "vcenter:user": { value: sim.connection.username },
      "vcenter:password": { value: sim.connection.password, secret: true },
    });
    const up = await stack.up({ onOutput: (l) => log(l.trimEnd()) });
    log(`pulumi up: ${JSON.stringify(up.summary.resourceChanges)}`);
    const folderAfterUp = await govc(sim.connection, ["ls", `/${shape.datacenter}/vm/smoke`]);
    const info = JSON.parse(await govc(sim.connection, ["vm.info", "-json", `/${shape.datacenter}/vm/smoke/smoke-app-01`])) as {
      virtualMachines: { name: string; guest: { ipAddress: string }; runtime: { powerState: string } }[];
    };
    const vm = info.virtualMachines[0];
    const state = JSON.stringify(await stack.exportStack());
    await stack.destroy({ onOutput: (l) => log(l.trimEnd()) });
    const vmsAfterDestroy = await govc(sim.connection, ["find", `/${shape.datacenter}/vm`, "-type", "m", "-name", "smoke-*"]);
    return {
      folderAfterUp,
      vmAfterUp: { name: vm?.name ?? "", ipAddress: vm?.guest.ipAddress ?? "", powerState: vm?.runtime.powerState ?? "" },
      secretInState: state.includes(`"${sim.connection.password}"`),
      vmsAfterDestroy,
      vcsimPid: sim.server.pid,
    };
  } finally {
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
