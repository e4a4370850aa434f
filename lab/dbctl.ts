import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { errorMessage } from "../util/errors.js";
import { isAlive, waitForPort } from "../util/process.js";
import { labNetwork } from "./lab.js";
import { placed, placementOf } from "./placement.js";
import { PG_BIN_DIR, serverAccount, serverOptions } from "./postgres.js";
import { readLabState, writeLabState } from "./state.js";

/**
 * The lab's service control for its PostgreSQL servers, what pg_ctlcluster or systemctl is on a real host: the
 * backup config names it as a host's `server.start` / `server.stop`, and dcctl runs it on that host over SSH (inside
 * the host's namespace) when replication reseeds, rewinds or restarts the server.
 *   dbctl.js start LAB HOST    start the host's server on its data directory, in its site's freezer group
 *   dbctl.js stop LAB HOST     fast shutdown (SIGINT), waiting until it is gone
 * A server started here is no child of the lab's supervisor: its pid goes into lab.json, which `lab status` and
 * `lab down` read.
 */
const [action = "", dir = "", hostName = ""] = process.argv.slice(2);

function service() {
  const state = readLabState(dir);
  const svc = state?.services.find((s) => s.kind === "postgresql" && s.host === hostName);
  if (!state || !svc) throw new Error(`the lab in ${dir} has no PostgreSQL on ${hostName}`);
  return { state, svc, base: join(dir, "db", hostName) };
}

/** The postmaster's pid from its pid file, when that process still runs. */
function runningPid(dataDir: string): number | undefined {
  const file = join(dataDir, "postmaster.pid");
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
}

async function stop(): Promise<void> {
  const { base } = service();
  const pid = runningPid(join(base, "data"));
  if (pid === undefined) return;
  process.kill(pid, "SIGINT");
  const deadline = Date.now() + 60_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`PostgreSQL on ${hostName} (pid ${pid}) did not stop within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function start(): Promise<void> {
  const { state, svc, base } = service();
  const dataDir = join(base, "data");
  if (runningPid(dataDir) !== undefined) return;
  const { net } = labNetwork(dir);
  const account = await serverAccount("dcctl-lab");
  const log = openSync(join(dir, "logs", `postgresql-${hostName}.log`), "a");
  const [cmd, args] = placed(placementOf(net, svc), join(PG_BIN_DIR, "postgres"), ["-D", dataDir, ...serverOptions(svc.address, svc.port, join(base, "run"))], account);
  const child = spawn(cmd, args, { detached: true, stdio: ["ignore", log, log] });
  closeSync(log);
  child.unref();
  await waitForPort(svc.address, svc.port, 60_000, () => child.exitCode === null);
  // The postmaster (not the wrapper that put it in its place) is what lab status and lab down look for.
  const pid = runningPid(dataDir) ?? child.pid ?? svc.pid;
  writeLabState(dir, { ...state, services: state.services.map((s) => (s === svc ? { ...s, pid } : s)) });
}

try {
  if (action === "start") await start();
  else if (action === "stop") await stop();
  else throw new Error("usage: dbctl.js start|stop LAB HOST");
} catch (e) {
  process.stderr.write(`dbctl: ${errorMessage(e)}\n`);
  process.exit(1);
}
