import { chmodSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { errorMessage } from "../util/errors.js";

/**
 * How dbctl (the lab's pg_ctlcluster) asks the lab's supervisor to stop or start a host's PostgreSQL, so that the
 * server replication restarts on a re-seeded data directory is the supervisor's child like every other lab server:
 * lab.json names the process that runs, and the server stops with the lab. One line each way over a Unix socket in
 * the lab's folder, which every host's namespace reaches (a path, not a network address):
 *   → start HOST | stop HOST
 *   ← ok PID | ok | error MESSAGE
 */
export type ControlAction = "start" | "stop";

/** Listens at `path` (root only: mode 0600); `handle` returns the server's pid after a start, and throws to refuse. */
export async function serveControl(path: string, handle: (action: ControlAction, host: string) => Promise<number | undefined>): Promise<Server> {
  rmSync(path, { force: true });
  const server = createServer((sock) => {
    let request = "";
    sock.setEncoding("utf8");
    sock.on("error", () => undefined);
    sock.on("data", (chunk: string) => {
      request += chunk;
      const nl = request.indexOf("\n");
      if (nl < 0) return;
      const [action, host = ""] = request.slice(0, nl).trim().split(/\s+/);
      const answer = action === "start" || action === "stop" ? handle(action, host).then((pid) => `ok${pid === undefined ? "" : ` ${pid}`}`) : Promise.reject(new Error(`unknown request "${action ?? ""}"`));
      void answer.then(
        (line) => sock.end(line + "\n"),
        (e: unknown) => sock.end(`error ${errorMessage(e).replace(/\s*\n\s*/g, " | ")}\n`),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return server;
}

/** Asks the supervisor listening at `path`; resolves with the pid it names, rejects with its refusal or a time-out. */
export function askSupervisor(path: string, action: ControlAction, host: string, timeoutMs: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let answer = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`the lab's supervisor did not answer "${action} ${host}" within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    sock.setEncoding("utf8");
    sock.on("connect", () => sock.write(`${action} ${host}\n`));
    sock.on("data", (chunk: string) => (answer += chunk));
    sock.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(e.code === "ENOENT" || e.code === "ECONNREFUSED" ? `the lab's supervisor is not running (no ${path})` : `cannot reach the lab's supervisor: ${e.message}`));
    });
    sock.on("end", () => {
      clearTimeout(timer);
      const line = answer.trim();
      const ok = /^ok(?: (\d+))?$/.exec(line);
      if (ok) resolve(ok[1] === undefined ? undefined : Number(ok[1]));
      else reject(new Error(line.replace(/^error /, "") || "the lab's supervisor closed the connection without an answer"));
    });
  });
}
