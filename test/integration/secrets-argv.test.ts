import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runSmoke } from "../../lab/smoke.js";
import { runOk } from "../../util/process.js";
import { toolEnv, toolPath } from "../../util/tools.js";
import { sampleArgvDuring } from "../helpers/argv-sampler.js";
import { startDcctl } from "../helpers/cli.js";

/**
 * `ps` shows every process's arguments to every user of the machine. These runs sample the process table every 20 ms
 * while the vCenter password is being stored and used, and look for it in every command line seen.
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-secrets-argv-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const newPassword = () => `vc-${randomBytes(12).toString("hex")}`;
/** The `pulumi config set` of one secret (ours), and the Automation API's `set-all` (where secrets used to go). */
const pulumiCmd = /(^|\/)pulumi /;
const secretSet = /(^|\/)pulumi config set --secret .*vsphere:password$/;
const setAll = /(^|\/)pulumi config set-all /;

describe("no secret on a command line", () => {
  it("infra configure stores the vCenter password as a secret, handing it to pulumi on stdin", async () => {
    const password = newPassword();
    const pwFile = join(work, "vc.pass");
    writeFileSync(pwFile, password + "\n", { mode: 0o600 });
    const state = join(work, "state");
    const url = "https://vcenter.example/sdk";

    const { result: run, seen } = await sampleArgvDuring(
      () => startDcctl(["infra", "configure", "--stack", "primary", "--state", state, "--url", url, "--user", "svc", "--password-file", pwFile]).done,
    );
    expect(run.code, run.stderr).toBe(0);

    console.log(`infra configure: ${seen.samples} samples, ${seen.processes(pulumiCmd)} pulumi processes (${seen.processes(secretSet)} setting the secret)`);
    expect(seen.containing(password)).toEqual([]);
    // The sampler did see the commands that carry config, so it would have seen the password there.
    expect(seen.processes(secretSet)).toBe(1);
    expect(seen.containing("vsphere:vsphereServer=vcenter.example").filter((l) => setAll.test(l))).not.toEqual([]);

    // Stored encrypted, and what pulumi decrypts is the password exactly.
    const pulumi = (args: string[]) =>
      runOk(toolPath("pulumi"), [...args, "--stack", "primary"], {
        cwd: state,
        env: toolEnv({ PULUMI_CONFIG_PASSPHRASE_FILE: join(state, "passphrase"), PULUMI_HOME: join(state, ".pulumi-home"), PULUMI_SKIP_UPDATE_CHECK: "true" }),
      });
    const listed = (await pulumi(["config"])).stdout;
    expect(listed).toMatch(/^vsphere:password\s+\[secret\]$/m);
    expect(listed).not.toContain(password);
    expect((await pulumi(["config", "get", "vsphere:password"])).stdout).toBe(password + "\n");
    const stackFile = readFileSync(join(state, "Pulumi.primary.yaml"), "utf8");
    expect(stackFile).toMatch(/vsphere:password:\n\s+secure: v1:/);
    expect(stackFile).not.toContain(password);
  });

  it("the smoke run (config, up, destroy against vcsim) never shows it either", async () => {
    const password = newPassword();
    const { result, seen } = await sampleArgvDuring(() => runSmoke(undefined, { password }));
    expect(result.vmsAfterDestroy.trim()).toBe("");

    console.log(
      `smoke: ${seen.samples} samples, ${seen.processes(pulumiCmd)} pulumi processes (${seen.processes(secretSet)} setting the secret), ` +
        `${seen.processes(/\/govc /)} govc, ${seen.processes(/pulumi-resource-vsphere/)} provider`,
    );
    expect(seen.containing(password)).toEqual([]);
    expect(seen.processes(secretSet)).toBe(1);
    expect(seen.processes(/(^|\/)pulumi up /)).toBeGreaterThan(0);
    expect(seen.processes(/\/govc /)).toBeGreaterThan(0);
  });
});
