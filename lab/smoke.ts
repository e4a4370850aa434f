import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as vsphere from "@pulumi/vsphere";
import { govc } from "./govc.js";
import { inlineStack, localBackend } from "../stacks/automation.js";
import { VSPHERE_CONFIG, vsphereServerOf } from "../stacks/infra.js";
import { startVcsim, type VcenterShape } from "./vcsim.js";

const shape: VcenterShape = {
  datacenter: "SMOKE-DC",
  cluster: "SMOKE-Cluster",
  esxiHosts: ["esxi-01", "esxi-02"],
  datastores: ["ds-smoke"],
  dvSwitch: "SMOKE-DVS",
  templates: ["tpl-debian-12"],
};

/** The smoke stack: one folder and one VM cloned into it, with a static address, through @pulumi/vsphere. */
function smokeProgram(): void {
  const datacenter = vsphere.getDatacenterOutput({ name: shape.datacenter });
  const datacenterId = datacenter.id;
  const cluster = vsphere.getComputeClusterOutput({ name: shape.cluster, datacenterId });
  const datastore = vsphere.getDatastoreOutput({ name: "ds-smoke", datacenterId });
  const dvs = vsphere.getDistributedVirtualSwitchOutput({ name: shape.dvSwitch, datacenterId });
  const template = vsphere.getVirtualMachineOutput({ name: "tpl-debian-12", datacenterId });
  const pg = new vsphere.DistributedPortGroup("pg-app", { name: "pg-app", distributedVirtualSwitchUuid: dvs.id, vlanId: 30 });
  const pool = new vsphere.ResourcePool("pool", { name: "smoke", parentResourcePoolId: cluster.resourcePoolId });
  const folder = new vsphere.Folder("folder", { path: "smoke", type: "vm", datacenterId });
  new vsphere.VirtualMachine("vm", {
    name: "smoke-app-01",
    resourcePoolId: pool.id,
    datastoreId: datastore.id,
    folder: folder.path,
    numCpus: 2,
    memory: 2048,
    guestId: template.guestId,
    networkInterfaces: [{ networkId: pg.id }],
    disks: [{ label: "os", size: 20, thinProvisioned: true }],
    clone: {
      templateUuid: template.uuid,
      customize: {
        linuxOptions: { hostName: "smoke-app-01", domain: "lab.local" },
        networkInterfaces: [{ ipv4Address: "10.99.30.11", ipv4Netmask: 24 }],
        ipv4Gateway: "10.99.30.1",
        dnsServerLists: ["10.99.10.10"],
      },
    },
  });
}

export interface SmokeResult {
  folderAfterUp: string;
  vmAfterUp: { name: string; ipAddress: string; powerState: string };
  secretInState: boolean;
  vmsAfterDestroy: string;
  vcsimPid: number;
}

/**
 * Proves the chain engine → vsphere provider plugin → simulator: up the smoke stack against a fresh vcsim, read what
 * vCenter holds with govc, destroy, stop the simulator. Everything lives in a temporary folder, removed at the end.
 * `password` is the one the stack presents to the simulator (random by default).
 */
export async function runSmoke(log: (line: string) => void = () => undefined, opts: { password?: string } = {}): Promise<SmokeResult> {
  const dir = mkdtempSync(join(tmpdir(), "dcctl-smoke-"));
  const sim = await startVcsim(dir, shape, { password: opts.password });
  try {
    log(`vcsim listening at ${sim.connection.url} (pid ${sim.server.pid})`);
    const stack = await inlineStack("smoke", async () => smokeProgram(), localBackend(join(dir, "state")), {
      [VSPHERE_CONFIG.server]: { value: vsphereServerOf(sim.connection.url) },
      [VSPHERE_CONFIG.user]: { value: sim.connection.username },
      [VSPHERE_CONFIG.password]: { value: sim.connection.password, secret: true },
      [VSPHERE_CONFIG.allowUnverifiedSsl]: { value: "true" },
    });
    const up = await stack.up({ onOutput: (l) => log(l.trimEnd()) });
    log(`pulumi up: ${JSON.stringify(up.summary.resourceChanges)}`);
    const folderAfterUp = await govc(sim.connection, ["ls", `/${shape.datacenter}/vm/smoke`]);
    const info = JSON.parse(await govc(sim.connection, ["vm.info", "-json", `/${shape.datacenter}/vm/smoke/smoke-app-01`])) as {
      virtualMachines: { name: string; guest: { ipAddress: string }; runtime: { powerState: string } }[];
    };
    const vm = info.virtualMachines[0];
    // The backend's own files, not stack.exportStack(): that exports with --show-secrets, so it always holds it.
    const secretInState = filesUnder(join(dir, "state")).some((f) => readFileSync(f, "utf8").includes(sim.connection.password));
    await stack.destroy({ onOutput: (l) => log(l.trimEnd()) });
    const vmsAfterDestroy = await govc(sim.connection, ["find", `/${shape.datacenter}/vm`, "-type", "m", "-name", "smoke-*"]);
    return {
      folderAfterUp,
      vmAfterUp: { name: vm?.name ?? "", ipAddress: vm?.guest.ipAddress ?? "", powerState: vm?.runtime.powerState ?? "" },
      secretInState,
      vmsAfterDestroy,
      vcsimPid: sim.server.pid,
    };
  } finally {
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every file below a folder (the state backend's: stacks, history, backups, config). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}
