import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { vsphereServerOf } from "../../stacks/infra.js";
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
    expect(r.stderr).toContain('--stack "tertiary" is not one of: primary, secondary');
  });

  it("refuses preview of a stack with no vCenter connection, saying how to set it", () => {
    const r = dcctl(["infra", "preview", "--stack", "primary", "--state", emptyState]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^dcctl: stack primary has no vCenter connection in .*: set it with dcctl infra configure --stack primary/);
  });
});

describe("the vCenter connection as the vsphere provider's configuration", () => {
  it("takes vsphere:vsphereServer from the SDK URL: the host, with its port when not 443", () => {
    expect(vsphereServerOf("https://vcenter.dc1.example/sdk")).toBe("vcenter.dc1.example");
    expect(vsphereServerOf("https://10.10.10.20:8989/sdk")).toBe("10.10.10.20:8989");
    expect(vsphereServerOf("https://vcenter.dc1.example")).toBe("vcenter.dc1.example");
    for (const bad of ["http://vcenter/sdk", "https://vcenter/other", "vcenter", "https://u:p@vcenter/sdk"]) expect(() => vsphereServerOf(bad), bad).toThrow(/--url/);
  });

  it("refuses, with exit 2, a URL the vsphere provider cannot reach", () => {
    const r = dcctl(["infra", "configure", "--stack", "primary", "--state", emptyState, "--url", "http://vcenter.example/sdk", "--user", "u", "--password-file", "/nonexistent"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/the vSphere provider reaches vCenter only at https:\/\/HOST\[:PORT\]\/sdk/);
  });
});
