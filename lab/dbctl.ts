import { errorMessage } from "../util/errors.js";
import { isAlive, waitForPort } from "../util/process.js";
import { labPaths } from "./paths.js";
import { askSupervisor } from "./server-control.js";
import { readLabState } from "./state.js";

/**
 * The lab's service control for its PostgreSQL servers, what pg_ctlcluster or systemctl is on a real host: the
 * backup config names it as a host's `server.start` / `server.stop`, and dcctl runs it on that host over SSH (inside
 * the host's namespace) when replication reseeds, rewinds or restarts the server.
 *   dbctl.js start LAB HOST    start the host's server on its data directory, and wait until it listens
 *   dbctl.js stop LAB HOST     fast shutdown (SIGINT), waiting until it is gone
 * The lab's supervisor does both (lab/server-control.ts), so that the server is its child like every other: it
 * stops with the lab, and lab.json names the process that runs.
 */
const [action = "", dir = "", hostName = ""] = process.argv.slice(2);

/** A stop waits up to a minute for the server, then its process group: time for both, and the answer. */
const ANSWER_MS = 150_000;

async function main(): Promise<void> {
  if (action !== "start" && action !== "stop") throw new Error("usage: dbctl.js start|stop LAB HOST");
  const svc = readLabState(dir)?.services.find((s) => s.kind === "postgresql" && s.host === hostName);
  if (!svc) throw new Error(`the lab in ${dir} has no PostgreSQL on ${hostName}`);
  const pid = await askSupervisor(labPaths(dir).control, action, hostName, ANSWER_MS);
  // Here, in the host's namespace, the server's address answers even while the WAN to the supervisor's site is cut.
  if (action === "start" && pid !== undefined) await waitForPort(svc.address, svc.port, 60_000, () => isAlive(pid));
}

try {
  await main();
} catch (e) {
  process.stderr.write(`dbctl: ${errorMessage(e)}\n`);
  process.exit(1);
}
