import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { inject } from "vitest";
import { siteCommand } from "../../lab/lab.js";
import { labNetId } from "../../lab/network.js";
import type { LabState } from "../../lab/state.js";
import { toolPath } from "../../util/tools.js";
import { dcctl, runCommand, type CliRun } from "./cli.js";
import { until } from "./until.js";

/**
 * The lab this run of the tests shares (test/shared-lab-setup.ts): its own folder, hence its own namespaces (same
 * addresses as any other lab, never in the root namespace). Everything that talks to the lab runs inside it, as
 * `dcctl lab exec SITE` runs it.
 */
export interface TestLab {
  dir: string;
  /**
   * Brings the lab up unless it is up and whole: every server running, no site failed, nothing left marked by
   * `changing`. A lab that is not whole is taken down and built again from an empty folder.
   */
  ensureUp(): void;
  /**
   * Runs `body`, which changes the lab and puts it back (heals a site, fails back); if it throws, the lab is marked
   * for rebuilding, so that no other file meets what it left half done.
   */
  changing<T>(body: () => Promise<T>): Promise<T>;
  /**
   * Waits until both standbys stream, as the secondary measures them: after a heal, a rebuild or a busy minute, a
   * standby can be reconnecting or miss one probe, and what a test asserts next is about a lab that replicates.
   */
  standbysStreaming(): Promise<void>;
  /**
   * Every job backed up and copied to the secondary within `minutes` (what a failover or drill restores from): the
   * secondary's `backup status` says so, or each site's `backup run --all --site` and a replicate make it so. A
   * minute's backup of every job is what most lab files need before they start, and the file before often made it.
   */
  freshBackups(minutes?: number): void;
  env: NodeJS.ProcessEnv;
  lab(args: string[]): CliRun;
  /** `dcctl lab exec SITE -- ARGV`: on the site's management host; `dcctl` as argv[0] is this dcctl. */
  at(site: "primary" | "secondary", argv: string[], extraEnv?: NodeJS.ProcessEnv): CliRun;
  state(): LabState;
  /** The lab's network namespaces that exist now. */
  namespaces(): string[];
  /** GET url from inside a site: status and body (status 0 when nothing answered within 5 s). */
  http(site: "primary" | "secondary", url: string): { status: number; body: string };
  /** psql as the superuser at a site's database server (or another on that host, by port), from that site's management host. */
  psql(site: "primary" | "secondary", address: string, sql: string, port?: number): CliRun;
  /** The virtual machines in a site's vCenter (govc, from inside the site). */
  vms(site: "primary" | "secondary"): string[];
}

const FETCH = `const r = await fetch(process.argv[1], { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
process.stdout.write(JSON.stringify({ status: r ? r.status : 0, body: r ? await r.text() : "" }));`;

/**
 * How the shared lab is brought up: the smallest data set, and a dossier filed every 200 ms so that losing the
 * primary loses a measurable few.
 */
const SHARED_LAB_UP = ["up", "--size", "1", "--write-every", "200ms"];

/** What the `lab up` that built the shared lab printed, in its folder. */
export const UP_OUTPUT = "up.out";

export function sharedLab(): TestLab {
  const dir = inject("sharedLabDir");
  const env = { ...process.env, DCCTL_LAB_DIR: dir };
  // What `dcctl lab exec SITE -- ARGV` runs, without the dcctl in front of it: half the processes a lab test starts.
  const at = (site: "primary" | "secondary", argv: string[], extraEnv: NodeJS.ProcessEnv = {}) => {
    const { cmd, args, env: siteEnv } = siteCommand(dir, site, argv);
    return runCommand(cmd, args, { ...siteEnv, ...extraEnv }, 600_000, ["at", site, ...argv]);
  };
  const state = () => JSON.parse(readFileSync(join(dir, "lab.json"), "utf8")) as LabState;
  const rebuildMark = join(dir, "rebuild");
  return {
    dir,
    env,
    ensureUp() {
      const status = JSON.parse(dcctl(["lab", "status", "--json"], env).stdout || "{}") as { phase?: string; failed?: string[]; services?: { running: boolean }[] };
      const whole = status.phase === "ready" && status.failed?.length === 0 && (status.services ?? []).every((s) => s.running) && !existsSync(rebuildMark);
      if (whole) return;
      if (status.phase !== undefined && status.phase !== "down") {
        process.stdout.write(`the shared lab is not whole (${existsSync(rebuildMark) ? readFileSync(rebuildMark, "utf8") : JSON.stringify(status.failed)}): building it again\n`);
        dcctl(["lab", "down"], env);
        for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
      }
      // A busy machine can take many minutes to bring a lab up.
      const up = dcctl(["lab", ...SHARED_LAB_UP], env, 1_800_000);
      if (up.code !== 0) throw new Error(`lab up failed (exit ${up.code}): ${up.stderr || up.stdout}`);
      writeFileSync(join(dir, UP_OUTPUT), up.stdout);
    },
    async changing(body) {
      try {
        return await body();
      } catch (e) {
        writeFileSync(rebuildMark, `left by a test that failed: ${String(e).split("\n")[0] ?? ""}`);
        throw e;
      }
    },
    async standbysStreaming() {
      await until("both standbys streaming", () => {
        const res = at("secondary", ["dcctl", "replication", "status", "--json"]);
        return res.code === 0 && (JSON.parse(res.stdout) as { pair: string; health: string }[]).map((p) => `${p.pair} ${p.health}`).join() === "lab-dr-db-01 streaming,lab-dr-db-02 streaming";
      }, 180_000);
    },
    freshBackups(minutes = 10) {
      const status = at("secondary", ["dcctl", "backup", "status", "--json"]);
      const rows = status.code === 0 ? (JSON.parse(status.stdout) as { rows: { state: string; ageMinutes?: number }[] }).rows : [];
      if (rows.length > 0 && rows.every((r) => r.state === "ok" && (r.ageMinutes ?? Infinity) <= minutes)) return;
      // Each site backs up its own hosts, as its schedule does: the primary's key is no login on the secondary's
      // management host (backup/peer-access.ts).
      for (const [site, argv] of [
        ["primary", ["backup", "run", "--all", "--site", "primary", "--json"]],
        ["secondary", ["backup", "run", "--all", "--site", "secondary", "--json"]],
        ["primary", ["backup", "replicate", "--to", "secondary"]],
      ] as const) {
        const r = at(site, ["dcctl", ...argv]);
        if (r.code !== 0) throw new Error(`${argv.join(" ")} at the ${site} failed (exit ${r.code}): ${r.stderr}`);
      }
    },
    lab: (args) => dcctl(["lab", ...args], env),
    at,
    state,
    namespaces: () => (existsSync("/run/netns") ? readdirSync("/run/netns").filter((n) => n.startsWith(`${labNetId(dir)}-`)) : []),
    http(site, url) {
      const res = at(site, [process.execPath, "--input-type=module", "-e", FETCH, url]);
      if (res.code !== 0) throw new Error(`fetch inside ${site} failed: ${res.stderr}`);
      return JSON.parse(res.stdout) as { status: number; body: string };
    },
    psql(site, address, sql, port = 5432) {
      return at(site, ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", address, "-p", String(port), "-U", "postgres", "-d", "portal", "-c", sql], { PGPASSFILE: join(dir, "secrets", "postgres.pgpass") });
    },
    vms(site) {
      const vc = state().vcenters[site];
      if (!vc) throw new Error(`the lab has no ${site} vCenter`);
      const res = at(site, [toolPath("govc"), "find", "/", "-type", "m"], { GOVC_URL: vc.url, GOVC_USERNAME: vc.username, GOVC_PASSWORD: vc.password, GOVC_INSECURE: "1" });
      if (res.code !== 0) throw new Error(`govc at ${site} failed: ${res.stderr}`);
      return res.stdout.split("\n").filter(Boolean).map((p) => p.split("/").pop() ?? "");
    },
  };
}

/** The lab's routes and links seen from the root namespace: there must be none. */
export function rootNamespaceView(): { routes: string; links: string } {
  return {
    routes: spawnSync("ip", ["-4", "route", "show", "table", "all"], { encoding: "utf8" }).stdout,
    links: spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout,
  };
}

/** Routes of a lab namespace, read from outside it (reading a table sends nothing). */
export function routesOf(ns: string): string {
  return spawnSync("ip", ["-n", ns, "-4", "route", "show"], { encoding: "utf8" }).stdout;
}
