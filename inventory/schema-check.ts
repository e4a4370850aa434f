import type { ErrorObject } from "ajv";
import { schemaValidator, type SchemaSpec } from "../util/validator.js";
import { siteSchema } from "./schema.js";
import { asRecord, closest, fieldText, show, subjectOf, type Problem } from "./problems.js";
import type { DataPath } from "./yaml-source.js";
import type { DrTier, Network, NetworkPurpose, Role, SiteName, TemplateOs } from "./types.js";

/** A site file as written: the shape the schema guarantees, before defaults are applied. */
export interface RawSite {
  site: SiteName;
  description?: string;
  domain: string;
  dnsServers: string[];
  timeZone?: string;
  vcenter: { datacenter: string; cluster: string; esxiHosts: string[]; datastores: string[]; dvSwitch: string };
  templates: { name: string; os: TemplateOs }[];
  networks: (Omit<Network, "isolated" | "purpose"> & { purpose: NetworkPurpose; isolated?: boolean })[];
  drTiers: (Omit<DrTier, "drillEveryDays"> & { drillEveryDays?: number })[];
  hosts: RawHost[];
}

export interface RawHost {
  name: string;
  role: Role;
  cpus: number;
  memoryGb: number;
  disks: { label: string; sizeGb: number }[];
  network: string;
  ip: string;
  template: string;
  datastore?: string;
  backupPolicy: string;
  drTier: number;
  services?: string[];
  ssh?: { host?: string; port?: number; user?: string };
  activeOnly?: boolean;
  standbyFor?: string;
}

/** The site file's schema as the build compiles it (util/validator.ts); verbose: the messages below read parentSchema. */
export const SITE_SCHEMA: SchemaSpec = { name: "site", schema: siteSchema, options: { allErrors: true, verbose: true, strict: true } };
const validator = schemaValidator<RawSite>(SITE_SCHEMA);

/** Checks the structure of a parsed site file; the data is a RawSite exactly when no problems are returned. */
export function checkStructure(data: unknown): { ok: true; site: RawSite } | { ok: false; problems: Problem[] } {
  const validate = validator();
  if (validate(data)) return { ok: true, site: data };
  const problems = (validate.errors ?? []).map((err) => describeError(data, err));
  return { ok: false, problems };
}

function toPath(instancePath: string): (string | number)[] {
  if (!instancePath) return [];
  return instancePath
    .slice(1)
    .split("/")
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((part) => (/^(0|[1-9][0-9]*)$/.test(part) ? Number(part) : part));
}

const typeNames: Record<string, string> = {
  string: "a string",
  number: "a number",
  integer: "a whole number",
  boolean: "true or false",
  array: "a list",
  object: "a mapping",
};

function describeError(data: unknown, err: ErrorObject): Problem {
  const path = toPath(err.instancePath);
  const { subject, rest } = subjectOf(data, path);
  const at = (field: DataPath, predicate: string): string => {
    const name = fieldText(field);
    if (!subject) return name ? `${name} ${predicate}` : `the file ${predicate}`;
    return name ? `${subject}: ${name} ${predicate}` : `${subject} ${predicate}`;
  };
  const last = path[path.length - 1];
  const parentSchema = asRecord(err.parentSchema) ?? {};
  const isHostField = path[0] === "hosts" && typeof path[1] === "number";

  switch (err.keyword) {
    case "required": {
      const missing = String(err.params.missingProperty);
      if (isHostField && path.length === 2 && missing === "backupPolicy") {
        return { path, message: `${subject}: no backup policy (every host needs backupPolicy: <policy name>)` };
      }
      const message = `missing required field "${fieldText([...rest, missing])}"`;
      return { path, message: subject ? `${subject}: ${message}` : message };
    }
    case "additionalProperties": {
      const field = String(err.params.additionalProperty);
      const known = Object.keys(asRecord(parentSchema.properties) ?? {});
      const hint = closest(field, known);
      const message = `unknown field "${fieldText([...rest, field])}"${hint ? ` (did you mean "${hint}"?)` : ` (known fields: ${known.join(", ")})`}`;
      return { path: [...path, field], message: subject ? `${subject}: ${message}` : message };
    }
    case "enum": {
      const allowed = (err.params.allowedValues as unknown[]).map(String).join(", ");
      const message = `unknown ${typeof last === "string" ? last : fieldText(rest)} ${show(err.data)} (expected one of: ${allowed})`;
      return { path, message: subject ? `${subject}: ${message}` : message };
    }
    case "type":
    case "exclusiveMinimum":
    case "minLength":
      if (isHostField && last === "backupPolicy") {
        return { path, message: `${subject}: no backup policy (backupPolicy is ${show(err.data)}; every host needs one)` };
      }
      if (parentSchema.exclusiveMinimum === 0) {
        const whole = parentSchema.type === "integer";
        if (whole && typeof err.data === "number" && err.data > 0) return { path, message: at(rest, `must be a whole number (got ${show(err.data)})`) };
        return { path, message: at(rest, `must be a positive ${whole ? "whole " : ""}number (got ${show(err.data)})`) };
      }
      if (err.keyword === "minLength") return { path, message: at(rest, "must not be empty") };
      if (err.keyword === "type") {
        const wanted = String(err.params.type);
        return { path, message: at(rest, `must be ${typeNames[wanted] ?? wanted} (got ${show(err.data)})`) };
      }
      return { path, message: at(rest, `${err.message ?? "is invalid"} (got ${show(err.data)})`) };
    case "minItems": {
      const n = Number(err.params.limit);
      return { path, message: at(rest, `must list at least ${n} item${n === 1 ? "" : "s"}`) };
    }
    case "pattern":
      if (isHostField && last === "name") {
        return { path, message: `hosts[${String(path[1])}]: name ${show(err.data)} is not a valid host name (lower-case letters, digits and hyphens)` };
      }
      return { path, message: at(rest, `does not match ${String(err.params.pattern)} (got ${show(err.data)})`) };
    default:
      return { path, message: at(rest, `${err.message ?? "is invalid"} (got ${show(err.data)})`) };
  }
}
