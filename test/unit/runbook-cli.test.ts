import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../util/tools.js";
import { dcctl as run } from "../helpers/cli.js";

/** `dcctl dr` through the built CLI (dist/cli/main.js): loader errors, plan, confirmation refusal. */

const state = mkdtempSync(join(tmpdir(), "dcctl-dr-cli-"));

afterAll(() => rmSync(state, { recursive: true, force: true }));

const dcctl = (args: string[], extra: Record<string, string> = {}) =>
  run(args, { ...process.env, DCCTL_SITES_DIR: "", DCCTL_DEBUG: "", DCCTL_STATE_DIR: state, DCCTL_REPOS_FILE: join(state, "none.yaml"), ...extra });

const lines = (t: string) => t.split("\n").filter((l) => l !== "");
const F = "test/fixtures/runbooks";

/** One fixture per error class, with the exact `file:line: message` lines. */
const expected: Record<string, string[]> = {
  "unknown-type.yaml": [
    `${F}/unknown-type.yaml:8: step "check": unknown step type "verfy" (did you mean "verify"?); known types: precheck, fence, restore-db, restore-pitr, promote, reprotect, infra, dns, verify, data-loss, command, notify, report`,
  ],
  "unknown-host.yaml": [`${F}/unknown-host.yaml:9: step "run-script": no host "qn-dr-db-09" in the inventory`],
  "no-match.yaml": [`${F}/no-match.yaml:9: step "run-script": targets (site: secondary, role: digitization) match no host in the inventory`],
  "cycle.yaml": [`${F}/cycle.yaml:9: dependency cycle: a → c → b → a`],
  "unknown-dependency.yaml": [`${F}/unknown-dependency.yaml:14: step "check": dependsOn names no step "restor-portal"`],
  "bad-timeout.yaml": [
    `${F}/bad-timeout.yaml:9: step "slow": bad timeout "5 minutes": write a positive duration such as 30s, 5m, 1h30m, at most 576h (24 days)`,
    `${F}/bad-timeout.yaml:13: step "zero": bad timeout "0s": write a positive duration such as 30s, 5m, 1h30m, at most 576h (24 days)`,
  ],
  "disruptive-drill.yaml": [
    `${F}/disruptive-drill.yaml:8: step "fence": a drill must not fence the primary (drills are non-disruptive)`,
    `${F}/disruptive-drill.yaml:12: step "touch-primary": a drill must not touch the primary site (only precheck may read about it); target the secondary`,
  ],
  "yaml-syntax.yaml": [`${F}/yaml-syntax.yaml:9: YAML syntax error: Tabs are not allowed as indentation`],
};

describe("dcctl dr plan: runbook checks", () => {
  for (const [file, want] of Object.entries(expected)) {
    it(`${file}: file:line errors, exit 2`, () => {
      const r = dcctl(["dr", "plan", "--runbook", `${F}/${file}`]);
      expect(lines(r.stderr)).toEqual(want);
      expect(r.stdout).toBe("");
      expect(r.code).toBe(2);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    });
  }

  it("names a runbook that does not exist", () => {
    const r = dcctl(["dr", "plan", "--runbook", "no-such-runbook"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^runbook no-such-runbook: cannot read .*runbooks\/no-such-runbook\.yaml: no such file/);
  });
});

function snapshot(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).map((e) => {
    const p = join(e.parentPath, e.name);
    const s = statSync(p);
    return `${p} ${s.size} ${s.mtimeMs}`;
  });
}

describe("dcctl dr plan", () => {
  for (const name of ["drill", "failover", "failback"]) {
    it(`prints every step of ${name} with its hosts and changes nothing`, () => {
      const before = [snapshot(state), snapshot(join(repoRoot, "runbooks")), snapshot(join(repoRoot, "stacks", "sites"))];
      const r = dcctl(["dr", "plan", "--runbook", name]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^runbook ${name} \\(${name} to (secondary|primary)\\) from runbooks/${name}\\.yaml`));
      expect(r.stdout).toMatch(/steps; nothing was changed \(this is a plan\)\.\n$/);
      expect([snapshot(state), snapshot(join(repoRoot, "runbooks")), snapshot(join(repoRoot, "stacks", "sites"))]).toEqual(before);
      expect(readdirSync(state)).toEqual([]);
    });
  }

  it("checks the lab's drill runbook against the lab inventory", () => {
    const r = dcctl(["dr", "plan", "--runbook", join(repoRoot, "lab", "runbooks", "drill.yaml"), "--json"], { DCCTL_SITES_DIR: join(repoRoot, "lab", "sites") });
    expect(r.stderr).toBe("");
    const plan = JSON.parse(r.stdout) as { steps: { id: string; hosts: { name: string }[] }[] };
    expect(plan.steps.map((s) => `${s.id}:${s.hosts.map((h) => h.name).join(",")}`)).toEqual([
      "precheck:lab-db-01,lab-db-02",
      "drill-copies:",
      "restore-portal-pitr:lab-dr-bk-01",
      "restore-portal:lab-dr-bk-01",
      "restore-mail:lab-dr-bk-01",
      "verify-portal:lab-dr-bk-01",
      "verify-mail:lab-dr-bk-01",
      "drill-network:",
      "report:",
    ]);
  });

  it("resolves targets to inventory hosts (--json)", () => {
    const r = dcctl(["dr", "plan", "--runbook", "failover", "--json"]);
    const plan = JSON.parse(r.stdout) as { kind: string; steps: { id: string; hosts: { name: string }[]; idempotent: boolean }[] };
    expect(plan.kind).toBe("failover");
    const byId = new Map(plan.steps.map((s) => [s.id, s]));
    expect(["portal", "lgsp", "edoc", "mail"].map((s) => byId.get(`promote-${s}`)?.hosts.map((h) => h.name).join())).toEqual(["qn-dr-db-01", "qn-dr-db-02", "qn-dr-db-03", "qn-dr-db-04"]);
    expect(byId.get("fence-primary-dbs")?.hosts.map((h) => h.name)).toEqual(["qn-db-01", "qn-db-02", "qn-db-03", "qn-db-04", "qn-db-05", "qn-db-06"]);
    // A promotion asks first (or finds its mark), so it may run again after a crash.
    expect(byId.get("promote-mail")?.idempotent).toBe(true);
    expect(byId.get("verify-databases")?.idempotent).toBe(true);
  });
});

describe("destructive runs need a confirmation", () => {
  it("dr failover without --yes and without a terminal refuses with exit 5, changing nothing", () => {
    const r = dcctl(["dr", "failover", "--to", "secondary"]);
    expect(r.code).toBe(5);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^dcctl: refusing to failover to the secondary site with runbook failover: stop writes on qn-app-portal-01, .* without --yes: no terminal to ask for confirmation\n$/);
    expect(readdirSync(state)).toEqual([]);
  });

  it("dr failback without --yes refuses the same way", () => {
    const r = dcctl(["dr", "failback", "--to", "primary"]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/refusing to failback to the primary site/);
  });

  it("--failed-at that is not one moment: exit 2, one line naming the flag, nothing run", () => {
    for (const [cmd, bad, why] of [
      [["dr", "drill"], "banana", /not a time \(use ISO 8601 with an offset/],
      [["dr", "drill"], "2026-11-22T05:40:00", /not a time \(use ISO 8601 with an offset/],
      [["dr", "failover", "--to", "secondary", "--yes"], "2026-02-30T05:40:00Z", /not a time: no such date or time of day/],
      [["dr", "failover", "--to", "secondary", "--yes"], "2999-01-01T00:00:00Z", /is in the future \(now is /],
    ] as const) {
      const started = Date.now();
      const r = dcctl([...cmd, "--failed-at", bad]);
      expect(r.code, r.stderr).toBe(2);
      expect(lines(r.stderr)).toHaveLength(1);
      expect(r.stderr.startsWith(`dcctl: --failed-at ${bad}: `)).toBe(true);
      expect(r.stderr).toMatch(why);
      expect(Date.now() - started).toBeLessThan(5_000);
    }
    expect(readdirSync(state)).toEqual([]);
  });

  it("--to must name the site the command moves service to", () => {
    const r = dcctl(["dr", "failover", "--to", "primary", "--yes"]);
    expect(r.code).toBe(2);
  });
});
