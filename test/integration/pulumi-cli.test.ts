import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSites } from "../../inventory/index.js";
import { shapeOf } from "../../lab/site-shape.js";
import { startVcsim, type Vcsim } from "../../lab/vcsim.js";
import { govc } from "../../lab/govc.js";
import { vsphereServerOf } from "../../stacks/infra.js";
import { run } from "../../util/process.js";
import { cacheDir, repoRoot, toolEnv } from "../../util/tools.js";

/**
 * The path an engineer takes by hand: `pulumi preview`, `up` and `destroy` on Pulumi.yaml, through the Node language host that set-up
 * builds (sdk 3.68.0) driving the newer engine. Runs in a copy of the project files so the repo stays untouched.
 */
const dir = mkdtempSync(join(tmpdir(), "dcctl-pulumi-cli-"));
let sim: Vcsim;

const base = toolEnv({
  PULUMI_HOME: join(dir, "home"),
  PULUMI_CONFIG_PASSPHRASE: "cli-test",
  PULUMI_BACKEND_URL: `file://${join(dir, "state")}`,
  PULUMI_SKIP_UPDATE_CHECK: "true",
});
const env = { ...base, PATH: `${join(cacheDir(), "langhost")}:${base.PATH ?? ""}` };
const pulumi = (args: string[], input?: string) => run("pulumi", [...args, "--non-interactive"], { cwd: join(dir, "project"), env, input });

beforeAll(async () => {
  sim = await startVcsim(join(dir, "vcsim"), shapeOf(loadSites().primary));
  const project = join(dir, "project");
  cpSync(join(repoRoot, "Pulumi.yaml"), join(project, "Pulumi.yaml"));
  cpSync(join(repoRoot, "Pulumi.primary.yaml"), join(project, "Pulumi.primary.yaml"));
  for (const linked of ["dist", "provider", "node_modules", "package.json", "stacks"]) symlinkSync(join(repoRoot, linked), join(project, linked));
  mkdirSync(join(dir, "state"));
});

afterAll(async () => {
  await sim.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("pulumi preview, up and destroy by hand, on Pulumi.yaml", () => {
  it("previews the primary's 33 VMs with the password stored as a secret, creates them in vCenter, and destroys them", async () => {
    expect((await pulumi(["stack", "init", "primary"])).code).toBe(0);
    const server = vsphereServerOf(sim.connection.url);
    for (const [k, v] of [["vsphere:vsphereServer", server], ["vsphere:user", sim.connection.username], ["vsphere:allowUnverifiedSsl", "true"]] as const) {
      expect((await pulumi(["config", "set", k, v])).code).toBe(0);
    }
    // The secret goes in on standard input, never on the command line.
    expect((await pulumi(["config", "set", "--secret", "vsphere:password"], sim.connection.password)).code).toBe(0);
    const preview = await pulumi(["preview", "--json"]);
    expect(preview.stderr).not.toMatch(/error/i);
    const steps = (JSON.parse(preview.stdout) as { steps: { op: string; urn: string }[] }).steps;
    expect(steps.filter((s) => s.op === "create" && /[:$]vsphere:index\/virtualMachine:VirtualMachine::/.test(s.urn))).toHaveLength(33);

    const up = await pulumi(["up", "--yes", "--skip-preview"]);
    expect(up.code, up.stderr + up.stdout.slice(-2000)).toBe(0);
    const vms = (await govc(sim.connection, ["find", "/", "-type", "m"])).split("\n").filter((l) => l.includes("/vm/primary/"));
    expect(vms).toHaveLength(33);
    const state = (await pulumi(["stack", "export"])).stdout;
    expect(state).not.toContain(sim.connection.password);

    const down = await pulumi(["destroy", "--yes", "--skip-preview"]);
    expect(down.code, down.stderr).toBe(0);
    expect((await govc(sim.connection, ["find", "/", "-type", "m"])).split("\n").filter((l) => l.includes("/vm/primary/"))).toEqual([]);
  });
});
