import { govc } from "../connection.js";
import { type ResourceHandler, publicInputs, str } from "./handler.js";

function members(inputs: Record<string, unknown>): string[] {
  const vms = inputs.virtualMachines;
  if (!Array.isArray(vms) || vms.length < 2 || !vms.every((v) => typeof v === "string")) {
    throw new Error(`input "virtualMachines" must list at least two VM names`);
  }
  return vms as string[];
}

/** A DRS rule that keeps the named VMs on different ESXi hosts: id is CLUSTER_PATH#RULE_NAME. */
export const antiAffinityRule: ResourceHandler = {
  updatable: ["virtualMachines"],
  async create(conn, inputs) {
    const cluster = `/${str(inputs, "datacenter")}/host/${str(inputs, "cluster")}`;
    const name = str(inputs, "name");
    await govc(conn, ["cluster.rule.create", "-cluster", cluster, "-name", name, "-enable", "-anti-affinity", ...members(inputs)]);
    return { id: `${cluster}#${name}`, outs: { ...publicInputs(inputs) } };
  },
  async update(conn, id, _olds, news) {
    const [cluster, name] = id.split("#") as [string, string];
    await govc(conn, ["cluster.rule.remove", "-cluster", cluster, "-name", name]);
    await govc(conn, ["cluster.rule.create", "-cluster", cluster, "-name", name, "-enable", "-anti-affinity", ...members(news)]);
    return publicInputs(news);
  },
  async delete(conn, id) {
    const [cluster, name] = id.split("#") as [string, string];
    await govc(conn, ["cluster.rule.remove", "-cluster", cluster, "-name", name]);
  },
};
