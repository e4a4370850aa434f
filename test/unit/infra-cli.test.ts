import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dcctl } from "../helpers/cli.js";

const emptyState = mkdtempSync(join(tmpdir(), "dcctl-infra-cli-"));
afterAll(() => rmSync(emptyState, { recursive: true, force: true }));

interface Planned {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

describe("dcctl infra plan (mock run: no engine, no vCenter)", () => {
  it("prints the primary's 33 virtual machines as JSON", () => {
    const r = dcctl(["infra", "plan", "--stack", "primary", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const planned = JSON.parse(r.stdout) as Planned[];
    expect(planned.filter((p) => p.type === "vsphere:index/virtualMachine:VirtualMachine")).toHaveLength(33);
    expect(planned.some((p) => p.type.startsWith("dcvsphere:"))).toBe(false);
    expect(r.stdout).not.toContain("plan-placeholder");
  });

  it("adds the secondary's application tier with --mode active", () => {
    const count = (mode: string) => (JSON.parse(dcctl(["infra", "plan", "--stack", "secondary", "--mode", mode, "--json"]).stdout) as Planned[]).filter((p) => p.type.endsWith(":VirtualMachine")).length;
    expect(count("active") - count("standby")).toBe(7);
  });

  it("refuses an unknown stack with one line and exit 2", () => {
    const r = dcctl(["infra", "plan", "--stack", "tertiary"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain('Given: "tertiary", Choices: "primary", "secondary"');
  });

  it("refuses preview of a stack with no vCenter connection, saying how to set it", () => {
    const r = dcctl(["infra", "preview", "--stack", "primary", "--state", emptyState]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^dcctl: stack primary has no vCenter connection in .*: set it with dcctl infra configure --stack primary/);
  });
});
