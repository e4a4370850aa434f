import { govc } from "../connection.js";
import { type ResourceHandler, num, publicInputs, str } from "./handler.js";

/** A distributed port group with one VLAN on an existing distributed switch: id is its network path. */
export const portGroup: ResourceHandler = {
  updatable: [],
  async create(conn, inputs) {
    const dc = str(inputs, "datacenter");
    const name = str(inputs, "name");
    await govc(conn, ["dvs.portgroup.add", "-dc", dc, "-dvs", str(inputs, "dvSwitch"), "-vlan", String(num(inputs, "vlanId")), "-type", "earlyBinding", name]);
    const path = `/${dc}/network/${name}`;
    return { id: path, outs: { ...publicInputs(inputs), inventoryPath: path } };
  },
  async delete(conn, id) {
    await govc(conn, ["object.destroy", id]);
  },
};
