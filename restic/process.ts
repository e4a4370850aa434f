import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { formatDuration } from "../util/duration.js";
import { diesWithUs } from "../util/process.js";
import { toolEnv } from "../util/tools.js";
import { Watchdog } from "../util/watchdog.js";
import { globalFlags, type ResticCommand } from "./args.js";
import { ResticError, ResticExit } from "./errors.js";
import type { ProducerResult, ResticOptions, ResticRepo, RunBound, StreamSource } from "./options.js";
import { progressKey, type RawResult } from "./output.js";
import { redactRepo } from "./redact.js";

/**
 * Running restic on this machine: its environment (the repository and password by variable and file, never on the
 * command line), the process itself, and its bounds: a stall watchdog, an overall deadline, dcctl's stop signal.
 */

export interface RunHooks {
  /** Kill restic when it fires; the result then carries why (`stalled`). */
  watchdog?: Watchdog;
  /** A second one, never touched: an overall deadline beside a progress watchdog. */
  deadline?: Watchdog;
  /** Each line restic prints on stdout, as it comes (collected all the same). */
  onLine?: (line: string) => void;
  stdin?: Readable;
  /** Send stdout here instead of collecting it. */
  stdout?: Writable;
  /** Whether `stdout` is ended when restic's output ends. */
  endStdout?: boolean;
  env?: Record<string, string>;
}

/** Commands that only read or write repository metadata: a stall bound fits them as a plain deadline. */
const METADATA_COMMANDS = new Set(["snapshots", "forget", "unlock", "cat", "list", "tag", "init", "stats"]);

/** restic's environment variables that would override the repository or the password we hand it. */
const FOREIGN_ENV = [
  "RESTIC_REPOSITORY",
  "RESTIC_REPOSITORY_FILE",
  "RESTIC_PASSWORD",
  "RESTIC_PASSWORD_FILE",
  "RESTIC_PASSWORD_COMMAND",
  "RESTIC_FROM_REPOSITORY",
  "RESTIC_FROM_REPOSITORY_FILE",
  "RESTIC_FROM_PASSWORD",
  "RESTIC_FROM_PASSWORD_FILE",
  "RESTIC_FROM_PASSWORD_COMMAND",
  "RESTIC_REST_USERNAME",
  "RESTIC_REST_PASSWORD",
];

const STDERR_TAIL = 64 * 1024;

/** A deadline for a listing or lookup that does not answer. */
export function listingDeadline(where: string, command: string, ms: number): Watchdog {
  return new Watchdog(ms, (idle) => `restic ${command} on ${where} did not answer within ${formatDuration(idle)}`);
}

/** The watchdogs of a long command: its progress output must change within the stall bound; all of it within the time bound. */
export function boundedRun(where: string, what: string, bound: RunBound | undefined): Pick<RunHooks, "watchdog" | "deadline" | "onLine"> {
  if (!bound?.stallMs && !bound?.timeoutMs) return {};
  const setting = bound.setting ? ` (${bound.setting})` : "";
  let last = "";
  const watchdog = bound.stallMs ? new Watchdog(bound.stallMs, (idle) => `restic ${what} on ${where} made no progress for ${formatDuration(idle)}${last ? ` after "${last}"` : ""}${setting}`) : undefined;
  const deadline = bound.timeoutMs ? new Watchdog(bound.timeoutMs, (idle) => `restic ${what} on ${where} did not finish within ${formatDuration(idle)}${setting}`) : undefined;
  const onLine = (line: string) => {
    const seen = progressKey(line);
    if (!seen || seen === last) return;
    last = seen;
    watchdog?.touch();
  };
  return { ...(watchdog ? { watchdog } : {}), ...(deadline ? { deadline } : {}), onLine };
}

/** restic's environment: the caller's extras, the repository, the password file, the cache; nothing inherited that could override them. */
export function resticEnv(repo: ResticRepo, opts: ResticOptions, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const k of FOREIGN_ENV) delete base[k];
  const where = redactRepo(repo.url);
  const rest = repo.rest ? { RESTIC_REST_USERNAME: repo.rest.user, RESTIC_REST_PASSWORD: readSecret(repo.rest.passwordFile, where) } : {};
  return toolEnv(
    {
      ...opts.env,
      ...extra,
      ...rest,
      RESTIC_REPOSITORY: repo.url,
      RESTIC_PASSWORD_FILE: repo.passwordFile,
      ...(opts.cacheDir ? { RESTIC_CACHE_DIR: opts.cacheDir } : {}),
      // restic prints progress to a terminal only; make sure it never waits on one.
      RESTIC_PROGRESS_FPS: "0.2",
    },
    base,
  );
}

/** The first line of a secret file; the error names the file, never its content. */
function readSecret(path: string, where: string): string {
  try {
    return (readFileSync(path, "utf8").split("\n")[0] ?? "").trim();
  } catch (e) {
    throw new ResticError(`cannot read the rest-server password file ${path} for ${where}: ${(e as NodeJS.ErrnoException).code ?? "error"}`, "auth", -1);
  }
}

/**
 * Runs one restic command to its end. A metadata command without a watchdog of its own gets the listing bound
 * (`listingMs`, else `stallMs`); a watchdog that fires kills restic and the result says why; dcctl's stop signal
 * asks restic to leave (SIGINT, so that it removes its lock), then kills it after 10 s.
 */
export function runRestic(bin: string, repo: ResticRepo, opts: ResticOptions, cmd: ResticCommand, hooks: RunHooks = {}): Promise<RawResult> {
  const { command } = cmd;
  const argv = [command, ...globalFlags(opts), ...cmd.args];
  const listingMs = opts.listingMs ?? opts.stallMs;
  const watchdog = hooks.watchdog ?? hooks.deadline ?? (METADATA_COMMANDS.has(command) && listingMs ? listingDeadline(redactRepo(repo.url), command, listingMs) : undefined);
  const deadline = hooks.watchdog ? hooks.deadline : undefined;
  const env = resticEnv(repo, opts, hooks.env);
  return new Promise((resolve, reject) => {
    const [exe, exeArgs] = diesWithUs(bin, argv);
    const child = spawn(exe, exeArgs, { env, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let stderr = "";
    let partial = "";
    let stalled: string | undefined;
    const stop = () => {
      child.kill("SIGINT");
      // restic answers SIGINT by removing its lock and leaving; one that does not within 10 s is killed.
      setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
    };
    for (const w of [watchdog, deadline]) {
      w?.onFire((why) => {
        stalled ??= why;
        child.kill("SIGKILL");
      });
    }
    const signal = opts.signal;
    if (signal?.aborted) stop();
    signal?.addEventListener("abort", stop, { once: true });
    child.stderr.on("data", (b: Buffer) => (stderr = (stderr + b.toString("utf8")).slice(-STDERR_TAIL)));
    let piping: Promise<void> = Promise.resolve();
    if (hooks.stdout) {
      piping = pipeline(child.stdout, hooks.stdout, { end: hooks.endStdout ?? true });
      // A reader that goes away early (a failed restore target) rejects this before restic has closed; it is handled
      // when restic closes, but must not count as an unhandled rejection in between.
      piping.catch(() => undefined);
    } else {
      child.stdout.on("data", (b: Buffer) => {
        out.push(b);
        if (!hooks.onLine) return;
        const lines = (partial + b.toString("utf8")).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) hooks.onLine(line);
      });
    }
    // A producer that errors, or restic closing its stdin early, must not crash the process with EPIPE.
    child.stdin.on("error", () => undefined);
    if (hooks.stdin) {
      hooks.stdin.on("error", () => child.stdin.destroy());
      hooks.stdin.pipe(child.stdin);
    } else {
      child.stdin.end();
    }
    child.once("error", (e) => {
      watchdog?.stop();
      deadline?.stop();
      reject(new ResticError(`cannot run restic (${bin}): ${e.message}`, command, -1));
    });
    child.once("close", (code, sig) => {
      watchdog?.stop();
      deadline?.stop();
      signal?.removeEventListener("abort", stop);
      const finish = () =>
        resolve({
          code: code ?? (sig === "SIGINT" ? ResticExit.interrupted : -1),
          stdout: Buffer.concat(out).toString("utf8"),
          stderr,
          ...(stalled ? { stalled } : {}),
        });
      piping.then(finish, (e: unknown) => {
        stderr += `\nwriting restic ${command} output failed: ${e instanceof Error ? e.message : String(e)}`;
        resolve({ code: code === 0 ? ResticExit.fatal : (code ?? -1), stdout: "", stderr });
      });
    });
  });
}

/** Starts a local command whose output is to be backed up (restic < 0.17 pipes it into `--stdin`). */
export function spawnProducer(argv: [string, ...string[]]): StreamSource & { done: Promise<ProducerResult> } {
  const [cmd, ...args] = argv;
  const child = spawn(cmd, args, { env: toolEnv(), stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => (stderr = (stderr + b.toString("utf8")).slice(-STDERR_TAIL)));
  const done = new Promise<ProducerResult>((resolve) => {
    child.once("error", (e) => resolve({ code: -1, stderr: e.message }));
    child.once("close", (code) => resolve({ code: code ?? -1, stderr }));
  });
  return { stdout: child.stdout, done, kill: () => child.kill("SIGKILL") };
}
