import { govc } from "../connection.js";
import { type ResourceHandler, optStr, publicInputs, str } from "./handler.js";

/** A tag category for virtual machines: id is the category's URN. */
export const tagCategory: ResourceHandler = {
  updatable: [],
  async create(conn, inputs) {
    const multiple = inputs.cardinality === "MULTIPLE";
    const args = ["tags.category.create", "-t", "VirtualMachine", `-m=${multiple}`];
    const description = optStr(inputs, "description");
    if (description) args.push("-d", description);
    const id = (await govc(conn, [...args, str(inputs, "name")])).trim();
    return { id, outs: { ...publicInputs(inputs) } };
  },
  async delete(conn, id) {
    await govc(conn, ["tags.category.rm", id]);
  },
};

/** A tag in a category: id is the tag's URN. */
export const tag: ResourceHandler = {
  updatable: [],
  async create(conn, inputs) {
    const args = ["tags.create", "-c", str(inputs, "category")];
    const description = optStr(inputs, "description");
    if (description) args.push("-d", description);
    const id = (await govc(conn, [...args, str(inputs, "name")])).trim();
    return { id, outs: { ...publicInputs(inputs) } };
  },
  async delete(conn, id) {
    await govc(conn, ["tags.rm", id]);
  },
};
