import { NETWORK_PURPOSES, ROLES, SITE_NAMES, TEMPLATE_OSES } from "./types.js";

/**
 * The JSON schema of a site file: structure, field names, types and ranges. References between fields
 * (host.network → networks[].name, ...), uniqueness and addresses are checked in ./semantic-checks.ts.
 * Every object is closed (`additionalProperties: false`) so that a misspelt field is an error, not a silent default.
 */

const positive = { type: "number", exclusiveMinimum: 0 } as const;
const positiveInteger = { type: "integer", exclusiveMinimum: 0 } as const;
const name = { type: "string", minLength: 1 } as const;
const names = { type: "array", items: name } as const;

const hostSchema = {
  type: "object",
  additionalProperties: false,
  required: ["name", "role", "cpus", "memoryGb", "disks", "network", "ip", "template", "backupPolicy", "drTier"],
  properties: {
    name: { type: "string", pattern: "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" },
    role: { type: "string", enum: [...ROLES] },
    cpus: positiveInteger,
    memoryGb: positive,
    disks: {
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["label", "sizeGb"],
        properties: { label: name, sizeGb: positive },
      },
    },
    network: name,
    ip: { type: "string" },
    template: name,
    datastore: name,
    backupPolicy: name,
    drTier: { type: "integer" },
    services: names,
    ssh: {
      type: "object",
      additionalProperties: false,
      properties: {
        host: name,
        port: { type: "integer", minimum: 1, maximum: 65535 },
        user: name,
      },
    },
    activeOnly: { type: "boolean" },
    standbyFor: name,
  },
} as const;

export const siteSchema = {
  type: "object",
  additionalProperties: false,
  required: ["site", "domain", "dnsServers", "vcenter", "templates", "networks", "drTiers", "hosts"],
  properties: {
    site: { type: "string", enum: [...SITE_NAMES] },
    description: { type: "string" },
    domain: name,
    dnsServers: { type: "array", minItems: 1, items: { type: "string" } },
    vcenter: {
      type: "object",
      additionalProperties: false,
      required: ["datacenter", "cluster", "esxiHosts", "datastores", "dvSwitch"],
      properties: {
        datacenter: name,
        cluster: name,
        esxiHosts: { ...names, minItems: 1 },
        datastores: { ...names, minItems: 1 },
        dvSwitch: name,
      },
    },
    templates: {
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["name", "os"],
        properties: { name, os: { type: "string", enum: [...TEMPLATE_OSES] } },
      },
    },
    networks: {
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["name", "vlan", "cidr", "gateway", "purpose"],
        properties: {
          name,
          vlan: { type: "integer", minimum: 1, maximum: 4094 },
          cidr: { type: "string" },
          gateway: { type: "string" },
          purpose: { type: "string", enum: [...NETWORK_PURPOSES] },
          isolated: { type: "boolean" },
        },
      },
    },
    drTiers: {
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["tier", "rpoMinutes", "rtoMinutes"],
        properties: { tier: positiveInteger, rpoMinutes: positive, rtoMinutes: positive, drillEveryDays: positiveInteger },
      },
    },
    hosts: { type: "array", items: hostSchema },
  },
} as const;
