import { createWriteStream, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { DcctlError, ExitCode, errorMessage } from "../util/errors.js";
import { lastLine } from "../util/process.js";
import type { Executor } from "../hosts/executor.js";
import { describeDiverged, DivergedWritesError, type DivergedWrites, type ReplicaSetupOptions } from "./replication.js";

/**
 * The kept copy of a former primary's diverged writes: what a remote command prints (a WAL archive, a decode, rows),
 * streamed into a file of the keep folder on this machine, never held in memory whole.
 */

/**
 * Runs `argv` on the host and writes its stdout to `file`; resolves with its exit code and stderr's tail. `okCodes`:
 * exit codes that are not failures (pg_waldump ends with 1 where the WAL ends).
 */
export async function streamToFile(exec: Executor, argv: string[], file: string, okCodes: number[] = [0]): Promise<{ code: number; stderr: string }> {
  const run = exec.stream(argv);
  try {
    await pipeline(run.stdout, createWriteStream(file, { mode: 0o600 }));
  } catch (e) {
    run.kill();
    throw new DcctlError(`${argv[0] ?? "command"} on ${exec.target} into ${file}: ${errorMessage(e)}`);
  }
  const done = await run.done;
  if (!okCodes.includes(done.code)) throw new DcctlError(`${argv[0] ?? "command"} on ${exec.target} failed (exit ${done.code}): ${lastLine(done.stderr) || "no output"}`);
  return { code: done.code, stderr: done.stderr };
}

/** The files of the keep folder and their total size. */
export function keptFiles(dir: string): { files: string[]; bytes: number } {
  const files = readdirSync(dir).sort();
  return { files, bytes: files.reduce((n, f) => n + statSync(join(dir, f)).size, 0) };
}

/** "12.3 MiB": a size as an operator reads it. */
export function sizeText(bytes: number): string {
  return bytes >= 1024 ** 2 ? `${(bytes / 1024 ** 2).toFixed(1)} MiB` : bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} B`;
}

/**
 * The gate before a former primary is rebuilt: `measure` keeps and counts what it holds past the fork; diverged writes,
 * or a measurement that failed, refuse (exit 5) unless `o.diverged.discard` says to go on. `unmeasured` names what
 * could not be measured, for the refusal.
 */
export async function gateDiverged(measure: () => Promise<DivergedWrites | undefined>, o: ReplicaSetupOptions, unmeasured: string): Promise<DivergedWrites | undefined> {
  let diverged: DivergedWrites | undefined;
  try {
    diverged = await measure();
  } catch (e) {
    if (!o.diverged.discard) throw new DcctlError(`could not measure ${unmeasured} (${errorMessage(e)}): run again with --discard-diverged to rebuild it unmeasured`, ExitCode.notConfirmed);
    o.log(`not measured: ${unmeasured} (${errorMessage(e)}); rebuilt as told (--discard-diverged)`);
  }
  if (diverged && !o.diverged.discard) throw new DivergedWritesError(diverged);
  if (diverged) o.log(`discarding, as told: ${describeDiverged(diverged)}`);
  return diverged;
}

/** The setup's notes about what it discarded. */
export const discardedNotes = (d: DivergedWrites | undefined): string[] => (d ? [`discarded (--discard-diverged): ${describeDiverged(d)}`, ...d.notes] : []);
