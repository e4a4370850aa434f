import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Socket, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { formatDuration } from "../util/duration.js";
import { repoRoot } from "../util/tools.js";
import type { Watchdog } from "../util/watchdog.js";
import { backupFromCommand, backupFromStdin, type ResticCommand } from "./args.js";
import { BackupSourceError, ResticError } from "./errors.js";
import type { ProducerResult, StdinBackupOptions, StreamSource } from "./options.js";
import { backupSummary, isRelayFailure, lastLines, requireSummary, type RawResult } from "./output.js";
import type { RunHooks } from "./process.js";
import { oneLine } from "./redact.js";
import type { BackupSummary } from "./types.js";

/**
 * Backing up a stream (pg_dump over SSH, say) so that only a complete one can become a snapshot. restic ≥ 0.17 runs
 * stream-relay.js as its --stdin-from-command producer and dcctl feeds it over a Unix socket, writing the completion
 * marker only once the source has ended well and every byte is on the socket; older restic reads the stream on its
 * stdin and the snapshot of a failed source is forgotten afterwards.
 */

/** The producer restic runs for a stream; see stream-relay.ts for why a snapshot of a partial stream cannot be kept. */
const STREAM_RELAY = join(repoRoot, "dist", "restic", "stream-relay.js");

/** What the relay needs of the Restic wrapper. */
export interface StreamRunner {
  /** The repository, credentials removed. */
  readonly where: string;
  run(cmd: ResticCommand, hooks?: RunHooks): Promise<RawResult>;
  failure(command: string, res: RawResult): ResticError;
  forgetIds(ids: string[]): Promise<void>;
  stallWatchdog(describe: (idleMs: number) => string): Watchdog | undefined;
}

/** restic ≥ 0.17: the stream through stream-relay.js, in a private folder for its socket and marker. */
export async function relayStream(r: StreamRunner, source: StreamSource, opts: StdinBackupOptions): Promise<BackupSummary> {
  const dir = mkdtempSync(join(tmpdir(), "dcctl-stream-"));
  try {
    return await relayed(r, source, opts, join(dir, "socket"), join(dir, "complete"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function relayed(r: StreamRunner, source: StreamSource, opts: StdinBackupOptions, socketPath: string, marker: string): Promise<BackupSummary> {
  let sent = 0;
  let sourceEnded = false;
  let pipe: Socket | undefined;
  const watchdog = r.stallWatchdog((idle) => {
    const d = formatDuration(idle);
    if (sourceEnded) return `restic did not finish the snapshot of ${opts.filename} in ${r.where} within ${d} after the stream ended`;
    if (!pipe) return `restic did not start reading ${opts.filename} within ${d} (${r.where} not answering?)`;
    if (pipe.writableLength > 0) return `restic took no data of ${opts.filename} for ${d} (${r.where} not answering?)`;
    return `the source of ${opts.filename} sent no data for ${d} (after ${sent} bytes)`;
  });
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sent += chunk.length;
      watchdog?.touch();
      opts.onProgress?.({ bytesDone: sent, filesDone: 0 });
      cb(null, chunk);
    },
  });
  const metered = pipeline(source.stdout, meter);
  metered.catch(() => undefined);
  const server = createServer({ pauseOnConnect: true });
  const connected = new Promise<Socket>((resolve) => server.once("connection", resolve));
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(socketPath, resolve));
      let resticDone = false;
  const run = r.run(backupFromCommand([process.execPath, STREAM_RELAY, socketPath, marker], opts), { watchdog }).then((r) => {
    resticDone = true;
    // restic gone first (refused, stalled, killed): stop the source so that its completion settles.
    source.kill?.();
    meter.destroy();
    pipe?.destroy();
    server.close();
    return r;
  });
  let copied = false;
  const first = await Promise.race([connected, run]);
  if (first instanceof Socket) {
    pipe = first;
    // Only the one relay restic started may connect.
    server.close();
    pipe.on("error", () => undefined);
    copied = await pipeline(meter, pipe, { end: false })
      .then(() => metered)
      .then(() => flushed(first))
      .then(
        () => true,
        () => false,
      );
  }
  sourceEnded = true;
  const prod = await source.done;
  if (!resticDone && copied && prod.code === 0) writeFileSync(marker, String(sent));
  pipe?.end();
  const res = await run;
  const summary = backupSummary(res.stdout);
  if (res.stalled) throw r.failure("backup", res);
  if (prod.code !== 0 && (res.code === 0 || isRelayFailure(res.stderr))) {
    // The producer's failure is the story; restic's "command failed" only echoes it.
    if (res.code === 0 && summary?.snapshot_id) await r.forgetIds([summary.snapshot_id]);
    const why = oneLine(lastLines(prod.stderr, 3)) || `exit code ${prod.code}`;
    throw new BackupSourceError(`backup source of ${opts.filename} failed (${why}); no snapshot kept in ${r.where}`, "backup", res.code);
  }
  if (res.code !== 0) throw r.failure("backup", res);
  const got = requireSummary(summary, r.where);
  if (got.total_bytes_processed !== sent) {
    if (got.snapshot_id) await r.forgetIds([got.snapshot_id]);
    throw new ResticError(`restic stored ${got.total_bytes_processed} bytes of ${opts.filename} but ${sent} were sent; snapshot forgotten in ${r.where}`, "backup", 0);
  }
  return got;
}

/** restic before 0.17: the stream piped into `--stdin`, and the snapshot of a failed source forgotten afterwards. */
export async function pipeStream(r: StreamRunner, source: StreamSource, opts: StdinBackupOptions): Promise<BackupSummary> {
  const input = source.stdout;
  const run = r.run(backupFromStdin(opts), { stdin: input });
  // If restic dies first the producer would block on a full pipe for ever; stop it so its completion settles.
  let stoppedByUs = false;
  void run.then((r) => {
    if (r.code !== 0) {
      stoppedByUs = true;
      source.kill?.();
      input.destroy();
    }
  });
  const [res, prod] = await Promise.all([run, source.done.catch((e: unknown): ProducerResult => ({ code: -1, stderr: e instanceof Error ? e.message : String(e) }))]);
  const summary = backupSummary(res.stdout);
  // The producer's failure is then only the echo of restic's own, which is the one worth reporting.
  if (stoppedByUs) throw r.failure("backup", res);
  if (prod.code !== 0) {
    const id = summary?.snapshot_id;
    if (id) await r.forgetIds([id]);
    const why = oneLine(lastLines(prod.stderr, 3)) || `exit code ${prod.code}`;
    throw new BackupSourceError(`backup source of ${opts.filename} failed (${why}); no snapshot kept in ${r.where}`, "backup", res.code);
  }
  if (res.code !== 0) throw r.failure("backup", res);
  return requireSummary(summary, r.where);
}

/**
 * The source as backupStream uses it, taken up before its first await: its output is read into a buffer at once
 * (Node discards a child's output that nobody reads by the time it exits) and its completion never rejects (a
 * source that fails early, an SSH host key refused, must not be an unhandled rejection while restic starts).
 */
export function heardAtOnce(source: StreamSource): StreamSource & { done: Promise<ProducerResult> } {
  const stdout = new PassThrough();
  pipeline(source.stdout, stdout).catch(() => undefined);
  const done = source.done.catch((e: unknown): ProducerResult => ({ code: -1, stderr: e instanceof Error ? e.message : String(e) }));
  return {
    stdout,
    done,
    kill: () => {
      source.kill?.();
      source.stdout.destroy();
    },
  };
}

/** Resolves once everything written to `sock` so far has reached the kernel (a write's callback comes in order). */
function flushed(sock: Socket): Promise<void> {
  return new Promise((resolve, reject) => sock.write(Buffer.alloc(0), (e) => (e ? reject(e) : resolve())));
}
