import { describe, expect, it } from "vitest";
import { crossSiteBadProblems, fixtureProblems } from "../fixtures/inventory/expected.js";
import { dcctl as runDcctl, type CliRun } from "../helpers/cli.js";

/** `dcctl inventory` end to end: the built CLI (dist/cli/main.js) run as a child process from the repository root. */

const dcctl = (args: string[], env: Record<string, string> = {}): CliRun => runDcctl(args, { ...process.env, DCCTL_SITES_DIR: "", DCCTL_DEBUG: "", ...env });

const lines = (text: string): string[] => text.split("\n").filter((line) => line !== "");

function expectNoStackTrace(run: CliRun): void {
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(run.stderr).not.toMatch(/Error:/);
}

describe("dcctl inventory validate", () => {
  it("checks both default site files, warning of the databases whose tier's RPO nothing meets", () => {
    const run = dcctl(["inventory", "validate"]);
    // qn-db-05/06 have no standby and a daily dump: their tiers promise 4 h and 24 h.
    expect(lines(run.stderr).map((l) => l.replace(/ promises .*/, ""))).toEqual([
      'stacks/sites/primary.yaml:98: warning: host "qn-db-05": DR tier 2',
      'stacks/sites/primary.yaml:110: warning: host "qn-db-06": DR tier 3',
    ]);
    expect(lines(run.stdout)).toEqual(["ok: stacks/sites/primary.yaml: 33 hosts", "ok: stacks/sites/secondary.yaml: 13 hosts"]);
    expect(run.code).toBe(0);
  });

  it("checks one site with --site, as JSON with --json", () => {
    expect(lines(dcctl(["inventory", "validate", "--site", "primary"]).stdout)).toEqual(["ok: stacks/sites/primary.yaml: 33 hosts"]);
    const run = dcctl(["inventory", "validate", "--site", "secondary", "--json"]);
    expect(JSON.parse(run.stdout)).toEqual([{ file: "stacks/sites/secondary.yaml", site: "secondary", hosts: 13 }]);
  });

  it("checks a file given with --file", () => {
    const run = dcctl(["inventory", "validate", "--file", "test/fixtures/inventory/valid-small.yaml"]);
    expect(run.stdout).toBe("ok: test/fixtures/inventory/valid-small.yaml: 2 hosts\n");
    expect(run.code).toBe(0);
  });

  for (const [file, expected] of Object.entries(fixtureProblems)) {
    it(`prints every problem of ${file} as file:line: message and exits 2`, () => {
      const run = dcctl(["inventory", "validate", "--file", `test/fixtures/inventory/${file}`]);
      expect(lines(run.stderr)).toEqual(expected);
      expect(run.stdout).toBe("");
      expect(run.code).toBe(2);
      expectNoStackTrace(run);
    });
  }

  it("reports the cross-site rules of the two files in DCCTL_SITES_DIR", () => {
    const run = dcctl(["inventory", "validate"], { DCCTL_SITES_DIR: "test/fixtures/inventory/cross-site-bad" });
    expect(lines(run.stderr)).toEqual(crossSiteBadProblems);
    expect(run.code).toBe(2);
  });

  it("reports an unreadable file in one line, exit 2", () => {
    const run = dcctl(["inventory", "validate", "--file", "test/fixtures/inventory/no-such-file.yaml"]);
    expect(lines(run.stderr)).toEqual(["test/fixtures/inventory/no-such-file.yaml: cannot read the site file: no such file"]);
    expect(run.code).toBe(2);
  });

  it("refuses --site together with --file, and an unknown site, with exit 2", () => {
    for (const args of [["--site", "primary", "--file", "x.yaml"], ["--site", "tertiary"]]) {
      const run = dcctl(["inventory", "validate", ...args]);
      expect(run.code).toBe(2);
      expect(lines(run.stderr)).toHaveLength(1);
      expectNoStackTrace(run);
    }
  });
});

describe("dcctl inventory show", () => {
  it("--json --role db lists the 6 primary databases and the secondary's standbys, each with its site", () => {
    const run = dcctl(["inventory", "show", "--json", "--role", "db"]);
    expect(run.code).toBe(0);
    const hosts = JSON.parse(run.stdout) as { name: string; site: string; role: string; ip: string }[];
    expect(hosts.every((h) => h.role === "db")).toBe(true);
    expect(hosts.filter((h) => h.site === "primary")).toHaveLength(6);
    expect(hosts.filter((h) => h.site === "secondary").length).toBeGreaterThanOrEqual(3);
    expect(hosts[0]).toMatchObject({ name: "qn-db-01", site: "primary", ip: "10.10.20.11" });
  });

  it("--site primary --json has all 33 primary hosts", () => {
    const hosts = JSON.parse(dcctl(["inventory", "show", "--site", "primary", "--json"]).stdout) as { site: string }[];
    expect(hosts).toHaveLength(33);
    expect(new Set(hosts.map((h) => h.site))).toEqual(new Set(["primary"]));
  });

  it("prints a table with name, site, role, cpus, memory, network, ip, backup policy and DR tier", () => {
    const run = dcctl(["inventory", "show", "--site", "secondary", "--role", "db"]);
    expect(run.code).toBe(0);
    const [header, ...rows] = lines(run.stdout);
    expect(header?.split(/\s{2,}/)).toEqual(["NAME", "SITE", "ROLE", "CPUS", "MEMORY", "NETWORK", "IP", "BACKUP POLICY", "DR TIER"]);
    expect(rows[0]?.split(/\s{2,}/)).toEqual(["qn-dr-db-01", "secondary", "db", "16", "64 GB", "database", "10.20.20.11", "db-daily", "1"]);
  });

  it("refuses an unknown role with one clear line and exit 2", () => {
    const run = dcctl(["inventory", "show", "--role", "database"]);
    expect(run.stderr).toBe('dcctl inventory show: unknown role "database" (expected one of: db, app, backup, digitization)\n');
    expect(run.stdout).toBe("");
    expect(run.code).toBe(2);
  });

  it("reports a broken inventory with file:line and exit 2", () => {
    const run = dcctl(["inventory", "show"], { DCCTL_SITES_DIR: "test/fixtures/inventory/cross-site-bad" });
    expect(lines(run.stderr)).toEqual(crossSiteBadProblems);
    expect(run.code).toBe(2);
    expectNoStackTrace(run);
  });
});
