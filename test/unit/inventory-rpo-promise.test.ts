import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkRpoPromises, loadPolicies } from "../../backup/policies.js";
import { loadSiteFile, type Sites } from "../../inventory/index.js";
import { displayPath } from "../../inventory/yaml-source.js";
import { dcctl, type CliRun } from "../helpers/cli.js";

/**
 * `dcctl inventory validate` warns, at the host's drTier line, about every host whose DR tier promises an RPO that
 * neither its backup policy nor (for a primary database) a standby of the same engine can meet.
 */

const scratch = mkdtempSync(join(tmpdir(), "dcctl-rpo-promise-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const policiesFile = join(scratch, "policies.yaml");
writeFileSync(
  policiesFile,
  `policies:
  db-hourly:
    sources: [{ kind: postgresql }, { kind: mariadb }]
    schedule: "5 * * * *"
    retention: { keepHourly: 48 }
    rpoMinutes: 90
    repository: primary
  db-often:
    sources: [{ kind: postgresql }, { kind: mariadb }]
    schedule: "*/10 * * * *"
    retention: { keepHourly: 48 }
    rpoMinutes: 15
    repository: primary
`,
);

const header = (site: string, net: number, extraNetwork = ""): string => `site: ${site}
domain: ${site}.test.example
dnsServers: [10.${net}.20.10]
vcenter: { datacenter: DC, cluster: C, esxiHosts: [esxi-01], datastores: [ds-01], dvSwitch: DVS }
templates: [{ name: tpl, os: linux }]
networks:
  - { name: database, vlan: 20, cidr: 10.${net}.20.0/24, gateway: 10.${net}.20.1, purpose: database }${extraNetwork}
drTiers:
  - { tier: 1, rpoMinutes: 15, rtoMinutes: 60 }
hosts:
`;

const host = (name: string, ip: string, policy: string, extra: string): string => `  - name: ${name}
    role: db
    cpus: 2
    memoryGb: 4
    disks: [{ label: os, sizeGb: 20 }]
    network: database
    ip: ${ip}
    template: tpl
    backupPolicy: ${policy}
    drTier: 1
${extra}`;

interface Case {
  /** The primary database's backup policy. */
  policy: string;
  /** The engine of its standby on the secondary; none when undefined. */
  standbyEngine?: string;
}

/** A pair of site files: a tier-1 PostgreSQL on the primary; the secondary with an active-only host and maybe a standby. */
function writeSites(name: string, c: Case): string {
  const dir = join(scratch, name);
  mkdirSync(dir);
  writeFileSync(join(dir, "primary.yaml"), header("primary", 10) + host("t-db-01", "10.10.20.11", c.policy, "    services: [postgresql]\n"));
  const drill = "\n  - { name: drill, vlan: 90, cidr: 10.20.90.0/24, gateway: 10.20.90.1, purpose: drill, isolated: true }";
  const standby = c.standbyEngine ? host("t-dr-db-01", "10.20.20.11", "db-hourly", `    services: [${c.standbyEngine}]\n    standbyFor: t-db-01\n`) : "";
  const activeOnly = host("t-dr-db-09", "10.20.20.19", "db-hourly", "    services: [postgresql]\n    activeOnly: true\n");
  writeFileSync(join(dir, "secondary.yaml"), header("secondary", 20, drill) + standby + activeOnly);
  return dir;
}

/** Both sites as loaded one file at a time: without the cross-site rules, which refuse a tier-1 db with no standby. */
function sitesOf(dir: string): Sites {
  return { primary: loadSiteFile(join(dir, "primary.yaml")), secondary: loadSiteFile(join(dir, "secondary.yaml")) };
}

/** `file:line` of the primary database's drTier, as the loader shows the file. */
function drTierLine(dir: string): string {
  const file = join(dir, "primary.yaml");
  return `${displayPath(file)}:${header("primary", 10).split("\n").length + 9}`;
}

const warningsOf = (dir: string): string[] => checkRpoPromises(sitesOf(dir), loadPolicies(policiesFile));

describe("checkRpoPromises", () => {
  it("warns at the drTier line about a tier-1 database with no standby and a 90-minute policy", () => {
    const dir = writeSites("no-standby", { policy: "db-hourly" });
    expect(warningsOf(dir)).toEqual([
      `${drTierLine(dir)}: warning: host "t-db-01": DR tier 1 promises an RPO of 15 min, but backup policy "db-hourly" has rpoMinutes 90 ` +
        `and there is no warm standby; add a standby on the secondary (standbyFor: t-db-01) or a policy with rpoMinutes <= 15`,
    ]);
  });

  it("counts a standby of the same engine as met, and warns neither for the standby nor for an active-only host", () => {
    expect(warningsOf(writeSites("same-engine", { policy: "db-hourly", standbyEngine: "postgresql" }))).toEqual([]);
  });

  it("does not count a standby of another engine", () => {
    const dir = writeSites("other-engine", { policy: "db-hourly", standbyEngine: "mariadb" });
    expect(warningsOf(dir)).toEqual([
      `${drTierLine(dir)}: warning: host "t-db-01": DR tier 1 promises an RPO of 15 min, but backup policy "db-hourly" has rpoMinutes 90 ` +
        `and its standby "t-dr-db-01" does not run postgresql; add postgresql to the services of "t-dr-db-01" or a policy with rpoMinutes <= 15`,
    ]);
  });

  it("is satisfied by a policy within the tier's RPO", () => {
    expect(warningsOf(writeSites("policy-within", { policy: "db-often" }))).toEqual([]);
  });
});

describe("dcctl inventory validate", () => {
  const dir = writeSites("cli", { policy: "db-hourly", standbyEngine: "mariadb" });
  const run = (args: string[]): CliRun =>
    dcctl(["inventory", "validate", ...args], { ...process.env, DCCTL_SITES_DIR: dir, DCCTL_POLICIES_FILE: policiesFile, DCCTL_DEBUG: "" });
  const lines = (text: string): string[] => text.split("\n").filter((line) => line !== "");

  it("prints the warning on stderr and still exits 0", () => {
    const result = run([]);
    // The same lines as checkRpoPromises, whose wording the tests above check.
    expect(lines(result.stderr)).toEqual(warningsOf(dir));
    expect(lines(result.stderr)).toHaveLength(1);
    expect(lines(result.stdout)).toEqual([`ok: ${displayPath(join(dir, "primary.yaml"))}: 1 hosts`, `ok: ${displayPath(join(dir, "secondary.yaml"))}: 2 hosts`]);
    expect(result.code).toBe(0);
  });

  it("keeps --json an array of the checked files, the warning on stderr", () => {
    const result = run(["--json"]);
    expect(JSON.parse(result.stdout)).toEqual([
      { file: displayPath(join(dir, "primary.yaml")), site: "primary", hosts: 1 },
      { file: displayPath(join(dir, "secondary.yaml")), site: "secondary", hosts: 2 },
    ]);
    expect(lines(result.stderr)).toHaveLength(1);
    expect(result.code).toBe(0);
  });
});
