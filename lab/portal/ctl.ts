import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isAlive as alive, waitForPort } from "../../util/process.js";

/**
 * Starts and stops the portal as a service would be, for the runbooks' `command` steps over SSH:
 *   ctl.js start PIDFILE LOGFILE LISTEN_HOST:PORT PG_HOST:PORT PG_USER DATABASE   (returns once it listens)
 *   ctl.js stop PIDFILE
 * The portal is detached from the SSH session, its output goes to LOGFILE, and PGPASSFILE comes from the environment.
 */
const [action, pidfile, ...rest] = process.argv.slice(2);
const usage = () => {
  process.stderr.write("usage: ctl.js start PIDFILE LOGFILE LISTEN PG USER DB | ctl.js stop PIDFILE\n");
  process.exit(2);
};
if (!pidfile) usage();
const pidPath = pidfile as string;

if (action === "start") {
  const [logfile, listen, ...portalArgs] = rest;
  if (!logfile || !listen || portalArgs.length !== 3) usage();
  const [host = "", port = ""] = (listen as string).split(":");
  mkdirSync(dirname(pidPath), { recursive: true });
  const out = openSync(logfile as string, "a");
  const main = join(dirname(fileURLToPath(import.meta.url)), "main.js");
  const child = spawn(process.execPath, [main, listen as string, ...portalArgs], { detached: true, stdio: ["ignore", out, out] });
  closeSync(out);
  child.unref();
  writeFileSync(pidPath, `${child.pid}\n`);
  const running = () => child.pid !== undefined && alive(child.pid);
  await waitForPort(host, Number(port), 15_000, running);
  // Something answering on the port proves nothing by itself: an older portal may hold it while ours died (EADDRINUSE).
  const database = portalArgs[2] as string;
  const health = await fetch(`http://${listen}/health`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.json() as Promise<{ database?: string }>, () => ({ database: undefined }));
  if (!running() || health.database !== database) {
    const log = readFileSync(logfile as string, "utf8").trim().split("\n").slice(-1)[0] ?? "";
    process.stderr.write(`portal did not start on ${listen}: ${running() ? "" : "it exited; "}${health.database ? `what answers there serves ${health.database}, not ${database}` : "no portal answers there"}${log ? ` (log: ${log})` : ""}\n`);
    process.exit(1);
  }
  process.stdout.write(`portal started on ${listen} (pid ${child.pid}, database ${database})\n`);
} else if (action === "stop") {
  if (!existsSync(pidPath)) {
    process.stdout.write("portal not running (no pid file)\n");
  } else {
    const pid = Number(readFileSync(pidPath, "utf8").trim());
    if (pid > 0 && alive(pid)) process.kill(pid, "SIGTERM");
    for (let i = 0; i < 50 && pid > 0 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    rmSync(pidPath, { force: true });
    process.stdout.write(`portal stopped (pid ${pid})\n`);
  }
} else usage();
