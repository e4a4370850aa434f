import { spawn, type ChildProcess } from "node:child_process";
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { join } from "node:path";
import type { SiteName } from "../inventory/index.js";
import { DcctlError } from "../util/errors.js";
import { siteCommand } from "./lab.js";

/**
 * `dcctl lab console SITE`: the site's duty console (`dcctl serve`) on its management host, seen from this machine's
 * browser. The console runs inside the site, where it reaches the site's repositories and databases, listening on a
 * Unix socket in the lab's folder (a file both sides see); a forwarder on this machine's loopback passes each
 * connection to that socket. Nothing in the lab can open a connection out through it, and it only lives as long as
 * the command does.
 */
export interface LabConsole {
  url: string;
  close(): Promise<void>;
}

export interface LabConsoleOptions {
  /** The loopback port to listen on (0: any free one). */
  port: number;
  lang?: string;
  log: (line: string) => void;
}

export async function startLabConsole(dir: string, site: SiteName, o: LabConsoleOptions): Promise<LabConsole> {
  const socket = join(dir, "run", `console-${site}.sock`);
  const { cmd, args, env } = siteCommand(dir, site, ["dcctl", "serve", "--listen", `unix:${socket}`, ...(o.lang ? ["--lang", o.lang] : [])]);
  const child = spawn(cmd, args, { env, stdio: ["ignore", "ignore", "pipe"] });
  try {
    await listening(child);
  } catch (e) {
    child.kill("SIGTERM");
    throw e;
  }
  child.stderr?.on("data", (chunk: Buffer) => o.log(chunk.toString().trimEnd()));
  let forwarder: Forwarder;
  try {
    forwarder = await forward(socket, o.port);
  } catch (e) {
    await stop(child);
    throw new DcctlError(`cannot listen on 127.0.0.1:${o.port}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const { port } = forwarder.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    async close() {
      await forwarder.close();
      await stop(child);
    },
  };
}

/** Resolves once the console says it listens; rejects with its last words if it ends first. */
function listening(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let said = "";
    const onData = (chunk: Buffer) => {
      said += chunk.toString();
      if (/listening on /.test(said)) {
        child.stderr?.off("data", onData);
        resolve();
      }
    };
    child.stderr?.on("data", onData);
    child.once("error", (e) => reject(new DcctlError(`cannot start the console: ${e.message}`)));
    child.once("exit", (code) => reject(new DcctlError(`the console stopped before it listened (exit ${code ?? "by signal"}): ${said.trim().split("\n").pop() ?? ""}`)));
  });
}

/** The loopback forwarder, with the connections it holds: a browser keeps its own open for as long as it likes. */
interface Forwarder {
  server: Server;
  /** Stops listening and ends every connection at once. */
  close(): Promise<void>;
}

function forward(socket: string, port: number): Promise<Forwarder> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection(socket);
    open.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    // Either side going away ends the other; an error is only the end of that one connection.
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of open) s.destroy();
    });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve({ server, close }));
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}
