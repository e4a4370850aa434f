import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  allHosts,
  drillNetwork,
  findHost,
  hostLocation,
  hostsByRole,
  loadSiteFile,
  loadSites,
  siteFilePath,
  sitesDir,
  standbyFor,
  type Role,
} from "../../inventory/index.js";
import { InputError } from "../../util/errors.js";
import { repoRoot } from "../../util/tools.js";
import { crossSiteBadProblems, fixtureProblems } from "../fixtures/inventory/expected.js";

const fixtures = join(repoRoot, "test", "fixtures", "inventory");

/** The problems of the InputError that `load` throws (fails the test if it throws nothing or something else). */
function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    if (err instanceof InputError) return err.problems;
    throw err;
  }
  throw new Error("expected an InputError, but the file loaded");
}

const scratch = mkdtempSync(join(tmpdir(), "dcctl-inventory-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A path as the loader shows it: relative to the working directory when inside it. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith("..") ? path : rel;
}

function scratchFile(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

describe("the default site files", () => {
  const sites = loadSites();

  it("live in stacks/sites", () => {
    expect(sitesDir({})).toBe(join(repoRoot, "stacks", "sites"));
    expect(siteFilePath("primary")).toBe(join(repoRoot, "stacks", "sites", "primary.yaml"));
  });

  it("declare the primary's 6 db, 20 app, 5 backup and 2 digitization servers", () => {
    const count = (role: Role): number => hostsByRole(sites.primary, role).length;
    expect([count("db"), count("app"), count("backup"), count("digitization")]).toEqual([6, 20, 5, 2]);
    expect(sites.primary.hosts).toHaveLength(33);
    expect(sites.primary.site).toBe("primary");
    expect(sites.secondary.site).toBe("secondary");
  });

  it("never put a database on the dmz, and give every host a backup policy", () => {
    for (const site of [sites.primary, sites.secondary]) {
      const dmz = site.networks.filter((n) => n.purpose === "dmz").map((n) => n.name);
      for (const host of site.hosts) {
        expect(host.backupPolicy).not.toBe("");
        if (host.role === "db") expect(dmz).not.toContain(host.network);
      }
    }
  });

  it("give the secondary a repository, a warm standby per tier-1 database, a failover app tier and a drill network", () => {
    const { primary, secondary } = sites;
    expect(hostsByRole(secondary, "backup").length).toBeGreaterThanOrEqual(1);
    const tier1 = hostsByRole(primary, "db").filter((h) => h.drTier === 1);
    expect(tier1.length).toBeGreaterThan(0);
    for (const db of tier1) expect(standbyFor(sites, db.name)?.role).toBe("db");
    const standbys = secondary.hosts.filter((h) => h.standbyFor !== undefined);
    expect(standbys.length).toBeGreaterThanOrEqual(tier1.length);
    const apps = hostsByRole(secondary, "app");
    expect(apps.length).toBeGreaterThan(0);
    expect(apps.every((h) => h.activeOnly)).toBe(true);
    expect(drillNetwork(secondary)).toMatchObject({ purpose: "drill", isolated: true });
    expect(drillNetwork(primary)).toBeUndefined();
  });

  it("apply the defaults of optional fields", () => {
    const host = findHost(sites, "qn-app-portal-01");
    expect(host).toMatchObject({ site: "primary", datastore: "ds-ssd-01", activeOnly: false, services: ["portal", "nginx"] });
    expect(host?.ssh).toEqual({ host: host?.ip, port: 22, user: "dcctl" });
    expect(findHost(sites, "qn-bk-04")?.ssh).toMatchObject({ port: 2222, user: "dcctl" });
    expect(findHost(sites, "qn-dr-db-01")).toMatchObject({ site: "secondary", standbyFor: "qn-db-01" });
    expect(findHost(sites, "no-such-host")).toBeUndefined();
    expect(allHosts(sites)).toHaveLength(sites.primary.hosts.length + sites.secondary.hosts.length);
  });

  it("remember where each host was written", () => {
    const lineOf = (location: string | undefined): number => Number(location?.split(":").pop());
    expect(hostLocation(sites.primary, "qn-db-01")).toMatch(/stacks\/sites\/primary\.yaml:\d+$/);
    expect(lineOf(hostLocation(sites.primary, "qn-db-01", "backupPolicy"))).toBe(lineOf(hostLocation(sites.primary, "qn-db-01")) + 9);
    expect(hostLocation(sites.primary, "no-such-host")).toBeUndefined();
  });
});

describe("loadSiteFile reports every problem as file:line: message", () => {
  it("loads the small valid fixture", () => {
    expect(loadSiteFile(join(fixtures, "valid-small.yaml")).hosts.map((h) => h.name)).toEqual(["qn-db-01", "qn-app-01"]);
  });

  for (const [file, expected] of Object.entries(fixtureProblems)) {
    it(file, () => {
      expect(problemsOf(() => loadSiteFile(join(fixtures, file)))).toEqual(expected);
    });
  }

  it("reports several problems of one file together, in line order", () => {
    const problems = problemsOf(() => loadSiteFile(join(fixtures, "many-errors.yaml")));
    expect(problems).toHaveLength(5);
    const lines = problems.map((p) => Number(p.split(":")[1]));
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
  });

  const base = `site: primary
domain: d.example
dnsServers: [10.0.0.2]
vcenter: { datacenter: DC, cluster: C, esxiHosts: [e1], datastores: [ds1], dvSwitch: S }
templates: [{ name: t, os: linux }]
networks:
  - { name: lan, vlan: 10, cidr: 10.0.0.0/24, gateway: 10.0.0.1, purpose: application }
drTiers: [{ tier: 1, rpoMinutes: 15, rtoMinutes: 60 }]
hosts:
  - { name: h1, role: app, cpus: 2, memoryGb: 4, disks: [{ label: os, sizeGb: 20 }], network: lan, ip: 10.0.0.11, template: t, backupPolicy: p, drTier: 1 }
`;

  it("accepts the inline base document", () => {
    expect(loadSiteFile(scratchFile("base.yaml", base)).hosts).toHaveLength(1);
  });

  const extraNetwork = (line: string): string => base.replace("purpose: application }", `purpose: application }\n  - ${line}`);
  const cases: [string, string, string[]][] = [
    [
      "unclosed flow sequence",
      base.replace("dnsServers: [10.0.0.2]", "dnsServers: [10.0.0.2"),
      [":4: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]"],
    ],
    ["duplicate key", base.replace("domain: d.example\n", "domain: d.example\ndomain: e.example\n"), [":3: YAML syntax error: Map keys must be unique"]],
    ["empty file", "", [":1: the file is empty (expected a site mapping)"]],
    ["not a mapping", "- a\n", [':1: the file must be a mapping (got ["a"])']],
    [
      "misspelt top-level field",
      base.replace("domain:", "domian:"),
      [':1: missing required field "domain"', ':2: unknown field "domian" (did you mean "domain"?)'],
    ],
    [
      "cidr with host bits",
      base.replace("cidr: 10.0.0.0/24", "cidr: 10.0.0.5/24"),
      [':7: network "lan": cidr "10.0.0.5/24" has host bits set (the network is 10.0.0.0/24)'],
    ],
    ["gateway outside", base.replace("gateway: 10.0.0.1", "gateway: 10.9.0.1"), [':7: network "lan": gateway 10.9.0.1 is not a usable address of 10.0.0.0/24']],
    [
      "drill network not isolated",
      extraNetwork("{ name: drill, vlan: 90, cidr: 10.0.9.0/24, gateway: 10.0.9.1, purpose: drill }"),
      [':8: network "drill": a drill network must be isolated (add isolated: true)'],
    ],
    [
      "a non-DMZ network named as a DMZ (the policy pack would take its port group for one)",
      extraNetwork("{ name: old-dmz, vlan: 40, cidr: 10.0.4.0/24, gateway: 10.0.4.1, purpose: application }"),
      [':8: network "old-dmz": named as a DMZ, but its purpose is application: only a purpose: dmz network may have the word dmz in its name'],
    ],
    [
      "duplicate VLAN",
      extraNetwork("{ name: lan2, vlan: 10, cidr: 10.0.1.0/24, gateway: 10.0.1.1, purpose: database }"),
      [':8: network "lan2": VLAN 10 is already used by network "lan" (line 7)'],
    ],
    ["ip is the gateway", base.replace("ip: 10.0.0.11", "ip: 10.0.0.1"), [':10: host "h1": ip 10.0.0.1 is the gateway of network "lan"']],
    ["time zone unknown", base.replace("dnsServers: [10.0.0.2]", "dnsServers: [10.0.0.2]\ntimeZone: Asia/Hanoi_Typo"), [':4: timeZone "Asia/Hanoi_Typo" is not an IANA time zone (e.g. Asia/Ho_Chi_Minh, UTC)']],
    ["ip not an address", base.replace("ip: 10.0.0.11", "ip: 10.0.0.300"), [':10: host "h1": ip "10.0.0.300" is not an IPv4 address']],
    ["standbyFor on the primary", base.replace("drTier: 1 }", "drTier: 1, standbyFor: x }"), [':10: host "h1": standbyFor is only allowed on the secondary site']],
    ["empty backup policy", base.replace("backupPolicy: p", 'backupPolicy: ""'), [':10: host "h1": no backup policy (backupPolicy is ""; every host needs one)']],
    ["fractional cpus", base.replace("cpus: 2", "cpus: 2.5"), [':10: host "h1": cpus must be a whole number (got 2.5)']],
    [
      "bad host name",
      base.replace("name: h1", "name: H_1"),
      [':10: hosts[0]: name "H_1" is not a valid host name (lower-case letters, digits and hyphens)'],
    ],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => {
      const path = scratchFile(`${name.replace(/\W+/g, "-")}.yaml`, text);
      expect(problemsOf(() => loadSiteFile(path))).toEqual(expected.map((line) => shown(path) + line));
    });
  }

  it("reports a missing file in one line", () => {
    const path = join(scratch, "absent.yaml");
    expect(problemsOf(() => loadSiteFile(path))).toEqual([`${shown(path)}: cannot read the site file: no such file`]);
  });
});

describe("loadSites checks the rules across the two sites", () => {
  it("loads a valid pair", () => {
    const sites = loadSites(join(fixtures, "cross-site-ok"));
    expect(standbyFor(sites, "qn-db-01")?.name).toBe("qn-dr-db-01");
  });

  it("reports standbyFor pointing nowhere, a missing drill network, a tier-1 db without standby, a name on both sites", () => {
    expect(problemsOf(() => loadSites(join(fixtures, "cross-site-bad")))).toEqual(crossSiteBadProblems);
  });

  it("checks that each file declares the site it is named after", () => {
    const dir = join(scratch, "swapped");
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(fixtures, "cross-site-ok", "secondary.yaml"), join(dir, "primary.yaml"));
    copyFileSync(join(fixtures, "cross-site-ok", "primary.yaml"), join(dir, "secondary.yaml"));
    expect(problemsOf(() => loadSites(dir))).toEqual([
      `${shown(join(dir, "primary.yaml"))}:2: site is "secondary" but this is the primary site file (expected site: primary)`,
      `${shown(join(dir, "secondary.yaml"))}:2: site is "primary" but this is the secondary site file (expected site: secondary)`,
    ]);
  });
});
