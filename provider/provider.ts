import type * as pulumi from "@pulumi/pulumi";
import type * as provider from "@pulumi/pulumi/provider/index.js";
import { connectionOf, govc, unwrapSecrets } from "./connection.js";
import { antiAffinityRule } from "./resources/anti-affinity-rule.js";
import { folder } from "./resources/folder.js";
import type { Props, ResourceHandler } from "./resources/handler.js";
import { portGroup } from "./resources/port-group.js";
import { resourcePool } from "./resources/resource-pool.js";
import { tag, tagCategory } from "./resources/tags.js";
import { virtualMachine } from "./resources/virtual-machine.js";
import { tokens } from "./tokens.js";

const handlers: Record<string, ResourceHandler> = {
  [tokens.Folder]: folder,
  [tokens.ResourcePool]: resourcePool,
  [tokens.DistributedPortGroup]: portGroup,
  [tokens.TagCategory]: tagCategory,
  [tokens.Tag]: tag,
  [tokens.VirtualMachine]: virtualMachine,
  [tokens.AntiAffinityRule]: antiAffinityRule,
};

function typeOf(urn: pulumi.URN): string {
  // urn:pulumi:STACK::PROJECT::PARENT$TYPE::NAME — the resource's own type is the last one before the name.
  const qualifiedType = urn.split("::")[2] ?? "";
  return qualifiedType.split("$").pop() ?? "";
}

function handlerFor(urn: pulumi.URN): ResourceHandler {
  const handler = handlers[typeOf(urn)];
  if (!handler) throw new Error(`dcvsphere: unknown resource type ${typeOf(urn)}`);
  return handler;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** The engine-facing side: dispatch each CRUD call to the handler of the resource's type. */
export const vsphereProvider: provider.Provider = {
  version: "0.1.0",
  async diff(_id, urn, rawOlds: Props, news: Props) {
    const handler = handlerFor(urn);
    // Both sides may carry secret envelopes (the engine re-secrets outputs whose inputs were secret): compare values.
    const olds = unwrapSecrets(rawOlds) as Props;
    const plainNews = unwrapSecrets(news) as Props;
    const changed = Object.keys({ ...olds, ...plainNews }).filter(
      (k) => k !== "connection" && k in plainNews && !same(olds[k], plainNews[k]),
    );
    const replaces = changed.filter((k) => !handler.updatable.includes(k));
    return { changes: changed.length > 0, replaces, deleteBeforeReplace: replaces.length > 0 };
  },
  async create(urn, inputs: Props) {
    const plain = unwrapSecrets(inputs) as Props;
    return handlerFor(urn).create(connectionOf(plain), plain);
  },
  async update(id, urn, olds: Props, news: Props) {
    const handler = handlerFor(urn);
    const plain = unwrapSecrets(news) as Props;
    if (!handler.update) throw new Error(`dcvsphere: ${typeOf(urn)} cannot be changed in place`);
    return { outs: await handler.update(connectionOf(plain), id, unwrapSecrets(olds) as Props, plain) };
  },
  async delete(id, urn, props: Props) {
    const plain = unwrapSecrets(props) as Props;
    await handlerFor(urn).delete(connectionOf(plain), id, plain);
  },
  async invoke(token, inputs: Props) {
    if (token !== tokens.getInventoryObject) throw new Error(`dcvsphere: unknown function ${token}`);
    const plain = unwrapSecrets(inputs) as Props;
    const path = String(plain.path);
    // `govc ls -i` prints the managed object reference of the path, or nothing when it does not exist.
    const ref = (await govc(connectionOf(plain), ["ls", "-i", path])).trim().split("\n")[0] ?? "";
    if (!ref) throw new Error(`dcvsphere: ${path} does not exist in vCenter`);
    return { outputs: { path, ref } };
  },
};
