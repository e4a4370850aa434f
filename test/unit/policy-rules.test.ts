import { describe, expect, it } from "vitest";
import { loadSites } from "../../inventory/index.js";
import { dbOnDmz, dbWithoutAntiAffinity, isDmzName, missingBackupTag, standbyShortfall, type VmView } from "../../stacks/policy/rules.js";
import { portGroupName } from "../../stacks/site-stack.js";

const primary = loadSites().primary;
const vm = (name: string, role: string, extra: Partial<VmView> = {}): VmView => ({
  name,
  networks: ["pg-database"],
  tags: [{ category: "secondary-role", tag: role }, { category: "secondary-backup-policy", tag: "db-daily" }],
  ...extra,
});

describe("the policy pack's rules", () => {
  it("wants a backup-policy tag on every VM", () => {
    expect(missingBackupTag(vm("a", "db"))).toBeUndefined();
    expect(missingBackupTag({ name: "b", networks: [], tags: [{ category: "primary-role", tag: "app" }] })).toBe("VM b has no backup-policy tag: every server must be backed up");
  });

  it("finds a database VM on a DMZ port group, and only that one", () => {
    const pgs = [{ name: "pg-dmz" }, { name: "pg-database" }];
    expect(dbOnDmz([vm("db-1", "db"), vm("db-2", "db", { networks: ["pg-dmz"] }), vm("web", "app", { networks: ["pg-dmz"] })], pgs)).toEqual(["database VM db-2 is on the DMZ network pg-dmz"]);
  });

  it("tells a DMZ port group by the word dmz in its name, and names every DMZ network's port group so", () => {
    for (const name of ["pg-dmz", "DMZ-web", "pg_dmz_01", "pg.dmz", "dmz"]) expect(isDmzName(name), name).toBe(true);
    for (const name of ["pg-database", "pg-dmzone", "admz", "pg-application"]) expect(isDmzName(name), name).toBe(false);
    expect(portGroupName({ name: "dmz", purpose: "dmz" })).toBe("pg-dmz");
    expect(portGroupName({ name: "public", purpose: "dmz" })).toBe("pg-dmz-public");
    expect(isDmzName(portGroupName({ name: "public", purpose: "dmz" }))).toBe(true);
    expect(portGroupName({ name: "database", purpose: "database" })).toBe("pg-database");
  });

  it("finds a database VM that no anti-affinity rule spreads", () => {
    expect(dbWithoutAntiAffinity([vm("db-1", "db"), vm("db-2", "db"), vm("db-3", "db")], [{ name: "r", virtualMachines: ["db-1", "db-2"] }])).toEqual(["database VM db-3 is in no anti-affinity rule"]);
  });

  it("wants as many standby databases at the secondary as the primary has tier-1 databases", () => {
    const tier1 = primary.hosts.filter((h) => h.role === "db" && h.drTier === 1).length;
    expect(tier1).toBeGreaterThan(1);
    const standbys = (n: number) => Array.from({ length: n }, (_, i) => vm(`dr-db-${i}`, "db"));
    expect(standbyShortfall(standbys(tier1), primary)).toBeUndefined();
    expect(standbyShortfall(standbys(tier1 - 1), primary)).toBe(`the secondary has ${tier1 - 1} standby database VMs but the primary has ${tier1} tier-1 database servers`);
  });
});
