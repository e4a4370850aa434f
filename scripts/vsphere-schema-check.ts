/**
 * Checks provider/vsphere/schema.json against the real provider's schema and prints, per resource, how many of the
 * real properties ours has (the table in the README).
 *
 *   node dist/scripts/vsphere-schema-check.js REAL_SCHEMA [OUR_SCHEMA]
 *
 * REAL_SCHEMA is pulumi-vsphere's provider/cmd/pulumi-resource-vsphere/schema.json, fetched by hand (never
 * committed). Every token, property and type of ours must exist in the real schema with the same type and the same
 * required-ness; the only difference allowed is a property of ours marked secret that the real one is not.
 * Exit 0 when ours is a faithful subset, 1 when it is not, 2 for bad arguments.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

interface Prop {
  type?: string;
  $ref?: string;
  items?: Prop;
  additionalProperties?: Prop;
  secret?: boolean;
}
interface ObjectSpec {
  properties?: Record<string, Prop>;
  required?: string[];
  language?: { nodejs?: { requiredOutputs?: string[] } };
}
interface ResourceSpec {
  inputProperties?: Record<string, Prop>;
  properties?: Record<string, Prop>;
  requiredInputs?: string[];
  required?: string[];
}
interface FunctionSpec {
  inputs?: ObjectSpec;
  outputs?: ObjectSpec;
}
interface Schema {
  name: string;
  config?: { variables?: Record<string, Prop>; defaults?: string[] };
  provider?: ResourceSpec;
  types?: Record<string, ObjectSpec>;
  resources?: Record<string, ResourceSpec>;
  functions?: Record<string, FunctionSpec>;
}

export const sevenResources = [
  "Folder",
  "ResourcePool",
  "DistributedPortGroup",
  "TagCategory",
  "Tag",
  "VirtualMachine",
  "ComputeClusterVmAntiAffinityRule",
] as const;

function typeOf(p: Prop): string {
  if (p.$ref !== undefined) return p.$ref;
  if (p.type === "array" && p.items) return `array<${typeOf(p.items)}>`;
  if (p.type === "object" && p.additionalProperties) return `map<${typeOf(p.additionalProperties)}>`;
  return p.type ?? "?";
}

function compareProps(
  where: string,
  ours: Record<string, Prop> | undefined,
  real: Record<string, Prop> | undefined,
  problems: string[],
): void {
  for (const [name, p] of Object.entries(ours ?? {})) {
    const r = real?.[name];
    if (!r) {
      problems.push(`${where}.${name}: not a property of the real schema`);
      continue;
    }
    if (typeOf(p) !== typeOf(r)) problems.push(`${where}.${name}: type ${typeOf(p)}, real ${typeOf(r)}`);
    if (r.secret === true && p.secret !== true) problems.push(`${where}.${name}: the real one is secret`);
  }
}

function compareRequired(
  where: string,
  names: string[],
  ours: string[] | undefined,
  real: string[] | undefined,
  problems: string[],
): void {
  for (const name of names) {
    const o = (ours ?? []).includes(name);
    const r = (real ?? []).includes(name);
    if (o !== r) problems.push(`${where}: ${name} is ${o ? "" : "not "}required here, ${r ? "" : "not "}in the real schema`);
  }
  for (const name of ours ?? []) if (!names.includes(name)) problems.push(`${where}: ${name} required but not declared`);
}

export interface Count {
  resource: string;
  ours: number;
  real: number;
}

export function check(ours: Schema, real: Schema): { problems: string[]; counts: Count[] } {
  const problems: string[] = [];
  if (ours.name !== real.name) problems.push(`name ${ours.name}, real ${real.name}`);
  compareProps("config", ours.config?.variables, real.config?.variables, problems);
  compareRequired("config defaults", Object.keys(ours.config?.variables ?? {}), ours.config?.defaults, real.config?.defaults, problems);
  compareProps("provider", ours.provider?.inputProperties, real.provider?.inputProperties, problems);

  for (const [tok, t] of Object.entries(ours.types ?? {})) {
    const r = real.types?.[tok];
    if (!r) {
      problems.push(`type ${tok}: not in the real schema`);
      continue;
    }
    const names = Object.keys(t.properties ?? {});
    compareProps(tok, t.properties, r.properties, problems);
    compareRequired(tok, names, t.required, r.required, problems);
    const want = (r.language?.nodejs?.requiredOutputs ?? []).filter((n) => names.includes(n)).sort();
    const have = [...(t.language?.nodejs?.requiredOutputs ?? [])].sort();
    if (want.join() !== have.join()) problems.push(`${tok}: requiredOutputs [${have.join()}], real ∩ ours [${want.join()}]`);
  }

  const counts: Count[] = [];
  for (const [tok, res] of Object.entries(ours.resources ?? {})) {
    const r = real.resources?.[tok];
    if (!r) {
      problems.push(`resource ${tok}: not in the real schema`);
      continue;
    }
    compareProps(`${tok} input`, res.inputProperties, r.inputProperties, problems);
    compareProps(tok, res.properties, r.properties, problems);
    compareRequired(`${tok} requiredInputs`, Object.keys(res.inputProperties ?? {}), res.requiredInputs, r.requiredInputs, problems);
    compareRequired(`${tok} required`, Object.keys(res.properties ?? {}), res.required, r.required, problems);
    const all = (s: ResourceSpec) => new Set([...Object.keys(s.inputProperties ?? {}), ...Object.keys(s.properties ?? {})]);
    counts.push({ resource: tok.split(":")[2] ?? tok, ours: all(res).size, real: all(r).size });
  }

  for (const [tok, f] of Object.entries(ours.functions ?? {})) {
    const r = real.functions?.[tok];
    if (!r) {
      problems.push(`function ${tok}: not in the real schema`);
      continue;
    }
    for (const side of ["inputs", "outputs"] as const) {
      const o = f[side];
      const rs = r[side];
      compareProps(`${tok} ${side}`, o?.properties, rs?.properties, problems);
      compareRequired(`${tok} ${side}`, Object.keys(o?.properties ?? {}), o?.required, rs?.required, problems);
    }
  }
  for (const name of sevenResources) {
    if (!counts.some((c) => c.resource === name)) problems.push(`resource ${name}: missing from ours`);
  }
  return { problems, counts };
}

function main(argv: string[]): number {
  const [realPath, oursPath = fileURLToPath(new URL("../../provider/vsphere/schema.json", import.meta.url))] = argv;
  if (!realPath) {
    process.stderr.write("usage: vsphere-schema-check REAL_SCHEMA [OUR_SCHEMA]\n");
    return 2;
  }
  const read = (p: string) => JSON.parse(readFileSync(p, "utf8")) as Schema;
  const { problems, counts } = check(read(oursPath), read(realPath));
  process.stdout.write("| resource | properties: ours / real |\n|---|---|\n");
  for (const c of counts) process.stdout.write(`| ${c.resource} | ${c.ours} / ${c.real} |\n`);
  for (const p of problems) process.stderr.write(`${p}\n`);
  return problems.length === 0 ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main(process.argv.slice(2));
