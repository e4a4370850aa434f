import type { Host, Site, SiteName, Sites } from "../inventory/index.js";
import { vcenterAddress } from "./network.js";

/** One server process of the lab, at its host's inventory address inside the host's network namespace. */
export interface LabService {
  /** Unique: "sshd lab-db-01", "postgresql lab-db-01", "vcsim primary", … */
  name: string;
  kind: "vcsim" | "sshd" | "rest-server" | "postgresql" | "mariadb" | "portal";
  site: SiteName;
  /** The inventory host it belongs to (none for vcsim, which stands for the site's vCenter). */
  host?: string;
  address: string;
  port: number;
}

/** The services' real ports: each host is a namespace of its own, so they never collide. */
export const LAB_PORTS = { sshd: 22, postgresql: 5432, mariadb: 3306, "rest-server": 8000, portal: 8080, vcsim: 443 } as const;

/** Services that run on a host: its sshd always, then what its `services` list names. */
function hostServices(site: SiteName, host: Host): LabService[] {
  const at = (kind: LabService["kind"]): LabService => ({ name: `${kind} ${host.name}`, kind, site, host: host.name, address: host.ip, port: LAB_PORTS[kind as keyof typeof LAB_PORTS] });
  const out = [at("sshd")];
  if (host.services.includes("postgresql")) out.push(at("postgresql"));
  if (host.services.includes("mariadb")) out.push(at("mariadb"));
  if (host.services.includes("rest-server")) out.push(at("rest-server"));
  // The secondary's portal is started by the failover and drill runbooks, not by the lab.
  if (host.services.includes("portal") && !host.activeOnly) out.push(at("portal"));
  return out;
}

/** Every process `dcctl lab up` starts, in start order (vCenters, repositories, hosts' sshd, databases, portals). */
export function labServices(sites: Sites): LabService[] {
  const all: LabService[] = [];
  for (const site of [sites.primary, sites.secondary] as Site[]) {
    all.push({ name: `vcsim ${site.site}`, kind: "vcsim", site: site.site, address: vcenterAddress(site), port: LAB_PORTS.vcsim });
    for (const host of site.hosts) all.push(...hostServices(site.site, host));
  }
  const order: LabService["kind"][] = ["vcsim", "rest-server", "sshd", "postgresql", "mariadb", "portal"];
  return all.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
}

/** The database server the portal of a site reads from: the site's first PostgreSQL host. */
export function portalDatabase(services: LabService[], site: SiteName): LabService | undefined {
  return services.find((s) => s.site === site && s.kind === "postgresql");
}
