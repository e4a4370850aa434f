import { govc } from "../connection.js";
import { type ResourceHandler, publicInputs, str } from "./handler.js";

/** A resource pool directly under a cluster's root pool: id is its inventory path. */
export const resourcePool: ResourceHandler = {
  updatable: [],
  async create(conn, inputs) {
    const path = `/${str(inputs, "datacenter")}/host/${str(inputs, "cluster")}/Resources/${str(inputs, "name")}`;
    await govc(conn, ["pool.create", path]);
    return { id: path, outs: { ...publicInputs(inputs), inventoryPath: path } };
  },
  async delete(conn, id) {
    await govc(conn, ["pool.destroy", id]);
  },
};
