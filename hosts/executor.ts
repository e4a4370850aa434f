import type { Readable } from "node:stream";
import { DcctlError } from "../util/errors.js";
import { exitStatus } from "../util/process.js";

export interface ExecOptions {
  /** Fed to the command's standard input, then closed. */
  stdin?: string | Buffer | Readable;
  /** Kill the command after this long (counted from its start; SSH connects have their own timeout); rejects with ExecTimeoutError. */
  timeoutMs?: number;
  /** Extra environment variables. Over SSH they are set with `env NAME=value` in the quoted command line, so no secrets. */
  env?: Record<string, string>;
}

export interface ExecResult {
  /** The exit code; 128+N when killed by signal N (like a shell reports it). */
  code: number;
  stdout: string;
  stderr: string;
  /** The signal's name ("SIGKILL") when the command was killed by one, here or on a host. */
  signal?: string;
}

/** How a streamed command ended. stderr is the last 64 KiB. */
export interface ExecCompletion {
  code: number;
  stderr: string;
  signal?: string;
}

/**
 * A running command whose standard output is read as a stream (e.g. pg_dump piped into restic).
 * stdout must be consumed: it applies backpressure, so an unread stream stalls the command and `done` with it.
 */
export interface ExecStream {
  stdout: Readable;
  /** Settles once the command has exited and stdout has ended; rejects only for a timeout or a lost connection. */
  done: Promise<ExecCompletion>;
  /** Stops the command (and closes its stdout). */
  kill(): void;
}

/** Runs commands given as argument vectors, here or on another host. */
export interface Executor {
  /** Where commands run, for messages: "local" or "user@host:port". */
  readonly target: string;
  run(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  stream(argv: string[], opts?: ExecOptions): ExecStream;
  /** Releases connections; the executor may be used again afterwards (it reconnects). */
  close(): Promise<void>;
}

export class ExecTimeoutError extends DcctlError {}

export const STDERR_TAIL = 64 * 1024;

/** Appends to a bounded tail buffer: we keep only the end of stderr, where errors are. */
export function appendTail(tail: string, chunk: Buffer | string): string {
  const next = tail + chunk.toString();
  return next.length > STDERR_TAIL ? next.slice(-STDERR_TAIL) : next;
}

/** Throws a one-line DcctlError unless the command exited 0. */
export function expectOk(res: ExecResult, argv: string[], target: string): ExecResult {
  if (res.code === 0) return res;
  const last = res.stderr.split("\n").map((l) => l.trim()).filter(Boolean).pop() ?? `exit code ${res.code}`;
  throw new DcctlError(`${argv[0] ?? "command"} on ${target} failed (exit ${res.code}): ${last}`);
}

/** 128 + the signal number, as a shell reports a command killed by a signal. */
export function signalCode(signal: string): number {
  return exitStatus(null, signal);
}
