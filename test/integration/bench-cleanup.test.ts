import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { labNetId } from "../../lab/network.js";
import { repoRoot } from "../../util/tools.js";
import { mainJs } from "../helpers/cli.js";
import { until } from "../helpers/until.js";

/**
 * A bench that fails or is stopped mid-way takes down what it brought up (bench/brought-up.ts, issue 26): no lab
 * namespace, no lab server, no server of its own left behind, one line saying why, no stack trace. The benches as
 * built, at their smallest sizes; DCCTL_BENCH_FAIL makes one fail on purpose right after its lab is up.
 */

const work = mkdtempSync(join(tmpdir(), "dcctl-bench-cleanup-"));
// The lab's databases run unprivileged and must enter the lab's folder.
chmodSync(work, 0o755);
const bench = (name: string) => join(repoRoot, "dist", "bench", `${name}.js`);

afterAll(() => {
  // Whatever a failed assertion left: the lab, by its folder.
  spawnSync(process.execPath, [mainJs, "lab", "down"], { env: { ...process.env, DCCTL_LAB_DIR: join(work, "lab") }, encoding: "utf8" });
  rmSync(work, { recursive: true, force: true });
});

const procText = (pid: string, what: string): string => {
  try {
    return readFileSync(`/proc/${pid}/${what}`, "utf8");
  } catch {
    return "";
  }
};

/** Processes (not zombies) whose command line mentions `text`. */
function processesMentioning(text: string): string[] {
  return readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n) && Number(n) !== process.pid)
    .filter((pid) => procText(pid, "cmdline").includes(text) && !/^\d+ \(.*\) Z/.test(procText(pid, "stat")))
    .map((pid) => `${pid}: ${procText(pid, "cmdline").split("\0").join(" ").slice(0, 200)}`);
}

/** The children of a process, with their command lines. */
function childrenOf(pid: number): { pid: number; argv: string[] }[] {
  return readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n))
    .map((n) => ({ pid: Number(n), stat: procText(n, "stat"), argv: procText(n, "cmdline").split("\0") }))
    .filter((p) => Number(p.stat.slice(p.stat.lastIndexOf(")") + 2).split(" ")[1]) === pid)
    .map(({ pid: p, argv }) => ({ pid: p, argv }));
}

describe("a bench that fails or is stopped mid-way", () => {
  it("db-backup failing right after its lab is up takes the lab down: no namespace, no server, one line", () => {
    const lab = join(work, "lab");
    const res = spawnSync(process.execPath, [bench("db-backup"), "--lab", lab, "--pg-mb", "1", "--maria-mb", "1", "--small-mb", "1", "--rounds", "1"], {
      cwd: repoRoot,
      env: { ...process.env, DCCTL_BENCH_FAIL: "lab" },
      encoding: "utf8",
      timeout: 1_200_000,
    });
    expect(res.status, res.stdout + res.stderr).toBe(1);
    expect(res.stderr).toMatch(/^bench\/db-backup: failed: failing on purpose after bringing up the lab \(DCCTL_BENCH_FAIL=lab\)\n$/m);
    expect(res.stderr).not.toMatch(/^\s+at /m);
    expect(res.stdout).toMatch(/^bench\/db-backup: load at start/);
    // The lab came up (it has its folder and its log), and went: no namespace, nothing running from its folder.
    expect(existsSync(join(lab, "supervisor.log"))).toBe(true);
    expect(readFileSync(join(lab, "supervisor.log"), "utf8")).toMatch(/lab ready[\s\S]*lab stopped/);
    expect(existsSync(join(lab, "lab.json"))).toBe(false);
    expect(existsSync("/run/netns") ? readdirSync("/run/netns").filter((n) => n.startsWith(`${labNetId(lab)}-`)) : []).toEqual([]);
    expect(processesMentioning(lab)).toEqual([]);
    expect(existsSync(`/sys/fs/cgroup/freezer/${labNetId(lab)}-primary`)).toBe(false);
    // A lab up and down: minutes on a busy machine (over 7 were seen with a load of 20 on 2 cores).
  }, 1_500_000);

  it("backup stopped by SIGTERM while it measures stops its rest-server and removes its folder (exit 143)", async () => {
    const child = spawn(process.execPath, [bench("backup")], { cwd: repoRoot, env: process.env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (out += s));
    const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    try {
      const pid = child.pid ?? 0;
      // Its rest-server runs, and it has started measuring (a dcctl or restic of it runs).
      const rest = await until("the bench's rest-server and its first measured run", () => {
        const kids = childrenOf(pid);
        const server = kids.find((k) => (k.argv[0] ?? "").endsWith("rest-server"));
        return server && kids.some((k) => k !== server) ? server : undefined;
      });
      const folder = rest.argv[rest.argv.indexOf("--path") + 1] ?? "";
      expect(folder).toMatch(/dcctl-bench-/);
      child.kill("SIGTERM");
      expect(await closed).toBe(143);
      expect(out).toContain("bench/backup: stopped by SIGTERM; taking down what it brought up");
      expect(processesMentioning(folder)).toEqual([]);
      expect(existsSync(join(folder, ".."))).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
