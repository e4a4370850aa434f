import { ROLES, type DrTier, type Host, type Network, type Role, type Site, type SiteHost, type Sites } from "./types.js";

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

export function hostsByRole(site: Site, role: Role): Host[] {
  return site.hosts.filter((host) => host.role === role);
}

/** Every host of both sites, primary first, each with its site. */
export function allHosts(sites: Sites): SiteHost[] {
  return [
    ...sites.primary.hosts.map((host) => ({ site: "primary" as const, ...host })),
    ...sites.secondary.hosts.map((host) => ({ site: "secondary" as const, ...host })),
  ];
}

/** A host by name in either site (names are unique across sites), with its site. */
export function findHost(sites: Sites, name: string): SiteHost | undefined {
  return allHosts(sites).find((host) => host.name === name);
}

/** The network a host is on (the loader guarantees it exists for a loaded site). */
export function networkOf(site: Site, host: Host): Network {
  const network = site.networks.find((n) => n.name === host.network);
  if (!network) throw new Error(`host ${host.name}: network ${host.network} is not in site ${site.site}`);
  return network;
}

/** The DR tier of a host (the loader guarantees it exists for a loaded site). */
export function drTierOf(site: Site, host: Host): DrTier {
  const tier = site.drTiers.find((t) => t.tier === host.drTier);
  if (!tier) throw new Error(`host ${host.name}: drTier ${host.drTier} is not in site ${site.site}`);
  return tier;
}

/** The secondary host that stands by for a primary host, if any. */
export function standbyFor(sites: Sites, primaryHostName: string): Host | undefined {
  return sites.secondary.hosts.find((host) => host.standbyFor === primaryHostName);
}

/** The site's isolated drill network, if it has one. */
export function drillNetwork(site: Site): Network | undefined {
  return site.networks.find((n) => n.purpose === "drill" && n.isolated);
}

/**
 * Whether a name marks a DMZ network: it has the word `dmz` in it (any case; words split by `-`, `_`, `.` or a
 * space): `dmz`, `pg-dmz`, `DMZ-web`, `pg_dmz_01`. The policy pack tells a DMZ port group by its name so, and the
 * stacks name every DMZ network's port group so (stacks/site-stack.ts portGroupName).
 */
export function isDmzName(name: string): boolean {
  return name.split(/[-_. ]+/).some((word) => word.toLowerCase() === "dmz");
}
