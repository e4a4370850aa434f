import { spawn, type ChildProcessByStdio } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { DcctlError } from "../util/errors.js";
import { toolEnv } from "../util/tools.js";
import { appendTail, ExecTimeoutError, signalCode, type ExecCompletion, type ExecOptions, type ExecResult, type ExecStream, type Executor } from "./executor.js";

type Child = ChildProcessByStdio<Writable, Readable, Readable>;

/** Runs commands on this machine, by argument vector, each in its own process group so a timeout ends its children too. */
export class LocalExecutor implements Executor {
  readonly target = "local";

  async run(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const s = this.stream(argv, opts);
    const out: Buffer[] = [];
    s.stdout.on("data", (b: Buffer) => out.push(b));
    const done = await s.done;
    return { ...done, stdout: Buffer.concat(out).toString("utf8") };
  }

  stream(argv: string[], opts: ExecOptions = {}): ExecStream {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new DcctlError("an empty command cannot be run");
    const child: Child = spawn(cmd, args, { env: toolEnv(opts.env ?? {}), stdio: ["pipe", "pipe", "pipe"], detached: true });
    const kill = () => killGroup(child);
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr = appendTail(stderr, b)));
    feedStdin(child, opts.stdin);

    const done = new Promise<ExecCompletion>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      if (opts.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          kill();
          reject(new ExecTimeoutError(`${cmd} did not finish within ${opts.timeoutMs} ms on local host; stopped`));
        }, opts.timeoutMs);
      }
      child.once("error", (e) => {
        clearTimeout(timer);
        reject(new DcctlError(`cannot run ${cmd}: ${e.message}`));
      });
      // "close" comes after stdout and stderr have ended, so every byte has been read by then.
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        resolve(signal ? { code: signalCode(signal), stderr, signal } : { code: code ?? 1, stderr });
      });
    });
    return { stdout: child.stdout, done, kill };
  }

  async close(): Promise<void> {}
}

function feedStdin(child: Child, stdin: ExecOptions["stdin"]): void {
  // The command may exit without reading its input; that is its business, not an EPIPE crash of ours.
  child.stdin.on("error", () => undefined);
  if (stdin === undefined) child.stdin.end();
  else if (typeof stdin === "string" || Buffer.isBuffer(stdin)) child.stdin.end(stdin);
  else stdin.pipe(child.stdin);
}

function killGroup(child: Child): void {
  if (child.pid === undefined || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    child.kill("SIGKILL");
  }
}
