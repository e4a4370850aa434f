import { isIP } from "node:net";
import { checkServerIdentity, connect, type PeerCertificate } from "node:tls";
import { failureLine } from "./secrets.js";
import { readSmallFile } from "../util/files.js";
import type { CollectorSettings } from "./soc-config.js";

/**
 * Delivers a batch of framed syslog messages to one collector over TLS (RFC 5425), on a connection of its own, and
 * confirms it by a clean close: the messages are written, then our side is closed (TLS close_notify, then FIN), and
 * the batch counts as received only when the collector closes its side in answer without an error. TCP delivers in
 * order, so a collector that has read our close has read every byte before it. Syslog has no acknowledgement of its
 * own; this is as close to one as the protocol allows.
 *
 * A close that comes before ours is the collector going away on its own (a full session table, a restart): it
 * confirms nothing, and our close follows the batch only after a short settle, so that such a close, or the reset a
 * closed socket answers data with, shows first. The window that remains: the collector read the batch and closed, but
 * the connection broke before its close reached us. The batch is then sent again, and each event's `uid` lets the collector drop the copy. A collector that
 * crashes after reading and before storing loses what it had not stored: that is its own queue's business.
 */

/**
 * How long the batch stands before our close follows it: a collector that closes or resets on its own does it within
 * a round trip, and one that does it later has read the batch by then. Paid once per batch (up to 500 events).
 */
const SETTLE_MS = 200;

/** What a file names is a few KiB; past this it is a mistake. */
const MAX_PEM_BYTES = 1024 * 1024;

export interface SendOptions {
  /** The whole of it: connecting, the handshake, writing and the collector's close. */
  timeoutMs: number;
  signal?: AbortSignal;
}

function pem(path: string, what: string): Buffer {
  try {
    return Buffer.from(readSmallFile(path, MAX_PEM_BYTES, what));
  } catch (e) {
    throw new Error(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? failureLine(e)}`, { cause: e });
  }
}

/** Sends `frames` (octet-counted messages) and resolves once the collector closed in answer; rejects with one line. */
export async function sendBatch(c: CollectorSettings, frames: Buffer[], o: SendOptions): Promise<void> {
  const ca = pem(c.caFile, "the collector's CA file");
  const client = c.certFile && c.keyFile ? { cert: pem(c.certFile, "the client certificate"), key: pem(c.keyFile, "the client key") } : {};
  const where = `${c.host}:${c.port}`;
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    let ourCloseSent = false;
    let closedByPeer = false;
    let settle: NodeJS.Timeout | undefined;
    const socket = connect({
      host: c.host,
      port: c.port,
      ca,
      ...client,
      minVersion: "TLSv1.2",
      rejectUnauthorized: true,
      // SNI carries names only; the identity check takes a name or an address (its IP SANs).
      ...(isIP(c.serverName) === 0 ? { servername: c.serverName } : {}),
      checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(c.serverName, cert),
    });
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(settle);
      o.signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const onAbort = () => finish(new Error(`${where}: stopped before the collector confirmed the batch`));
    const timer = setTimeout(() => finish(new Error(`${where}: no clean close within ${Math.round(o.timeoutMs / 1000)} s; the batch is sent again later`)), o.timeoutMs);
    if (o.signal?.aborted) return onAbort();
    o.signal?.addEventListener("abort", onAbort, { once: true });
    // The batch first, our close a moment later: a collector that hangs up on its own (a full session table) does so
    // in that moment, or answers the data with a reset; either shows here, before our close could be "answered".
    socket.once("secureConnect", () => {
      socket.write(Buffer.concat(frames));
      settle = setTimeout(() => {
        ourCloseSent = true;
        socket.end();
      }, SETTLE_MS);
    });
    // Collectors say nothing on this channel; whatever they send is read and dropped so that their close comes through.
    socket.on("data", () => undefined);
    // Only a close that comes after all of ours answers it: one before is the collector going away on its own.
    socket.once("end", () => {
      if (ourCloseSent) closedByPeer = true;
      else finish(new Error(`${where}: the collector closed the connection on its own, before ours: the batch is not confirmed`));
    });
    socket.once("error", (e) => finish(new Error(`${where}: ${failureLine(e)}`)));
    socket.once("close", (hadError) => {
      if (hadError) return finish(new Error(`${where}: the connection broke before the collector confirmed the batch`));
      if (!closedByPeer) return finish(new Error(`${where}: closed without the collector's close`));
      finish();
    });
  });
}
