import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { labNetId } from "../../lab/network.js";
import type { LabState } from "../../lab/state.js";
import { toolPath } from "../../util/tools.js";
import { dcctl, type CliRun } from "./cli.js";

/**
 * A lab of a test's own: its own folder, hence its own namespaces (same addresses as any other lab, never in the
 * root namespace). Everything that talks to the lab goes through `dcctl lab exec SITE`, from inside it.
 */
export interface TestLab {
  dir: string;
  env: NodeJS.ProcessEnv;
  lab(args: string[]): CliRun;
  /** `dcctl lab exec SITE -- ARGV`: on the site's management host; `dcctl` as argv[0] is this dcctl. */
  at(site: "primary" | "secondary", argv: string[], extraEnv?: NodeJS.ProcessEnv): CliRun;
  state(): LabState;
  /** The lab's network namespaces that exist now. */
  namespaces(): string[];
  /** GET url from inside a site: status and body (status 0 when nothing answered within 5 s). */
  http(site: "primary" | "secondary", url: string): { status: number; body: string };
  /** psql as the superuser at a site's database server, from that site's management host. */
  psql(site: "primary" | "secondary", address: string, sql: string): CliRun;
  /** The virtual machines in a site's vCenter (govc, from inside the site). */
  vms(site: "primary" | "secondary"): string[];
}

const FETCH = `const r = await fetch(process.argv[1], { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
process.stdout.write(JSON.stringify({ status: r ? r.status : 0, body: r ? await r.text() : "" }));`;

export function testLab(name: string): TestLab {
  const dir = mkdtempSync(join(tmpdir(), `dcctl-${name}-`));
  const env = { ...process.env, DCCTL_LAB_DIR: dir };
  const at = (site: "primary" | "secondary", argv: string[], extraEnv: NodeJS.ProcessEnv = {}) => dcctl(["lab", "exec", site, "--", ...argv], { ...env, ...extraEnv });
  const state = () => JSON.parse(readFileSync(join(dir, "lab.json"), "utf8")) as LabState;
  return {
    dir,
    env,
    lab: (args) => dcctl(["lab", ...args], env),
    at,
    state,
    namespaces: () => (existsSync("/run/netns") ? readdirSync("/run/netns").filter((n) => n.startsWith(`${labNetId(dir)}-`)) : []),
    http(site, url) {
      const res = at(site, [process.execPath, "--input-type=module", "-e", FETCH, url]);
      if (res.code !== 0) throw new Error(`fetch inside ${site} failed: ${res.stderr}`);
      return JSON.parse(res.stdout) as { status: number; body: string };
    },
    psql(site, address, sql) {
      return at(site, ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", address, "-U", "postgres", "-d", "portal", "-c", sql], { PGPASSFILE: join(dir, "secrets", "postgres.pgpass") });
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
