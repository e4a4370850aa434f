import { govc } from "../connection.js";
import { type ResourceHandler, publicInputs, str } from "./handler.js";

/** A VM folder: id is its inventory path, /DATACENTER/vm/PATH. */
export const folder: ResourceHandler = {
  updatable: [],
  async create(conn, inputs) {
    const path = `/${str(inputs, "datacenter")}/vm/${str(inputs, "path")}`;
    await govc(conn, ["folder.create", path]);
    return { id: path, outs: { ...publicInputs(inputs), inventoryPath: path } };
  },
  async delete(conn, id) {
    await govc(conn, ["object.destroy", id]);
  },
};
