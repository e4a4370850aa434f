import { spawn } from "node:child_process";
import { whileRunning, type Timed } from "./brought-up.js";

/**
 * Runs a command and times it, wall clock, from spawn to close; the benches' one way to run what they measure.
 * `stdin`, when given, is written to the command's input (else it reads nothing).
 */
export function timed(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, stdin?: string): Promise<Timed> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    whileRunning(child, [cmd, ...args].join(" ").slice(0, 120));
    let out = "";
    child.stdout?.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr?.on("data", (b: Buffer) => (out += b.toString()));
    // A command that exits without reading all its input closes the pipe: its exit code says how it went, not an EPIPE.
    child.stdin?.on("error", () => undefined);
    if (stdin !== undefined) child.stdin?.end(stdin);
    child.on("error", (e) => resolve({ ms: performance.now() - t0, code: -1, out: e.message }));
    child.on("close", (code) => resolve({ ms: performance.now() - t0, code, out }));
  });
}
