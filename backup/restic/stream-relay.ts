/**
 * The producer restic runs for a streamed backup (`restic backup --stdin-from-command -- node stream-relay.js SOCKET
 * MARKER`): it copies what dcctl sends on a Unix socket to its standard output, then exits 0 only if dcctl has
 * written MARKER. dcctl writes the marker after the source (pg_dump over SSH, tar, …) has ended well and every byte
 * is on the socket. A dcctl that dies first (SIGKILL included) closes the socket without it: the relay fails and
 * restic itself discards the snapshot, so no partial stream can ever become a snapshot. Kept free of imports
 * beyond Node's own: it starts once per stream.
 */
import { existsSync } from "node:fs";
import { connect } from "node:net";

const [socketPath, marker] = process.argv.slice(2);
if (!socketPath || !marker) {
  process.stderr.write("usage: stream-relay SOCKET MARKER\n");
  process.exit(2);
}
const sock = connect(socketPath);
sock.on("error", (e) => {
  process.stderr.write(`dcctl stream relay: ${e.message}\n`);
  process.exit(1);
});
sock.pipe(process.stdout);
sock.on("end", () => {
  process.stdout.end(() => {
    if (existsSync(marker)) process.exit(0);
    process.stderr.write("dcctl stream relay: the stream ended without dcctl's completion marker (dcctl stopped or the source failed)\n");
    process.exit(1);
  });
});
