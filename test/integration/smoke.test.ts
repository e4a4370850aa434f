import { describe, expect, it } from "vitest";
import { runSmoke } from "../../lab/smoke.js";
import { isAlive as alive } from "../../util/process.js";


describe("the whole chain: Pulumi engine, the vsphere provider plugin and vcsim", () => {
  it("creates a folder and a customised VM, then destroys them and stops the simulator", async () => {
    const result = await runSmoke();
    expect(result.folderAfterUp.trim()).toBe("/SMOKE-DC/vm/smoke/smoke-app-01");
    expect(result.vmAfterUp).toEqual({ name: "smoke-app-01", ipAddress: "10.99.30.11", powerState: "poweredOn" });
    expect(result.secretInState).toBe(false);
    expect(result.vmsAfterDestroy.trim()).toBe("");
    expect(alive(result.vcsimPid)).toBe(false);
  });
});
