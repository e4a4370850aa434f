import type { Problem } from "./problems.js";
import type { Sites } from "./types.js";

/** A problem found by comparing the two sites, with the site whose file it is reported in. */
export interface CrossSiteProblem extends Problem {
  site: keyof Sites;
}

/**
 * Checks that need both sites: standbys name primary hosts of the same role, every tier-1 primary database has a
 * warm standby, host names are unique across the sites, and the secondary has its isolated drill network.
 */
export function checkAcrossSites(sites: Sites, where: (site: keyof Sites, hostIndex: number) => string): CrossSiteProblem[] {
  const problems: CrossSiteProblem[] = [];
  const primaryHosts = new Map(sites.primary.hosts.map((host, index) => [host.name, { host, index }]));
  const standbys = new Map<string, number>();

  sites.secondary.hosts.forEach((host, i) => {
    const twin = primaryHosts.get(host.name);
    if (twin) {
      problems.push({
        site: "secondary",
        path: ["hosts", i, "name"],
        message: `host "${host.name}": also defined on the primary site (${where("primary", twin.index)}); host names must be unique across sites`,
      });
    }
    if (host.standbyFor === undefined) return;
    const path = ["hosts", i, "standbyFor"];
    const target = primaryHosts.get(host.standbyFor);
    if (!target) {
      problems.push({ site: "secondary", path, message: `host "${host.name}": standbyFor "${host.standbyFor}" is not a host of the primary site` });
      return;
    }
    if (target.host.role !== host.role) {
      problems.push({
        site: "secondary",
        path,
        message: `host "${host.name}": standbyFor "${host.standbyFor}" is a ${target.host.role} host; a ${host.role} host can only stand by for a ${host.role} host`,
      });
    }
    const first = standbys.get(host.standbyFor);
    if (first !== undefined) {
      problems.push({
        site: "secondary",
        path,
        message: `host "${host.name}": "${host.standbyFor}" already has a standby (host "${sites.secondary.hosts[first]?.name}", ${where("secondary", first)})`,
      });
    } else {
      standbys.set(host.standbyFor, i);
    }
  });

  sites.primary.hosts.forEach((host, i) => {
    if (host.role === "db" && host.drTier === 1 && !standbys.has(host.name)) {
      problems.push({
        site: "primary",
        path: ["hosts", i, "drTier"],
        message: `host "${host.name}": tier-1 database has no warm standby on the secondary site (no host there has standbyFor: ${host.name})`,
      });
    }
  });

  if (!sites.secondary.networks.some((network) => network.purpose === "drill" && network.isolated)) {
    problems.push({
      site: "secondary",
      path: ["networks"],
      message: `the secondary site has no isolated drill network (a network with purpose: drill and isolated: true)`,
    });
  }
  return problems;
}
