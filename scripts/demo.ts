import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { labPaths } from "../lab/paths.js";
import { labDir } from "../lab/state.js";
import { repoRoot } from "../util/tools.js";

/**
 * The README's main job on the embedded default, the local two-site lab: bring it up and provision both sites, back
 * up every job and replicate from the primary's management host, run a DR drill from the secondary's, and print the
 * drill's measured RPO and RTO. Every phase goes through the `dcctl` binary, as an operator would type it on that
 * site's management host (`dcctl lab exec SITE -- …`); the lab stays up for exploring afterwards.
 */
const dir = labDir();
const cli = join(repoRoot, "dist", "cli", "main.js");
const timings: [string, number][] = [];

function dcctl(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env, stdio: ["ignore", "inherit", "inherit"] });
    child.on("close", (code) => resolve(code ?? 1));
  });
}

async function phase(title: string, args: string[], env: NodeJS.ProcessEnv, okCodes: number[] = [0]): Promise<void> {
  process.stdout.write(`\n== ${title}: dcctl ${args.join(" ")}\n`);
  const start = Date.now();
  const code = await dcctl(args, env);
  timings.push([title, (Date.now() - start) / 1000]);
  if (!okCodes.includes(code)) {
    process.stderr.write(`demo: "dcctl ${args.join(" ")}" failed with exit code ${code}; the lab is left running (dcctl lab status, dcctl lab down)\n`);
    process.exit(code);
  }
}

/** The newest run's measured RPO and RTO: the "RPO and RTO" section of its report.md. */
function printDrillSummary(): void {
  const runs = JSON.parse(execFileSync(process.execPath, [cli, "lab", "exec", "secondary", "--", "dcctl", "dr", "history", "--json"], { encoding: "utf8" })) as { runId: string; dir: string }[];
  const newest = runs[0];
  if (!newest) return;
  const report = readFileSync(join(newest.dir, "report.md"), "utf8");
  const section = report.slice(report.indexOf("## RPO and RTO"), report.indexOf("## Steps")).trim();
  process.stdout.write(`\n== the drill's report (${join(newest.dir, "report.md")})\n${report.split("\n")[0] ?? ""}\n\n${section}\n`);
}

/**
 * What the demo offers to type at its end, each with why. Every line runs as printed (test/integration/lab-demo.test.ts
 * runs them all): the first puts this dcctl on PATH and names the lab's folder.
 */
const LOOK_AROUND: [string, string][] = [
  [`source ${labPaths(dir).envFile}`, "this dcctl on PATH, pointed at this lab"],
  ["dcctl lab status", "every lab process, and whether a site is failed"],
  ["dcctl lab shell primary", "a shell on the primary's management host"],
  ["dcctl lab exec primary -- dcctl backup snapshots", "what the repositories hold"],
  ["dcctl lab exec primary -- dcctl backup status", "newest snapshot per job against its RPO"],
  ["dcctl lab exec secondary -- dcctl replication status", "each standby's lag against its tier's RPO"],
  ["dcctl lab exec secondary -- dcctl dr history", "drills and failovers, with their reports"],
  ["dcctl lab exec secondary -- dcctl dr readiness", "per service: protected, drilled within its cadence, ready"],
  ["dcctl lab exec primary -- curl -s http://10.10.30.21:8080/health", "the public-service portal at the primary"],
];

const total = Date.now();
const env = process.env;
const at = (site: "primary" | "secondary", ...args: string[]) => ["lab", "exec", site, "--", "dcctl", ...args];
await phase("bring up the two-site lab and apply both stacks", ["lab", "up"], env);
// Each site backs up its own hosts: the primary's key only reads the secondary's records there (backup/peer-access.ts).
await phase("back up every job of the primary site", at("primary", "backup", "run", "--all", "--site", "primary"), env);
await phase("back up every job of the secondary site", at("secondary", "backup", "run", "--all", "--site", "secondary"), env);
await phase("replicate new snapshots to the secondary (append-only)", at("primary", "backup", "replicate", "--to", "secondary"), env);
await phase("measure the standbys' replication (the live RPO)", at("secondary", "replication", "status"), env);
await phase("run a DR drill at the secondary", at("secondary", "dr", "drill", "--runbook", join(labPaths(dir).runbooks, "drill.yaml")), env);
timings.push(["total", (Date.now() - total) / 1000]);
printDrillSummary();

process.stdout.write(`\nPhases: ${timings.map(([t, s]) => `${t} ${s.toFixed(1)} s`).join("; ")}\n`);
process.stdout.write(`
The lab is still running. To look around, in any shell of this machine:
${LOOK_AROUND.map(([cmd, why]) => `  ${cmd.padEnd(56)} # ${why}`).join("\n")}
To lose the primary and fail over from the secondary: docs/operator/disaster-recovery.md, "Failing over with the primary lost"
The duty room's screen: dcctl lab console secondary, then open http://127.0.0.1:8088/ (Ctrl-C stops it)
To stop it: dcctl lab down
`);
