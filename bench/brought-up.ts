import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../util/tools.js";

/**
 * What a bench brought up (a lab, a server, a child bench) and the one place it is taken down: newest first, once,
 * when the bench ends, when it fails (an error it throws, or one nobody handled, such as a child's EPIPE), and when it
 * is told to stop (SIGINT, SIGTERM; it then exits 130 or 143). Every bench runs its main() under runBench(), and
 * registers what it starts with bringUp() or labUp(), never with a finally of its own.
 *
 * DCCTL_BENCH_FAIL=KIND makes the bench fail on purpose right after it brought up a KIND ("lab", "rest-server",
 * "vcsim"): what test/integration/bench-cleanup.test.ts uses to see that a failing bench leaves nothing behind.
 */

/** A command (timed.ts, or a lab up here) run to its end: how long it took, how it exited, and what it printed (stdout then stderr, interleaved). */
export interface Timed {
  ms: number;
  code: number | null;
  out: string;
}

interface Up {
  what: string;
  down: () => Promise<void> | void;
}

const ups: Up[] = [];
let downing: Promise<void> | undefined;
const mainJs = join(repoRoot, "dist", "cli", "main.js");

/** Registers something a bench started, to be taken down with the rest; the function returned takes it down now. */
export function broughtUp(what: string, down: () => Promise<void> | void): () => Promise<void> {
  const up: Up = { what, down };
  ups.push(up);
  return async () => {
    const i = ups.indexOf(up);
    if (i < 0) return;
    ups.splice(i, 1);
    await up.down();
  };
}

function failOnPurpose(kind: string): void {
  if (process.env.DCCTL_BENCH_FAIL === kind) throw new Error(`failing on purpose after bringing up the ${kind} (DCCTL_BENCH_FAIL=${kind})`);
}

/** Starts something and registers its stop at once: the one way a bench brings up a server. */
export async function bringUp<T>(kind: string, start: () => Promise<T>, stop: (it: T) => Promise<void> | void): Promise<T> {
  const it = await start();
  broughtUp(kind, () => stop(it));
  failOnPurpose(kind);
  return it;
}

/**
 * A command a bench runs (what it measures, a set-up step) counts as brought up while it runs: a bench stopped
 * mid-way stops it (SIGTERM, SIGKILL after 10 s) before the servers and folders it works on go.
 */
export function whileRunning(child: ChildProcess, what: string): void {
  // Its exit, not the close of its output, which a process it left behind may hold open.
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
  const stop = broughtUp(what, async () => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    child.kill("SIGTERM");
    const hard = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(hard);
  });
  void exited.then(stop);
}

/** Everything registered, newest first; a second call waits for the first. */
export function takeDownAll(): Promise<void> {
  downing ??= (async () => {
    for (let up = ups.pop(); up; up = ups.pop()) {
      try {
        await up.down();
      } catch (e) {
        process.stderr.write(`could not take down ${up.what}: ${e instanceof Error ? e.message : String(e)}\n`);
      }
    }
  })();
  return downing;
}

export interface LabUpOptions {
  /** Leave the lab running at the end (a bench's --keep-up), failed or not. */
  keepUp?: boolean;
  /** Remove the lab's folder once it is down (a folder the bench made for this run only). */
  removeDir?: boolean;
  /** Show `lab up`'s output as it goes instead of collecting it. */
  inherit?: boolean;
}

/**
 * `dcctl lab up ARGS` on `dir`, registered before it starts: a bench stopped while the lab comes up stops `lab up`
 * first, then takes the lab down. Resolves with how `lab up` went (the bench decides what a failure means), and a
 * way to take this lab down before the end (to try again from a clean one).
 */
export async function labUp(dir: string, args: string[], o: LabUpOptions = {}): Promise<Timed & { down(): Promise<void> }> {
  const env = { ...process.env, DCCTL_LAB_DIR: dir };
  // Registered first: `lab up` itself, while it runs, is newer, hence stopped before the lab is taken down.
  const down = broughtUp(`lab in ${dir}`, async () => {
    if (o.keepUp) {
      process.stderr.write(`the lab in ${dir} is left running (--keep-up); stop it with DCCTL_LAB_DIR=${dir} dcctl lab down\n`);
      return;
    }
    const res = await run(process.execPath, [mainJs, "lab", "down"], env, false);
    if (res.code !== 0) throw new Error(`lab down in ${dir} exited ${res.code}: ${res.out.trim().split("\n").pop() ?? ""} (its folder is kept)`);
    if (o.removeDir) rmSync(dir, { recursive: true, force: true });
  });
  const up = await run(process.execPath, [mainJs, "lab", "up", ...args], env, o.inherit ?? false);
  if (up.code === 0) failOnPurpose("lab");
  return { ...up, down };
}

/** A command to its end, its output collected (or shown, `inherit`); never rejects. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, inherit: boolean): Promise<Timed> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ["ignore", inherit ? "inherit" : "pipe", inherit ? "inherit" : "pipe"] });
    whileRunning(child, `${args[1] ?? cmd} ${args[2] ?? ""}`);
    let out = "";
    child.stdout?.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr?.on("data", (b: Buffer) => (out += b.toString()));
    child.on("error", (e) => resolve({ ms: performance.now() - t0, code: -1, out: e.message }));
    child.on("close", (code) => resolve({ ms: performance.now() - t0, code, out }));
  });
}

/**
 * Runs a bench's main() and takes down what it brought up, however it ends: a failure is one line naming the bench
 * (exit 1), never a stack trace; a signal stops it (exit 128 + the signal's number) once everything is down.
 */
export async function runBench(name: string, main: () => Promise<void>): Promise<void> {
  guardBench(name);
  try {
    await main();
  } catch (e) {
    process.stderr.write(`bench/${name}: failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  } finally {
    await takeDownAll();
  }
}

/**
 * What runBench does besides running main(), for a bench written as a script (a failure it does not catch, at the top
 * level or later, is one line and exit 1; SIGINT and SIGTERM take down what it registered, then stop it).
 */
export function guardBench(name: string): void {
  const say = (line: string) => process.stderr.write(`bench/${name}: ${line}\n`);
  let signalled = false;
  const stopOn = (signal: NodeJS.Signals, code: number) => {
    process.on(signal, () => {
      // A second signal while taking down: at once.
      if (signalled) process.exit(code);
      signalled = true;
      say(`stopped by ${signal}; taking down what it brought up`);
      void takeDownAll().finally(() => process.exit(code));
    });
  };
  stopOn("SIGINT", 130);
  stopOn("SIGTERM", 143);
  const crashed = (e: unknown) => {
    say(`failed: ${e instanceof Error ? e.message : String(e)}`);
    void takeDownAll().finally(() => process.exit(1));
  };
  process.on("uncaughtException", crashed);
  process.on("unhandledRejection", crashed);
}
