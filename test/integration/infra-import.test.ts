import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSites } from "../../inventory/index.js";
import { shapeOf } from "../../lab/site-shape.js";
import { startVcsim, type Vcsim } from "../../lab/vcsim.js";
import { govc as govcAt } from "../../lab/govc.js";
import { sampleArgvDuring } from "../helpers/argv-sampler.js";
import { dcctl, type CliRun } from "../helpers/cli.js";

/**
 * `dcctl infra import` against vcsim, through the built CLI, the real engine and dcctl's vsphere plugin. The servers
 * already exist: the primary's stack is applied with one state folder, which is then forgotten (a fresh state
 * folder takes its place), so vCenter holds the 33 VMs, their folders, pools, port groups, tags and rules and no
 * state knows them; one application server is also destroyed by hand, to stand for one the province never built.
 */

const site = loadSites().primary;
const dc = site.vcenter.datacenter;
const dir = mkdtempSync(join(tmpdir(), "dcctl-infra-import-"));
const oldState = join(dir, "state-old");
const state = join(dir, "state");
let sim: Vcsim | undefined;

function vc(): Vcsim {
  if (!sim) throw new Error("vcsim is not running");
  return sim;
}

/** govc against the test's vcsim (lab/govc.ts: the password by environment only). */
const govc = (args: string[]): Promise<string> => govcAt(vc().connection, args);

const vmPath = (name: string) => {
  const host = site.hosts.find((h) => h.name === name);
  if (!host) throw new Error(`no host ${name}`);
  return `/${dc}/vm/${site.site}/${host.role}/${name}`;
};
const vmInfo = async (name: string) =>
  (JSON.parse(await govc(["vm.info", "-json", vmPath(name)])) as { virtualMachines: { config: { uuid: string; hardware: { numCPU: number } } }[] }).virtualMachines[0]?.config;

function infra(cmd: string, stateDir: string, ...extra: string[]): CliRun {
  const t0 = Date.now();
  const r = dcctl(["infra", cmd, "--stack", "primary", "--state", stateDir, ...extra]);
  console.log(`dcctl infra ${cmd} ${extra.join(" ")}: exit ${r.code} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return r;
}
function ok(r: CliRun): string {
  expect(r.code, `${r.stderr}\n${r.stdout.slice(-2000)}`).toBe(0);
  return r.stdout;
}
function configure(stateDir: string): void {
  const c = vc().connection;
  const pw = join(dir, "vc.pass");
  writeFileSync(pw, c.password + "\n", { mode: 0o600 });
  ok(infra("configure", stateDir, "--url", c.url, "--user", c.username, "--password-file", pw, "--insecure"));
}

interface Outcome {
  kind: string;
  name: string;
  status: string;
  id?: string;
}
const importJson = (stateDir: string) => (JSON.parse(ok(infra("import", stateDir, "--json"))) as { resources: Outcome[] }).resources;
/** The JSON line after the engine's output: preview prints its change summary there. */
const lastJson = <T>(text: string): T => JSON.parse(text.trim().split("\n").pop() ?? "{}") as T;

const apps = site.hosts.filter((h) => h.role === "app");
/** The application server that "was never built": destroyed by hand before the import. */
const missing = apps[apps.length - 1]?.name ?? "";
/** The server changed by hand after the import, for refresh to find. */
const driftedHost = site.hosts.find((h) => h.role === "db");
const drifted = driftedHost?.name ?? "";
/** 4 CPUs, as an operator would set by hand, unless the inventory already says 4. */
const handCpus = driftedHost?.cpus === 4 ? 6 : 4;
const uuids = new Map<string, string>();

beforeAll(async () => {
  sim = await startVcsim(join(dir, "vcsim"), shapeOf(site));
  // The data centre as it stands before dcctl manages it: built, then its state forgotten.
  configure(oldState);
  ok(infra("up", oldState, "--yes", "--json"));
  rmSync(oldState, { recursive: true, force: true });
  await govc(["vm.destroy", vmPath(missing)]);
  for (const h of site.hosts) if (h.name !== missing) uuids.set(h.name, (await vmInfo(h.name))?.uuid ?? "");
});

afterAll(async () => {
  await sim?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("dcctl infra import of servers that already run in vCenter", () => {
  it("imports every VM and supporting object it finds, leaving the missing server to be created, with the password on no command line", async () => {
    configure(state);
    // The look-up stack and the import both run pulumi: the process table, as any user sees it, never shows the password.
    const { result: outcomes, seen } = await sampleArgvDuring(async () => importJson(state));
    expect(seen.processes(/(^|\/)pulumi import /)).toBeGreaterThan(0);
    expect(seen.processes(/(^|\/)pulumi refresh /)).toBeGreaterThan(0);
    expect(seen.containing(vc().connection.password)).toEqual([]);
    const vms = outcomes.filter((o) => o.kind === "vm");
    expect(vms).toHaveLength(33);
    expect(vms.filter((o) => o.status === "not found").map((o) => o.name)).toEqual([missing]);
    for (const o of vms.filter((v) => v.name !== missing)) {
      expect(o.status, o.name).toBe("imported");
      // The ID in the state is the VM's BIOS UUID, as govc reports it.
      expect(o.id, o.name).toBe(uuids.get(o.name));
    }
    const others = outcomes.filter((o) => o.kind !== "vm");
    expect(others.filter((o) => o.status !== "imported")).toEqual([]);
    expect(new Set(others.map((o) => o.kind))).toEqual(new Set(["portGroup", "folder", "pool", "tagCategory", "tag", "rule"]));
  });

  it("is idempotent: a second run finds everything in the state and imports nothing", () => {
    // The human report this time (the first run's JSON has the same outcomes): a line each, then a summary per kind.
    const text = ok(infra("import", state));
    console.log(text.split("\n").filter((l, i, all) => i < 3 || i >= all.length - 5).join("\n"));
    expect(text).toMatch(/^33 virtual machines: 0 imported, 32 already in state, 1 not found$/m);
    expect(text).toMatch(/^(\d+) other resources: 0 imported, \1 already in state, 0 not found$/m);
    expect(text).not.toMatch(/^imported /m);
    expect(text.match(/^not found .*$/gm)?.map((l) => l.split(/\s+/).slice(2, 4).join(" "))).toEqual([`vm ${missing}`]);
  });

  it("previews no change for the imported servers: only the missing one is to be created", () => {
    const summary = lastJson<Record<string, number>>(ok(infra("preview", state, "--json")));
    expect(summary.create ?? 0).toBe(1);
    for (const op of ["update", "replace", "delete", "create-replacement", "delete-replaced"]) expect(summary[op] ?? 0, op).toBe(0);
  });

  it("an up creates the missing server and leaves the others' UUIDs as they were", async () => {
    ok(infra("up", state, "--yes", "--json"));
    for (const [name, uuid] of uuids) expect((await vmInfo(name))?.uuid, name).toBe(uuid);
    expect((await vmInfo(missing))?.uuid).toMatch(/^[0-9a-f-]{36}$/);
    const summary = lastJson<Record<string, number>>(ok(infra("preview", state, "--json")));
    expect(Object.keys(summary).filter((op) => op !== "same")).toEqual([]);
  });

  it("refresh shows a change made by hand in vCenter as drift, and the next preview plans it back", async () => {
    await govc(["vm.change", "-vm", vmPath(drifted), "-c", String(handCpus)]);
    expect((await vmInfo(drifted))?.hardware.numCPU).toBe(handCpus);
    const preview = JSON.parse(ok(infra("refresh", state, "--preview-only", "--json"))) as { drift: { name: string; keys: string[] }[] };
    expect(preview.drift.map((d) => d.name)).toEqual([drifted]);
    const done = JSON.parse(ok(infra("refresh", state, "--json"))) as { drift: { name: string; keys: string[] }[] };
    expect(done.drift.map((d) => d.name)).toEqual([drifted]);
    expect(done.drift[0]?.keys).toContain("numCpus");
    const summary = lastJson<Record<string, number>>(ok(infra("preview", state, "--json")));
    expect(summary.update).toBe(1);
  });
});
