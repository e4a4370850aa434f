import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { labEnv as labEnvOf } from "../../lab/backup-config.js";
import { isAlive as alive } from "../../util/process.js";
import { dcctl as run } from "../helpers/cli.js";

/**
 * The README's main job, through the dcctl binary as an operator types it, on a lab of its own: its own folder and
 * its own loopback range (127.77.x.y) so it can run beside a developer's lab.
 */
const dir = mkdtempSync(join(tmpdir(), "dcctl-lab-e2e-"));
const labEnv = { ...process.env, DCCTL_LAB_DIR: dir, DCCTL_LAB_NET: "127.77" };
// What `source <lab>/env` sets: dcctl pointed at this lab.
const withLab = { ...labEnv, ...labEnvOf(dir) };

const dcctl = (args: string[], env: NodeJS.ProcessEnv = withLab) => run(args, env);

afterAll(() => {
  dcctl(["lab", "down"], labEnv);
  rmSync(dir, { recursive: true, force: true });
});

describe("the lab and the main job, through the dcctl binary", () => {
  it("refuses to start on an address another program holds, at once and naming it", async () => {
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(8989, "127.77.1.41", resolve));
    try {
      const started = Date.now();
      const res = dcctl(["lab", "up", "--size", "1"], labEnv);
      expect(res.code).toBe(1);
      expect(res.stderr.trim()).toBe("dcctl: cannot start the lab: already in use by another program: 127.77.1.41:8989 (vcsim primary)");
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(dcctl(["lab", "status"], labEnv).code).toBe(1);
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  });

  it("brings the lab up, backs up, replicates, drills with measured RPO and RTO, and leaves no process after down", () => {
    const up = dcctl(["lab", "up", "--size", "1"], labEnv);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/stack primary: create \d+/);

    const status = dcctl(["lab", "status", "--json"], labEnv);
    expect(status.code).toBe(0);
    const services = (JSON.parse(status.stdout) as { services: { name: string; pid: number; running: boolean }[] }).services;
    expect(services.length).toBe(19);
    expect(services.every((s) => s.running)).toBe(true);

    const backup = dcctl(["backup", "run", "--all", "--json"]);
    expect(backup.code, backup.stderr).toBe(0);
    expect(dcctl(["backup", "replicate", "--to", "secondary"]).code).toBe(0);

    const drill = dcctl(["dr", "drill", "--runbook", join(dir, "runbooks", "drill.yaml")]);
    expect(drill.code, drill.stdout + drill.stderr).toBe(0);
    const runs = JSON.parse(dcctl(["dr", "history", "--json"]).stdout) as { dir: string; status: string }[];
    expect(runs[0]?.status).toBe("ok");
    const report = JSON.parse(readFileSync(join(runs[0]?.dir ?? "", "report.json"), "utf8")) as { measurements?: unknown };
    const md = readFileSync(join(runs[0]?.dir ?? "", "report.md"), "utf8");
    expect(md).toMatch(/\| portal \| 1 \| [\d.]+ (s|min) \| 15 min \| met \| [\d.]+ (s|min) \| 60 min \| met \|/);
    expect(JSON.stringify(report)).toContain("portal");

    // Running it again is harmless: the lab is checked, the stacks are unchanged.
    const again = dcctl(["lab", "up"], labEnv);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/stack primary: same \d+/);

    expect(dcctl(["lab", "down"], labEnv).code).toBe(0);
    expect(services.filter((s) => alive(s.pid)).map((s) => s.name)).toEqual([]);
  });
});
