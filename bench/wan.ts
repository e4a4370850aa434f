import { rmSync } from "node:fs";
import { join } from "node:path";
import { inNetns, managementNetns } from "../lab/network.js";
import { runningLab } from "./running-lab.js";
import { timed } from "./timed.js";
import { toolPath } from "../util/tools.js";
import { guardBench } from "./brought-up.js";

/**
 * What crossing the lab's WAN costs, against the cap itself (node dist/bench/wan.js [MiB], on a running lab):
 *  1. a bare TCP stream of MiB from the primary's management host to the secondary's;
 *  2. `restic copy` of one MiB snapshot of random data from a repository on the primary's rest-server to one on the
 *     secondary's, the way `dcctl backup replicate` crosses the WAN (scratch repositories, removed at the end).
 * Each is printed as throughput and as a ratio to the cap. Asserts nothing.
 */
const mib = Number(process.argv[2] ?? 32);
guardBench("wan");
const { dir, config, sites, net } = runningLab("wan");
const at = { primary: managementNetns(net, sites, "primary"), secondary: managementNetns(net, sites, "secondary") };
const address = (site: "primary" | "secondary") => sites[site].hosts.find((h) => h.role === "backup")?.ip ?? "";

const runIn = (ns: string, argv: string[], env: NodeJS.ProcessEnv = process.env) => timed(...inNetns(ns, argv), env);

const report = (what: string, bytes: number, ms: number) => {
  const mbit = (bytes * 8) / 1e6 / (ms / 1000);
  process.stdout.write(`${what.padEnd(40)} ${(bytes / 2 ** 20).toFixed(0)} MiB in ${(ms / 1000).toFixed(2)} s = ${mbit.toFixed(1)} Mbit/s, ${(mbit / config.wanMbit).toFixed(2)} × the ${config.wanMbit} Mbit/s cap\n`);
};

// 1. Bare TCP across the WAN.
const port = 9109;
const receiver = runIn(at.secondary, [process.execPath, "-e", `require("net").createServer((s) => { let n = 0; s.on("data", (b) => (n += b.length)); s.on("end", () => { console.log(n); process.exit(0); }); }).listen(${port}, "${address("secondary")}", () => console.error("listening"))`]);
await new Promise((r) => setTimeout(r, 500));
const sender = await runIn(at.primary, [process.execPath, "-e", `const s = require("net").connect(${port}, "${address("secondary")}"); const chunk = Buffer.alloc(1 << 20); let left = ${mib}; const more = () => { while (left > 0) { left--; if (!s.write(chunk)) return s.once("drain", more); } s.end(); }; s.on("connect", more);`]);
const received = await receiver;
if (sender.code !== 0 || received.code !== 0) throw new Error(`bare TCP failed: ${sender.out} ${received.out}`);
report("bare TCP, primary → secondary", mib * 2 ** 20, sender.ms);

// 2. restic copy between scratch repositories on the two sites' rest-servers.
const name = `bench-wan-${process.pid}`;
const repo = (site: "primary" | "secondary") => `rest:http://${address(site)}:8000/${name}/`;
const env = { ...process.env, RESTIC_PASSWORD: "bench-wan", RESTIC_FROM_PASSWORD: "bench-wan" };
const restic = toolPath("restic");
try {
  for (const site of ["primary", "secondary"] as const) {
    const init = await runIn(at[site], [restic, "-r", repo(site), "init"], env);
    if (init.code !== 0) throw new Error(`restic init at ${site}: ${init.out}`);
  }
  const backup = await runIn(at.primary, ["bash", "-o", "pipefail", "-c", `head -c ${mib * 2 ** 20} /dev/urandom | "$0" -r "$1" backup --stdin --stdin-filename random.bin -q`, restic, repo("primary")], env);
  if (backup.code !== 0) throw new Error(`restic backup: ${backup.out}`);
  const copy = await runIn(at.primary, [restic, "-r", repo("secondary"), "copy", "--from-repo", repo("primary"), "-q"], env);
  if (copy.code !== 0) throw new Error(`restic copy: ${copy.out}`);
  report("restic copy, primary → secondary repo", mib * 2 ** 20, copy.ms);
} finally {
  for (const site of ["primary", "secondary"] as const) rmSync(join(dir, "repos", site, name), { recursive: true, force: true });
}
