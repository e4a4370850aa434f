import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { constants } from "node:os";
import { DcctlError } from "./errors.js";
import { toolEnv } from "./tools.js";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  timeoutMs?: number;
}

/**
 * Runs a program with an argument vector (never through a shell) and collects its output.
 * The environment has the set-up tools first on PATH. Resolves with the exit code; never throws for a non-zero one.
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? toolEnv(),
      stdio: ["pipe", "pipe", "pipe"],
      timeout: opts.timeoutMs,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e) => reject(new DcctlError(`cannot run ${cmd}: ${e.message}`)));
    child.on("close", (code, signal) =>
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      }),
    );
    // A program that exits without reading its input (or before we finish writing it) closes the pipe: not an error.
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
  });
}

/** Like run, but a non-zero exit becomes a DcctlError carrying the last line the program wrote to stderr. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const res = await run(cmd, args, opts);
  if (res.code !== 0) {
    const last = lastLine(res.stderr) || lastLine(res.stdout) || `exit code ${res.code}`;
    throw new DcctlError(`${cmd} ${args[0] ?? ""} failed: ${last}`);
  }
  return res;
}

/**
 * A child's end as a shell reports it: its exit code, or 128 + the number of the signal that ended it (137 for
 * SIGKILL, which is also what the kernel's OOM killer sends), so that a killed command never passes for a clean stop.
 */
export function exitStatus(code: number | null, signal: string | null): number {
  if (code !== null) return code;
  if (!signal) return 1;
  const name = (signal.startsWith("SIG") ? signal : `SIG${signal}`) as keyof typeof constants.signals;
  return 128 + (constants.signals[name] ?? 0);
}

export function lastLine(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? "";
}

const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));

/**
 * The command line that starts `cmd` so that the kernel kills it (SIGKILL) when this process dies, however it dies:
 * `setpriv --pdeathsig KILL` execs the program with the parent-death signal set. A restic left running by a killed
 * dcctl would otherwise read its input to the end and save a snapshot that no report mentions. Without setpriv
 * (not Linux) the command is returned as it is.
 */
export function diesWithUs(cmd: string, args: readonly string[]): [string, string[]] {
  return SETPRIV ? [SETPRIV, ["--pdeathsig", "KILL", "--", cmd, ...args]] : [cmd, [...args]];
}

/** Whether a process with this pid exists (one we may not signal counts as alive). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Whether the process runs: alive and not a zombie. A killed process whose parent died before reaping it stays a
 * zombie until init gets to it; it holds nothing but its pid.
 */
export function isRunning(pid: number): boolean {
  return isAlive(pid) && procStat(pid)?.state !== "Z";
}

/** State (field 3) and start time (field 22, clock ticks since boot) from /proc/<pid>/stat; undefined without /proc. */
export function procStat(pid: number): { state: string; start: string | undefined } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "", start: fields[19] };
  } catch {
    return undefined;
  }
}

/** A free TCP port on a loopback address, chosen by the kernel. */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on host:port; rejects after timeoutMs or if `alive` turns false. */
export async function waitForPort(host: string, port: number, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect({ host, port });
      sock.once("connect", () => {
        sock.destroy();
        resolve(true);
      });
      sock.once("error", () => resolve(false));
    });
    if (ok) return;
    if (!alive()) throw new DcctlError(`process for ${host}:${port} exited before it listened`);
    if (Date.now() > deadline) throw new DcctlError(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A long-running server process we started, with its output kept for error messages. */
export interface ServerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  stop(): Promise<void>;
}

export interface StartServerOptions extends SpawnOptions {
  /** Wait until this loopback address accepts connections. */
  waitFor?: { host: string; port: number; timeoutMs?: number };
}

/**
 * Starts a server in its own process group so that stop() ends it and any children it forked,
 * first with SIGTERM, then SIGKILL after a grace period.
 */
export async function startServer(name: string, cmd: string, args: readonly string[], opts: StartServerOptions = {}): Promise<ServerProcess> {
  const { waitFor, ...spawnOpts } = opts;
  const child = spawn(cmd, args, { env: toolEnv(), ...spawnOpts, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const keep = (b: Buffer) => {
    log = (log + b.toString("utf8")).slice(-16_384);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  const spawnError = new Promise<never>((_, reject) => child.once("error", (e) => reject(new DcctlError(`cannot start ${name} (${cmd}): ${e.message}`))));
  const server: ServerProcess = {
    name,
    child,
    get pid() {
      return child.pid ?? -1;
    },
    output: () => log,
    async stop() {
      if (exited || child.pid === undefined) return;
      signalGroup(child.pid, "SIGTERM");
      const timer = setTimeout(() => child.pid !== undefined && signalGroup(child.pid, "SIGKILL"), 5_000);
      await exitedPromise;
      clearTimeout(timer);
    },
  };
  if (waitFor) {
    try {
      await Promise.race([spawnError, waitForPort(waitFor.host, waitFor.port, waitFor.timeoutMs ?? 30_000, () => !exited)]);
    } catch (e) {
      await server.stop();
      const out = lastLine(log);
      throw new DcctlError(`${name} did not start: ${e instanceof Error ? e.message : String(e)}${out ? ` (${out})` : ""}`);
    }
  }
  return server;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}
