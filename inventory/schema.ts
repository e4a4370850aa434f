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
    name: { type: "string", pattern: "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", description: "The host name (a DNS label), unique across both sites; the VM's name in vCenter." },
    role: { type: "string", enum: [...ROLES], description: "What the server does; `backup` is the management-and-backup role (where dcctl runs)." },
    cpus: { ...positiveInteger, description: "Virtual CPUs." },
    memoryGb: { ...positive, description: "Memory in GB." },
    disks: {
      type: "array",
      minItems: 1,
      description: "The VM's disks.",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["label", "sizeGb"],
        properties: { label: { ...name, description: "The disk's label in vSphere (os, data, wal...)." }, sizeGb: { ...positive, description: "Size in GB, thin-provisioned." } },
      },
    },
    network: { ...name, description: "The name of a network of the same site." },
    ip: { type: "string", description: "Static IPv4 address inside the network's cidr." },
    template: { ...name, description: "The name of a template of the same site." },
    datastore: { ...name, description: "A datastore of the site; default the site's first datastore." },
    backupPolicy: { ...name, description: "A policy of backup/policies.yaml: what is backed up, when, kept how long, where." },
    drTier: { type: "integer", description: "A tier listed in the site's drTiers: the RPO and RTO its services are measured against." },
    services: { ...names, description: "What runs on it (postgresql, mariadb, portal, lgsp, mail...): DR readiness is judged per service. Default none." },
    ssh: {
      type: "object",
      additionalProperties: false,
      description: "How dcctl reaches the host over SSH, when not at its ip, port 22, as dcctl.",
      properties: {
        host: { ...name, description: "The address to reach it at; default the host's ip." },
        port: { type: "integer", minimum: 1, maximum: 65535, default: 22, description: "The SSH port." },
        user: { ...name, default: "dcctl", description: "The login." },
      },
    },
    activeOnly: { type: "boolean", default: false, description: "The VM exists only when the secondary stack runs with dr:mode=active (after a failover)." },
    standbyFor: { ...name, description: "Secondary only: the primary host this warm standby takes over; with the same database engine, a replication pair." },
  },
} as const;

export const siteSchema = {
  type: "object",
  additionalProperties: false,
  required: ["site", "domain", "dnsServers", "vcenter", "templates", "networks", "drTiers", "hosts"],
  properties: {
    site: { type: "string", enum: [...SITE_NAMES], description: "The role this data centre plays: primary (the new one) or secondary (the former one: backups, standbys, drills)." },
    description: { type: "string", description: "Free text for people." },
    domain: { ...name, description: "The DNS domain of the site's servers (guest customisation)." },
    dnsServers: { type: "array", minItems: 1, items: { type: "string" }, description: "IPv4 addresses of the site's DNS servers (guest customisation)." },
    timeZone: {
      type: "string",
      minLength: 1,
      description: "The IANA time zone of the site's wall clock (e.g. Asia/Ho_Chi_Minh): a time typed without an offset (restore --at, --before) is read in it, and points in time are said in it beside UTC. Without it, such a time is refused.",
    },
    vcenter: {
      type: "object",
      additionalProperties: false,
      required: ["datacenter", "cluster", "esxiHosts", "datastores", "dvSwitch"],
      description: "Where the site's VMs go in vSphere; the stack looks each up by name.",
      properties: {
        datacenter: { ...name, description: "The vSphere datacenter's name." },
        cluster: { ...name, description: "The compute cluster's name: its root pool is the parent of the tier pools." },
        esxiHosts: { ...names, minItems: 1, description: "The ESXi hosts of the cluster." },
        datastores: { ...names, minItems: 1, description: "The datastores VMs may use; the first is a host's default." },
        dvSwitch: { ...name, description: "The distributed switch the VLANs' port groups are made on." },
      },
    },
    templates: {
      type: "array",
      minItems: 1,
      description: "The VM templates hosts are cloned from.",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["name", "os"],
        properties: { name: { ...name, description: "The template VM's name in vCenter." }, os: { type: "string", enum: [...TEMPLATE_OSES], description: "Its guest OS family." } },
      },
    },
    networks: {
      type: "array",
      minItems: 1,
      description: "The site's VLANs, one port group each on the distributed switch.",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["name", "vlan", "cidr", "gateway", "purpose"],
        properties: {
          name: { ...name, description: "The network's name; its port group is pg-<name> (pg-dmz... for a DMZ)." },
          vlan: { type: "integer", minimum: 1, maximum: 4094, description: "The VLAN ID." },
          cidr: { type: "string", description: "The IPv4 network, e.g. 10.10.20.0/24." },
          gateway: { type: "string", description: "The gateway's IPv4 address, inside cidr." },
          purpose: { type: "string", enum: [...NETWORK_PURPOSES], description: "What it carries; the policy pack keeps database VMs off dmz." },
          isolated: { type: "boolean", default: false, description: "The drill network: nothing routes in or out." },
        },
      },
    },
    drTiers: {
      type: "array",
      minItems: 1,
      description: "The DR tiers: the RPO and RTO targets runs are measured against.",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["tier", "rpoMinutes", "rtoMinutes"],
        properties: {
          tier: { ...positiveInteger, description: "The tier's number, as hosts' drTier name it." },
          rpoMinutes: { ...positive, description: "Recovery point objective: how much data, in minutes, a failover may lose." },
          rtoMinutes: { ...positive, description: "Recovery time objective: how long, in minutes, until service is back." },
          drillEveryDays: { ...positiveInteger, default: 90, description: "Days between drills that prove the targets; past it, dr readiness calls a service overdue." },
        },
      },
    },
    hosts: { type: "array", items: hostSchema, description: "The site's servers, one VM each." },
  },
} as const;
