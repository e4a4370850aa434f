/**
 * The producer restic runs for a streamed backup (`restic backup --stdin-from-command -- node stream-relay.js SOCKET
 * MARKER`): it copies what dcctl sends on a Unix socket to its standard output, then exits 0 only if dcctl has
 * written MARKER. dcctl writes the marker after the source (pg_dump over SSH, tar, …) has ended well and every byte
 * is on the socket. A dcctl that dies first (SIGKILL included) closes the socket without it: the relay fails and
 * restic itself discards the snapshot, so no partial stream can ever become a snapshot. Kept free of imports
 * beyond Node's own: it starts once per stream.
 */
import { existsSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { basename, dirname } from "node:path";

const [socketPath, marker] = process.argv.slice(2);
if (!socketPath || !marker) {
  process.stderr.write("usage: stream-relay SOCKET MARKER\n");
  process.exit(2);
}
/** Leaves no folder behind when dcctl was killed and cannot remove it itself (only dcctl's own temporary folder). */
function exit(code: number): never {
  const dir = dirname(socketPath as string);
  if (basename(dir).startsWith("dcctl-stream-")) rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}

const sock = connect(socketPath);
sock.on("error", (e) => {
  process.stderr.write(`dcctl stream relay: ${e.message}\n`);
  exit(1);
});
sock.pipe(process.stdout);
sock.on("end", () => {
  process.stdout.end(() => {
    if (existsSync(marker)) exit(0);
    process.stderr.write("dcctl stream relay: the stream ended without dcctl's completion marker (dcctl stopped or the source failed)\n");
    exit(1);
  });
});
