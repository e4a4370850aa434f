import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { labNetwork } from "../../lab/lab.js";
import { drillHostDown, drillHosts, drillHostUp, labNetId } from "../../lab/network.js";
import { mainJs } from "../helpers/cli.js";
import { rootNamespaceView, routesOf, sharedLab, UP_OUTPUT } from "../helpers/lab.js";

/**
 * The README's main job, through the dcctl binary as an operator types it on each site's management host, on the lab
 * the tests share (its own folder, hence its own namespaces). Also what keeps the lab inside itself: nothing of it in
 * the root namespace, no default route in any of its namespaces; that nothing is left after `lab down` is proved
 * once the last file is done with it (test/shared-lab-setup.ts).
 */
const t = sharedLab();
const LAB_CIDRS = ["10.10.10.0/24", "10.10.20.0/24", "10.10.30.0/24", "10.10.50.0/24", "10.20.10.0/24", "10.20.20.0/24", "10.20.30.0/24", "10.20.50.0/24", "10.20.90.0/24", "10.255.255.0/30"];

/** A process's parent (field 4 of /proc/PID/stat), or undefined when it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** The postmaster of each lab PostgreSQL data directory (db/HOST/data), by host, from its pid file. */
function postmasters(dir: string): Record<string, number> {
  const found: Record<string, number> = {};
  for (const host of readdirSync(join(dir, "db"))) {
    const file = join(dir, "db", host, "data", "postmaster.pid");
    if (existsSync(file)) found[host] = Number(readFileSync(file, "utf8").split("\n")[0]);
  }
  return found;
}

describe("the lab and the main job, through the dcctl binary", () => {
  it("as another user than root, lab up says in one line that it needs root and creates nothing", () => {
    const res = spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, mainJs, "lab", "up"], { env: { ...t.env, DCCTL_LAB_DIR: join(t.dir, "not-root") }, encoding: "utf8" });
    expect(res.status).toBe(1);
    expect(res.stderr).toBe("dcctl: dcctl lab up needs root: the lab builds its two sites from network namespaces\n");
    expect(existsSync(join(t.dir, "not-root"))).toBe(false);
  });

  it("brings the lab up in namespaces, backs up, replicates, drills on the isolated network with measured RPO and RTO", async () => {
    t.ensureUp();
    // What the `lab up` that built it printed.
    const up = { stdout: readFileSync(join(t.dir, UP_OUTPUT), "utf8") };
    expect(up.stdout).toMatch(/stack primary: create \d+/);
    expect(up.stdout).toMatch(/stack secondary: create \d+/);
    // The secondary's standbys were seeded from their primaries and stream (lab up sets replication up once).
    expect(up.stdout).toMatch(/replication lab-dr-db-01: seeded: lab-dr-db-01 seeded from lab-db-01 in [\d.]+ s and streaming through slot dcctl_lab_dr_db_01/);
    expect(up.stdout).toMatch(/replication lab-dr-db-02: seeded:/);

    const status = t.lab(["status", "--json"]);
    expect(status.code).toBe(0);
    const parsed = JSON.parse(status.stdout) as { failed: string[]; wanMbit: number; services: { name: string; pid: number; running: boolean }[] };
    // The restore-test servers on lab-dr-bk-01 count too: 21.
    expect(parsed.services.length).toBe(21);
    expect(parsed.services.every((s) => s.running)).toBe(true);
    expect(parsed).toMatchObject({ failed: [], wanMbit: 100 });
    // The supervisor owns every server it reports, the standby that replication set-up re-seeded and restarted
    // included: each is its child, and each PostgreSQL it names is the postmaster running on that host's data.
    const labState = t.state();
    expect(labState.services.filter((s) => parentOf(s.pid) !== labState.supervisorPid).map((s) => s.name)).toEqual([]);
    const pgServices = Object.fromEntries(labState.services.filter((s) => s.kind === "postgresql").map((s) => [s.host, s.pid]));
    expect(pgServices).toEqual(postmasters(t.dir));
    expect(Object.keys(pgServices)).toContain("lab-dr-db-01");

    // Thirteen namespaces (9 hosts, 2 vCenters, 2 routers); none has a default route, the root namespace has
    // neither a route to a lab network nor one of the lab's links.
    const namespaces = t.namespaces();
    expect(namespaces.length).toBe(13);
    for (const ns of namespaces) expect(routesOf(ns), ns).not.toMatch(/^default/m);
    const root = rootNamespaceView();
    for (const cidr of LAB_CIDRS) expect(root.routes).not.toContain(cidr.split("/")[0]);
    expect(root.links).not.toMatch(/: (br\d+|h\d+|vc|wan)[:@]/);
    expect(root.links).not.toContain(labNetId(t.dir));

    // Inside: the other site answers across the WAN; an address outside the lab is unreachable at once.
    expect(t.at("primary", ["bash", "-c", "exec 3<>/dev/tcp/10.20.50.11/8000"]).code).toBe(0);
    const outside = t.at("primary", ["bash", "-c", "exec 3<>/dev/tcp/10.99.0.1/80"]);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toContain("Network is unreachable");
    // A command killed inside a site ends `lab exec` as a shell says it: 137 for SIGKILL (an OOM kill too), not a stop.
    expect(t.lab(["exec", "primary", "--", "sh", "-c", "kill -KILL $$"]).code).toBe(137);
    expect(t.lab(["exec", "primary", "--", "sh", "-c", "kill -TERM $$"]).code).toBe(143);

    // Each site backs up its own hosts (the primary's key only reads the secondary's records there).
    for (const site of ["primary", "secondary"] as const) {
      const backup = t.at(site, ["dcctl", "backup", "run", "--all", "--site", site, "--json"]);
      expect(backup.code, backup.stderr).toBe(0);
    }
    expect(t.at("primary", ["dcctl", "backup", "replicate", "--to", "secondary"]).code).toBe(0);
    // The first line beside the second: each replicated database's replica, measured now, next to its newest snapshot.
    await t.standbysStreaming();
    const backupStatus = t.at("primary", ["dcctl", "backup", "status"]);
    expect(backupStatus.code, backupStatus.stdout + backupStatus.stderr).toBe(0);
    expect(backupStatus.stdout).toMatch(/^lab-db-01\/db-hourly +ok .* lab-dr-db-01 streaming, lag [\d.]+ s \(0m ago\)/m);
    expect(backupStatus.stdout).toMatch(/^lab-db-02\/db-daily +ok .* lab-dr-db-02 streaming, lag [\d.]+ s /m);
    const replication = t.at("secondary", ["dcctl", "replication", "status"]);
    expect(replication.code, replication.stdout + replication.stderr).toBe(0);
    expect(replication.stdout).toMatch(/^lab-dr-db-01 +lab-db-01 +postgresql +streaming /m);
    expect(replication.stdout).toMatch(/^lab-dr-db-02 +lab-db-02 +mariadb +streaming /m);

    const drill = t.at("secondary", ["dcctl", "dr", "drill", "--runbook", join(t.dir, "runbooks", "drill.yaml")]);
    expect(drill.code, drill.stdout + drill.stderr).toBe(0);
    const runs = JSON.parse(t.at("secondary", ["dcctl", "dr", "history", "--json"]).stdout) as { dir: string; status: string }[];
    expect(runs[0]?.status).toBe("ok");
    // The drill's journal is the secondary's: it lives in the secondary's control plane.
    expect(runs[0]?.dir.startsWith(join(t.dir, "control", "secondary"))).toBe(true);
    const md = readFileSync(join(runs[0]?.dir ?? "", "report.md"), "utf8");
    expect(md).toMatch(/\| portal \| 1 \| [\d.]+ (s|min) \| 15 min \| met \| [\d.]+ (s|min) \| 60 min \| met \|/);
    // The drill's portal ran on the isolated drill network, which reached nothing of production nor was reached.
    expect(md).toMatch(/drill portal at 10\.20\.90\.21:8080 serves a copy of drill_\w+_portal \(\d+ dossiers\) on the isolated drill network; unreachable from it: .*10\.10\.20\.11:5432.*10\.20\.20\.11:5432/);
    expect(md).toMatch(/unreachable from both sites' management hosts: 10\.20\.90\.21:8080, 10\.20\.90\.11:5432/);
    expect(t.namespaces().length).toBe(13);

    // A host on the drill network, tried by hand: a primary address fails at once from there.
    const { sites, net } = labNetwork(t.dir);
    const drillApp = drillHosts(net, sites).app;
    await drillHostUp(net, drillApp);
    try {
      const tried = spawnSync("nsenter", [`--net=/run/netns/${drillApp.netns}`, "bash", "-c", "exec 3<>/dev/tcp/10.10.20.11/5432"], { encoding: "utf8", timeout: 10_000 });
      expect(tried.status).toBe(1);
      expect(tried.stderr).toContain("Network is unreachable");
    } finally {
      await drillHostDown(drillApp);
    }
    expect(t.namespaces().length).toBe(13);

    // Running it again is harmless: the lab is checked, the stacks are unchanged.
    const again = t.lab(["up"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/stack primary: same \d+/);
    expect(again.stdout).toMatch(/replication lab-dr-db-01: kept: /);
  });
});
