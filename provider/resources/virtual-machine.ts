import { type VcenterConnection, govc, govcJson } from "../connection.js";
import { type Props, type ResourceHandler, num, optStr, publicInputs, str } from "./handler.js";

interface Disk {
  label: string;
  sizeGb: number;
}
interface Customization {
  hostName: string;
  domain: string;
  ipv4Address: string;
  ipv4Netmask: string;
  gateway: string;
  dnsServers?: string[];
}
interface TagRef {
  category: string;
  tag: string;
}

interface VmInfo {
  virtualMachines: {
    self: { value: string };
    guest?: { ipAddress?: string; hostName?: string };
    runtime?: { host?: { value: string }; powerState?: string };
  }[];
}

function vmPath(inputs: Props): string {
  return `/${str(inputs, "datacenter")}/vm/${str(inputs, "folder")}/${str(inputs, "name")}`;
}

function tagsOf(props: Props): TagRef[] {
  return Array.isArray(props.tags) ? (props.tags as TagRef[]) : [];
}

const tagKey = (t: TagRef) => `${t.category}\u0000${t.tag}`;

/** What vCenter reports about a VM after it changed: where it runs and what the guest says its address is. */
async function observed(conn: VcenterConnection, path: string): Promise<Props> {
  const info = await govcJson<VmInfo>(conn, ["vm.info", path]);
  const vm = info.virtualMachines[0];
  return {
    moid: vm?.self.value ?? "",
    guestIpAddress: vm?.guest?.ipAddress ?? "",
    guestHostName: vm?.guest?.hostName ?? "",
    esxiHost: vm?.runtime?.host?.value ?? "",
    powerState: vm?.runtime?.powerState ?? "",
  };
}

/**
 * A VM cloned from a template, with its disks, guest customisation (host name, domain, static address, gateway,
 * DNS), tags, and powered on so that the customisation applies. Id is its inventory path.
 */
export const virtualMachine: ResourceHandler = {
  updatable: ["numCpus", "memoryMb", "tags", "annotation"],
  async create(conn, inputs) {
    const dc = str(inputs, "datacenter");
    const path = vmPath(inputs);
    const pool = `/${dc}/host/${str(inputs, "cluster")}/Resources/${str(inputs, "resourcePool")}`;
    const clone = ["vm.clone", "-dc", dc, "-vm", str(inputs, "template"), "-folder", `/${dc}/vm/${str(inputs, "folder")}`];
    clone.push("-pool", pool, "-ds", str(inputs, "datastore"), "-net", str(inputs, "network"));
    clone.push("-c", String(num(inputs, "numCpus")), "-m", String(num(inputs, "memoryMb")), "-on=false");
    const annotation = optStr(inputs, "annotation");
    if (annotation) clone.push("-annotation", annotation);
    await govc(conn, [...clone, str(inputs, "name")]);
    try {
      for (const disk of (inputs.disks ?? []) as Disk[]) {
        await govc(conn, ["vm.disk.create", "-vm", path, "-ds", str(inputs, "datastore"), "-name", `${str(inputs, "name")}/${disk.label}`, "-size", `${disk.sizeGb}G`]);
      }
      const c = inputs.customization as Customization | undefined;
      if (c) {
        const args = ["vm.customize", "-vm", path, "-name", c.hostName, "-domain", c.domain];
        args.push("-ip", c.ipv4Address, "-netmask", c.ipv4Netmask, "-gateway", c.gateway);
        for (const dns of c.dnsServers ?? []) args.push("-dns-server", dns);
        await govc(conn, args);
      }
      for (const t of tagsOf(inputs)) await govc(conn, ["tags.attach", "-c", t.category, t.tag, path]);
      if (inputs.powerOn !== false) await govc(conn, ["vm.power", "-on", path]);
    } catch (err) {
      // A half-built VM would block the retry with "already exists": remove it so the next `up` starts clean.
      await govc(conn, ["vm.destroy", path]).catch(() => undefined);
      throw err;
    }
    return { id: path, outs: { ...publicInputs(inputs), inventoryPath: path, ...(await observed(conn, path)) } };
  },
  async update(conn, id, olds, news) {
    const change = ["vm.change", "-vm", id];
    if (olds.numCpus !== news.numCpus) change.push("-c", String(num(news, "numCpus")));
    if (olds.memoryMb !== news.memoryMb) change.push("-m", String(num(news, "memoryMb")));
    if (olds.annotation !== news.annotation) change.push("-annotation", optStr(news, "annotation") ?? "");
    if (change.length > 3) await govc(conn, change);
    const before = new Set(tagsOf(olds).map(tagKey));
    const after = new Set(tagsOf(news).map(tagKey));
    for (const t of tagsOf(olds)) if (!after.has(tagKey(t))) await govc(conn, ["tags.detach", "-c", t.category, t.tag, id]);
    for (const t of tagsOf(news)) if (!before.has(tagKey(t))) await govc(conn, ["tags.attach", "-c", t.category, t.tag, id]);
    return { ...publicInputs(news), inventoryPath: id, ...(await observed(conn, id)) };
  },
  async delete(conn, id, props) {
    // vCenter drops a destroyed VM's tag associations itself; the simulator keeps them and then refuses to delete
    // the tags, so detach first.
    for (const t of tagsOf(props)) await govc(conn, ["tags.detach", "-c", t.category, t.tag, id]).catch(() => undefined);
    await govc(conn, ["vm.destroy", id]);
  },
};
