import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { govc } from "../../provider/connection.js";
import { readJournal, type JournalRecord } from "../../runbooks/engine/index.js";
import type { LabState } from "../../lab/state.js";
import { labEnv as labEnvOf } from "../../lab/backup-config.js";
import { repoRoot } from "../../util/tools.js";
import { mainJs as cli, dcctl as run } from "../helpers/cli.js";

/**
 * A real failover and failback on a lab of its own (folder in /tmp, loopback 127.78.x.y so that it runs beside the
 * main job's lab at 127.77), through the dcctl binary: the failover is SIGKILLed once its restores have ended, then
 * `dcctl dr resume` finishes it without running any completed step again, and the end state is the one an
 * uninterrupted failover leaves: the portal answering at the secondary (lab-dr-app-01) with the primary's dossiers,
 * lab-dr-app-01 in the secondary's vCenter, the lab's DNS pointing at it. Then the failback serves from the primary.
 */
const dir = mkdtempSync(join(tmpdir(), "dcctl-lab-failover-"));
const NET = "127.78";
const labEnv = { ...process.env, DCCTL_LAB_DIR: dir, DCCTL_LAB_NET: NET };
// What `source <lab>/env` sets: dcctl pointed at this lab.
const withLab = { ...labEnv, ...labEnvOf(dir) };
const runsDir = join(dir, "state", "dr", "runs");
const primaryApp = `${NET}.1.21`;
const secondaryApp = `${NET}.2.21`;
const secondaryPortalPid = join(dir, "run", "portal-secondary.pid");
/** Every process the lab and this test started, for the check that none outlives `lab down`. */
const pids = new Map<string, number>();

const dcctl = (args: string[], env: NodeJS.ProcessEnv = withLab) => run(args, env);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The processes below `pid`, from /proc: children first found through their parent's pid. */
function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ")".
      const stat = readFileSync(join("/proc", entry, "stat"), "utf8");
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // ended meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parentOf) {
      if (pp !== p) continue;
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 300_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const journal = (runId: string): JournalRecord[] => readJournal(join(runsDir, runId, "journal.jsonl")).records;
const endedOk = (j: JournalRecord[], step: string) => j.some((r) => r.type === "step-end" && r.step === step && r.status === "ok");

async function health(address: string): Promise<{ status: number; dossiers?: number }> {
  try {
    const res = await fetch(`http://${address}:8080/health`, { signal: AbortSignal.timeout(5_000) });
    const body = (await res.json()) as { dossiers?: number };
    return { status: res.status, ...(body.dossiers !== undefined ? { dossiers: body.dossiers } : {}) };
  } catch {
    return { status: 0 };
  }
}

function labState(): LabState {
  return JSON.parse(readFileSync(join(dir, "lab.json"), "utf8")) as LabState;
}

async function secondaryVms(): Promise<string[]> {
  const vc = labState().vcenters.secondary;
  if (!vc) throw new Error("the lab has no secondary vCenter");
  return (await govc(vc, ["find", "/", "-type", "m"])).split("\n").filter(Boolean).map((p) => p.split("/").pop() ?? "");
}

const dnsOf = (name: string) =>
  readFileSync(join(dir, "dns", "hosts"), "utf8")
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] === name)
    .map((f) => f[0]);

interface Measured {
  service: string;
  rpoMinutes?: number;
  rtoMinutes?: number;
  rpoMet?: boolean;
  rtoMet?: boolean;
}
/** The report's measurements: per service, then "overall". */
function measurements(runId: string): Measured[] {
  const report = JSON.parse(readFileSync(join(runsDir, runId, "report.json"), "utf8")) as { measurements: { overall: Measured; services: Measured[] } };
  return [...report.measurements.services, { ...report.measurements.overall, service: "overall" }];
}

afterAll(async () => {
  try {
    // A portal the failover started and a failed test left running is the lab's too.
    if (existsSync(secondaryPortalPid)) {
      pids.set("portal lab-dr-app-01", Number(readFileSync(secondaryPortalPid, "utf8").trim()));
      spawnSync(process.execPath, [join(repoRoot, "dist", "lab", "portal", "ctl.js"), "stop", secondaryPortalPid], { encoding: "utf8" });
    }
    if (existsSync(join(dir, "lab.json"))) for (const s of labState().services) pids.set(s.name, s.pid);
    dcctl(["lab", "down"], labEnv);
    const deadline = Date.now() + 10_000;
    while ([...pids.values()].some(alive) && Date.now() < deadline) await sleep(200);
    expect([...pids.entries()].filter(([, pid]) => alive(pid)).map(([name]) => name)).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe("a real failover and failback on the lab, through the dcctl binary", () => {
  it("fails over (killed after the restores, resumed), then fails back", async () => {
    const up = dcctl(["lab", "up", "--size", "1"], labEnv);
    expect(up.code, up.stderr).toBe(0);
    for (const s of labState().services) pids.set(s.name, s.pid);
    const backup = dcctl(["backup", "run", "--all", "--json"]);
    expect(backup.code, backup.stderr).toBe(0);
    expect(dcctl(["backup", "replicate", "--to", "secondary"]).code).toBe(0);

    const primary = await health(primaryApp);
    expect(primary.status).toBe(200);
    const dossiers = primary.dossiers ?? 0;
    expect(dossiers).toBeGreaterThan(0);
    expect(dnsOf("portal.lab")).toEqual([primaryApp]);
    expect(await secondaryVms()).not.toContain("lab-dr-app-01");

    // The failover, in a process group of its own so that SIGKILL takes the Pulumi engine it may have started too.
    const outFile = join(dir, "failover.out");
    const out = openSync(outFile, "w");
    const started = Date.now();
    const child = spawn(process.execPath, [cli, "dr", "failover", "--to", "secondary", "--runbook", join(dir, "runbooks", "failover.yaml"), "--yes"], {
      env: withLab,
      detached: true,
      stdio: ["ignore", out, out],
    });
    closeSync(out);
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    // The run folder appears a moment before its journal: wait for the journal itself.
    const runId = await until("the failover's journal", () =>
      existsSync(runsDir) ? readdirSync(runsDir).find((d) => d.includes("failover") && existsSync(join(runsDir, d, "journal.jsonl"))) : undefined,
    );
    await until("both restores to end", () => {
      if (child.exitCode !== null) throw new Error(`the failover ended (exit ${child.exitCode}) before it could be killed: ${readFileSync(outFile, "utf8")}`);
      const j = journal(runId);
      return endedOk(j, "restore-portal") && endedOk(j, "restore-mail") ? true : undefined;
    });
    // As if the DR runner died: the CLI and everything it started, also what runs in a process group of its own
    // (the Pulumi engine starts its plugins so).
    const tree = descendants(child.pid ?? 0);
    process.kill(-(child.pid ?? 0), "SIGKILL");
    for (const pid of tree) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone with its group
      }
    }
    await exited;

    const crashed = journal(runId);
    expect(crashed.some((r) => r.type === "run-end")).toBe(false);
    const doneBeforeKill = new Set(crashed.filter((r) => r.type === "step-end" && r.status === "ok").map((r) => (r as { step: string }).step));
    expect([...doneBeforeKill]).toEqual(expect.arrayContaining(["precheck", "fence-primary", "restore-portal", "restore-mail"]));
    const cutOff = crashed.filter((r) => r.type === "step-start" && !endedOk(crashed, r.step)).map((r) => (r as { step: string }).step);
    process.stdout.write(`failover killed after ${[...doneBeforeKill].join(", ")}; cut off: ${cutOff.join(", ") || "nothing"}\n`);
    const history = JSON.parse(dcctl(["dr", "history", "--json"]).stdout) as { runId: string; status: string }[];
    expect(history.find((r) => r.runId === runId)?.status).toBe("interrupted");

    const resumed = dcctl(["dr", "resume", runId, "--yes"]);
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    const failoverSeconds = (Date.now() - started) / 1000;

    // No step that had ended well ran again after the resume; every step ended ok exactly once.
    const j = journal(runId);
    const resumeAt = j.findIndex((r) => r.type === "run-resume");
    expect(resumeAt).toBeGreaterThan(0);
    const startedAfterResume = j.slice(resumeAt).filter((r) => r.type === "step-start").map((r) => (r as { step: string }).step);
    expect(startedAfterResume.filter((s) => doneBeforeKill.has(s))).toEqual([]);
    const oks = j.filter((r) => r.type === "step-end" && r.status === "ok").map((r) => (r as { step: string }).step);
    expect(new Set(oks).size).toBe(oks.length);
    expect(oks.sort()).toEqual(["dns", "fence-primary", "infra-active", "notify", "precheck", "report", "restore-mail", "restore-portal", "start-portal", "verify-data", "verify-portal"]);
    expect(j[j.length - 1]).toMatchObject({ type: "run-end", status: "ok" });

    // The end state of an uninterrupted failover.
    if (existsSync(secondaryPortalPid)) pids.set("portal lab-dr-app-01", Number(readFileSync(secondaryPortalPid, "utf8").trim()));
    expect(await health(secondaryApp)).toEqual({ status: 200, dossiers });
    expect(await secondaryVms()).toContain("lab-dr-app-01");
    expect(dnsOf("portal.lab")).toEqual([secondaryApp]);
    const fo = measurements(runId);
    expect(fo.map((m) => m.service).sort()).toEqual(["mail", "overall", "portal"]);
    expect(fo.every((m) => m.rpoMet && m.rtoMet)).toBe(true);
    const md = readFileSync(join(runsDir, runId, "report.md"), "utf8");
    expect(md).toMatch(/^# Failover .*: OK/);
    expect(md).toContain("the run was resumed 1 time");
    const overall = fo.find((m) => m.service === "overall");
    process.stdout.write(`failover ${runId}: ${failoverSeconds.toFixed(1)} s wall clock including the kill and the resume; RPO ${overall?.rpoMinutes} min, RTO ${overall?.rtoMinutes} min\n`);

    // Failback: service at the primary again, the secondary's application tier gone.
    const back = dcctl(["dr", "failback", "--to", "primary", "--runbook", join(dir, "runbooks", "failback.yaml"), "--yes"]);
    expect(back.code, back.stdout + back.stderr).toBe(0);
    expect(await health(primaryApp)).toEqual({ status: 200, dossiers });
    expect((await health(secondaryApp)).status).toBe(0);
    expect(await secondaryVms()).not.toContain("lab-dr-app-01");
    expect(dnsOf("portal.lab")).toEqual([primaryApp]);
    const runs = JSON.parse(dcctl(["dr", "history", "--json"]).stdout) as { runId: string; kind: string; status: string }[];
    const fb = runs.find((r) => r.kind === "failback");
    expect(fb?.status).toBe("ok");
    const fbm = measurements(fb?.runId ?? "");
    expect(fbm.every((m) => m.rpoMet && m.rtoMet && (m.rpoMinutes ?? 0) >= 0)).toBe(true);
    const fbo = fbm.find((m) => m.service === "overall");
    process.stdout.write(`failback ${fb?.runId}: RPO ${fbo?.rpoMinutes} min, RTO ${fbo?.rtoMinutes} min\n`);
  }, 900_000);
});
